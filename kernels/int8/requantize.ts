/**
 * Requantization: int32 accumulator -> uint8 activation, the arithmetic every int8 kernel ends with.
 *
 * It copies onnxruntime's CPU path (MLAS `MlasRequantizeOutput`, used by QLinearConv, QGemm and
 * QLinearGlobalAveragePool) so that results can be compared with onnxruntime exactly:
 *
 * 1. the multiplier is computed in float32 the way ORT's QLinearConv does:
 *    `m[c] = f32(f32(inScale * wScale[c]) / outScale)`;
 * 2. the accumulator (bias already added) is converted to float32 (round to nearest even) and
 *    multiplied by `m[c]` in float32;
 * 3. the product is clamped to `[lo - zp, hi - zp]` (ReLU / ReLU6 are folded into `lo` / `hi`),
 * 4. rounded half to even (MLAS adds the 1.5 * 2^23 "magic number", which rounds half to even in
 *    the default rounding mode; wasm `f32x4.nearest` does the same), then `zp` is added.
 *
 * Clamping before or after the rounding gives the same integer, since the bounds are integers.
 */

/** Quantization of one uint8 tensor: real = scale * (q - zeroPoint). */
export interface QuantParams {
  readonly scale: number;
  readonly zeroPoint: number;
}

/** Integer output range after activation folding. */
export interface OutputRange {
  readonly lo: number;
  readonly hi: number;
}

/** Rounds to the nearest integer, ties to even (IEEE roundTiesToEven). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +infinity
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/**
 * Per-output-channel float32 multipliers `f32(f32(inScale * wScale[c]) / outScale)`, exactly as
 * onnxruntime's QLinearConv computes them.
 */
export function requantMultipliers(
  inScale: number,
  weightScales: ArrayLike<number>,
  outScale: number,
  channels: number = weightScales.length,
): Float32Array {
  checkScale("input scale", inScale);
  checkScale("output scale", outScale);
  if (weightScales.length !== 1 && weightScales.length !== channels) {
    throw new RangeError(
      `Cannot compute requantization multipliers as weight scales must have 1 or ${channels} entries: current length is ${weightScales.length}`,
    );
  }
  const out = new Float32Array(channels);
  const xs = Math.fround(inScale);
  const ys = Math.fround(outScale);
  for (let c = 0; c < channels; c++) {
    const ws = Math.fround(weightScales.length === 1 ? weightScales[0]! : weightScales[c]!);
    if (!(ws > 0 && ws < Infinity)) checkScale(`weight scale [${c}]`, ws); // message built only on failure
    out[c] = Math.fround(Math.fround(xs * ws) / ys);
  }
  return out;
}

/** Requantizes one accumulator with a float32 multiplier (see the module comment for the rules). */
export function requantizeValue(
  acc: number,
  multiplier: number,
  zeroPoint: number,
  lo: number,
  hi: number,
): number {
  // fround(acc) is the int32 -> float32 conversion; the product of two float32 values is exact in
  // float64, so fround(product) is the float32 multiplication.
  let v = Math.fround(Math.fround(acc) * multiplier);
  const fl = lo - zeroPoint;
  const fh = hi - zeroPoint;
  if (v < fl) v = fl;
  if (v > fh) v = fh;
  return roundHalfEven(v) + zeroPoint;
}

/**
 * The integer range `[lo, hi]` of a uint8 output after ReLU / ReLU6 folding:
 * none: [0, 255]; relu: [zp, 255]; relu6: [zp, min(255, q(6))] with q(6) = round_half_even(6 /
 * scale) + zp computed in float32, as onnxruntime's QuantizeLinear does.
 */
export function activationRange(
  activation: "none" | "relu" | "relu6",
  out: QuantParams,
): OutputRange {
  checkZeroPoint("output zero point", out.zeroPoint);
  switch (activation) {
    case "none":
      return { lo: 0, hi: 255 };
    case "relu":
      return { lo: out.zeroPoint, hi: 255 };
    case "relu6": {
      const q6 = roundHalfEven(Math.fround(6 / Math.fround(out.scale))) + out.zeroPoint;
      return { lo: out.zeroPoint, hi: Math.min(255, Math.max(out.zeroPoint, q6)) };
    }
    default:
      throw new RangeError(
        `Cannot fold activation as it must be one of none, relu, relu6: current value is ${
          String(activation)
        }`,
      );
  }
}

/** What `requantize()` needs, with one multiplier per channel. */
export interface RequantizePlan {
  readonly rows: number;
  readonly channels: number;
  readonly multipliers: Float32Array;
  readonly bias: Int32Array;
  readonly zeroPoint: number;
  readonly lo: number;
  readonly hi: number;
}

export interface RequantizeParams {
  /** One multiplier per channel, or one for all (see `requantMultipliers`). */
  readonly multipliers: ArrayLike<number>;
  /** Optional int32 bias added to the accumulator first. */
  readonly bias?: Int32Array;
  readonly zeroPoint: number;
  readonly lo?: number;
  readonly hi?: number;
}

/** Validates a requantization of a `[rows, channels]` int32 matrix and resolves its parameters. */
export function createRequantizePlan(
  shape: readonly [number, number],
  params: RequantizeParams,
): RequantizePlan {
  const [rows, channels] = shape;
  checkCount("rows", rows, 0);
  checkCount("channels", channels, 1);
  const { multipliers } = params;
  if (multipliers.length !== 1 && multipliers.length !== channels) {
    throw new RangeError(
      `Cannot requantize as multipliers must have 1 or ${channels} entries: current length is ${multipliers.length}`,
    );
  }
  const m = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    m[c] = multipliers.length === 1 ? multipliers[0]! : multipliers[c]!;
  }
  const bias = params.bias ?? new Int32Array(channels);
  if (bias.length !== channels) {
    throw new RangeError(
      `Cannot requantize as bias must have ${channels} entries: current length is ${bias.length}`,
    );
  }
  const { lo, hi } = checkRange(params.lo ?? 0, params.hi ?? 255);
  checkZeroPoint("output zero point", params.zeroPoint);
  return { rows, channels, multipliers: m, bias, zeroPoint: params.zeroPoint, lo, hi };
}

/**
 * Requantizes a row-major `[rows, channels]` int32 matrix to uint8.
 *
 * @example
 * requantize(new Int32Array([100, -100]), [1, 2], { multipliers: [0.05], zeroPoint: 128 })
 * // Uint8Array [133, 123]
 */
export function requantize(
  acc: Int32Array,
  shape: readonly [number, number],
  params: RequantizeParams,
): Uint8Array {
  const plan = createRequantizePlan(shape, params);
  if (acc.length !== plan.rows * plan.channels) {
    throw new TypeError(
      `Cannot requantize as the accumulator must hold ${plan.rows}x${plan.channels} values: current length is ${acc.length}`,
    );
  }
  const out = new Uint8Array(acc.length);
  for (let r = 0; r < plan.rows; r++) {
    for (let c = 0; c < plan.channels; c++) {
      const i = r * plan.channels + c;
      out[i] = requantizeValue(
        acc[i]! + plan.bias[c]!,
        plan.multipliers[c]!,
        plan.zeroPoint,
        plan.lo,
        plan.hi,
      );
    }
  }
  return out;
}

// --- shared validation helpers (used by every int8 kernel) ------------------------------------

export function checkScale(what: string, v: number): void {
  if (!Number.isFinite(v) || v <= 0 || Math.fround(v) === 0 || !Number.isFinite(Math.fround(v))) {
    throw new RangeError(
      `Cannot use ${what} as it must be a finite positive float32: current value is ${v}`,
    );
  }
}

export function checkZeroPoint(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 255) {
    throw new RangeError(
      `Cannot use ${what} as it must be an integer in [0, 255]: current value is ${v}`,
    );
  }
}

export function checkCount(what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(
      `Cannot use ${what} as it must be an integer >= ${min}: current value is ${v}`,
    );
  }
}

export function checkRange(lo: number, hi: number): OutputRange {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 255 || lo > hi) {
    throw new RangeError(
      `Cannot clamp the output as [lo, hi] must be integers with 0 <= lo <= hi <= 255: current range is [${lo}, ${hi}]`,
    );
  }
  return { lo, hi };
}
