/**
 * Run by decode_test.ts in a child process with only `--allow-read=tests/fixtures/data`: every
 * codec must load and decode without env, FFI or node_modules read access (edge deployments).
 */
import { decodeImage } from "../../../kernels/image/decode.ts";

const files = ["baseline.jpg", "cmyk.jpg", "rgb.png", "animated.gif", "lossy.webp", "rgb24.bmp"];
const sizes: string[] = [];
for (const f of files) {
  const img = await decodeImage(await Deno.readFile(`tests/fixtures/data/edge/${f}`));
  sizes.push(`${f}=${img.width}x${img.height}`);
}
console.log(sizes.join(" "));
