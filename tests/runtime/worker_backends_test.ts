import assert from "node:assert/strict";
import { backendFactory, registeredBackends } from "../../runtime/backend_factory.ts";
import { Scheduler } from "../../runtime/scheduler.ts";

// ONNX's own node test model (Debian libonnx-testdata): GlobalAveragePool, x [1,3,5,5] -> y [1,3,1,1].
const MODEL = "/usr/share/libonnx-testdata/data/node/test_globalaveragepool/model.onnx";
const onnx = await Deno.readFile(MODEL).catch(() => null);

Deno.test("backendFactory() knows ort-wasm and ort-webgpu and lists the registered names for others", () => {
  assert.ok(registeredBackends().includes("ort-wasm"));
  assert.ok(registeredBackends().includes("ort-webgpu"));
  assert.equal(backendFactory("ort-wasm", { numThreads: 1 }).exportName, "createOrtWasm");
  assert.throws(
    () => backendFactory("tpu"),
    /no factory is registered for it: registered are .*ort-wasm/,
  );
});

Deno.test({
  name: "ort-wasm runs inside an inference worker, built there from the model bytes",
  ignore: onnx === null,
  fn: async () => {
    const s = await Scheduler.create({
      models: [{
        id: "gap",
        onnx: onnx!,
        inputName: "x",
        outputName: "y",
        inputChannels: 3,
        classes: 3,
      }],
      backends: [backendFactory("ort-wasm")],
      workers: 1,
      maxBatch: 1, // the test model's batch dimension is fixed at 1
    });
    try {
      const input = Float32Array.from(
        { length: 75 },
        (_, i) => (i % 25) + Math.floor(i / 25) * 100,
      );
      const res = await s.submit({ model: "gap", backend: "ort-wasm", input, shape: [1, 3, 5, 5] });
      assert.equal(res.logits.length, 3);
      // Mean of 0..24 is 12, plus 100 per channel.
      assert.deepEqual([...res.logits].map((v) => Math.round(v * 1e4) / 1e4), [12, 112, 212]);
    } finally {
      await s.close();
    }
  },
});
