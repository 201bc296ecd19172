import assert from "node:assert/strict";
import {
  createKernelsWasm,
  KernelsWasmBackend,
} from "../../../runtime/engine/kernels_wasm_backend.ts";
import { Int8Engine } from "../../../runtime/engine/engine.ts";
import { buildQdqFixture, waveImages } from "./qdq_fixture.ts";

const onnx = buildQdqFixture();
const model = {
  id: "fixture",
  onnx,
  inputName: "input",
  outputName: "logits",
  inputChannels: 1,
  classes: 10,
};

Deno.test("KernelsWasmBackend runs a loaded model like the engine it wraps", async () => {
  const backend = createKernelsWasm({ maxBatch: 4 });
  assert.equal(backend.name, "kernels-wasm");
  await backend.load(model);
  const x = waveImages(2, 1, 20, 20, 9);
  const got = await backend.run(x, [2, 1, 20, 20]);
  const engine = await Int8Engine.load(onnx, { maxBatch: 4 });
  assert.deepEqual(got, engine.run(x, [2, 1, 20, 20]));
  await backend.dispose();
  await assert.rejects(() => backend.run(x, [2, 1, 20, 20]), /no model is loaded/);
});

Deno.test("KernelsWasmBackend.load() fails fast when the manifest disagrees with the graph", async () => {
  await assert.rejects(
    () => new KernelsWasmBackend().load({ ...model, classes: 12 }),
    /gives 10 classes: the manifest says 1 and 12/,
  );
  await assert.rejects(
    () => new KernelsWasmBackend().load({ ...model, inputName: "image" }),
    /input\/output are input\/logits/,
  );
  const b = new KernelsWasmBackend();
  await b.load(model);
  await assert.rejects(() => b.load(model), /already holds fixture/);
  await assert.rejects(() => b.run(new Uint8Array(400), [1, 1, 20, 20]), /must be float32/);
});
