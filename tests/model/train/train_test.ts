import assert from "node:assert/strict";
import { TINY_SPEC, tinyRun } from "./tiny.ts";
import { loadWeights } from "../../../model/weights.ts";
import { DEFAULT_OPTIONS, parseArgs, resumeStatus, train } from "../../../model/train/train.ts";
import { TrainPool } from "../../../model/train/pool.ts";
import { buildSpec } from "../../../model/spec.ts";
import { initWeights, paramInfos } from "../../../model/train/mobilenet.ts";
import { finishedEpochs, flatten } from "../../../model/train/checkpoint.ts";
import { Rng } from "../../../model/train/rng.ts";

const tiny = tinyRun;

Deno.test("train() lowers the loss within a few Adam steps on a tiny Fashion-MNIST subset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // lr 1e-2 and no augmentation: a quick, clear descent on 320 images.
    const o = tiny(dir, {
      maxSteps: 10,
      augment: { ...DEFAULT_OPTIONS.augment, hflip: 0, padCrop: 0 },
    });
    o.recipe = { ...o.recipe, lr: 1e-2 };
    const r = await train(o);
    assert.equal(r.stepLosses.length, 10);
    const first = (r.stepLosses[0]! + r.stepLosses[1]!) / 2;
    const last = (r.stepLosses[8]! + r.stepLosses[9]!) / 2;
    assert.ok(last < first - 0.1, `loss should fall: first ${first}, last ${last}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run resumed from its checkpoint ends with the same weights as an uninterrupted run", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    await train(tiny(a, { maxSteps: 4 }));
    await train(tiny(b, { maxSteps: 2 }));
    const mid = await loadWeights(`${b}/checkpoint`);
    assert.equal((mid.meta.state as { step: number }).step, 2);
    await train(tiny(b, { maxSteps: 2, resume: true }));
    const wa = await loadWeights(`${a}/checkpoint`);
    const wb = await loadWeights(`${b}/checkpoint`);
    assert.equal((wb.meta.state as { step: number }).step, 4);
    for (const [name, t] of wa.tensors) assert.deepEqual(wb.tensors.get(name)!.data, t.data, name);
    const oa = await loadWeights(`${a}/checkpoint/optimizer`);
    const ob = await loadWeights(`${b}/checkpoint/optimizer`);
    assert.equal(ob.meta.t, 4);
    for (const [name, t] of oa.tensors) assert.deepEqual(ob.tensors.get(name)!.data, t.data, name);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("an epoch end writes model/ with re-estimated BN statistics and the exporter's meta", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const o = tiny(dir, { limitTrain: 64, command: "deno task train (test)" });
    const r = await train(o);
    assert.equal(r.history.length, 1);
    const { tensors, meta } = await loadWeights(`${dir}/model`);
    for (
      const k of [
        "mean",
        "std",
        "labels",
        "arch",
        "alpha",
        "stridePlan",
        "resolution",
        "inputChannels",
        "classes",
        "epochs",
        "seconds",
        "command",
        "recipe",
        "testAccuracy",
      ]
    ) {
      assert.ok(k in meta, `meta.${k}`);
    }
    assert.equal(meta.polarity, "light-on-dark");
    assert.equal(meta.state, undefined);
    const mv = tensors.get("conv1/bn/moving_variance")!.data;
    assert.ok(mv.some((v) => Math.abs(v - 1) > 1e-3), "moving variance was re-estimated");
    const spec = buildSpec({
      alpha: 0.25,
      resolution: 28,
      inputChannels: 1,
      classes: 10,
      stridePlan: "imagenet_stem1",
    });
    assert.deepEqual([...tensors.keys()].sort(), paramInfos(spec).map((p) => p.name).sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker computes the same gradients as the in-process model", async () => {
  const specOpts = TINY_SPEC;
  const spec = buildSpec(specOpts);
  const infos = paramInfos(spec).filter((p) => p.trainable);
  const flat = flatten(infos, initWeights(spec, new Rng(9)));
  const rng = new Rng(10);
  const x = Float32Array.from({ length: 8 * 256 }, () => rng.normal());
  const labels = Int32Array.from({ length: 8 }, () => rng.int(10));
  const local = await TrainPool.create(specOpts, 0, "own");
  const worker = await TrainPool.create(specOpts, 1, "own");
  try {
    const a = await local.gradients(flat, x, labels, 8);
    const b = await worker.gradients(flat, x, labels, 8);
    assert.equal(a.loss, b.loss);
    assert.deepEqual(a.grads, b.grads);
  } finally {
    local.close();
    worker.close();
  }
});

Deno.test("parseArgs() reads the recipe and augmentation options and refuses unknown ones", () => {
  const o = parseArgs([
    "--alpha",
    "0.5",
    "--plan",
    "1,1,2,1,2,1,2,1,1,1,1,1,2,1",
    "--augment",
    "seed",
    "--hflip",
    "0.5",
    "--recipe",
    "seed",
  ]);
  assert.equal(o.alpha, 0.5);
  assert.deepEqual(o.plan, [1, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]);
  assert.equal(o.augment.rotate, 10);
  assert.equal(o.augment.hflip, 0.5);
  assert.equal(o.recipe.sgdEpochs, 5);
  assert.throws(() => parseArgs(["--bogus"]), RangeError);
  assert.throws(() => parseArgs(["--kernels", "gpu"]), /composed, own/);
});

Deno.test("--snapshot writes model/ from a mid-epoch checkpoint without training", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await train(tiny(dir, { maxSteps: 2 }));
    const before = await loadWeights(`${dir}/checkpoint`);
    const r = await train(tiny(dir, { resume: true, snapshot: true }));
    assert.equal(r.stepLosses.length, 0);
    const { tensors, meta } = await loadWeights(`${dir}/model`);
    const snap = meta.snapshot as {
      epoch: number;
      step: number;
      testAccuracy: number;
      testImages: number;
    };
    assert.deepEqual([snap.epoch, snap.step, snap.testImages], [0, 2, 64]);
    assert.ok(snap.testAccuracy >= 0 && snap.testAccuracy <= 1);
    assert.deepEqual(tensors.get("conv1/kernel")!.data, before.tensors.get("conv1/kernel")!.data);
    await assert.rejects(
      train(tiny(await Deno.makeTempDir(), { snapshot: true, resume: true })),
      /no checkpoint/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--resume leaves a finished run alone and refuses to restart one whose checkpoint is gone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ask = (epochs: number, extra: { resume?: boolean; snapshot?: boolean } = {}) =>
      resumeStatus({ out: dir, resume: true, snapshot: false, epochs, ...extra });
    assert.equal(await finishedEpochs(dir), 0);
    assert.equal((await ask(1)).finished, false, "an empty folder trains");
    await train(tiny(dir, { epochs: 1 }));
    assert.equal(await finishedEpochs(dir), 1);
    const done = await ask(1);
    assert.equal(done.finished, true);
    assert.match(done.message, /records epoch 1 of the 1 asked/);
    // More epochs asked: the checkpoint continues the run.
    assert.equal((await ask(2)).finished, false);
    // Neither a run without --resume nor a snapshot is skipped.
    assert.equal((await ask(1, { resume: false })).finished, false);
    assert.equal((await ask(1, { snapshot: true })).finished, false);
    // As on a fresh clone, where the large runs' checkpoints are not committed.
    await Deno.remove(`${dir}/checkpoint`, { recursive: true });
    assert.equal((await ask(1)).finished, true);
    await assert.rejects(ask(2), /checkpoint\/ is missing while history\.jsonl records 1 of the 2/);
    // history.jsonl counts only with model/ written.
    await Deno.remove(`${dir}/model`, { recursive: true });
    assert.equal(await finishedEpochs(dir), 0);
    assert.equal((await ask(1)).finished, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
