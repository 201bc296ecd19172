/**
 * Image bytes -> model input tensor: probe (pixel limit) -> decode (reduced-size JPEG, EXIF
 * orientation) -> alpha onto white and gray/RGB -> area resize -> polarity -> normalize -> NCHW.
 * The full rule set is written down in docs/image_pipeline.md.
 *
 * @module
 */

import { decodeImage } from "./decode.ts";
import type { ImageType } from "./errors.ts";
import type { Orientation } from "./probe.ts";
import { resizeArea } from "./resize.ts";

/** How a non-square image becomes a square model input. */
export type Fit = "pad" | "stretch" | "crop";

/** Options of {@link preprocessImage}; normally taken from the model manifest. */
export interface PreprocessOptions {
  /** Side of the square model input in pixels (the resolution that beta gives). */
  resolution: number;
  /** 1: ITU-R BT.601 luma; 3: RGB. */
  channels: 1 | 3;
  /** Per channel (length `channels`, or 1 for all), on the 0..1 scale. */
  mean: readonly number[];
  /** Per channel (length `channels`, or 1 for all), on the 0..1 scale; non-zero. */
  std: readonly number[];
  /**
   * Polarity. The shipped Fashion-MNIST models expect a light item on a dark background (0 =
   * black). `true` inverts (x -> 255 - x), `false` never does, `"auto"` inverts when the mean luma
   * of the resized image's border ring is above mid-gray (> 127.5 of 255): a product photo, dark
   * on white, is inverted; a Fashion-MNIST-like image, light on black, is not.
   */
  invert: "auto" | boolean;
  /** Pixel limit checked from the header before decoding (default 40 MP). */
  maxPixels?: number;
  /**
   * Non-square images: `"pad"` (default) scales the longer side to `resolution` and fills the rest
   * with the mean colour of the image's own border, so the item keeps its shape and the padding
   * matches the background; `"stretch"` scales each axis independently; `"crop"` takes the
   * centred square.
   */
  fit?: Fit;
}

/** What {@link preprocessImage} returns. */
export interface PreprocessResult {
  /** NCHW, batch 1, normalized. */
  tensor: Float32Array;
  shape: [1, number, number, number];
  /** The uploaded image: type and full size as displayed (after EXIF orientation). */
  source: { type: ImageType; width: number; height: number; orientation: Orientation };
  /** Size the codec actually produced (smaller than `source` after JPEG DCT scaling). */
  decoded: { width: number; height: number };
  inverted: boolean;
  /** Milliseconds: probe + decode + orientation; then everything after. */
  timing: { decode: number; preprocess: number };
}

const BT601 = [0.299, 0.587, 0.114] as const;

/**
 * Turns image bytes into the model's input tensor.
 *
 * @throws the errors of {@link decodeImage} (413, 415, 422 through their `status`), and RangeError
 *   for bad options.
 *
 * @example
 * ```ts
 * const { tensor, shape } = await preprocessImage(bytes, {
 *   resolution: 28, channels: 1, mean: [0.286], std: [0.353], invert: "auto",
 * });
 * await backend.run(tensor, shape);
 * ```
 */
export async function preprocessImage(
  bytes: Uint8Array,
  opts: PreprocessOptions,
): Promise<PreprocessResult> {
  const { resolution: res, channels: nc } = opts;
  checkOptions(opts);
  const t0 = performance.now();
  const img = await decodeImage(bytes, {
    ...(opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels }),
    minSize: { width: res, height: res },
  });
  const t1 = performance.now();

  let { width: w, height: h } = img;
  let px = toChannels(img.data, w * h, nc);
  const fit = opts.fit ?? "pad";
  if (fit === "crop" && w !== h) {
    const side = Math.min(w, h), x0 = (w - side) >> 1, y0 = (h - side) >> 1;
    const crop = new Uint8Array(side * side * nc);
    for (let y = 0; y < side; y++) {
      const s = ((y0 + y) * w + x0) * nc;
      crop.set(px.subarray(s, s + side * nc), y * side * nc);
    }
    px = crop, w = side, h = side;
  }
  // Samples on the 0..255 scale, interleaved; the decoded bytes themselves when the image already
  // has the model's size (the resize would copy them unchanged).
  let hwc: Float32Array | Uint8Array;
  if (w === res && h === res) {
    hwc = px;
  } else if (fit === "pad" && w !== h) {
    const scale = res / Math.max(w, h);
    const iw = Math.max(1, Math.round(w * scale)), ih = Math.max(1, Math.round(h * scale));
    const inner = resizeArea(px, w, h, nc, iw, ih);
    const fill = borderMean(inner, iw, ih, nc, 1);
    hwc = new Float32Array(res * res * nc);
    for (let i = 0; i < res * res; i++) for (let c = 0; c < nc; c++) hwc[i * nc + c] = fill[c]!;
    const x0 = (res - iw) >> 1, y0 = (res - ih) >> 1;
    for (let y = 0; y < ih; y++) {
      hwc.set(inner.subarray(y * iw * nc, (y + 1) * iw * nc), ((y0 + y) * res + x0) * nc);
    }
  } else {
    hwc = resizeArea(px, w, h, nc, res, res);
  }

  const inverted = opts.invert === "auto" ? shouldInvert(hwc, res, nc) : opts.invert;
  const plane = res * res;
  const tensor = new Float32Array(nc * plane);
  for (let c = 0; c < nc; c++) {
    const mean = opts.mean.length === 1 ? opts.mean[0]! : opts.mean[c]!;
    const std = opts.std.length === 1 ? opts.std[0]! : opts.std[c]!;
    for (let i = 0; i < plane; i++) {
      const v = hwc[i * nc + c]!;
      tensor[c * plane + i] = ((inverted ? 255 - v : v) / 255 - mean) / std;
    }
  }
  const t2 = performance.now();
  const swap = img.source.orientation >= 5;
  return {
    tensor,
    shape: [1, nc, res, res],
    source: {
      type: img.type,
      width: swap ? img.source.height : img.source.width,
      height: swap ? img.source.width : img.source.height,
      orientation: img.source.orientation,
    },
    decoded: { width: img.width, height: img.height },
    inverted,
    timing: { decode: t1 - t0, preprocess: t2 - t1 },
  };
}

/**
 * The polarity rule of `invert: "auto"`: invert when the mean BT.601 luma of the border ring
 * (`max(1, round(side / 14))` pixels wide: 2 at 28x28) is above 127.5, i.e. the background is
 * light. Exported so that docs and tests state one rule.
 */
export function shouldInvert(
  hwc: Float32Array | Uint8Array,
  side: number,
  channels: 1 | 3,
): boolean {
  const ring = Math.max(1, Math.round(side / 14));
  const mean = borderMean(hwc, side, side, channels, ring);
  const luma = channels === 1 ? mean[0]! : BT601[0] * mean[0]! + BT601[1] * mean[1]! +
    BT601[2] * mean[2]!;
  return luma > 127.5;
}

/** Mean per channel of the pixels within `ring` of the edge. */
function borderMean(
  hwc: Float32Array | Uint8Array,
  w: number,
  h: number,
  nc: number,
  ring: number,
): number[] {
  const sum = new Array<number>(nc).fill(0);
  let n = 0;
  // Row by row, left to right, ring pixels only (the interior is skipped, not visited).
  const add = (y: number, x0: number, x1: number) => {
    for (let x = x0; x < x1; x++) {
      for (let c = 0; c < nc; c++) sum[c]! += hwc[(y * w + x) * nc + c]!;
      n++;
    }
  };
  for (let y = 0; y < h; y++) {
    if (y < ring || y >= h - ring || 2 * ring >= w) add(y, 0, w);
    else add(y, 0, ring), add(y, w - ring, w);
  }
  return sum.map((s) => s / n);
}

/**
 * RGBA8 -> `nc` channels of bytes with alpha composited onto white (c' = c a + 255 (1 - a), a in
 * 0..1) and, for one channel, BT.601 luma. Bytes, not floats, so a 40 MP image costs 40 MB here,
 * not 160; the rounding (< 0.5 of 255) is far below JPEG noise.
 */
function toChannels(rgba: Uint8Array, n: number, nc: 1 | 3): Uint8Array {
  const out = new Uint8Array(n * nc);
  for (let i = 0, s = 0; i < n; i++, s += 4) {
    if (rgba[s + 3] === 255) {
      // Opaque (nearly every upload): c a + 255 (1 - a) is c, as below, without the arithmetic.
      const r = rgba[s]!, g = rgba[s + 1]!, b = rgba[s + 2]!;
      if (nc === 1) out[i] = Math.round(BT601[0] * r + BT601[1] * g + BT601[2] * b);
      else out[3 * i] = r, out[3 * i + 1] = g, out[3 * i + 2] = b;
      continue;
    }
    const a = rgba[s + 3]! / 255, white = 255 * (1 - a);
    const r = rgba[s]! * a + white, g = rgba[s + 1]! * a + white, b = rgba[s + 2]! * a + white;
    if (nc === 1) out[i] = Math.round(BT601[0] * r + BT601[1] * g + BT601[2] * b);
    else out[3 * i] = Math.round(r), out[3 * i + 1] = Math.round(g), out[3 * i + 2] = Math.round(b);
  }
  return out;
}

function checkOptions(opts: PreprocessOptions): void {
  const { resolution, channels, mean, std } = opts;
  if (!Number.isInteger(resolution) || resolution < 1 || resolution > 4096) {
    throw new RangeError(
      `Cannot preprocess to resolution ${resolution}: it must be an integer in 1..4096`,
    );
  }
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`Cannot preprocess to ${channels} channels: channels must be one of 1, 3`);
  }
  for (const [name, v] of [["mean", mean], ["std", std]] as const) {
    if (v.length !== 1 && v.length !== channels) {
      throw new RangeError(
        `Cannot normalize ${channels} channels with ${name} [${v.join(", ")}]: it must have 1 or ` +
          `${channels} values`,
      );
    }
    if (v.some((x) => !Number.isFinite(x) || (name === "std" && x === 0))) {
      throw new RangeError(
        `Cannot normalize with ${name} [${v.join(", ")}]: values must be finite` +
          (name === "std" ? " and non-zero" : ""),
      );
    }
  }
  const fit = opts.fit ?? "pad";
  if (fit !== "pad" && fit !== "stretch" && fit !== "crop") {
    throw new RangeError(
      `Cannot fit the image with "${fit}": fit must be one of pad, stretch, crop`,
    );
  }
  if (opts.invert !== "auto" && typeof opts.invert !== "boolean") {
    throw new RangeError(`Cannot apply invert ${opts.invert}: it must be one of auto, true, false`);
  }
}
