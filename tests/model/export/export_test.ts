import assert from "node:assert/strict";
import { parseExportArgs, runExport, trainingStages } from "../../../model/export/export.ts";
import { evaluateModel } from "../../../model/export/eval.ts";
import { readManifest, sha256Hex } from "../../../model/export/manifest.ts";
import { FASHION_MNIST_LABELS, loadIdxDataset } from "../../../model/train/data.ts";
import { loadWeights, saveWeights } from "../../../model/weights.ts";
import { decodeModel } from "../../../model/export/onnx_writer.ts";
import { makeTestModel } from "./test_model.ts";

Deno.test("deno task export writes an int8 file and a manifest entry with no accuracy until eval runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A checkpoint in the trainer's format, with the meta train.ts writes.
    const m = await makeTestModel();
    await saveWeights(`${dir}/ckpt`, m.tensors, {
      arch: m.spec.arch,
      alpha: m.spec.alpha,
      stridePlan: m.spec.stridePlan,
      resolution: m.spec.resolution,
      inputChannels: 1,
      classes: 10,
      labels: FASHION_MNIST_LABELS,
      mean: m.plan.mean,
      std: m.plan.std,
      polarity: "light-on-dark",
      fit: "pad",
      epochs: 2,
      seconds: 60,
      command: "deno task train --test",
      recipe: { name: "test" },
    });
    const argList = (ckpt: string, out: string) => [
      "--checkpoint",
      ckpt,
      "--calibration-images",
      "50",
      "--held-out",
      "100",
      "--verify-images",
      "2",
      "--methods",
      "minmax,percentile:99.99",
      "--out",
      out,
    ];
    const args = parseExportArgs(argList(`${dir}/ckpt`, dir));
    const entry = await runExport(args, "test");
    const manifest = await readManifest(`${dir}/manifest.json`);
    assert.deepEqual(manifest.models, [entry]);
    assert.equal(entry.trained, true);
    assert.equal(entry.preprocessing.fit, "pad");
    assert.deepEqual(entry.training, {
      recipe: '{"name":"test"}',
      epochs: 2,
      seconds: 60,
      command: "deno task train --test",
      stages: [{
        checkpoint: `${dir}/ckpt`,
        epochs: 2,
        seconds: 60,
        command: "deno task train --test",
      }],
    });
    assert.equal(entry.sha256, await sha256Hex(await Deno.readFile(`${dir}/${entry.file}`)));
    assert.deepEqual(entry.accuracy, { float: {}, int8: {} });
    assert.equal(entry.evaluated, null);
    assert.deepEqual(Object.keys(entry.quantization.candidates), ["minmax", "percentile:99.99"]);
    assert.equal(entry.quantization.weightQmax, 64);
    assert.ok(entry.verification.floatOrtNode < 1e-3 && entry.verification.floatOrtWeb < 1e-3);

    // A quantization-aware checkpoint (train.ts --weight-qmax 3) exports its weights in -3..3.
    const q3 = await makeTestModel();
    await saveWeights(`${dir}/ckpt3`, q3.tensors, {
      ...(await loadWeights(`${dir}/ckpt`)).meta,
      weightQmax: 3,
    });
    const entry3 = await runExport(parseExportArgs(argList(`${dir}/ckpt3`, `${dir}/q3`)), "test");
    assert.equal(entry3.quantization.weightQmax, 3);
    const weights = (bytes: Uint8Array) =>
      decodeModel(bytes).graph.initializers.filter((t) => /weight\.q$/.test(t.name));
    const w3 = weights(await Deno.readFile(`${dir}/q3/${entry3.file}`));
    const w64 = weights(await Deno.readFile(`${dir}/${entry.file}`));
    assert.equal(w3.length, w64.length);
    const maxAbs = (ts: typeof w3) =>
      Math.max(...ts.map((t) => Math.max(...Array.from(t.data as Int8Array, Math.abs))));
    assert.equal(maxAbs(w3), 3);
    assert.equal(maxAbs(w64), 64);

    // eval rebuilds the float model from the recorded checkpoint and measures both precisions.
    const ds = await loadIdxDataset();
    const rows = await evaluateModel(entry, dir, ds.train, ds.test, 50);
    assert.deepEqual(rows.map((r) => r.resolution), [28, 25, 21, 14]);
    for (const r of rows) {
      assert.ok(r.float >= 0 && r.float <= 1 && r.int8 >= 0 && r.int8 <= 1);
      assert.ok(r.macs > 0);
    }
    // A changed checkpoint or a tampered file is refused by name.
    await Deno.writeFile(`${dir}/ckpt/weights.bin`, new Uint8Array(8), { append: true });
    await assert.rejects(
      () => evaluateModel(entry, dir, ds.train, ds.test, 10),
      /Cannot rebuild the float model of mobilenet_v1_a0\.25 as .*weights\.bin has sha256/,
    );
    await Deno.writeFile(`${dir}/${entry.file}`, new Uint8Array([1, 2, 3]));
    await assert.rejects(
      () => evaluateModel(entry, dir, ds.train, ds.test, 10),
      /Cannot evaluate mobilenet_v1_a0\.25 as .* has sha256 [0-9a-f]{64}, not the manifest's/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseExportArgs() needs exactly one of --checkpoint and --random-seed", () => {
  assert.throws(() => parseExportArgs([]), /exactly one of --checkpoint, --random-seed/);
  assert.throws(
    () => parseExportArgs(["--checkpoint", "a", "--random-seed", "1"]),
    /exactly one of --checkpoint, --random-seed/,
  );
  assert.throws(() => parseExportArgs(["--bogus"]), /argument --bogus as it is unknown/);
});

Deno.test("trainingStages() follows recipe.init from the first run to the exported one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = new Map([["x", { shape: [1], data: new Float32Array([1]) }]]);
    await saveWeights(`${dir}/a/model`, t, { epochs: 6, seconds: 600, command: "train a" });
    await saveWeights(`${dir}/b/model`, t, {
      epochs: 2,
      seconds: 200,
      command: "train b",
      recipe: { init: `${dir}/a/model` },
    });
    await saveWeights(`${dir}/c/model`, t, {
      epochs: 1,
      seconds: 100,
      command: "train c",
      recipe: { init: `${dir}/b/model` },
    });
    assert.deepEqual(await trainingStages(`${dir}/c/model`), [
      { checkpoint: `${dir}/a/model`, epochs: 6, seconds: 600, command: "train a" },
      { checkpoint: `${dir}/b/model`, epochs: 2, seconds: 200, command: "train b" },
      { checkpoint: `${dir}/c/model`, epochs: 1, seconds: 100, command: "train c" },
    ]);
    // A distilled stage lists its teachers' lineages before itself, shared stages once.
    await saveWeights(`${dir}/t/model`, t, { epochs: 3, seconds: 300, command: "train t" });
    await saveWeights(`${dir}/d/model`, t, {
      epochs: 1,
      seconds: 50,
      command: "train d",
      recipe: {
        init: `${dir}/b/model`,
        distill: { teachers: [`${dir}/t/model`, `${dir}/c/model`] },
      },
    });
    assert.deepEqual((await trainingStages(`${dir}/d/model`)).map((st) => st.command), [
      "train a",
      "train b",
      "train t",
      "train c",
      "train d",
    ]);
    // A stage whose folder is gone ends the lineage there.
    await Deno.remove(`${dir}/a`, { recursive: true });
    assert.equal((await trainingStages(`${dir}/c/model`)).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainingStages() lists every run a weight average started from, shared ancestors once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = new Map([["x", { shape: [1], data: new Float32Array([1]) }]]);
    const run = (name: string, epochs: number, init?: string) =>
      saveWeights(`${dir}/${name}/model`, t, {
        epochs,
        seconds: 100 * epochs,
        command: `train ${name}`,
        ...(init ? { recipe: { init } } : {}),
      });
    await run("a", 4);
    await run("b", 1, `${dir}/a/model`);
    await run("c", 2, `${dir}/a/model`);
    await run("soup", 0, `${dir}/b/model,${dir}/c/model`);
    const stages = await trainingStages(`${dir}/soup/model`);
    assert.deepEqual(stages.map((s) => s.command), ["train a", "train b", "train c", "train soup"]);
    assert.equal(stages.reduce((a, s) => a + s.epochs, 0), 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
