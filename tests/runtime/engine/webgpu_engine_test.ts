/**
 * The WebGPU int8 engine against the wasm engine (the same integer arithmetic, so the logits must
 * be equal bit for bit: TOLERANCES.integer's exactness applies to the float logits too, as they are
 * `f32(acc) * scale` in both): on the seeded QDQ fixture, and on shipped models with Fashion-MNIST
 * PNG fixtures. Skips itself when this runtime has no WebGPU adapter (STYLE.md item 10); every
 * engine destroys the device it created.
 */
import assert from "node:assert/strict";
import { decodeImage } from "../../../kernels/image/decode.ts";
import { Int8Engine } from "../../../runtime/engine/engine.ts";
import { WebGpuInt8Engine } from "../../../runtime/engine/webgpu_engine.ts";
import { assertAllClose, TOLERANCES } from "../../kernels/int8/conformance.ts";
import { buildQdqFixture, waveImages } from "./qdq_fixture.ts";

const ignore = !(await navigator.gpu?.requestAdapter());
const SKIP = ignore ? " (skipped: no WebGPU adapter in this runtime)" : "";

const ARTIFACTS = new URL("../../../model/artifacts/", import.meta.url);
const PNG_DIR = new URL("../../fixtures/data/fmnist/png/", import.meta.url);
const IMAGES = 4;

Deno.test({
  name: `WebGpuInt8Engine gives the wasm engine's logits exactly on the QDQ fixture${SKIP}`,
  ignore,
  fn: async () => {
    const onnx = buildQdqFixture();
    const wasm = await Int8Engine.load(onnx, { maxBatch: 2 });
    const gpu = await WebGpuInt8Engine.load(onnx, { maxBatch: 2 });
    try {
      // batch 3 with maxBatch 2: two chunks (sizes 2 and 1), then a second resolution
      for (const [n, h, w] of [[3, 20, 20], [1, 13, 17], [3, 20, 20]] as const) {
        const x = waveImages(n, 1, h, w, 5 + h);
        assertAllClose(
          await gpu.run(x, [n, 1, h, w]),
          wasm.run(x, [n, 1, h, w]),
          TOLERANCES.integer,
          [
            n,
            gpu.classes,
          ],
        );
      }
      // concurrent runs are serialized, each answered with its own input's logits
      const a = waveImages(1, 1, 20, 20, 1);
      const b = waveImages(1, 1, 20, 20, 2);
      const [ga, gb] = await Promise.all([gpu.run(a, [1, 1, 20, 20]), gpu.run(b, [1, 1, 20, 20])]);
      assert.deepEqual(ga, wasm.run(a, [1, 1, 20, 20]));
      assert.deepEqual(gb, wasm.run(b, [1, 1, 20, 20]));
      await assert.rejects(() => gpu.run(a, [1, 3, 20, 20]), /takes 1 input channels/);
    } finally {
      await gpu.destroy();
    }
    await assert.rejects(() => gpu.run(waveImages(1, 1, 8, 8, 1), [1, 1, 8, 8]), /destroyed/);
  },
});

Deno.test({
  name: `WebGpuInt8Engine rejects runs once its device is lost, naming the reason${SKIP}`,
  ignore,
  fn: async () => {
    const device = await (await navigator.gpu.requestAdapter())!.requestDevice();
    const gpu = await WebGpuInt8Engine.load(buildQdqFixture(), { maxBatch: 1, device });
    const x = waveImages(1, 1, 12, 12, 3);
    assert.equal((await gpu.run(x, [1, 1, 12, 12])).length, 10);
    device.destroy();
    await device.lost;
    await assert.rejects(() => gpu.run(x, [1, 1, 12, 12]), /device was lost: destroyed/);
    await gpu.destroy();
  },
});

interface ManifestModel {
  id: string;
  file: string;
  baseResolution: number;
  inputChannels: number;
  preprocessing: { mean: number[]; std: number[] };
}

async function shipped(): Promise<ManifestModel[] | null> {
  try {
    const m = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS)));
    return (m.models as ManifestModel[]).filter((x) => x.inputChannels === 1);
  } catch {
    return null;
  }
}

/** The first PNG fixtures as one batch of 28x28 gray images, normalized per the manifest. */
async function fixtureBatch(m: ManifestModel, side: number): Promise<Float32Array> {
  const x = new Float32Array(IMAGES * side * side);
  for (let i = 0; i < IMAGES; i++) {
    const name = `t10k_${String(i).padStart(5, "0")}.png`;
    const img = await decodeImage(await Deno.readFile(new URL(name, PNG_DIR)));
    assert.equal(img.width, side);
    assert.equal(img.height, side);
    for (let p = 0; p < side * side; p++) {
      x[i * side * side + p] = (img.data[p * 4]! / 255 - m.preprocessing.mean[0]!) /
        m.preprocessing.std[0]!;
    }
  }
  return x;
}

const models = ignore ? null : await shipped();

Deno.test({
  name:
    `WebGpuInt8Engine gives the wasm engine's logits exactly on shipped models for ${IMAGES} PNG fixtures${
      ignore ? SKIP : models ? "" : " (skipped: model/artifacts/manifest.json is missing)"
    }`,
  ignore: ignore || !models,
  fn: async () => {
    // the narrowest and the widest shipped width keep the test to seconds on llvmpipe
    const picked = [models!.at(0)!, models!.at(-1)!];
    for (const m of picked) {
      const side = m.baseResolution;
      const x = await fixtureBatch(m, side);
      const bytes = await Deno.readFile(new URL(m.file, ARTIFACTS));
      const wasm = await Int8Engine.load(bytes, { maxBatch: IMAGES });
      const gpu = await WebGpuInt8Engine.load(bytes, { maxBatch: IMAGES });
      try {
        const mine = await gpu.run(x, [IMAGES, 1, side, side]);
        const theirs = wasm.run(x, [IMAGES, 1, side, side]);
        let maxAbs = 0;
        for (let i = 0; i < mine.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(mine[i]! - theirs[i]!));
        }
        console.log(`${m.id}: ${IMAGES} images, max |webgpu - wasm| = ${maxAbs}`);
        assertAllClose(mine, theirs, TOLERANCES.integer, [IMAGES, gpu.classes]);
      } finally {
        await gpu.destroy();
      }
    }
  },
});
