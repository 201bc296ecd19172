import assert from "node:assert/strict";
import {
  createKernelsWebgpu,
  KernelsWebgpuBackend,
} from "../../../runtime/engine/kernels_webgpu_backend.ts";
import { Int8Engine } from "../../../runtime/engine/engine.ts";
import { backendFactory, buildBackend } from "../../../runtime/backend_factory.ts";
import { Scheduler } from "../../../runtime/scheduler.ts";
import { buildQdqFixture, waveImages } from "./qdq_fixture.ts";

const ignore = !(await navigator.gpu?.requestAdapter());
const SKIP = ignore ? " (skipped: no WebGPU adapter in this runtime)" : "";

const onnx = buildQdqFixture();
const model = {
  id: "fixture",
  onnx,
  inputName: "input",
  outputName: "logits",
  inputChannels: 1,
  classes: 10,
};

Deno.test({
  name: `KernelsWebgpuBackend answers the wasm engine's logits for a loaded model${SKIP}`,
  ignore,
  fn: async () => {
    const backend = createKernelsWebgpu({ maxBatch: 4 });
    assert.equal(backend.name, "kernels-webgpu");
    await backend.load(model);
    try {
      const x = waveImages(2, 1, 20, 20, 9);
      const engine = await Int8Engine.load(onnx, { maxBatch: 4 });
      assert.deepEqual(await backend.run(x, [2, 1, 20, 20]), engine.run(x, [2, 1, 20, 20]));
      await assert.rejects(() => backend.load(model), /already holds fixture/);
      await assert.rejects(
        () => backend.run(new Uint8Array(400), [1, 1, 20, 20]),
        /must be float32/,
      );
    } finally {
      await backend.dispose();
    }
    await assert.rejects(
      () => backend.run(waveImages(1, 1, 20, 20, 1), [1, 1, 20, 20]),
      /no model is loaded/,
    );
  },
});

Deno.test({
  name: `KernelsWebgpuBackend.load() fails fast when the manifest disagrees with the graph${SKIP}`,
  ignore,
  fn: async () => {
    await assert.rejects(
      () => new KernelsWebgpuBackend().load({ ...model, classes: 12 }),
      /gives 10 classes: the manifest says 1 and 12/,
    );
    await assert.rejects(
      () => new KernelsWebgpuBackend().load({ ...model, inputName: "image" }),
      /input\/output are input\/logits/,
    );
  },
});

Deno.test({
  name: `backendFactory("kernels-webgpu") builds the backend by module and export name${SKIP}`,
  ignore,
  fn: async () => {
    const spec = backendFactory("kernels-webgpu", { maxBatch: 2 });
    assert.equal(spec.exportName, "createKernelsWebgpu");
    const backend = await buildBackend(spec);
    assert.equal(backend.name, "kernels-webgpu");
    await backend.load(model);
    try {
      const x = waveImages(1, 1, 16, 16, 3);
      const engine = await Int8Engine.load(onnx, { maxBatch: 2 });
      assert.deepEqual(await backend.run(x, [1, 1, 16, 16]), engine.run(x, [1, 1, 16, 16]));
    } finally {
      await backend.dispose();
    }
  },
});

Deno.test({
  name: `kernels-webgpu runs inside an inference worker, built there from the model bytes${SKIP}`,
  ignore,
  fn: async () => {
    const s = await Scheduler.create({
      models: [model],
      backends: [backendFactory("kernels-webgpu", { maxBatch: 2 })],
      workers: 1,
      maxBatch: 2,
    });
    try {
      const x = waveImages(1, 1, 20, 20, 4);
      const res = await s.submit({
        model: "fixture",
        backend: "kernels-webgpu",
        input: x,
        shape: [1, 1, 20, 20],
      });
      const engine = await Int8Engine.load(onnx, { maxBatch: 1 });
      assert.deepEqual(res.logits, engine.run(x, [1, 1, 20, 20]));
    } finally {
      await s.close();
    }
  },
});
