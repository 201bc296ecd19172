/**
 * Image decoding for folder-per-class datasets, through the project's image code
 * (`kernels/image/decode.ts`: magic-byte sniffing, header checks, wasm codecs, EXIF orientation).
 * Transparent pixels are composited onto black, the Fashion-MNIST background.
 */
import { decodeImage } from "../../kernels/image/decode.ts";
import type { ImageDecoder } from "./data.ts";

export const decodeForTraining: ImageDecoder = async (bytes, channels) => {
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(
      `Cannot decode training image as channels must be 1 or 3: current value is ${channels}`,
    );
  }
  const img = await decodeImage(bytes);
  const n = img.width * img.height;
  const out = new Uint8Array(n * channels);
  const px = img.data;
  for (let i = 0; i < n; i++) {
    const a = px[4 * i + 3]! / 255;
    const r = px[4 * i]! * a;
    const g = px[4 * i + 1]! * a;
    const b = px[4 * i + 2]! * a;
    if (channels === 1) out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else {
      out[3 * i] = Math.round(r);
      out[3 * i + 1] = Math.round(g);
      out[3 * i + 2] = Math.round(b);
    }
  }
  return { width: img.width, height: img.height, data: out };
};
