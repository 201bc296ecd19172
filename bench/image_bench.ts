/**
 * Image pipeline cost: `preprocessImage` (probe + decode + resize + normalize to 28x28 gray) on a
 * 28x28 PNG, a 1024x1024 JPEG "photo" fixture and a 4000x3000 JPEG made here, with the reduced-size
 * JPEG decode (DCT scaling, what preprocessImage does) against a full decode followed by the same
 * area resize, alternating in one process. Prints medians and the ratio.
 *
 *   deno run -A bench/image_bench.ts [--rounds N]
 */
import { encode as encodeJpeg } from "@jsquash/jpeg";
import { decodeImage } from "../kernels/image/decode.ts";
import { preprocessImage } from "../kernels/image/preprocess.ts";
import { resizeArea } from "../kernels/image/resize.ts";

const roundsArg = Deno.args.indexOf("--rounds");
const rounds = roundsArg >= 0 ? Number(Deno.args[roundsArg + 1]) : 7;
const opts = { resolution: 28, channels: 1, mean: [0], std: [1], invert: "auto" } as const;
const fixture = (rel: string) =>
  Deno.readFile(new URL(`../tests/fixtures/data/${rel}`, import.meta.url));

/** A 4000x3000 camera-like frame: smooth gradients, a dark object, mild noise (JPEG quality 90). */
async function bigJpeg(): Promise<Uint8Array> {
  const w = 4000, h = 3000;
  const rgba = new Uint8ClampedArray(w * h * 4);
  let seed = 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const noise = (seed >>> 28) - 8;
      const inside = (x - 2000) ** 2 / 1400 ** 2 + (y - 1500) ** 2 / 1000 ** 2 < 1;
      const base = inside ? 60 : 235 - y / 60;
      const i = 4 * (y * w + x);
      rgba[i] = base + noise, rgba[i + 1] = base + noise - 5, rgba[i + 2] = base + noise - 10;
      rgba[i + 3] = 255;
    }
  }
  const img = { data: rgba, width: w, height: h, colorSpace: "srgb" } as ImageData;
  return new Uint8Array(await encodeJpeg(img, { quality: 90 }));
}

/** The alternative without DCT scaling: full decode, then the same area resize. */
async function fullDecodeThenResize(bytes: Uint8Array): Promise<Float32Array> {
  const img = await decodeImage(bytes);
  const gray = new Uint8Array(img.width * img.height);
  for (let i = 0; i < gray.length; i++) {
    const s = 4 * i;
    gray[i] = Math.round(
      0.299 * img.data[s]! + 0.587 * img.data[s + 1]! + 0.114 * img.data[s + 2]!,
    );
  }
  return resizeArea(gray, img.width, img.height, 1, 28, 28);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const inputs: [string, Uint8Array][] = [
  ["28x28 PNG", await fixture("fmnist/png/t10k_00000.png")],
  ["1024x1024 JPEG", await fixture("fmnist/photo/t10k_00000.jpg")],
  ["4000x3000 JPEG", await bigJpeg()],
];

console.log(`image pipeline to 28x28x1, median of ${rounds} alternating rounds (ms)`);
for (const [name, bytes] of inputs) {
  const reduced: number[] = [], full: number[] = [], decode: number[] = [], prep: number[] = [];
  await preprocessImage(bytes, opts); // warm the codec instances
  await fullDecodeThenResize(bytes);
  for (let r = 0; r < rounds; r++) {
    let timing = { decode: 0, preprocess: 0 };
    reduced.push(await time(async () => ({ timing } = await preprocessImage(bytes, opts))));
    decode.push(timing.decode);
    prep.push(timing.preprocess);
    full.push(await time(() => fullDecodeThenResize(bytes)));
  }
  const a = median(reduced), b = median(full);
  console.log(
    `${name.padEnd(16)} preprocessImage ${a.toFixed(1).padStart(7)} ` +
      `(decode ${median(decode).toFixed(1)}, resize+normalize ${median(prep).toFixed(1)})  ` +
      `full decode + area resize ${b.toFixed(1).padStart(7)}  ratio ${(b / a).toFixed(1)}x`,
  );
}
