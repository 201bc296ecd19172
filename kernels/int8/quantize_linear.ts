/**
 * Reference QuantizeLinear (float32 -> uint8) as onnxruntime computes it (MLAS
 * `MlasQuantizeLinear`): `v = f32(x / scale)`, clamped to `[-zp, 255 - zp]`, rounded half to even,
 * plus `zp`. The engine quantizes the network input with it, turning NCHW into NHWC on the way.
 */
import { checkScale, checkZeroPoint, type QuantParams, roundHalfEven } from "./requantize.ts";

/** Quantizes one float32 value. */
export function quantizeValue(x: number, scale: number, zeroPoint: number): number {
  let v = Math.fround(Math.fround(x) / Math.fround(scale));
  if (v < -zeroPoint) v = -zeroPoint;
  if (v > 255 - zeroPoint) v = 255 - zeroPoint;
  // NaN compares false above: map it to the zero point so the result stays a defined uint8
  // (what onnxruntime does with NaN is not specified).
  if (Number.isNaN(v)) v = 0;
  return roundHalfEven(v) + zeroPoint;
}

/**
 * Quantizes a float32 NCHW tensor into uint8 NHWC (`out` when given).
 *
 * @example
 * quantizeNchwToNhwc(new Float32Array([0, 1, 2, 3]), [1, 2, 1, 2], { scale: 1, zeroPoint: 0 })
 * // Uint8Array [0, 2, 1, 3]
 */
export function quantizeNchwToNhwc(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  quant: QuantParams,
  out?: Uint8Array,
): Uint8Array {
  const [n, c, h, w] = shape;
  if (x.length !== n * c * h * w) {
    throw new TypeError(
      `Cannot quantize the input as it must hold ${n * c * h * w} values for shape [${
        shape.join(",")
      }]: current length is ${x.length}`,
    );
  }
  checkScale("input scale", quant.scale);
  checkZeroPoint("input zero point", quant.zeroPoint);
  const dst = out ?? new Uint8Array(x.length);
  if (dst.length < x.length) {
    throw new RangeError(
      `Cannot quantize the input as the output holds ${dst.length} of ${x.length} values`,
    );
  }
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const src = (b * c + ch) * hw;
      for (let i = 0; i < hw; i++) {
        dst[(b * hw + i) * c + ch] = quantizeValue(x[src + i]!, quant.scale, quant.zeroPoint);
      }
    }
  }
  return dst;
}
