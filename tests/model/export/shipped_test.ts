/**
 * Checks the shipped artifacts themselves: model/artifacts/manifest.json and its ONNX files.
 */
import assert from "node:assert/strict";
import * as ortNode from "onnxruntime-node";
import { FASHION_MNIST_LABELS, loadIdxDataset } from "../../../model/train/data.ts";
import { betaKey, readManifest, sha256Hex } from "../../../model/export/manifest.ts";
import { decodeModel } from "../../../model/export/onnx_writer.ts";
import { accuracyOf, argmax, runNode } from "../../../model/export/pipeline.ts";
import { foldedAsTrained, sourceWeights } from "../../../model/export/eval.ts";
import { buildFloatModel } from "../../../model/export/float_graph.ts";
import { encodeModel } from "../../../model/export/onnx_writer.ts";
import { specFromMeta } from "../../../model/export/pipeline.ts";

const DIR = new URL("../../../model/artifacts/", import.meta.url).pathname;
const manifest = await readManifest(`${DIR}manifest.json`);
const ds = await loadIdxDataset();
/** 500 test images: the binomial standard error of an accuracy near 0.9 is ~1.3 points. */
const SAMPLE = 500;
const idx = Array.from({ length: SAMPLE }, (_, i) => i);

Deno.test("the manifest lists the four shipped widths with Fashion-MNIST labels", () => {
  assert.deepEqual(manifest.models.map((m) => m.alpha).sort(), [0.25, 0.5, 0.75, 1]);
  for (const m of manifest.models) assert.deepEqual(m.labels, FASHION_MNIST_LABELS);
});

for (const m of manifest.models) {
  Deno.test(`${m.id}: the file matches the manifest's sha256, size, input and output`, async () => {
    const bytes = await Deno.readFile(`${DIR}${m.file}`);
    assert.equal(bytes.length, m.bytes);
    assert.equal(await sha256Hex(bytes), m.sha256);
    const g = decodeModel(bytes).graph;
    assert.deepEqual(g.inputs.map((i) => ({ name: i.name, shape: i.shape })), [m.input]);
    assert.deepEqual(g.outputs.map((o) => ({ name: o.name, shape: o.shape })), [m.output]);
  });

  Deno.test(`${m.id}: int8 accuracy on ${SAMPLE} test images agrees with the manifest's eval numbers`, async () => {
    assert.ok(m.evaluated, "the manifest must carry eval numbers for every shipped model");
    const s = await ortNode.InferenceSession.create(await Deno.readFile(`${DIR}${m.file}`));
    for (const beta of [1, 0.5]) {
      const resolution = Math.round(beta * m.baseResolution);
      const plan = { resolution, base: m.baseResolution, ...m.preprocessing };
      const acc = accuracyOf(
        await runNode(s, ds.test, idx, plan, m.classes),
        ds.test.labels,
        idx,
        m.classes,
      );
      const full = m.accuracy.int8[betaKey(beta)]!;
      // Four standard errors of a 500-image sample (at most 2.2 points each) plus a margin.
      assert.ok(
        Math.abs(acc - full) < 0.1,
        `beta ${beta}: ${acc} on ${SAMPLE} vs ${full} on ${m.evaluated.images}`,
      );
    }
    await s.release();
  });

  // Needs the trained checkpoint the file came from (model/train/runs/<run>/model, committed by
  // the trainer); untrained stand-ins amplify any perturbation through 28 random layers, so the
  // agreement check means something only for trained weights (see quantize_test.ts).
  // The trainer overwrites its run folder every epoch: compare only against the exact
  // checkpoint the file was exported from (eval refuses a changed one too).
  const hasCheckpoint = await Deno.readFile(`${m.source.checkpoint}/weights.bin`).then(
    async (b) => (await sha256Hex(b)) === m.source.weightsSha256,
    () => false,
  );
  Deno.test({
    name:
      `${m.id}: int8 and float agree on the argmax of real test images (trained, its checkpoint present)`,
    ignore: !m.trained || !hasCheckpoint,
    fn: async () => {
      const spec = specFromMeta({ ...m, resolution: m.baseResolution });
      const tensors = await sourceWeights(m, ds.train);
      const f = await ortNode.InferenceSession.create(
        encodeModel(buildFloatModel(spec, foldedAsTrained(m, spec, tensors))),
      );
      const q = await ortNode.InferenceSession.create(await Deno.readFile(`${DIR}${m.file}`));
      const plan = { resolution: m.baseResolution, base: m.baseResolution, ...m.preprocessing };
      const some = idx.slice(0, 200);
      const fl = await runNode(f, ds.test, some, plan, m.classes);
      const ql = await runNode(q, ds.test, some, plan, m.classes);
      await f.release();
      await q.release();
      let agree = 0;
      for (let i = 0; i < some.length; i++) {
        if (argmax(fl, i, m.classes) === argmax(ql, i, m.classes)) agree++;
      }
      assert.ok(agree / some.length >= 0.95, `argmax agreement ${agree}/${some.length}`);
      assert.ok(
        accuracyOf(fl, ds.test.labels, some, m.classes) > 0.5,
        "a trained model beats chance by far",
      );
    },
  });
}
