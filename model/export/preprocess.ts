/**
 * Turns dataset images into model input exactly as the server does: the server's own
 * area-averaging resize (`kernels/image/resize.ts`) to the resolution that beta gives, then
 * `(x / 255 - mean) / std` per channel, NCHW float32.
 */
import { resizeArea } from "../../kernels/image/resize.ts";

export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Builds an NCHW float batch from HWC uint8 images `images[indices]`, resized to `res x res`.
 */
export function makeInputBatch(
  images: Uint8Array,
  h: number,
  w: number,
  c: number,
  indices: ArrayLike<number>,
  res: number,
  norm: Normalization,
  out = new Float32Array(indices.length * c * res * res),
): Float32Array {
  const per = h * w * c;
  const plane = res * res;
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b]!;
    const img = images.subarray(i * per, (i + 1) * per);
    const resized = res === h && res === w ? img : resizeArea(img, w, h, c, res, res);
    for (let ch = 0; ch < c; ch++) {
      const scale = 1 / (255 * norm.std[ch]!);
      const shift = -norm.mean[ch]! / norm.std[ch]!;
      const base = (b * c + ch) * plane;
      for (let p = 0; p < plane; p++) out[base + p] = resized[p * c + ch]! * scale + shift;
    }
  }
  return out;
}
