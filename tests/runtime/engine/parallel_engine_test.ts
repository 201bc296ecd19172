import assert from "node:assert/strict";
import { Int8Engine } from "../../../runtime/engine/engine.ts";
import { ParallelInt8Engine } from "../../../runtime/engine/parallel_engine.ts";
import { buildQdqFixture, waveImages } from "./qdq_fixture.ts";

Deno.test("ParallelInt8Engine splits a batch over two threads and returns the single-thread logits", async () => {
  const onnx = buildQdqFixture();
  const single = await Int8Engine.load(onnx, { maxBatch: 4 });
  const parallel = await ParallelInt8Engine.load(onnx, { maxBatch: 4 });
  try {
    for (const n of [1, 2, 5, 9]) {
      const x = waveImages(n, 1, 24, 24, n);
      assert.deepEqual(
        await parallel.run(x, [n, 1, 24, 24]),
        single.run(x, [n, 1, 24, 24]),
        `batch ${n}`,
      );
    }
    await assert.rejects(
      () => parallel.run(new Float32Array(5), [2, 1, 24, 24]),
      /must hold 1152 values/,
    );
  } finally {
    parallel.close();
  }
  await assert.rejects(() => parallel.run(new Float32Array(576), [1, 1, 24, 24]), /was closed/);
});
