/**
 * EXIF orientation (TIFF 6.0 tag 0x0112) applied to pixels, so that the model sees the photo the
 * way a viewer shows it.
 *
 * @module
 */

import type { Orientation } from "./probe.ts";

/** True when the orientation swaps width and height (5..8: the transposing ones). */
export function swapsAxes(orientation: Orientation): boolean {
  return orientation >= 5;
}

/**
 * Returns the pixels as displayed. 1: as stored; 2: mirrored left-right; 3: rotated 180 degrees;
 * 4: mirrored top-bottom; 5: transposed; 6: rotated 90 degrees clockwise; 7: transverse;
 * 8: rotated 90 degrees counter-clockwise. Orientation 1 returns the input unchanged (no copy).
 *
 * @param channels interleaved samples per pixel (4 for RGBA)
 */
export function applyOrientation<T extends Uint8Array | Float32Array>(
  data: T,
  width: number,
  height: number,
  orientation: Orientation,
  channels = 4,
): { data: T; width: number; height: number } {
  if (data.length !== width * height * channels) {
    throw new TypeError(
      `Cannot apply orientation ${orientation} as the data has ${data.length} samples, not ` +
        `${width}x${height}x${channels}`,
    );
  }
  if (orientation === 1) return { data, width, height };
  const swap = swapsAxes(orientation);
  const ow = swap ? height : width, oh = swap ? width : height;
  const out = new (data.constructor as { new (n: number): T })(data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // Source pixel (sx, sy) of displayed pixel (x, y).
      let sx: number, sy: number;
      switch (orientation) {
        case 2:
          sx = width - 1 - x, sy = y;
          break;
        case 3:
          sx = width - 1 - x, sy = height - 1 - y;
          break;
        case 4:
          sx = x, sy = height - 1 - y;
          break;
        case 5:
          sx = y, sy = x;
          break;
        case 6:
          sx = y, sy = height - 1 - x;
          break;
        case 7:
          sx = width - 1 - y, sy = height - 1 - x;
          break;
        default: // 8
          sx = width - 1 - y, sy = x;
      }
      const s = (sy * width + sx) * channels, d = (y * ow + x) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = data[s + c]!;
    }
  }
  return { data: out, width: ow, height: oh };
}
