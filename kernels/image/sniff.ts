/**
 * Media type by magic bytes, whatever the Content-Type header claims.
 *
 * @module
 */

import type { ImageType } from "./errors.ts";

/** BMP info-header sizes in use: OS/2 core (12), Windows v1..v5 and the Adobe variants. */
const BMP_DIB_HEADER_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);

/**
 * The image type of `bytes` from its first bytes, or `null` when it is none of the supported ones.
 * BMP needs a plausible info-header size as well as "BM", so text that starts with "BM" is not a
 * bitmap.
 *
 * @example
 * ```ts
 * sniffImageType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])); // "jpeg"
 * ```
 */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  const n = bytes.length;
  const at = (i: number): number => bytes[i] ?? -1;
  if (n >= 3 && at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return "jpeg";
  if (
    n >= 8 && at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47 &&
    at(4) === 0x0d && at(5) === 0x0a && at(6) === 0x1a && at(7) === 0x0a
  ) return "png";
  if (
    n >= 6 && at(0) === 0x47 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x38 &&
    (at(4) === 0x37 || at(4) === 0x39) && at(5) === 0x61
  ) return "gif"; // GIF87a / GIF89a
  if (
    n >= 12 && at(0) === 0x52 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x46 &&
    at(8) === 0x57 && at(9) === 0x45 && at(10) === 0x42 && at(11) === 0x50
  ) return "webp"; // RIFF....WEBP
  if (n >= 18 && at(0) === 0x42 && at(1) === 0x4d) {
    const dib = at(14) | at(15) << 8 | at(16) << 16 | at(17) << 24;
    if (BMP_DIB_HEADER_SIZES.has(dib)) return "bmp";
  }
  return null;
}

/** The first bytes as hex, for error messages about unrecognised data. */
export function describeLeadingBytes(bytes: Uint8Array, count = 8): string {
  if (bytes.length === 0) return "an empty body (0 bytes)";
  const hex = Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, "0"));
  return `${bytes.length} bytes starting with ${hex.join(" ")}`;
}
