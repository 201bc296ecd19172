/**
 * Width, height and EXIF orientation from an image's header alone, without decoding, so that the
 * pixel limit is enforced before any codec allocates (a 30 KB PNG can decode to 16000x16000).
 * Every read is bounds-checked: truncated or hostile headers raise {@link UndecodableImageError},
 * never a RangeError from a DataView and never a hang (every loop advances through the bytes).
 *
 * @module
 */

import { type ImageType, UndecodableImageError, UnsupportedImageTypeError } from "./errors.ts";
import { describeLeadingBytes, sniffImageType } from "./sniff.ts";

/** EXIF orientation (TIFF tag 0x0112): 1 = as stored, 6 = rotate 90 degrees clockwise to display. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/** What the header says. Width and height are as stored, before `orientation` is applied. */
export interface ImageProbe {
  type: ImageType;
  width: number;
  height: number;
  /** From JPEG EXIF (APP1); 1 for the other formats (their rarely used EXIF chunks are ignored). */
  orientation: Orientation;
}

/**
 * Reads `{ type, width, height, orientation }` from the header of a JPEG (SOFn, after walking the
 * marker segments; EXIF APP1 for orientation), PNG (IHDR), GIF (logical screen and the first image
 * descriptor: the larger extent wins), WebP (VP8, VP8L or VP8X) or BMP (info header).
 *
 * @throws {UnsupportedImageTypeError} when the magic bytes match no supported type.
 * @throws {UndecodableImageError} when the header is truncated or invalid (e.g. zero width).
 *
 * @example
 * ```ts
 * const { width, height } = probeImageSize(bytes);
 * if (width * height > 40e6) throw new ImageTooLargeError(width, height, 40e6);
 * ```
 */
export function probeImageSize(bytes: Uint8Array): ImageProbe {
  const type = sniffImageType(bytes);
  if (type === null) throw new UnsupportedImageTypeError(describeLeadingBytes(bytes));
  const r = new Reader(bytes, type);
  let size: { width: number; height: number; orientation?: Orientation };
  switch (type) {
    case "png":
      size = probePng(r);
      break;
    case "jpeg":
      size = probeJpeg(r);
      break;
    case "gif":
      size = probeGif(r);
      break;
    case "webp":
      size = probeWebp(r);
      break;
    case "bmp":
      size = probeBmp(r);
      break;
  }
  if (!(size.width > 0 && size.height > 0)) {
    throw new UndecodableImageError(
      type,
      `its header gives a size of ${size.width}x${size.height}`,
    );
  }
  return { type, width: size.width, height: size.height, orientation: size.orientation ?? 1 };
}

/** Bounds-checked big/little-endian reads that throw UndecodableImageError past the end. */
class Reader {
  constructor(readonly b: Uint8Array, readonly type: ImageType) {}
  get length(): number {
    return this.b.length;
  }
  need(end: number, what: string): void {
    if (end > this.b.length) {
      throw new UndecodableImageError(
        this.type,
        `it is truncated: ${what} needs ${end} bytes but there are ${this.b.length}`,
      );
    }
  }
  u8(i: number): number {
    this.need(i + 1, "the header");
    return this.b[i]!;
  }
  u16be(i: number): number {
    return this.u8(i) << 8 | this.u8(i + 1);
  }
  u16le(i: number): number {
    return this.u8(i) | this.u8(i + 1) << 8;
  }
  u32be(i: number): number {
    return (this.u16be(i) * 0x10000 + this.u16be(i + 2)) >>> 0;
  }
  u32le(i: number): number {
    return (this.u16le(i) + this.u16le(i + 2) * 0x10000) >>> 0;
  }
  i32le(i: number): number {
    return this.u32le(i) | 0;
  }
  ascii(i: number, n: number): string {
    this.need(i + n, "the header");
    return String.fromCharCode(...this.b.subarray(i, i + n));
  }
}

function probePng(r: Reader): { width: number; height: number } {
  // Signature (8) then the IHDR chunk, which PNG requires to come first (RFC 2083, 4.1.1).
  if (r.ascii(12, 4) !== "IHDR") {
    throw new UndecodableImageError("png", "its first chunk is not IHDR");
  }
  const width = r.u32be(16), height = r.u32be(20);
  if (width > 0x7fffffff || height > 0x7fffffff) {
    throw new UndecodableImageError("png", `IHDR gives ${width}x${height}, above 2^31-1`);
  }
  return { width, height };
}

/** SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function probeJpeg(r: Reader): { width: number; height: number; orientation: Orientation } {
  let orientation: Orientation = 1;
  let i = 2;
  for (;;) {
    // Skip anything up to the next 0xFF (libjpeg tolerates such "extraneous bytes"), then fill bytes.
    while (r.u8(i) !== 0xff) i++;
    while (r.u8(i) === 0xff) i++;
    const marker = r.u8(i++);
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue; // RSTn, TEM: no length
    if (marker === 0xd8 || marker === 0xd9 || marker === 0xda) {
      throw new UndecodableImageError(
        "jpeg",
        `marker 0xff${marker.toString(16)} came before any frame header (SOFn)`,
      );
    }
    const len = r.u16be(i);
    if (len < 2) throw new UndecodableImageError("jpeg", `a segment claims length ${len}`);
    const start = i + 2, end = i + len;
    if (isSof(marker)) {
      r.need(start + 5, "the SOF segment");
      const height = r.u16be(start + 1), width = r.u16be(start + 3);
      if (height === 0) {
        throw new UndecodableImageError(
          "jpeg",
          "its height is 0 (defined later by DNL, unsupported)",
        );
      }
      return { width, height, orientation };
    }
    if (marker === 0xe1 && end <= r.length && r.ascii(start, 6) === "Exif\0\0") {
      orientation = exifOrientation(r.b.subarray(start + 6, end));
    }
    i = end;
  }
}

/**
 * Orientation from a TIFF structure (the EXIF payload). A malformed EXIF block is ignored (1), as
 * browsers do: it must not make an otherwise good photo undecodable.
 */
export function exifOrientation(tiff: Uint8Array): Orientation {
  if (tiff.length < 8) return 1;
  const dv = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const le = tiff[0] === 0x49 && tiff[1] === 0x49; // "II" little endian, "MM" big endian
  if (!le && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  if (dv.getUint16(2, le) !== 42) return 1;
  const ifd = dv.getUint32(4, le);
  if (ifd + 2 > tiff.length) return 1;
  const count = dv.getUint16(ifd, le);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > tiff.length) return 1;
    if (dv.getUint16(e, le) === 0x0112 && dv.getUint16(e + 2, le) === 3) {
      const v = dv.getUint16(e + 8, le);
      return v >= 1 && v <= 8 ? v as Orientation : 1;
    }
  }
  return 1;
}

function probeGif(r: Reader): { width: number; height: number } {
  let width = r.u16le(6), height = r.u16le(8);
  const flags = r.u8(10);
  let i = 13 + (flags & 0x80 ? 3 * (2 << (flags & 7)) : 0);
  // Walk extensions to the first image descriptor: a frame may be larger than the logical screen,
  // and the decoder allocates the frame, so the limit must cover it.
  for (;;) {
    const block = r.u8(i);
    if (block === 0x2c) {
      const left = r.u16le(i + 1), top = r.u16le(i + 3);
      width = Math.max(width, left + r.u16le(i + 5));
      height = Math.max(height, top + r.u16le(i + 7));
      return { width, height };
    }
    if (block !== 0x21) {
      throw new UndecodableImageError(
        "gif",
        block === 0x3b ? "it has no frame" : `of an unknown block 0x${block.toString(16)}`,
      );
    }
    i += 2; // introducer and label, then data sub-blocks ending with a zero length
    for (let n = r.u8(i); n !== 0; n = r.u8(i)) i += n + 1;
    i += 1;
  }
}

function probeWebp(r: Reader): { width: number; height: number } {
  const chunk = r.ascii(12, 4);
  if (chunk === "VP8 ") {
    // Key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height (RFC 6386 9.1).
    if (r.u8(23) !== 0x9d || r.u8(24) !== 0x01 || r.u8(25) !== 0x2a) {
      throw new UndecodableImageError("webp", "its VP8 start code is missing");
    }
    return { width: r.u16le(26) & 0x3fff, height: r.u16le(28) & 0x3fff };
  }
  if (chunk === "VP8L") {
    // Lossless: signature 0x2f, then width-1 and height-1 in 14 bits each (RFC 9649 3.2).
    if (r.u8(20) !== 0x2f) throw new UndecodableImageError("webp", "its VP8L signature is missing");
    const bits = r.u32le(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") {
    // Extended: flags (1) + reserved (3), then canvas width-1 and height-1 in 24 bits each.
    const w = r.u16le(24) | r.u8(26) << 16, h = r.u16le(27) | r.u8(29) << 16;
    return { width: w + 1, height: h + 1 };
  }
  throw new UndecodableImageError("webp", `its first chunk "${chunk}" is not VP8, VP8L or VP8X`);
}

function probeBmp(r: Reader): { width: number; height: number } {
  const dib = r.u32le(14);
  if (dib === 12) return { width: r.u16le(18), height: r.u16le(20) }; // OS/2 BITMAPCOREHEADER
  // Negative height means rows are stored top-down.
  return { width: r.i32le(18), height: Math.abs(r.i32le(22)) };
}

/**
 * Number of scans (SOS segments) in a JPEG, walking the marker segments and skipping the
 * entropy-coded data after each SOS (where 0xFF is always followed by 0x00 or RSTn, so the next
 * real marker is unambiguous; an EXIF thumbnail's markers inside APP1 are skipped with it). A
 * progressive JPEG's decode cost grows with scans x blocks; thousands of near-empty scans are a
 * known CPU denial of service, so the decoder refuses files with too many. Linear in the size.
 */
export function countJpegScans(bytes: Uint8Array): number {
  const n = bytes.length;
  let scans = 0;
  let i = 2;
  while (i < n) {
    while (i < n && bytes[i] !== 0xff) i++;
    while (i < n && bytes[i] === 0xff) i++;
    if (i >= n) break;
    const marker = bytes[i++]!;
    if (marker === 0xd9) break; // EOI
    if ((marker >= 0xd0 && marker <= 0xd8) || marker === 0x01) continue; // no length
    if (i + 2 > n) break;
    i += bytes[i]! << 8 | bytes[i + 1]!;
    if (marker !== 0xda) continue;
    scans++;
    // Entropy-coded data runs to the next 0xFF that is not stuffing (00) or a restart (D0..D7).
    for (; i + 1 < n; i++) {
      if (bytes[i] !== 0xff) continue;
      const next = bytes[i + 1]!;
      if (next !== 0 && !(next >= 0xd0 && next <= 0xd7)) break;
    }
  }
  return scans;
}
