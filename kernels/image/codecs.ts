/**
 * Thin bindings to the codecs' WebAssembly: imagescript 1.3.1's JPEG, PNG and GIF decoders and
 * @jsquash/webp's libwebp. The modules come from `./codec_modules.js` (module-source imports), so
 * decoding needs no permission at all; imagescript's own `wasm/node/*.js` glue reads the .wasm
 * with `fs` and reads `process.env` at import, which a `--allow-read=<dir>`-only deployment
 * refuses. The calls below follow that glue's ABI (imagescript 1.3.1, `wasm/node/{jpeg,png,gif}.js`).
 *
 * Instances are created once and reused: wasm memory is expensive to map afresh on these VMs. An
 * instance is dropped (and rebuilt on next use from the compiled module) after any exception, as
 * a trapped instance may hold a corrupt heap, and after a decode that grew its memory past
 * {@link KEEP_INSTANCE_BYTES}, so one huge image does not pin hundreds of megabytes for good.
 * Each decode is synchronous inside its instance, so concurrent callers never interleave in one.
 *
 * @module
 */

import { init as initWebp } from "@jsquash/webp/decode.js";
import decodeWebpWith from "@jsquash/webp/decode.js";
import { gifModule, jpegModule, pngModule, webpModule } from "./codec_modules.js";

/** Instances whose memory grew beyond this are not kept for the next image. */
export const KEEP_INSTANCE_BYTES = 128 * 1024 * 1024;

/** Decoded pixels in the codec's own layout. */
export interface RawJpeg {
  width: number;
  height: number;
  /** 0: gray (1 byte per pixel), 1: RGB (3), 2: CMYK ink amounts (4; 0 = no ink). */
  format: 0 | 1 | 2;
  samples: Uint8Array;
}

/** RGBA8 pixels, straight alpha. */
export interface RawRgba {
  width: number;
  height: number;
  data: Uint8Array;
}

type Exports = Record<string, unknown> & { memory: WebAssembly.Memory };
type Fn = (...args: number[]) => number;

class Slot {
  #instance: Exports | null = null;
  constructor(readonly module: WebAssembly.Module, readonly imports: WebAssembly.Imports = {}) {}

  /** Runs `fn` with this codec's exports; drops the instance after errors or large growth. */
  use<R>(fn: (x: Exports, call: (name: string, ...args: number[]) => number) => R): R {
    const x = this.#instance ??= new WebAssembly.Instance(this.module, this.imports)
      .exports as Exports;
    const call = (name: string, ...args: number[]) => (x[name] as Fn)(...args);
    try {
      return fn(x, call);
    } catch (error) {
      this.#instance = null;
      throw error;
    } finally {
      if (x.memory.buffer.byteLength > KEEP_INSTANCE_BYTES) this.#instance = null;
    }
  }
}

const jpeg = new Slot(jpegModule);
const png = new Slot(pngModule, { env: { emscripten_notify_memory_growth() {} } });
const gif = new Slot(gifModule, { env: { push_to_stream() {} } });

/** Copies `bytes` into wasm memory (walloc); the callee takes ownership, as in imagescript's glue. */
function copyIn(x: Exports, call: (name: string, ...a: number[]) => number, bytes: Uint8Array) {
  const ptr = call("walloc", bytes.length);
  new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  return ptr;
}

/**
 * Decodes a JPEG; with `width`/`height` > 0 the decoder scales by 1/2, 1/4 or 1/8 while staying
 * at least that large (jpeg-decoder's `scale`). Throws Error on corrupt data.
 */
export function decodeJpeg(bytes: Uint8Array, width = 0, height = 0): RawJpeg {
  return jpeg.use((x, call) => {
    const ptr = call("decode", copyIn(x, call, bytes), bytes.length, width, height);
    if (ptr === 0) throw new Error("jpeg: failed to decode");
    if (ptr === 1) throw new Error("jpeg: failed to scale decoder");
    const w = call("decode_width", ptr), h = call("decode_height", ptr);
    const format = call("decode_format", ptr);
    const n = w * h * (format === 0 ? 1 : format === 1 ? 3 : 4);
    const buf = call("decode_buffer", ptr); // sets wlen, as in imagescript's glue
    const len = call("wlen");
    if (format > 2 || len < n) {
      call("decode_free", ptr);
      throw new Error(`jpeg: decoder returned format ${format} with ${len} bytes for ${w}x${h}`);
    }
    const samples = new Uint8Array(x.memory.buffer, buf, n).slice();
    call("decode_free", ptr);
    return { width: w, height: h, format: format as 0 | 1 | 2, samples };
  });
}

/** Decodes a PNG (any bit depth, palette, interlacing) to RGBA8; 16-bit samples keep their high byte. */
export function decodePng(bytes: Uint8Array): RawRgba {
  return png.use((x, call) => {
    const ptr = copyIn(x, call, bytes);
    const status = call("decode", ptr, bytes.length);
    call("wfree", ptr);
    if (status < 0) throw new Error(`png: failed to decode (${status})`);
    const width = call("width"), height = call("height");
    const data = new Uint8Array(x.memory.buffer, status, width * height * 4).slice();
    call("wfree", status);
    return { width, height, data };
  });
}

/**
 * The first frame of a GIF composed onto its logical screen (transparent elsewhere); the other
 * frames are never decoded.
 */
export function decodeGifFirstFrame(bytes: Uint8Array): RawRgba {
  return gif.use((x, call) => {
    const dec = call("decoder_new", copyIn(x, call, bytes), bytes.length, 0);
    if (dec === 0) throw new Error("gif: failed to parse gif header");
    const screenW = call("decoder_width", dec), screenH = call("decoder_height", dec);
    const f = call("decoder_frame", dec);
    if (f === 0 || f === 1) {
      call("decoder_free", dec);
      throw new Error(f === 0 ? "gif: failed to decode frame" : "gif: it has no frame");
    }
    const fx = call("decoder_frame_x", f), fy = call("decoder_frame_y", f);
    const fw = call("decoder_frame_width", f), fh = call("decoder_frame_height", f);
    const width = screenW || fx + fw, height = screenH || fy + fh;
    const out = new Uint8Array(width * height * 4);
    const buf = call("decoder_frame_buffer", f); // sets wlen
    if (call("wlen") < fw * fh * 4) {
      call("decoder_frame_free", f);
      call("decoder_free", dec);
      throw new Error(`gif: frame buffer smaller than its ${fw}x${fh} pixels`);
    }
    const frame = new Uint8Array(x.memory.buffer, buf, fw * fh * 4);
    const cols = Math.max(0, Math.min(fw, width - fx));
    for (let y = 0; y < fh && fy + y < height; y++) {
      out.set(frame.subarray(y * fw * 4, (y * fw + cols) * 4), ((fy + y) * width + fx) * 4);
    }
    call("decoder_frame_free", f);
    call("decoder_free", dec);
    return { width, height, data: out };
  });
}

let webpReady: Promise<void> | null = null;

/** Decodes a WebP (lossy, lossless, alpha; an animation's first frame is not supported). */
export async function decodeWebp(bytes: Uint8Array): Promise<RawRgba> {
  webpReady ??= initWebp(webpModule);
  await webpReady;
  try {
    const r = await decodeWebpWith(bytes.slice().buffer);
    return {
      width: r.width,
      height: r.height,
      data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength),
    };
  } catch (error) {
    webpReady = null; // rebuild the emscripten module in case it aborted
    throw error;
  }
}
