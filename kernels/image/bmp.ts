/**
 * A small BMP decoder: uncompressed 24-bit (BI_RGB) and 32-bit (BI_RGB, or BI_BITFIELDS /
 * BI_ALPHABITFIELDS with 8-bit masks), bottom-up or top-down, any info-header version. That covers
 * what cameras, scanners and "save as BMP" write today; palette (1/4/8-bit), 16-bit and RLE bitmaps
 * are refused with {@link UnsupportedImageTypeError} naming what to send instead.
 *
 * @module
 */

import { UndecodableImageError, UnsupportedImageTypeError } from "./errors.ts";

/** RGBA8 pixels of a BMP. 32-bit BI_RGB files carry no real alpha, so they come out opaque. */
export function decodeBmp(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  if (bytes.length < 26) throw new UndecodableImageError("bmp", "its headers are truncated");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataOffset = dv.getUint32(10, true);
  const dib = dv.getUint32(14, true);
  const core = dib === 12; // OS/2 BITMAPCOREHEADER: 16-bit sizes, no compression field
  if (bytes.length < 14 + dib) {
    throw new UndecodableImageError("bmp", "its info header is truncated");
  }
  const width = core ? dv.getUint16(18, true) : dv.getInt32(18, true);
  const rawHeight = core ? dv.getInt16(20, true) : dv.getInt32(22, true);
  const bpp = dv.getUint16(core ? 24 : 28, true);
  const compression = core ? 0 : dv.getUint32(30, true);
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (width <= 0 || height === 0) {
    throw new UndecodableImageError("bmp", `its header gives a size of ${width}x${rawHeight}`);
  }
  const advice = "send a 24- or 32-bit uncompressed BMP, or a PNG or JPEG";
  let masks: [number, number, number, number] | null = null;
  if (bpp === 32 && (compression === 3 || compression === 6)) {
    // Masks sit inside V2+ headers (>= 52 bytes) or right after a 40-byte header.
    if (bytes.length < 14 + 40 + 16) {
      throw new UndecodableImageError("bmp", "its masks are truncated");
    }
    masks = [
      dv.getUint32(54, true),
      dv.getUint32(58, true),
      dv.getUint32(62, true),
      compression === 6 || dib >= 56 ? dv.getUint32(66, true) : 0,
    ];
    for (const m of masks.slice(0, 3)) {
      if (!isByteMask(m)) {
        throw new UnsupportedImageTypeError(`a BMP with colour mask 0x${m.toString(16)}`, advice);
      }
    }
    if (masks[3] !== 0 && !isByteMask(masks[3])) masks[3] = 0;
  } else if (!((bpp === 24 || bpp === 32) && compression === 0)) {
    throw new UnsupportedImageTypeError(
      `a ${bpp}-bit BMP with compression ${compression}`,
      advice,
    );
  }
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  if (dataOffset + stride * height > bytes.length) {
    throw new UndecodableImageError(
      "bmp",
      `it is truncated: ${height} rows of ${stride} bytes from offset ${dataOffset} need ` +
        `${dataOffset + stride * height} bytes but there are ${bytes.length}`,
    );
  }
  const out = new Uint8Array(width * height * 4);
  const step = bpp / 8;
  const shift = masks?.map((m) => (m === 0 ? 0 : 31 - Math.clz32(m & -m)));
  for (let y = 0; y < height; y++) {
    let s = dataOffset + (topDown ? y : height - 1 - y) * stride;
    let d = y * width * 4;
    for (let x = 0; x < width; x++, s += step, d += 4) {
      if (masks && shift) {
        const v = dv.getUint32(s, true);
        out[d] = (v & masks[0]) >>> shift[0]!;
        out[d + 1] = (v & masks[1]) >>> shift[1]!;
        out[d + 2] = (v & masks[2]) >>> shift[2]!;
        out[d + 3] = masks[3] === 0 ? 255 : (v & masks[3]) >>> shift[3]!;
      } else {
        out[d] = bytes[s + 2]!;
        out[d + 1] = bytes[s + 1]!;
        out[d + 2] = bytes[s]!;
        out[d + 3] = 255;
      }
    }
  }
  return { width, height, data: out };
}

/** Eight contiguous bits on a byte boundary (0xff, 0xff00, ...): the only masks decoded. */
function isByteMask(m: number): boolean {
  return m === 0xff || m === 0xff00 || m === 0xff0000 || m >>> 0 === 0xff000000;
}
