/**
 * Reference int8 GEMM: `out[m, n] = requant(sum_k (a[m, k] - aZp) * (w[n, k] - wZp[n]) + bias[n])`
 * with uint8 `a` (row-major `[M, K]`), weights `[N, K]` (ONNX's `[out, in]` after flattening OIHW
 * with 1x1 kernels, or Gemm's B with transB = 1), int32 bias. The spec of the wasm GEMM that runs
 * pointwise convolutions and the FC layer. Output: uint8 requantized (see `requantize.ts`) or
 * float32 `f32(acc) * f32(inScale * wScale[n])` (dequantized logits).
 */
import { prepareWeights } from "./conv2d.ts";
import {
  checkCount,
  checkRange,
  checkScale,
  checkZeroPoint,
  requantizeValue,
  requantMultipliers,
} from "./requantize.ts";

export interface GemmParams {
  /** `[N, K]` row-major. */
  readonly weights: Int8Array | Uint8Array;
  readonly outChannels: number;
  readonly weightZeroPoints?: ArrayLike<number>;
  readonly weightScales: ArrayLike<number>;
  readonly bias?: Int32Array;
  readonly inScale: number;
  readonly inZeroPoint: number;
  /** Required for uint8 output. */
  readonly outScale?: number;
  readonly outZeroPoint?: number;
  readonly lo?: number;
  readonly hi?: number;
  /** "uint8" (requantized, default) or "float32" (dequantized accumulators). */
  readonly output?: "uint8" | "float32";
}

export interface GemmPlan {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  /** Weights minus zero point, `[N, K]` (computed on first use). */
  readonly weights: Int32Array;
  /** The weights as given, and their zero point per output channel. */
  readonly sourceWeights: Int8Array | Uint8Array;
  readonly weightZeroPoints: Int32Array;
  readonly bias: Int32Array;
  readonly output: "uint8" | "float32";
  /** uint8: requantization multipliers; float32: dequantization scales `f32(inScale * wScale)`. */
  readonly multipliers: Float32Array;
  readonly inZeroPoint: number;
  readonly outZeroPoint: number;
  readonly lo: number;
  readonly hi: number;
}

/** Validates a GEMM of a `[M, K]` uint8 matrix and resolves its parameters. */
export function createGemmPlan(shape: readonly [number, number], params: GemmParams): GemmPlan {
  if (shape.length !== 2) {
    throw new TypeError(
      `Cannot run int8 GEMM as the input must have 2 dims [M, K]: current shape is [${
        shape.join(",")
      }]`,
    );
  }
  const [m, k] = shape;
  const n = params.outChannels;
  checkCount("rows", m, 0);
  checkCount("input channels", k, 1);
  checkCount("output channels", n, 1);
  if (params.weights.length !== n * k) {
    throw new TypeError(
      `Cannot run int8 GEMM as weights must hold ${n}x${k} values: current length is ${params.weights.length}`,
    );
  }
  checkZeroPoint("input zero point", params.inZeroPoint);
  checkScale("input scale", params.inScale);
  const wzp = params.weightZeroPoints ?? [0];
  if (wzp.length !== 1 && wzp.length !== n) {
    throw new RangeError(
      `Cannot run int8 GEMM as weight zero points must have 1 or ${n} entries: current length is ${wzp.length}`,
    );
  }
  const prepared = prepareWeights(params.weights, wzp, n, k);
  const maxAbs = prepared.maxAbs;
  if (maxAbs > 32767) {
    throw new RangeError(
      `Cannot run int8 GEMM as weights minus zero point must fit int16: largest magnitude is ${maxAbs}`,
    );
  }
  const bias = params.bias ?? new Int32Array(n);
  if (bias.length !== n) {
    throw new RangeError(
      `Cannot run int8 GEMM as bias must have ${n} entries: current length is ${bias.length}`,
    );
  }
  let maxBias = 0;
  for (const b of bias) maxBias = Math.max(maxBias, Math.abs(b));
  if (maxBias + 255 * maxAbs * k > 2 ** 31 - 1) {
    throw new RangeError(
      `Cannot run int8 GEMM as the int32 accumulator could overflow: ${k} terms of up to 255 x ${maxAbs} plus bias ${maxBias}`,
    );
  }
  const output = params.output ?? "uint8";
  if (output !== "uint8" && output !== "float32") {
    throw new RangeError(
      `Cannot run int8 GEMM as output must be one of uint8, float32: current value is ${
        String(output)
      }`,
    );
  }
  if (output === "float32") {
    const scales = requantMultipliers(params.inScale, params.weightScales, 1, n);
    return {
      m,
      k,
      n,
      get weights() {
        return prepared.values();
      },
      sourceWeights: prepared.source,
      weightZeroPoints: prepared.zeroPoints,
      bias,
      output,
      multipliers: scales,
      inZeroPoint: params.inZeroPoint,
      outZeroPoint: 0,
      lo: 0,
      hi: 255,
    };
  }
  if (params.outScale === undefined || params.outZeroPoint === undefined) {
    throw new TypeError(
      "Cannot run int8 GEMM with uint8 output as outScale and outZeroPoint are missing",
    );
  }
  checkZeroPoint("output zero point", params.outZeroPoint);
  const { lo, hi } = checkRange(params.lo ?? 0, params.hi ?? 255);
  return {
    m,
    k,
    n,
    get weights() {
      return prepared.values();
    },
    sourceWeights: prepared.source,
    weightZeroPoints: prepared.zeroPoints,
    bias,
    output,
    multipliers: requantMultipliers(params.inScale, params.weightScales, params.outScale, n),
    inZeroPoint: params.inZeroPoint,
    outZeroPoint: params.outZeroPoint,
    lo,
    hi,
  };
}

/** The int32 accumulator of one output (bias included). */
function accumulate(
  plan: GemmPlan,
  weights: Int32Array,
  a: Uint8Array,
  r: number,
  o: number,
): number {
  let acc = plan.bias[o]!;
  const zp = plan.inZeroPoint;
  for (let i = 0; i < plan.k; i++) {
    acc += (a[r * plan.k + i]! - zp) * weights[o * plan.k + i]!;
  }
  return acc;
}

/** Runs a uint8-output plan on `[M, K]` uint8 input; returns `[M, N]` uint8. */
export function runGemmPlan(plan: GemmPlan, a: Uint8Array): Uint8Array {
  checkInput(plan, a);
  const weights = plan.weights;
  const out = new Uint8Array(plan.m * plan.n);
  for (let r = 0; r < plan.m; r++) {
    for (let o = 0; o < plan.n; o++) {
      out[r * plan.n + o] = requantizeValue(
        accumulate(plan, weights, a, r, o),
        plan.multipliers[o]!,
        plan.outZeroPoint,
        plan.lo,
        plan.hi,
      );
    }
  }
  return out;
}

/** Runs a float32-output plan on `[M, K]` uint8 input; returns `[M, N]` float32. */
export function runGemmPlanFloat(plan: GemmPlan, a: Uint8Array): Float32Array {
  checkInput(plan, a);
  const weights = plan.weights;
  const out = new Float32Array(plan.m * plan.n);
  for (let r = 0; r < plan.m; r++) {
    for (let o = 0; o < plan.n; o++) {
      out[r * plan.n + o] = Math.fround(
        Math.fround(accumulate(plan, weights, a, r, o)) * plan.multipliers[o]!,
      );
    }
  }
  return out;
}

function checkInput(plan: GemmPlan, a: Uint8Array): void {
  if (a.length !== plan.m * plan.k) {
    throw new TypeError(
      `Cannot run int8 GEMM as the input must hold ${plan.m}x${plan.k} values: current length is ${a.length}`,
    );
  }
}

/** int8 GEMM with uint8 output (reference implementation). */
export function gemmInt8(
  a: Uint8Array,
  shape: readonly [number, number],
  params: GemmParams,
): Uint8Array {
  const plan = createGemmPlan(shape, { ...params, output: "uint8" });
  return runGemmPlan(plan, a);
}
