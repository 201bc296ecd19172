import assert from "node:assert/strict";
import { type ImageSet, inputBatch, sampleIndices } from "../../../model/export/pipeline.ts";

const img = new Uint8Array(28 * 28).map((_, i) => (i % 7) * 30);
const set: ImageSet = {
  images: img,
  labels: new Uint8Array([0]),
  n: 1,
  height: 28,
  width: 28,
  channels: 1,
};
const norm = { mean: [0.5], std: [0.25] };

Deno.test("inputBatch() 'pad' centres the 28x28 image on a 32x32 canvas of normalized black, like the trainer", () => {
  const x = inputBatch(set, [0], { resolution: 32, base: 32, fit: "pad", ...norm });
  assert.equal(x.length, 32 * 32);
  const bg = (0 - 0.5) / 0.25;
  assert.equal(x[0], bg);
  assert.equal(x[31 * 32 + 31], bg);
  for (let y = 0; y < 28; y++) {
    for (let c = 0; c < 28; c++) {
      const want = (img[y * 28 + c]! / 255 - 0.5) / 0.25;
      assert.ok(Math.abs(x[(y + 2) * 32 + c + 2]! - want) < 1e-5, `pixel ${y},${c}`);
    }
  }
});

Deno.test("inputBatch() 'resize' area-averages to the requested side and normalizes", () => {
  const x = inputBatch(set, [0], { resolution: 14, base: 28, fit: "resize", ...norm });
  assert.equal(x.length, 14 * 14);
  // Output (0, 0) averages source pixels 0, 1, 28, 29.
  const mean = (img[0]! + img[1]! + img[28]! + img[29]!) / 4;
  assert.ok(Math.abs(x[0]! - (mean / 255 - 0.5) / 0.25) < 1e-5);
});

Deno.test("sampleIndices() is deterministic, distinct and in range", () => {
  const a = sampleIndices(100, 10, 1000, 1);
  assert.deepEqual(a, sampleIndices(100, 10, 1000, 1));
  assert.equal(new Set(a).size, 100);
  assert.ok(a.every((i) => i >= 10 && i < 1000));
  assert.notDeepEqual(a, sampleIndices(100, 10, 1000, 2));
});
