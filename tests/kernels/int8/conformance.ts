/**
 * The shared int8 conformance suite: one list of cases (seeded random inputs, explicit edge
 * values, and ONNX's own node test data) run against any `Int8Kernels` implementation.
 *
 * Expected values: ONNX cases (QLinearConv, ConvInteger, QLinearMatMul) compare with the
 * `output_0.pb` in Debian's libonnx-testdata; every
 * other case compares with the TypeScript reference (the spec), whose own arithmetic is pinned by
 * hand-computed tests in the `*_test.ts` files next to this one. Shape and dtype are checked before
 * values. Integer outputs must be exactly equal; tolerances are named in `TOLERANCES`.
 *
 * @example
 * runConformance({ name: "wasm", kernels: await wasmKernels(), skip: [] });
 */
import type { Int8Kernels } from "../../../kernels/int8/kernel_set.ts";
import { referenceInt8Kernels } from "../../../kernels/int8/kernel_set.ts";
import type { NHWC } from "../../../kernels/int8/conv2d.ts";
import { type OnnxTensor, readOnnxTestCase } from "./onnx_tensor.ts";

/** Every tolerance of the int8 suites, in one place. Integer paths compare exactly. */
export const TOLERANCES = {
  /** uint8 activations from any implementation: bit-exact against the reference. */
  integer: { atol: 0, rtol: 0 },
  /** float32 logits of the FC layer: the same float32 operations, so exact as well. */
  fcFloat: { atol: 0, rtol: 0 },
  /**
   * Whole-network logits of the int8 engine against onnxruntime-node on the same QDQ file. Measured
   * difference here: 0 (both requantize with MLAS's float32 arithmetic; the 7-bit weights keep
   * ORT's u8s8 kernels from saturating). The margin only absorbs a different float summation in
   * another onnxruntime build; the argmax must agree exactly.
   */
  ortLogits: { atol: 1e-5, rtol: 1e-5 },
} as const;

export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

type Output = Uint8Array | Float32Array;

export interface ConformanceCase {
  readonly name: string;
  readonly tolerance: Tolerance;
  run(k: Int8Kernels): Output;
  /** Expected output; default: the reference implementation's. */
  expected?(): Output;
}

export interface Skip {
  readonly reason: string;
  readonly cases: readonly string[];
}

/** Throws with the first failing index, both values and the shape when a and b differ. */
export function assertAllClose(
  actual: Output,
  expected: Output,
  tol: Tolerance,
  shape: readonly number[] = [expected.length],
): void {
  if (actual.constructor !== expected.constructor) {
    throw new TypeError(
      `dtype mismatch: got ${actual.constructor.name}, expected ${expected.constructor.name}`,
    );
  }
  if (actual.length !== expected.length) {
    throw new TypeError(
      `length mismatch for shape [${
        shape.join(",")
      }]: got ${actual.length}, expected ${expected.length}`,
    );
  }
  let bad = 0;
  let first = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = a === e || Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
    if (!ok) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad > 0) {
    throw new RangeError(
      `${bad} of ${actual.length} values differ (shape [${
        shape.join(",")
      }], atol ${tol.atol}, rtol ${tol.rtol}); first at index ${first}: got ${
        actual[first]
      }, expected ${expected[first]}`,
    );
  }
}

// --- seeded inputs ------------------------------------------------------------------------------

/** mulberry32: a small deterministic PRNG so every run sees the same inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const randU8 = (r: () => number, n: number) =>
  Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
const randI8 = (r: () => number, n: number) =>
  Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
const randI32 = (r: () => number, n: number, mag: number) =>
  Int32Array.from({ length: n }, () => Math.floor((r() * 2 - 1) * mag));
const randScales = (r: () => number, n: number, lo: number, hi: number) =>
  Float32Array.from({ length: n }, () => lo + r() * (hi - lo));

interface ConvCaseSpec {
  name: string;
  shape: NHWC;
  outC: number;
  k: number;
  stride: number;
  depthwise?: boolean;
  padding?: "same_upper" | "valid" | readonly [number, number, number, number];
  inZp?: number;
  outZp?: number;
  lo?: number;
  hi?: number;
  /** Multiplier scale: large values saturate. */
  gain?: number;
  /** 7-bit weights as the shipped models have (see `sevenBit`). */
  weights7?: Weights7;
  seed: number;
}

/**
 * 7-bit weight patterns (values in -64..64, as model/export/quantize.ts writes them):
 * "mixed": channels holding +64 only, -64 only, or neither (the wasm GEMM's 7-bit path flips the
 * sign of the first kind); "both": also channels holding +64 and -64 (the wasm pointwise and FC
 * layers move those +64s to extra columns, the im2col and depthwise layers use the int16 path).
 */
type Weights7 = "mixed" | "both";

function sevenBit(w: Int8Array, outC: number, mode: Weights7): Int8Array {
  const per = w.length / outC;
  const out = w.map((v) => Math.max(-63, v >> 1));
  for (let o = 0; o < outC; o++) {
    if (mode === "both" && o % 4 === 0) {
      // +64 at a column shared by several channels or of its own, and a -64
      out[o * per + (o % 8 === 0 ? 0 : (o * 7) % per)] = 64;
      out[o * per + per - 1] = -64;
    } else if (o % 3 === 0) out[o * per] = 64;
    else if (o % 3 === 1) out[o * per + per - 1] = -64;
  }
  return out;
}

function convCase(s: ConvCaseSpec): ConformanceCase {
  const r = rng(s.seed);
  const [, , , c] = s.shape;
  const outC = s.depthwise ? c : s.outC;
  const inPer = s.depthwise ? 1 : c;
  const input = randU8(r, s.shape.reduce((a, b) => a * b, 1));
  const weights8 = randI8(r, outC * inPer * s.k * s.k);
  const weights = s.weights7 ? sevenBit(weights8, outC, s.weights7) : weights8;
  const inZp = s.inZp ?? Math.floor(r() * 256);
  const gain = s.gain ?? 1;
  // Output scale chosen so that typical accumulators land inside [0, 255], gain > 1 saturates.
  const spread = Math.sqrt(inPer * s.k * s.k) * 128 * 74;
  const params = {
    weights,
    weightShape: [outC, inPer, s.k, s.k] as const,
    weightScales: randScales(r, outC, 0.002, 0.02),
    bias: randI32(r, outC, 20000),
    inScale: 0.02,
    inZeroPoint: inZp,
    outScale: (0.02 * 0.011 * spread) / (128 * gain),
    outZeroPoint: s.outZp ?? Math.floor(r() * 256),
    lo: s.lo ?? 0,
    hi: s.hi ?? 255,
    strides: s.stride,
    padding: s.padding ?? "same_upper",
  };
  if (s.depthwise) {
    return {
      name: s.name,
      tolerance: TOLERANCES.integer,
      run: (k) => k.depthwise(input, s.shape, params),
    };
  }
  if (s.k === 1 && s.stride === 1 && (s.padding ?? "same_upper") === "same_upper") {
    return {
      name: s.name,
      tolerance: TOLERANCES.integer,
      run: (k) => k.pointwise(input, s.shape, params),
    };
  }
  return {
    name: s.name,
    tolerance: TOLERANCES.integer,
    run: (k) => k.conv2d(input, s.shape, params),
  };
}

function gemmCase(
  name: string,
  m: number,
  kk: number,
  n: number,
  seed: number,
  float = false,
  weights7?: Weights7,
): ConformanceCase {
  const r = rng(seed);
  const a = randU8(r, m * kk);
  const w8 = randI8(r, n * kk);
  const params = {
    weights: weights7 ? sevenBit(w8, n, weights7) : w8,
    outChannels: n,
    weightScales: randScales(r, n, 0.002, 0.02),
    bias: randI32(r, n, 30000),
    inScale: 0.03,
    inZeroPoint: Math.floor(r() * 256),
    // typical |acc| is sqrt(K) * 74 * 74: spread it over about +-64 output steps
    outScale: (0.03 * 0.011 * Math.sqrt(kk) * 74 * 74) / 64,
    outZeroPoint: Math.floor(r() * 256),
  };
  if (float) {
    return { name, tolerance: TOLERANCES.fcFloat, run: (k) => k.fcToFloat(a, [m, kk], params) };
  }
  return { name, tolerance: TOLERANCES.integer, run: (k) => k.fc(a, [m, kk], params) };
}

function gapCase(
  name: string,
  shape: NHWC,
  inZp: number,
  outZp: number,
  outScale: number,
  seed: number,
): ConformanceCase {
  const r = rng(seed);
  const input = randU8(r, shape.reduce((a, b) => a * b, 1));
  const params = {
    input: { scale: 0.05, zeroPoint: inZp },
    output: { scale: outScale, zeroPoint: outZp },
  };
  return { name, tolerance: TOLERANCES.integer, run: (k) => k.globalAvgPool(input, shape, params) };
}

/** Seeded random and edge-value cases. */
export function generatedCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [
    // first conv: 1 and 3 input channels, stride 2 and 1, SAME_UPPER padding
    convCase({
      name: "first conv 1ch 28x28 s2 -> 8",
      shape: [1, 28, 28, 1],
      outC: 8,
      k: 3,
      stride: 2,
      seed: 1,
    }),
    convCase({
      name: "first conv 3ch 32x32 s1 -> 16",
      shape: [1, 32, 32, 3],
      outC: 16,
      k: 3,
      stride: 1,
      seed: 2,
    }),
    convCase({
      name: "first conv 3ch 7x5 s2 -> 13, batch 3",
      shape: [3, 7, 5, 3],
      outC: 13,
      k: 3,
      stride: 2,
      seed: 3,
    }),
    convCase({
      name: "conv 1x1 spatial 3x3 kernel",
      shape: [2, 1, 1, 3],
      outC: 5,
      k: 3,
      stride: 1,
      seed: 4,
    }),
    convCase({
      name: "conv 5x5 s2 valid 9 channels",
      shape: [1, 11, 9, 9],
      outC: 10,
      k: 5,
      stride: 2,
      padding: "valid",
      seed: 5,
    }),
    convCase({
      name: "conv explicit pads [1,0,2,1]",
      shape: [1, 6, 6, 2],
      outC: 3,
      k: 3,
      stride: 1,
      padding: [1, 0, 2, 1],
      seed: 6,
    }),
    convCase({
      name: "conv zero points 0/255 saturating",
      shape: [1, 9, 9, 3],
      outC: 17,
      k: 3,
      stride: 2,
      inZp: 0,
      outZp: 255,
      gain: 8,
      seed: 7,
    }),
    convCase({
      name: "conv zero points 255/0 relu saturating",
      shape: [1, 9, 9, 3],
      outC: 17,
      k: 3,
      stride: 1,
      inZp: 255,
      outZp: 0,
      gain: 8,
      seed: 8,
    }),
    // depthwise 3x3 and 5x5, stride 1 and 2, channel counts not multiple of 8 / 16
    convCase({
      name: "depthwise 3x3 s1 32ch 16x16",
      shape: [1, 16, 16, 32],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      seed: 10,
    }),
    convCase({
      name: "depthwise 3x3 s2 19ch 13x11",
      shape: [1, 13, 11, 19],
      outC: 0,
      k: 3,
      stride: 2,
      depthwise: true,
      seed: 11,
    }),
    convCase({
      name: "depthwise 3x3 s1 1ch 5x7",
      shape: [1, 5, 7, 1],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      seed: 12,
    }),
    convCase({
      name: "depthwise 3x3 s2 1x1 spatial 33ch batch 2",
      shape: [2, 1, 1, 33],
      outC: 0,
      k: 3,
      stride: 2,
      depthwise: true,
      seed: 13,
    }),
    convCase({
      name: "depthwise 3x3 s1 2x2 spatial 7ch",
      shape: [1, 2, 2, 7],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      seed: 14,
    }),
    convCase({
      name: "depthwise 5x5 s1 24ch 9x9",
      shape: [1, 9, 9, 24],
      outC: 0,
      k: 5,
      stride: 1,
      depthwise: true,
      seed: 15,
    }),
    convCase({
      name: "depthwise 5x5 s2 40ch 7x10 batch 2",
      shape: [2, 7, 10, 40],
      outC: 0,
      k: 5,
      stride: 2,
      depthwise: true,
      seed: 16,
    }),
    convCase({
      name: "depthwise relu6 range, zp 0/255",
      shape: [1, 6, 6, 16],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      inZp: 255,
      outZp: 0,
      lo: 0,
      hi: 200,
      gain: 4,
      seed: 17,
    }),
    convCase({
      name: "depthwise zp 0, outZp 255 saturating",
      shape: [1, 5, 5, 9],
      outC: 0,
      k: 3,
      stride: 2,
      depthwise: true,
      inZp: 0,
      outZp: 255,
      gain: 10,
      seed: 18,
    }),
    // pointwise (1x1 GEMM): odd K and N, row tails
    convCase({
      name: "pointwise 8 -> 16 8x8",
      shape: [1, 8, 8, 8],
      outC: 16,
      k: 1,
      stride: 1,
      seed: 20,
    }),
    convCase({
      name: "pointwise 13 -> 33 5x3 batch 3",
      shape: [3, 5, 3, 13],
      outC: 33,
      k: 1,
      stride: 1,
      seed: 21,
    }),
    convCase({
      name: "pointwise 64 -> 128 4x4",
      shape: [1, 4, 4, 64],
      outC: 128,
      k: 1,
      stride: 1,
      seed: 22,
    }),
    convCase({
      name: "pointwise 1 -> 1 1x1",
      shape: [1, 1, 1, 1],
      outC: 1,
      k: 1,
      stride: 1,
      seed: 23,
    }),
    convCase({
      name: "pointwise 256 -> 7 2x2 relu",
      shape: [1, 2, 2, 256],
      outC: 7,
      k: 1,
      stride: 1,
      lo: 100,
      seed: 24,
    }),
    convCase({
      name: "pointwise zp 255/255 saturating",
      shape: [2, 3, 3, 24],
      outC: 40,
      k: 1,
      stride: 1,
      inZp: 255,
      outZp: 255,
      gain: 6,
      seed: 25,
    }),
    // 7-bit weights (the shipped models' range): the wasm GEMM's relaxed-dot path
    convCase({
      name: "pointwise 7-bit 64 -> 128 4x4",
      shape: [1, 4, 4, 64],
      outC: 128,
      k: 1,
      stride: 1,
      weights7: "mixed",
      seed: 50,
    }),
    convCase({
      name: "pointwise 7-bit 13 -> 33 5x3 batch 3",
      shape: [3, 5, 3, 13],
      outC: 33,
      k: 1,
      stride: 1,
      weights7: "mixed",
      seed: 51,
    }),
    convCase({
      name: "pointwise 7-bit 1 -> 1 1x1",
      shape: [1, 1, 1, 1],
      outC: 1,
      k: 1,
      stride: 1,
      weights7: "mixed",
      seed: 52,
    }),
    convCase({
      name: "pointwise 7-bit zp 255/255 saturating",
      shape: [2, 3, 3, 24],
      outC: 40,
      k: 1,
      stride: 1,
      inZp: 255,
      outZp: 255,
      gain: 6,
      weights7: "mixed",
      seed: 53,
    }),
    convCase({
      name: "pointwise 7-bit zp 0/0 relu6 range 1024 -> 20 2x2",
      shape: [1, 2, 2, 1024],
      outC: 20,
      k: 1,
      stride: 1,
      inZp: 0,
      outZp: 0,
      hi: 180,
      weights7: "mixed",
      seed: 54,
    }),
    convCase({
      name: "pointwise 7-bit, channels with +64 and -64",
      shape: [1, 3, 5, 20],
      outC: 12,
      k: 1,
      stride: 1,
      weights7: "both",
      seed: 55,
    }),
    convCase({
      name: "first conv 7-bit 1ch 28x28 s1 -> 8",
      shape: [1, 28, 28, 1],
      outC: 8,
      k: 3,
      stride: 1,
      weights7: "mixed",
      seed: 56,
    }),
    convCase({
      name: "first conv 7-bit 3ch 7x5 s2 -> 13 batch 3, pads [1,0,2,1]",
      shape: [3, 7, 5, 3],
      outC: 13,
      k: 3,
      stride: 2,
      padding: [1, 0, 2, 1],
      inZp: 255,
      weights7: "mixed",
      seed: 57,
    }),
    convCase({
      name: "depthwise 7-bit 3x3 s1 32ch 16x16",
      shape: [1, 16, 16, 32],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      weights7: "mixed",
      seed: 62,
    }),
    convCase({
      name: "depthwise 7-bit 3x3 s2 19ch 13x11",
      shape: [1, 13, 11, 19],
      outC: 0,
      k: 3,
      stride: 2,
      depthwise: true,
      weights7: "mixed",
      seed: 63,
    }),
    convCase({
      name: "depthwise 7-bit 3x3 s2 1x1 spatial 33ch batch 2",
      shape: [2, 1, 1, 33],
      outC: 0,
      k: 3,
      stride: 2,
      depthwise: true,
      weights7: "mixed",
      seed: 64,
    }),
    convCase({
      name: "depthwise 7-bit 3x3 s1 1ch 5x7",
      shape: [1, 5, 7, 1],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      weights7: "mixed",
      seed: 65,
    }),
    convCase({
      name: "depthwise 7-bit 5x5 s2 40ch 7x10 batch 2",
      shape: [2, 7, 10, 40],
      outC: 0,
      k: 5,
      stride: 2,
      depthwise: true,
      weights7: "mixed",
      seed: 66,
    }),
    convCase({
      name: "depthwise 7-bit relu6 range, zp 255/0, valid",
      shape: [1, 6, 6, 16],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      padding: "valid",
      inZp: 255,
      outZp: 0,
      lo: 0,
      hi: 200,
      gain: 4,
      weights7: "mixed",
      seed: 67,
    }),
    convCase({
      name: "depthwise 7-bit explicit pads [1,0,2,1], zp 0/255 saturating",
      shape: [1, 5, 6, 24],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      padding: [1, 0, 2, 1],
      inZp: 0,
      outZp: 255,
      gain: 10,
      weights7: "mixed",
      seed: 68,
    }),
    convCase({
      name: "depthwise 7-bit, channels with +64 and -64",
      shape: [1, 4, 4, 8],
      outC: 0,
      k: 3,
      stride: 1,
      depthwise: true,
      weights7: "both",
      seed: 69,
    }),
    gemmCase("fc 7-bit 7x1024 -> 1000", 7, 1024, 1000, 58, false, "mixed"),
    gemmCase("fc 7-bit float logits 3x64 -> 10", 3, 64, 10, 59, true, "mixed"),
    gemmCase("fc 7-bit float logits 1x17 -> 3", 1, 17, 3, 60, true, "mixed"),
    gemmCase("fc 7-bit, channels with +64 and -64", 2, 40, 9, 61, false, "both"),
    gemmCase(
      "fc 7-bit 7x1024 -> 1000, channels with +64 and -64",
      7,
      1024,
      1000,
      70,
      false,
      "both",
    ),
    gemmCase(
      "fc 7-bit float logits 3x64 -> 10, channels with +64 and -64",
      3,
      64,
      10,
      71,
      true,
      "both",
    ),
    convCase({
      name: "pointwise 7-bit 13 -> 33 5x3 batch 3, channels with +64 and -64",
      shape: [3, 5, 3, 13],
      outC: 33,
      k: 1,
      stride: 1,
      weights7: "both",
      seed: 72,
    }),
    convCase({
      name: "pointwise 7-bit zp 255/255 saturating, channels with +64 and -64",
      shape: [2, 3, 3, 24],
      outC: 40,
      k: 1,
      stride: 1,
      inZp: 255,
      outZp: 255,
      gain: 6,
      weights7: "both",
      seed: 73,
    }),
    convCase({
      name: "first conv 7-bit 3ch 7x5 s2 -> 13, channels with +64 and -64",
      shape: [1, 7, 5, 3],
      outC: 13,
      k: 3,
      stride: 2,
      weights7: "both",
      seed: 74,
    }),
    // FC / GEMM
    gemmCase("fc 1x256 -> 10", 1, 256, 10, 30),
    gemmCase("fc 5x33 -> 9", 5, 33, 9, 31),
    gemmCase("fc 7x1024 -> 1000", 7, 1024, 1000, 32),
    gemmCase("fc float logits 3x64 -> 10", 3, 64, 10, 33, true),
    gemmCase("fc float logits 1x17 -> 3", 1, 17, 3, 34, true),
    // global average pooling
    gapCase("gap 4x4x32", [1, 4, 4, 32], 7, 3, 0.031, 40),
    gapCase("gap 1x1x7 zp 255/255", [2, 1, 1, 7], 255, 255, 0.05, 41),
    gapCase("gap 7x7x33 zp 0/0", [1, 7, 7, 33], 0, 0, 0.05, 42),
    gapCase("gap 2x3x1 batch 3 saturating", [3, 2, 3, 1], 128, 128, 0.004, 43),
  ];
  // seeded random shapes: kernel 1/3/5, stride 1/2, any channels and sizes, SAME or VALID
  const pick = rng(2024);
  const int = (lo: number, hi: number) => lo + Math.floor(pick() * (hi - lo + 1));
  for (let i = 0; i < 16; i++) {
    const k = [1, 3, 5][int(0, 2)]!;
    const depthwise = pick() < 0.5 && k > 1;
    const stride = int(1, 2);
    const shape: NHWC = [int(1, 3), int(1, 13), int(1, 13), int(1, 40)];
    const padding = pick() < 0.8 || shape[1] < k || shape[2] < k ? "same_upper" : "valid";
    cases.push(convCase({
      name: `random ${i}: ${depthwise ? "depthwise" : "conv"} ${k}x${k} s${stride} ${padding} [${
        shape.join(",")
      }]`,
      shape,
      outC: int(1, 40),
      k,
      stride,
      depthwise,
      padding,
      ...(i % 2 ? { weights7: "mixed" as const } : {}),
      seed: 100 + i,
    }));
  }
  // requantize: ties at multiplier 0.5, large accumulators (float32 rounding), saturation
  const acc = Int32Array.from([
    1,
    3,
    5,
    -1,
    -3,
    -5,
    0,
    2 ** 24 + 1,
    -(2 ** 24 + 3),
    2 ** 31 - 1,
    -(2 ** 31),
    255,
    511,
    -509,
    1000,
    77,
    13,
    -13,
    99,
    101,
  ]);
  cases.push({
    name: "requantize ties and extremes, 5 channels",
    tolerance: TOLERANCES.integer,
    run: (k) =>
      k.requantize(acc, [4, 5], {
        multipliers: [0.5, 0.5, 0.25, 1e-6, 0.75],
        bias: Int32Array.from([0, 1, -1, 7, 0]),
        zeroPoint: 128,
      }),
  });
  cases.push({
    name: "requantize relu6 range, 9 channels",
    tolerance: TOLERANCES.integer,
    run: (k) =>
      k.requantize(acc.subarray(0, 18), [2, 9], {
        multipliers: [0.5],
        zeroPoint: 3,
        lo: 3,
        hi: 120,
      }),
  });
  return cases;
}

// --- ONNX node test data --------------------------------------------------------------------------

export const ONNX_NODE_DIR = "/usr/share/libonnx-testdata/data/node";

const scalar = (t: OnnxTensor) => t.data[0]!;

type T = OnnxTensor;
function expectTensors(ts: OnnxTensor[], n: 8): [T, T, T, T, T, T, T, T] {
  if (ts.length !== n) throw new TypeError(`expected ${n} ONNX test inputs, found ${ts.length}`);
  return ts as [T, T, T, T, T, T, T, T];
}

/** NCHW -> NHWC for uint8 data. */
function toNhwc(data: ArrayLike<number>, [n, c, h, w]: readonly number[]): Uint8Array {
  const out = new Uint8Array(n! * c! * h! * w!);
  for (let b = 0; b < n!; b++) {
    for (let ch = 0; ch < c!; ch++) {
      for (let i = 0; i < h! * w!; i++) {
        out[(b * h! * w! + i) * c! + ch] = data[(b * c! + ch) * h! * w! + i]!;
      }
    }
  }
  return out;
}

/** ONNX's QLinearConv and QLinearMatMul node tests, converted to the kernels' layouts. */
export async function onnxCases(): Promise<ConformanceCase[]> {
  const cases: ConformanceCase[] = [];
  {
    const { inputs, outputs } = await readOnnxTestCase(`${ONNX_NODE_DIR}/test_qlinearconv`);
    const [x, xs, xzp, w, ws, wzp, ys, yzp] = expectTensors(inputs, 8);
    const y = outputs[0]!;
    const [n, c, h, wd] = x.dims as [number, number, number, number];
    const input = toNhwc(x.data, x.dims);
    const expected = toNhwc(y.data, y.dims);
    cases.push({
      name: "onnx test_qlinearconv (uint8 weights with zero point 255)",
      tolerance: TOLERANCES.integer,
      run: (k) =>
        k.conv2d(input, [n, h, wd, c], {
          weights: w.data as Uint8Array,
          weightShape: w.dims as [number, number, number, number],
          weightZeroPoints: Array.from(wzp.data),
          weightScales: ws.data as Float32Array,
          inScale: scalar(xs),
          inZeroPoint: scalar(xzp),
          outScale: scalar(ys),
          outZeroPoint: scalar(yzp),
          padding: "valid",
        }),
      expected: () => expected,
    });
  }
  // ConvInteger: int32 accumulators; with unit scales and zero point 0 the requantized uint8
  // output is the accumulator itself (these tests' values lie in 0..255).
  for (
    const test of [
      "test_basic_convinteger",
      "test_convinteger_with_padding",
      "test_convinteger_without_padding",
    ]
  ) {
    const dir = `${ONNX_NODE_DIR}/${test}`;
    const { inputs, outputs } = await readOnnxTestCase(dir);
    const [x, w, xzp] = inputs as [OnnxTensor, OnnxTensor, OnnxTensor];
    const y = outputs[0]!;
    if (!Array.from(y.data).every((v) => v >= 0 && v <= 255)) {
      throw new RangeError(`${test}: outputs leave 0..255`);
    }
    const [n, c, h, wd] = x.dims as [number, number, number, number];
    const padded = test.includes("with_padding");
    cases.push({
      name: `onnx ${test}`,
      tolerance: TOLERANCES.integer,
      run: (k) =>
        k.conv2d(toNhwc(x.data, x.dims), [n, h, wd, c], {
          weights: w.data as Uint8Array,
          weightShape: w.dims as [number, number, number, number],
          weightScales: [1],
          inScale: 1,
          inZeroPoint: scalar(xzp),
          outScale: 1,
          outZeroPoint: 0,
          padding: padded ? [1, 1, 1, 1] : "valid",
        }),
      expected: () => toNhwc(Uint8Array.from(y.data), y.dims),
    });
  }
  for (const test of ["test_qlinearmatmul_2D", "test_qlinearmatmul_3D"]) {
    const { inputs, outputs } = await readOnnxTestCase(`${ONNX_NODE_DIR}/${test}`);
    const [a, as, azp, b, bs, bzp, ys, yzp] = expectTensors(inputs, 8);
    const y = outputs[0]!;
    // b is [..., K, N]: the GEMM wants [N, K] per batch matrix.
    const kk = b.dims.at(-2)!;
    const nn = b.dims.at(-1)!;
    const mm = a.dims.at(-2)!;
    const batches = a.data.length / (mm * kk);
    cases.push({
      name: `onnx ${test}`,
      tolerance: TOLERANCES.integer,
      run: (k) => {
        const out = new Uint8Array(batches * mm * nn);
        for (let i = 0; i < batches; i++) {
          const bt = new Uint8Array(nn * kk);
          const boff = b.data.length === kk * nn ? 0 : i * kk * nn;
          for (let r = 0; r < kk; r++) {
            for (let col = 0; col < nn; col++) bt[col * kk + r] = b.data[boff + r * nn + col]!;
          }
          out.set(
            k.gemm((a.data as Uint8Array).subarray(i * mm * kk, (i + 1) * mm * kk), [mm, kk], {
              weights: bt,
              outChannels: nn,
              weightZeroPoints: Array.from(bzp.data),
              weightScales: bs.data as Float32Array,
              inScale: scalar(as),
              inZeroPoint: scalar(azp),
              outScale: scalar(ys),
              outZeroPoint: scalar(yzp),
            }),
            i * mm * nn,
          );
        }
        return out;
      },
      expected: () => y.data as Uint8Array,
    });
  }
  return cases;
}

export interface ConformanceOptions {
  readonly name: string;
  readonly kernels: Int8Kernels | (() => Promise<Int8Kernels>);
  readonly skip?: readonly Skip[];
}

/** Registers one Deno test per implementation with a step per case. */
export function runConformance(opts: ConformanceOptions): void {
  Deno.test(`int8 conformance: ${opts.name} matches the reference and ONNX node data`, async (t) => {
    const kernels = typeof opts.kernels === "function" ? await opts.kernels() : opts.kernels;
    const skipped = new Map<string, string>();
    for (const s of opts.skip ?? []) for (const c of s.cases) skipped.set(c, s.reason);
    const cases = [...generatedCases(), ...(await onnxCases())];
    for (const kase of cases) {
      const reason = skipped.get(kase.name);
      await t.step({
        name: reason ? `${kase.name} (skipped: ${reason})` : kase.name,
        ignore: reason !== undefined,
        fn: () => {
          const expected = kase.expected ? kase.expected() : kase.run(referenceInt8Kernels);
          const actual = kase.run(kernels);
          assertAllClose(actual, expected, kase.tolerance);
        },
      });
    }
  });
}
