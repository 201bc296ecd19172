/**
 * The engine against onnxruntime-node on every shipped int8 model (model/artifacts), on real
 * Fashion-MNIST test images normalized as the manifest says. Skips itself (with the reason) when
 * the artifacts or the dataset are not present.
 */
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { parseIdx } from "../../../model/train/data.ts";
import { Int8Engine } from "../../../runtime/engine/engine.ts";
import { assertAllClose, TOLERANCES } from "../../kernels/int8/conformance.ts";

const ARTIFACTS = new URL("../../../model/artifacts/", import.meta.url);
const IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const COUNT = 100;

interface ManifestModel {
  id: string;
  file: string;
  baseResolution: number;
  inputChannels: number;
  classes: number;
  preprocessing: { mean: number[]; std: number[] };
}

async function readManifest(): Promise<ManifestModel[] | null> {
  try {
    const m = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS)));
    return m.models as ManifestModel[];
  } catch {
    return null;
  }
}

async function gunzip(path: string): Promise<Uint8Array | null> {
  try {
    const stream = (await Deno.open(path)).readable.pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}

const models = await readManifest();
const idx = await gunzip(IMAGES);
const ignore = !models || !idx;

Deno.test({
  name:
    `Int8Engine gives onnxruntime-node's logits on every shipped model for ${COUNT} Fashion-MNIST test images${
      ignore ? " (skipped: model/artifacts or the Fashion-MNIST test set is missing)" : ""
    }`,
  ignore,
  fn: async () => {
    const { dims, data } = parseIdx(idx!);
    const [, h, w] = dims as [number, number, number];
    let checked = 0;
    for (const m of models!) {
      if (m.inputChannels !== 1 || m.baseResolution !== h || m.baseResolution !== w) continue;
      checked++;
      const bytes = await Deno.readFile(new URL(m.file, ARTIFACTS));
      const x = new Float32Array(COUNT * h * w);
      const mean = m.preprocessing.mean[0]!;
      const std = m.preprocessing.std[0]!;
      for (let i = 0; i < x.length; i++) x[i] = (data[i]! / 255 - mean) / std;
      const engine = await Int8Engine.load(bytes, { maxBatch: 16 });
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
      try {
        const mine = engine.run(x, [COUNT, 1, h, w]);
        const theirs =
          (await session.run({ input: new ort.Tensor("float32", x, [COUNT, 1, h, w]) })).logits!
            .data as Float32Array;
        assertAllClose(mine, theirs, TOLERANCES.ortLogits, [COUNT, m.classes]);
        let agree = 0;
        for (let i = 0; i < COUNT; i++) {
          let a = 0;
          let b = 0;
          for (let j = 1; j < m.classes; j++) {
            if (mine[i * m.classes + j]! > mine[i * m.classes + a]!) a = j;
            if (theirs[i * m.classes + j]! > theirs[i * m.classes + b]!) b = j;
          }
          if (a === b) agree++;
        }
        assert.equal(agree, COUNT, `${m.id}: argmax agrees on ${agree} of ${COUNT} images`);
      } finally {
        await session.release();
      }
    }
    assert.ok(checked > 0, "no shipped model takes 1-channel 28x28 input");
  },
});
