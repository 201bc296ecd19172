/**
 * Decodes JPEG, PNG, GIF, WebP and BMP to RGBA8 after a header probe has checked the pixel limit.
 *
 * Codecs (all WebAssembly or TypeScript, no native addon, no FFI):
 * - JPEG, PNG, GIF: imagescript 1.3.1's wasm codecs (`imagescript/wasm/node/*.js`), not its main
 *   entry, which loads a native `.node` addon at import.
 * - WebP: `@jsquash/webp` (libwebp compiled to wasm; its .wasm loads from the local package).
 * - BMP: `./bmp.ts` (24/32-bit uncompressed).
 *
 * Each codec instance is created once and reused (wasm memory is expensive to map afresh on these
 * VMs); after any codec exception the instance is dropped, since a trapped wasm instance may hold
 * a corrupt heap. Decoding is synchronous inside each instance, so concurrent callers cannot
 * interleave in one instance. An instance's memory stays at its high-water mark (up to ~4 bytes x
 * the pixel limit).
 *
 * @module
 */

import jpegCodecModule from "imagescript/wasm/node/jpeg.js";
import pngCodecModule from "imagescript/wasm/node/png.js";
import gifCodecModule from "imagescript/wasm/node/gif.js";
import decodeWebp from "@jsquash/webp/decode.js";
import { decodeBmp } from "./bmp.ts";
import {
  DEFAULT_MAX_PIXELS,
  ImageTooLargeError,
  type ImageType,
  isImageError,
  UndecodableImageError,
} from "./errors.ts";
import { applyOrientation, swapsAxes } from "./orientation.ts";
import { type ImageProbe, type Orientation, probeImageSize } from "./probe.ts";

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /** Refuse images with more pixels than this (from the header, before decoding). Default 40 MP. */
  maxPixels?: number;
  /**
   * The smallest size (as displayed, after orientation) the caller needs. JPEGs much larger than
   * this are decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, T.81 has the 8x8 blocks; at 1/8 each
   * output pixel is exactly its block's mean), never below this size. Other formats decode in full.
   */
  minSize?: { width: number; height: number };
}

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

interface RawImage {
  width: number;
  height: number;
  data: Uint8Array;
}

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
      return jpeg.use((c) => jpegToRgba(c, bytes, w, h));
    }
    case "png":
      return png.use((c) => {
        const r = c.decode(bytes);
        return { width: r.width, height: r.height, data: r.framebuffer };
      });
    case "gif":
      return gif.use((c) => gifFirstFrame(c, bytes));
    case "webp":
      return decodeWebp(bytes.slice().buffer).then((r) => ({
        width: r.width,
        height: r.height,
        data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength),
      }));
    case "bmp":
      return decodeBmp(bytes);
  }
}

// --- imagescript wasm codecs -------------------------------------------------------------------

interface JpegCodec {
  decode(
    buffer: Uint8Array,
    width?: number,
    height?: number,
  ): { width: number; height: number; format: number; buffer: Uint8Array };
}
interface PngCodec {
  decode(buffer: Uint8Array): { width: number; height: number; framebuffer: Uint8Array };
}
interface GifFrame {
  x: number;
  y: number;
  width: number;
  height: number;
  buffer: Uint8Array;
}
interface GifDecoder {
  width: number;
  height: number;
  frame(): GifFrame | null;
  free(): void;
}
interface GifCodec {
  Decoder: new (buffer: Uint8Array) => GifDecoder;
}
interface CodecModule<T> {
  init(): Promise<T>;
}

/** One lazily created codec instance, dropped after any exception inside it. */
class CodecSlot<T> {
  #instance: Promise<T> | null = null;
  constructor(readonly module: CodecModule<T>) {}
  async use<R>(fn: (codec: T) => R): Promise<R> {
    this.#instance ??= this.module.init();
    const codec = await this.#instance;
    try {
      return fn(codec);
    } catch (error) {
      this.#instance = null;
      throw error;
    }
  }
}

const jpeg = new CodecSlot(jpegCodecModule as CodecModule<JpegCodec>);
const png = new CodecSlot(pngCodecModule as CodecModule<PngCodec>);
const gif = new CodecSlot(gifCodecModule as CodecModule<GifCodec>);

/** The JPEG codec's outputs: 0 gray (L8), 1 RGB24, 2 CMYK32 (ink amounts: 0 = no ink). */
function jpegToRgba(codec: JpegCodec, bytes: Uint8Array, w: number, h: number): RawImage {
  let r;
  try {
    r = codec.decode(bytes, w, h);
  } catch (error) {
    // "failed to scale decoder": retry at full size rather than refuse a good image.
    if (!(w || h) || !(error instanceof Error && error.message.includes("scale"))) throw error;
    r = codec.decode(bytes, 0, 0);
  }
  const n = r.width * r.height;
  const src = r.buffer;
  if (src.length < n * (r.format === 0 ? 1 : r.format === 1 ? 3 : 4)) {
    throw new UndecodableImageError("jpeg", "the decoder returned fewer samples than pixels");
  }
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
  } else if (r.format === 2) {
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
  } else {
    throw new UndecodableImageError(
      "jpeg",
      `the decoder returned unknown pixel format ${r.format}`,
    );
  }
  return { width: r.width, height: r.height, data: out };
}

/** First frame of a GIF on its logical screen (transparent where the frame does not cover it). */
function gifFirstFrame(codec: GifCodec, bytes: Uint8Array): RawImage {
  const decoder = new codec.Decoder(bytes);
  // frame() frees the decoder itself when it throws; only a successful path frees here.
  const frame = decoder.frame();
  decoder.free();
  if (frame === null) throw new UndecodableImageError("gif", "it has no frame");
  const width = decoder.width || frame.x + frame.width;
  const height = decoder.height || frame.y + frame.height;
  const out = new Uint8Array(width * height * 4);
  const cols = Math.max(0, Math.min(frame.width, width - frame.x));
  for (let y = 0; y < frame.height && frame.y + y < height; y++) {
    const s = y * frame.width * 4;
    out.set(frame.buffer.subarray(s, s + cols * 4), ((frame.y + y) * width + frame.x) * 4);
  }
  return { width, height, data: out };
}
