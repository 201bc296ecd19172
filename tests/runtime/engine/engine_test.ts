import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { Int8Engine } from "../../../runtime/engine/engine.ts";
import { readQdqGraph } from "../../../runtime/engine/qdq_graph.ts";
import { decodeModel, encodeModel } from "../../../model/export/onnx_writer.ts";
import { assertAllClose, TOLERANCES } from "../../kernels/int8/conformance.ts";
import { buildQdqFixture, waveImages as images } from "./qdq_fixture.ts";

const argmax = (a: Float32Array, i: number, k: number) => {
  let best = 0;
  for (let j = 1; j < k; j++) if (a[i * k + j]! > a[i * k + best]!) best = j;
  return best;
};

for (const channels of [1, 3]) {
  Deno.test(`Int8Engine logits equal onnxruntime-node's on the same QDQ file (${channels}-channel input, batches and resolutions)`, async () => {
    const bytes = buildQdqFixture({ inputChannels: channels, seed: 7 + channels });
    const engine = await Int8Engine.load(bytes, { maxBatch: 4 });
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    try {
      const rows = new Set<string>();
      let images_ = 0;
      for (
        const [n, h, w] of [[1, 32, 32], [3, 28, 28], [5, 17, 13], [2, 1, 1], [1, 32, 32]] as const
      ) {
        const x = images(n, channels, h, w, n * 100 + h);
        const mine = engine.run(x, [n, channels, h, w]);
        const out = await session.run({ input: new ort.Tensor("float32", x, [n, channels, h, w]) });
        const theirs = out.logits!.data as Float32Array;
        assertAllClose(mine, theirs, TOLERANCES.ortLogits, [n, 10]);
        for (let i = 0; i < n; i++) {
          assert.equal(
            argmax(mine, i, 10),
            argmax(theirs, i, 10),
            `argmax of image ${i} at ${h}x${w}`,
          );
          rows.add(Array.from(mine.subarray(i * 10, (i + 1) * 10)).join(","));
          images_++;
        }
      }
      // the comparison is not vacuous: images get their own logits (the repeated 32x32 image and
      // the two single-pixel images aside)
      assert.ok(
        rows.size >= images_ - 2,
        `only ${rows.size} distinct logit rows for ${images_} images`,
      );
    } finally {
      await session.release();
    }
  });
}

Deno.test("Int8Engine allocates no wasm memory for repeated requests at a seen resolution", async () => {
  const engine = await Int8Engine.load(buildQdqFixture(), { maxBatch: 2 });
  const x = images(2, 1, 28, 28, 5);
  const first = engine.run(x, [2, 1, 28, 28]);
  const bytes = engine.memoryBytes;
  for (let i = 0; i < 20; i++) assert.deepEqual(engine.run(x, [2, 1, 28, 28]), first);
  assert.equal(engine.memoryBytes, bytes);
  const out = new Float32Array(20);
  assert.equal(engine.run(x, [2, 1, 28, 28], out), out);
  assert.deepEqual(out, first);
  assert.throws(
    () => engine.run(x, [2, 1, 28, 28], new Float32Array(3)),
    /output buffer must hold 20 values/,
  );
});

Deno.test("Int8Engine.run() rejects a wrong channel count and a wrong data length, naming the shape", async () => {
  const engine = await Int8Engine.load(buildQdqFixture(), { maxBatch: 2 });
  assert.throws(
    () => engine.run(new Float32Array(3 * 4), [1, 3, 2, 2]),
    /takes 1 input channels: current shape is \[1,3,2,2\]/,
  );
  assert.throws(
    () => engine.run(new Float32Array(5), [1, 1, 2, 2]),
    /must hold 4 values .* current length is 5/,
  );
});

Deno.test("readQdqGraph() turns the QDQ pattern into integer steps and names an unsupported node", () => {
  const model = decodeModel(buildQdqFixture());
  const g = readQdqGraph(model);
  assert.deepEqual(g.steps.map((s) => s.op), [
    "quantize_input",
    ...Array(7).fill("conv"),
    "global_avg_pool",
    "flatten",
    "gemm",
  ]);
  const dw1 = g.steps.find((s) => s.op === "conv" && s.name === "dw1");
  assert.ok(dw1 && dw1.op === "conv" && dw1.groups === 8 && dw1.hi === 255 && dw1.lo === 0);
  const bad = structuredClone(model);
  bad.graph.nodes.splice(bad.graph.nodes.findIndex((n) => n.opType === "Flatten"), 0, {
    opType: "Sigmoid",
    name: "extra_sigmoid",
    inputs: ["pool.out.dq"],
    outputs: ["s"],
  });
  assert.throws(
    () => readQdqGraph(decodeModel(encodeModel(bad))),
    /node extra_sigmoid is a Sigmoid: supported are/,
  );
});
