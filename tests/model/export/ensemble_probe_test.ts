import assert from "node:assert/strict";
import { mirrored, softmaxRows, summed } from "../../../model/export/ensemble_probe.ts";

Deno.test("mirrored() flips every row of every image and channel, and twice is the identity", () => {
  // Two 2x3 images with 2 channels (HWC): value = 100*image + 10*x + channel, plus 50 on row 1.
  const images = new Uint8Array(2 * 2 * 3 * 2);
  for (let i = 0; i < 2; i++) {
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 2; c++) {
          images[((i * 2 + y) * 3 + x) * 2 + c] = 100 * i + 50 * y + 10 * x + c;
        }
      }
    }
  }
  const set = { images, labels: new Uint8Array(2), n: 2, height: 2, width: 3, channels: 2 };
  const m = mirrored(set);
  // Image 1, row 1, x 0, channel 1 comes from x 2 of the same row and channel.
  assert.equal(m.images[((1 * 2 + 1) * 3 + 0) * 2 + 1], 100 + 50 + 20 + 1);
  assert.equal(m.images[0], 20);
  assert.deepEqual(mirrored(m).images, images);
  assert.equal(set.images[0], 0, "the input is not modified");
});

Deno.test("softmaxRows() normalizes each row, keeps its order and survives large logits", () => {
  const p = softmaxRows(new Float32Array([1, 2, 3, 1000, 1000, 999]), 3);
  assert.ok(Math.abs(p[0]! + p[1]! + p[2]! - 1) < 1e-6);
  assert.ok(Math.abs(p[3]! + p[4]! + p[5]! - 1) < 1e-6);
  assert.ok(p[2]! > p[1]! && p[1]! > p[0]!);
  assert.ok(Math.abs(p[3]! - p[4]!) < 1e-7 && p[5]! < p[3]!);
  assert.ok(Math.abs(p[2]! - Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3))) < 1e-6);
});

Deno.test("summed() adds element-wise", () => {
  assert.deepEqual(
    summed([new Float32Array([1, 2]), new Float32Array([0.5, -2]), new Float32Array([1, 1])]),
    new Float32Array([2.5, 1]),
  );
});
