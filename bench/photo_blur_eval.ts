/**
 * How much the photo round trip (bilinear upscale to a side, area downscale back: what a phone photo
 * of an item goes through on its way to the model) costs each shipped int8 model, on the Fashion-MNIST
 * test set, with the project's kernels-wasm engine. Accuracy only; no timing.
 *
 * deno run -A bench/photo_blur_eval.ts [--limit 10000] [--sides 28,56,224,1024]
 */
import { loadIdxDataset } from "../model/train/data.ts";
import { roundTripImage } from "../model/train/augment.ts";
import { Int8Engine } from "../runtime/engine/engine.ts";

function arg(name: string, def: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1]! : def;
}
const limit = Number(arg("limit", "10000"));
const sides = arg("sides", "28,56,224,1024").split(",").map(Number);
const dir = new URL("../model/artifacts/", import.meta.url);
const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", dir)));
const { test } = await loadIdxDataset();
const n = Math.min(limit, test.n);
console.log(`| model | ${sides.map((s) => `side ${s}`).join(" | ")} |`);
console.log(`|---|${sides.map(() => "---").join("|")}|`);
for (const m of manifest.models) {
  const engine = await Int8Engine.load(await Deno.readFile(new URL(m.file, dir)), { maxBatch: 1 });
  const { mean, std } = m.preprocessing;
  const r = m.baseResolution;
  const accs: string[] = [];
  for (const side of sides) {
    let ok = 0;
    const img = new Float32Array(784), x = new Float32Array(r * r);
    for (let i = 0; i < n; i++) {
      if (side === 28) { for (let k = 0; k < 784; k++) img[k] = test.images[i * 784 + k]!; }
      else roundTripImage(test.images, i * 784, 28, 28, 1, side, side, img);
      for (let k = 0; k < 784; k++) x[k] = (img[k]! / 255 - mean[0]) / std[0];
      const logits = engine.run(x, [1, 1, 28, 28]);
      let best = 0;
      for (let c = 1; c < logits.length; c++) if (logits[c]! > logits[best]!) best = c;
      if (best === test.labels[i]) ok++;
    }
    accs.push(`${(100 * ok / n).toFixed(2)}%`);
  }
  console.log(`| ${m.id} | ${accs.join(" | ")} |`);
}
