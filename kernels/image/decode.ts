/**
 * Decodes JPEG, PNG, GIF, WebP and BMP to RGBA8 after a header probe has checked the pixel limit.
 *
 * Codecs (all WebAssembly or TypeScript; no native addon, no FFI, no permission needed):
 * - JPEG, PNG, GIF: imagescript 1.3.1's wasm decoders, bound in `./codecs.ts` (not imagescript's
 *   main entry, which loads a native `.node` addon at import).
 * - WebP: `@jsquash/webp` 1.5.0 (libwebp compiled to wasm), given its module from the package.
 * - BMP: `./bmp.ts` (24/32-bit uncompressed).
 *
 * @module
 */

import { decodeBmp } from "./bmp.ts";
import { decodeGifFirstFrame, decodeJpeg, decodePng, decodeWebp, type RawRgba } from "./codecs.ts";
import {
  DEFAULT_MAX_PIXELS,
  ImageTooLargeError,
  type ImageType,
  isImageError,
  UndecodableImageError,
} from "./errors.ts";
import { applyOrientation, swapsAxes } from "./orientation.ts";
import { countJpegScans, type ImageProbe, type Orientation, probeImageSize } from "./probe.ts";

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /** Refuse images with more pixels than this (from the header, before decoding). Default 40 MP. */
  maxPixels?: number;
  /**
   * Refuse JPEGs with more scans than this (default {@link DEFAULT_MAX_JPEG_SCANS}): decoding cost
   * grows with scans x blocks, and encoders write at most a few dozen.
   */
  maxJpegScans?: number;
  /**
   * The smallest size (as displayed, after orientation) the caller needs. JPEGs much larger than
   * this are decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, T.81 has the 8x8 blocks; at 1/8 each
   * output pixel is its block's mean, up to quantization), never below this size. Other formats
   * decode in full.
   */
  minSize?: { width: number; height: number };
}

/**
 * Scan limit for JPEGs. libjpeg's standard progressive script has 10 scans (YCbCr) and MozJPEG's
 * scan optimisation stays within a few dozen, so 100 refuses only crafted files.
 */
export const DEFAULT_MAX_JPEG_SCANS = 100;

/** Pixels as displayed: EXIF orientation applied; RGBA8, straight (not premultiplied) alpha. */
export interface DecodedImage {
  type: ImageType;
  width: number;
  height: number;
  data: Uint8Array;
  /** The header's size (as stored) and orientation; `width`/`height` may be smaller (JPEG scaling). */
  source: { width: number; height: number; orientation: Orientation };
}

/**
 * Probes, checks the pixel limit, decodes, and applies EXIF orientation.
 *
 * @throws {UnsupportedImageTypeError} (415) when the bytes are no supported format.
 * @throws {ImageTooLargeError} (413) above `maxPixels`, before any decoding.
 * @throws {UndecodableImageError} (422) for a JPEG with more than `maxJpegScans` scans.
 * @throws {UndecodableImageError} (422) for truncated or corrupt data; every codec exception
 *   becomes this error, with the codec's message as `cause`.
 *
 * @example
 * ```ts
 * const img = await decodeImage(bytes, { maxPixels: 40e6, minSize: { width: 28, height: 28 } });
 * img.data; // RGBA8, img.width x img.height
 * ```
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels >= 1)) {
    throw new RangeError(`Cannot decode with maxPixels ${maxPixels}: it must be a number >= 1`);
  }
  const probe = probeImageSize(bytes);
  if (probe.width * probe.height > maxPixels) {
    throw new ImageTooLargeError(probe.width, probe.height, maxPixels);
  }
  if (probe.type === "jpeg") {
    const maxScans = options.maxJpegScans ?? DEFAULT_MAX_JPEG_SCANS;
    const scans = countJpegScans(bytes);
    if (scans > maxScans) {
      throw new UndecodableImageError(
        "jpeg",
        `it has ${scans} scans, more than the ${maxScans} this service decodes`,
        {
          advice:
            "re-save it as a baseline JPEG or with an encoder's standard progressive settings",
        },
      );
    }
  }
  let raw: RawImage;
  try {
    raw = await decodeRaw(bytes, probe, options.minSize);
  } catch (error) {
    if (isImageError(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new UndecodableImageError(probe.type, `the ${probe.type} decoder failed (${message})`, {
      cause: error,
    });
  }
  if (raw.width * raw.height > maxPixels || raw.data.length !== raw.width * raw.height * 4) {
    // The codec disagreed with the header: never hand on more than the probe allowed.
    throw new UndecodableImageError(
      probe.type,
      `the decoder produced ${raw.width}x${raw.height} where the header says ` +
        `${probe.width}x${probe.height}`,
    );
  }
  const shown = applyOrientation(raw.data, raw.width, raw.height, probe.orientation);
  return {
    type: probe.type,
    width: shown.width,
    height: shown.height,
    data: shown.data,
    source: { width: probe.width, height: probe.height, orientation: probe.orientation },
  };
}

type RawImage = RawRgba;

function decodeRaw(
  bytes: Uint8Array,
  probe: ImageProbe,
  minSize: DecodeOptions["minSize"],
): Promise<RawImage> | RawImage {
  switch (probe.type) {
    case "jpeg": {
      // The request is in stored orientation; 0 means "no scaling" to the codec.
      const swap = swapsAxes(probe.orientation);
      const w = minSize ? Math.ceil(swap ? minSize.height : minSize.width) : 0;
      const h = minSize ? Math.ceil(swap ? minSize.width : minSize.height) : 0;
      return jpegToRgba(bytes, w, h);
    }
    case "png":
      return decodePng(bytes);
    case "gif":
      return decodeGifFirstFrame(bytes);
    case "webp":
      return decodeWebp(bytes);
    case "bmp":
      return decodeBmp(bytes);
  }
}

/** JPEG to RGBA8 from the codec's gray, RGB or CMYK output. */
function jpegToRgba(bytes: Uint8Array, w: number, h: number): RawImage {
  let r;
  try {
    r = decodeJpeg(bytes, w, h);
  } catch (error) {
    // "failed to scale decoder": retry at full size rather than refuse a good image.
    if (!(w || h) || !(error instanceof Error && error.message.includes("scale"))) throw error;
    r = decodeJpeg(bytes, 0, 0);
  }
  const n = r.width * r.height;
  const src = r.samples;
  const out = new Uint8Array(n * 4);
  if (r.format === 0) {
    for (let i = 0, d = 0; i < n; i++, d += 4) {
      const v = src[i]!;
      out[d] = v, out[d + 1] = v, out[d + 2] = v, out[d + 3] = 255;
    }
  } else if (r.format === 1) {
    for (let i = 0, s = 0, d = 0; i < n; i++, s += 3, d += 4) {
      out[d] = src[s]!, out[d + 1] = src[s + 1]!, out[d + 2] = src[s + 2]!, out[d + 3] = 255;
    }
  } else {
    // The decoder has already undone Adobe's inversion, so samples are ink amounts. Naive
    // CMYK -> RGB without an ICC profile: R = (1 - C)(1 - K). (imagescript's own `load` treats
    // these samples as inverted and turns red ink into black.)
    for (let i = 0, s = 0, d = 0; i < n; i++, s += 4, d += 4) {
      const k = 255 - src[s + 3]!;
      out[d] = Math.round((255 - src[s]!) * k / 255);
      out[d + 1] = Math.round((255 - src[s + 1]!) * k / 255);
      out[d + 2] = Math.round((255 - src[s + 2]!) * k / 255);
      out[d + 3] = 255;
    }
  }
  return { width: r.width, height: r.height, data: out };
}
