/**
 * Reference quantized 2-D convolution (the spec of every int8 convolution kernel): uint8 NHWC
 * activations, int8 (or uint8 with zero points) OIHW weights as ONNX stores them, int32 bias,
 * per-channel requantization (see `requantize.ts`). Groups are supported, so the same code is the
 * spec of the first conv (groups 1) and of depthwise (groups = channels).
 *
 * Layout: activations are NHWC (`[n, h, w, c]`, channels contiguous) in every int8 kernel of the
 * project, because pointwise convolutions then become a plain row-major GEMM. The engine converts
 * the network input from NCHW once.
 *
 * Padding: `"same_upper"` (TF SAME / ONNX SAME_UPPER: output `ceil(in / stride)`, the odd extra
 * pixel at the bottom / right), `"valid"`, or explicit `[top, left, bottom, right]`. Padded pixels
 * hold the input zero point, i.e. they contribute exactly 0 to the accumulator.
 */
import {
  checkCount,
  checkRange,
  checkScale,
  checkZeroPoint,
  requantizeValue,
  requantMultipliers,
} from "./requantize.ts";

export type Padding = "same_upper" | "valid" | readonly [number, number, number, number];

/** Shape of an NHWC activation tensor. */
export type NHWC = readonly [n: number, h: number, w: number, c: number];

export interface QuantizedConvParams {
  /** OIHW: `[outChannels, inChannels / groups, kh, kw]`. */
  readonly weights: Int8Array | Uint8Array;
  readonly weightShape: readonly [number, number, number, number];
  /** Weight zero point(s): one, or one per output channel. Default 0 (symmetric int8). */
  readonly weightZeroPoints?: ArrayLike<number>;
  /** Weight scale(s): one, or one per output channel. */
  readonly weightScales: ArrayLike<number>;
  /** int32 bias in units of inScale * weightScale[c]. */
  readonly bias?: Int32Array;
  readonly inScale: number;
  readonly inZeroPoint: number;
  readonly outScale: number;
  readonly outZeroPoint: number;
  /** Output clamp after activation folding (see `activationRange`). Default [0, 255]. */
  readonly lo?: number;
  readonly hi?: number;
  readonly strides?: number | readonly [number, number];
  readonly padding?: Padding;
  readonly groups?: number;
}

/** Everything a conv kernel needs, resolved and validated once. */
export interface Conv2dPlan {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly outC: number;
  readonly outH: number;
  readonly outW: number;
  readonly kh: number;
  readonly kw: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padTop: number;
  readonly padLeft: number;
  readonly groups: number;
  readonly inPerGroup: number;
  readonly outPerGroup: number;
  /** Weights minus their zero point, OIHW (computed on first use). */
  readonly weights: Int32Array;
  /** The weights as given, and their zero point per output channel. */
  readonly sourceWeights: Int8Array | Uint8Array;
  readonly weightZeroPoints: Int32Array;
  readonly bias: Int32Array;
  readonly multipliers: Float32Array;
  readonly inZeroPoint: number;
  readonly outZeroPoint: number;
  readonly lo: number;
  readonly hi: number;
}

/** Output side for one dimension, and the leading pad. */
export function resolvePadding(
  inSize: number,
  kernel: number,
  stride: number,
  padding: Padding,
  axis: 0 | 1,
): { out: number; before: number } {
  if (padding === "same_upper") {
    const out = Math.ceil(inSize / stride);
    const total = Math.max(0, (out - 1) * stride + kernel - inSize);
    return { out, before: Math.floor(total / 2) };
  }
  if (padding === "valid") {
    const out = Math.floor((inSize - kernel) / stride) + 1;
    return { out, before: 0 };
  }
  const before = padding[axis];
  const after = padding[axis + 2]!;
  const out = Math.floor((inSize + before + after - kernel) / stride) + 1;
  return { out, before };
}

/** Weights with their zero points, validated, with `w - zp` computed only when first asked for. */
export interface PreparedWeights {
  readonly source: Int8Array | Uint8Array;
  /** One zero point per output channel. */
  readonly zeroPoints: Int32Array;
  /** An upper bound of |w - zp| (exact unless the weights are int8 with zero points 0). */
  readonly maxAbs: number;
  /** `w - zp[o]`, computed once on first call. */
  values(): Int32Array;
}

/**
 * Validates weights and zero points. Symmetric int8 weights (all zero points 0, the exporter's
 * format) are not scanned: |w| <= 128 is the bound, and `w - zp` is made only if a caller asks
 * (the reference kernels do; the wasm packers read the int8 bytes directly), which keeps model
 * loading fast.
 */
export function prepareWeights(
  src: Int8Array | Uint8Array,
  zp: ArrayLike<number>,
  outC: number,
  perOut: number,
): PreparedWeights {
  const zeroPoints = new Int32Array(outC);
  for (let o = 0; o < outC; o++) zeroPoints[o] = zp.length === 1 ? zp[0]! : zp[o]!;
  let cached: Int32Array | undefined;
  const values = (): Int32Array => {
    if (!cached) {
      // Native widening copy, then monomorphic loops over the Int32Array.
      cached = new Int32Array(src);
      for (let o = 0; o < outC; o++) {
        if (zeroPoints[o] !== 0) subtractRow(cached, o * perOut, (o + 1) * perOut, zeroPoints[o]!);
      }
    }
    return cached;
  };
  const symmetric = src instanceof Int8Array && zeroPoints.every((z) => z === 0);
  return { source: src, zeroPoints, maxAbs: symmetric ? 128 : maxMagnitude(values()), values };
}

function subtractRow(w: Int32Array, start: number, end: number, z: number): void {
  for (let i = start; i < end; i++) w[i] = w[i]! - z;
}

function maxMagnitude(w: Int32Array): number {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < w.length; i++) {
    const v = w[i]!;
    if (v < lo) lo = v;
    else if (v > hi) hi = v;
  }
  return Math.max(-lo, hi);
}

/** The most negative / positive int32 the accumulators may reach without wrapping. */
const INT32_LIMIT = 2 ** 31 - 1;

/** Validates a quantized convolution and resolves everything the kernels need. */
export function createConv2dPlan(shape: NHWC, params: QuantizedConvParams): Conv2dPlan {
  if (shape.length !== 4) {
    throw new TypeError(
      `Cannot run int8 conv as the input must have 4 dims (NHWC): current shape is [${
        shape.join(",")
      }]`,
    );
  }
  const [n, h, w, c] = shape;
  checkCount("batch", n, 0);
  checkCount("input height", h, 1);
  checkCount("input width", w, 1);
  checkCount("input channels", c, 1);
  const ws = params.weightShape;
  if (ws.length !== 4) {
    throw new TypeError(
      `Cannot run int8 conv as weights must have 4 dims (OIHW): current shape is [${ws.join(",")}]`,
    );
  }
  const [outC, inPerGroup, kh, kw] = ws;
  for (
    const [what, v] of [["output channels", outC], ["kernel height", kh], [
      "kernel width",
      kw,
    ]] as const
  ) {
    checkCount(what, v, 1);
  }
  const groups = params.groups ?? 1;
  checkCount("groups", groups, 1);
  if (c % groups !== 0 || outC % groups !== 0 || inPerGroup !== c / groups) {
    throw new TypeError(
      `Cannot run int8 conv as input channels ${c} and output channels ${outC} must split into ${groups} groups of weight shape [${
        ws.join(",")
      }]`,
    );
  }
  if (params.weights.length !== outC * inPerGroup * kh * kw) {
    throw new TypeError(
      `Cannot run int8 conv as weights must hold ${outC * inPerGroup * kh * kw} values for shape [${
        ws.join(",")
      }]: current length is ${params.weights.length}`,
    );
  }
  const strides = params.strides ?? 1;
  const [strideH, strideW] = typeof strides === "number" ? [strides, strides] : strides;
  checkCount("stride", strideH, 1);
  checkCount("stride", strideW, 1);
  const padding = params.padding ?? "same_upper";
  if (Array.isArray(padding)) {
    const limits = [kh, kw, kh, kw];
    if (
      padding.length !== 4 ||
      padding.some((p, i) => !Number.isInteger(p) || p < 0 || p >= limits[i]!)
    ) {
      throw new RangeError(
        `Cannot run int8 conv as explicit padding [top, left, bottom, right] must be integers in [0, kernel side): current value is [${
          padding.join(",")
        }]`,
      );
    }
  }
  const ry = resolvePadding(h, kh, strideH, padding, 0);
  const rx = resolvePadding(w, kw, strideW, padding, 1);
  if (ry.out < 1 || rx.out < 1) {
    throw new RangeError(
      `Cannot run int8 conv as the output would be empty: input ${h}x${w}, kernel ${kh}x${kw}, padding ${
        String(padding)
      }`,
    );
  }
  checkZeroPoint("input zero point", params.inZeroPoint);
  checkZeroPoint("output zero point", params.outZeroPoint);
  checkScale("input scale", params.inScale);
  checkScale("output scale", params.outScale);
  const { lo, hi } = checkRange(params.lo ?? 0, params.hi ?? 255);

  const wzp = params.weightZeroPoints ?? [0];
  if (wzp.length !== 1 && wzp.length !== outC) {
    throw new RangeError(
      `Cannot run int8 conv as weight zero points must have 1 or ${outC} entries: current length is ${wzp.length}`,
    );
  }
  const perOut = inPerGroup * kh * kw;
  const prepared = prepareWeights(params.weights, wzp, outC, perOut);
  const maxAbs = prepared.maxAbs;
  if (maxAbs > 32767) {
    throw new RangeError(
      `Cannot run int8 conv as weights minus zero point must fit int16: largest magnitude is ${maxAbs}`,
    );
  }
  const bias = params.bias ?? new Int32Array(outC);
  if (bias.length !== outC) {
    throw new RangeError(
      `Cannot run int8 conv as bias must have ${outC} entries: current length is ${bias.length}`,
    );
  }
  let maxBias = 0;
  for (const b of bias) maxBias = Math.max(maxBias, Math.abs(b));
  if (maxBias + 255 * maxAbs * perOut > INT32_LIMIT) {
    throw new RangeError(
      `Cannot run int8 conv as the int32 accumulator could overflow: ${perOut} terms of up to 255 x ${maxAbs} plus bias ${maxBias}`,
    );
  }
  return {
    n,
    h,
    w,
    c,
    outC,
    outH: ry.out,
    outW: rx.out,
    kh,
    kw,
    strideH,
    strideW,
    padTop: ry.before,
    padLeft: rx.before,
    groups,
    inPerGroup,
    outPerGroup: outC / groups,
    get weights() {
      return prepared.values();
    },
    sourceWeights: prepared.source,
    weightZeroPoints: prepared.zeroPoints,
    bias,
    multipliers: requantMultipliers(params.inScale, params.weightScales, params.outScale, outC),
    inZeroPoint: params.inZeroPoint,
    outZeroPoint: params.outZeroPoint,
    lo,
    hi,
  };
}

/** Runs a plan on NHWC uint8 input; returns NHWC uint8 `[n, outH, outW, outC]`. */
export function runConv2dPlan(plan: Conv2dPlan, input: Uint8Array): Uint8Array {
  const { n, h, w, c, outC, outH, outW, kh, kw, inPerGroup, outPerGroup } = plan;
  if (input.length !== n * h * w * c) {
    throw new TypeError(
      `Cannot run int8 conv as the input must hold ${n}x${h}x${w}x${c} values: current length is ${input.length}`,
    );
  }
  const out = new Uint8Array(n * outH * outW * outC);
  const zp = plan.inZeroPoint;
  const weights = plan.weights;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let o = 0; o < outC; o++) {
          const g = Math.floor(o / outPerGroup);
          let acc = plan.bias[o]!;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * plan.strideH - plan.padTop + ky;
            if (iy < 0 || iy >= h) continue; // padded value = zero point: contributes 0
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * plan.strideW - plan.padLeft + kx;
              if (ix < 0 || ix >= w) continue;
              const base = ((b * h + iy) * w + ix) * c + g * inPerGroup;
              for (let i = 0; i < inPerGroup; i++) {
                acc += (input[base + i]! - zp) *
                  weights[((o * inPerGroup + i) * kh + ky) * kw + kx]!;
              }
            }
          }
          out[((b * outH + oy) * outW + ox) * outC + o] = requantizeValue(
            acc,
            plan.multipliers[o]!,
            plan.outZeroPoint,
            plan.lo,
            plan.hi,
          );
        }
      }
    }
  }
  return out;
}

/**
 * Quantized convolution of an NHWC uint8 tensor (reference implementation).
 *
 * @example
 * const y = conv2dInt8(x, [1, 28, 28, 1], {
 *   weights, weightShape: [8, 1, 3, 3], weightScales, bias,
 *   inScale: 1 / 255, inZeroPoint: 0, outScale: 0.05, outZeroPoint: 0, lo: 0, hi: 255,
 *   strides: 2, padding: "same_upper",
 * }); // NHWC [1, 14, 14, 8]
 */
export function conv2dInt8(
  input: Uint8Array,
  shape: NHWC,
  params: QuantizedConvParams,
): Uint8Array {
  return runConv2dPlan(createConv2dPlan(shape, params), input);
}
