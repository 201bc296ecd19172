import assert from "node:assert/strict";
import { tinyRun } from "./tiny.ts";
import { loadWeights } from "../../../model/weights.ts";
import {
  DEFAULT_OPTIONS,
  type EpochRecord,
  makeBatchAt,
  parseArgs,
  train,
  type TrainOptions,
} from "../../../model/train/train.ts";
import { NO_AUGMENT } from "../../../model/train/augment.ts";
import { loadIdxDataset, takeFirst } from "../../../model/train/data.ts";
import { makeInputBatch } from "../../../model/export/preprocess.ts";
import { Rng } from "../../../model/train/rng.ts";

const RES = [14, 21, 28];

const tiny = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions =>
  tinyRun(out, { bnBatches: 3, resolutions: RES, ...extra });

Deno.test("parseArgs reads --resolutions and --init; the default keeps single-resolution training", () => {
  const o = parseArgs(["--resolutions", "14,18,21,24,28", "--init", "runs/x/model"]);
  assert.deepEqual(o.resolutions, [14, 18, 21, 24, 28]);
  assert.equal(o.init, "runs/x/model");
  const d = parseArgs([]);
  assert.deepEqual(d.resolutions, []);
  assert.equal(d.init, "");
});

Deno.test("makeBatchAt below the base resolution equals the server's area resize then normalization", async () => {
  const d = takeFirst((await loadIdxDataset(DEFAULT_OPTIONS.data)).test, 4);
  const norm = { mean: [0.3], std: [0.35] };
  const bopts = { resolution: 28, ...norm, fit: "pad" as const, augment: NO_AUGMENT };
  const x = new Float32Array(4 * 18 * 18);
  makeBatchAt(
    d,
    [0, 1, 2, 3],
    bopts,
    18,
    new Rng(0),
    x,
    new Int32Array(4),
    new Float32Array(4 * 784),
  );
  // One channel: NCHW (server) and NHWC (trainer) layouts coincide.
  const ref = makeInputBatch(d.images, 28, 28, 1, [0, 1, 2, 3], 18, norm);
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i]! - ref[i]!));
  assert.ok(max < 1e-4, `max difference ${max}`);
});

Deno.test("multi-resolution steps run at several sides, lower the loss and record accuracy per side", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const o = tiny(dir, {
      limitTrain: 384,
      augment: { ...DEFAULT_OPTIONS.augment, hflip: 0, padCrop: 0 },
    });
    o.recipe = { ...o.recipe, lr: 1e-2 };
    const r = await train(o);
    assert.equal(r.stepLosses.length, 12);
    assert.ok(new Set(r.stepResolutions).size >= 2, `sides drawn: ${r.stepResolutions}`);
    for (const s of r.stepResolutions) assert.ok(RES.includes(s), `side ${s}`);
    const first = (r.stepLosses[0]! + r.stepLosses[1]! + r.stepLosses[2]!) / 3;
    const last = (r.stepLosses[9]! + r.stepLosses[10]! + r.stepLosses[11]!) / 3;
    assert.ok(last < first - 0.1, `loss should fall: first ${first}, last ${last}`);
    const rec = r.history[0]!;
    assert.deepEqual(Object.keys(rec.testAccuracyByResolution ?? {}).sort(), ["14", "21", "28"]);
    assert.equal(rec.testAccuracyByResolution!["28"], rec.testAccuracy);
    const { meta } = await loadWeights(`${dir}/model`);
    const recipe = meta.recipe as Record<string, unknown>;
    assert.deepEqual(recipe.resolutions, RES);
    assert.match(String(recipe.bnReestimation), /mixed/);
    assert.ok((meta.history as EpochRecord[])[0]!.testAccuracyByResolution);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--eval-every N tests every side every N epochs and at the last, the base side in between", async () => {
  assert.equal(parseArgs(["--eval-every", "3"]).evalEvery, 3);
  assert.equal(parseArgs([]).evalEvery, 1);
  assert.throws(() => parseArgs(["--eval-every", "0"]), /--eval-every must be a positive integer/);
  const dir = await Deno.makeTempDir();
  try {
    const r = await train(tiny(dir, { limitTrain: 64, epochs: 3, evalEvery: 2 }));
    const sides = r.history.map((h) => Object.keys(h.testAccuracyByResolution ?? {}).sort());
    assert.deepEqual(sides, [[], ["14", "21", "28"], ["14", "21", "28"]]);
    for (const h of r.history) assert.ok(h.testAccuracy >= 0 && h.testAccuracy <= 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a resumed multi-resolution run draws the same sides and ends with the same weights", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    const ra = await train(tiny(a, { maxSteps: 6 }));
    const rb1 = await train(tiny(b, { maxSteps: 3 }));
    const mid = await loadWeights(`${b}/checkpoint`);
    assert.ok(Array.isArray((mid.meta.state as { resRng?: number[] }).resRng));
    const rb2 = await train(tiny(b, { maxSteps: 3, resume: true }));
    assert.deepEqual([...rb1.stepResolutions, ...rb2.stepResolutions], ra.stepResolutions);
    const wa = await loadWeights(`${a}/checkpoint`);
    const wb = await loadWeights(`${b}/checkpoint`);
    for (const [name, t] of wa.tensors) assert.deepEqual(wb.tensors.get(name)!.data, t.data, name);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("--init starts from another run's weights and records it in the meta", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    await train(tiny(a, { limitTrain: 64, resolutions: [] }));
    const src = await loadWeights(`${a}/model`);
    // maxSteps 0 would train a whole epoch: 1 step at lr 0 keeps the weights.
    const o = tiny(b, { init: `${a}/model`, maxSteps: 1 });
    o.recipe = { ...o.recipe, lr: 0 };
    await train(o);
    const ck = await loadWeights(`${b}/checkpoint`);
    const k = "conv0/kernel";
    const name = src.tensors.has(k) ? k : [...src.tensors.keys()][0]!;
    assert.deepEqual(ck.tensors.get(name)!.data, src.tensors.get(name)!.data, name);
    assert.equal((ck.meta.recipe as { init?: string }).init, `${a}/model`);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("--init A,B with --epochs 0 writes the mean of both runs' weights, tested at every side", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  const c = await Deno.makeTempDir();
  try {
    await train(tiny(a, { limitTrain: 64 }));
    await train(tiny(b, { limitTrain: 64, seed: 2 }));
    const r = await train(tiny(c, { init: `${a}/model,${b}/model`, epochs: 0 }));
    assert.equal(r.history.length, 0);
    const [wa, wb, wc] = await Promise.all([a, b, c].map((d) => loadWeights(`${d}/model`)));
    let checked = 0;
    for (const [name, t] of wc!.tensors) {
      if (name.endsWith("moving_mean") || name.endsWith("moving_variance")) continue;
      const x = wa!.tensors.get(name)!.data;
      const y = wb!.tensors.get(name)!.data;
      for (let i = 0; i < t.data.length; i++) {
        assert.ok(Math.abs(t.data[i]! - (x[i]! + y[i]!) / 2) < 1e-6, `${name}[${i}]`);
      }
      checked++;
    }
    assert.ok(checked > 10, `${checked} tensors compared`);
    const avg = wc!.meta.average as {
      sources: string[];
      testAccuracy: number;
      testAccuracyByResolution: Record<string, number>;
    };
    assert.deepEqual(avg.sources, [`${a}/model`, `${b}/model`]);
    assert.deepEqual(Object.keys(avg.testAccuracyByResolution).sort(), ["14", "21", "28"]);
    assert.equal(avg.testAccuracyByResolution["28"], avg.testAccuracy);
    assert.equal(wc!.meta.epochs, 0);
    // BN statistics are re-estimated for the mean, not averaged.
    const mm = [...wc!.tensors.keys()].find((k) => k.endsWith("moving_mean"))!;
    const avgMean = wc!.tensors.get(mm)!.data.map((_, i) =>
      (wa!.tensors.get(mm)!.data[i]! + wb!.tensors.get(mm)!.data[i]!) / 2
    );
    assert.notDeepEqual(wc!.tensors.get(mm)!.data, avgMean);
    await assert.rejects(() => train(tiny(c, { epochs: 0 })), /--epochs 0 without --init/);
  } finally {
    for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("--frozen-bn trains through fixed moving statistics, resumes exactly and records the recipe", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    const extra = { frozenBn: true, bnEvery: 2, bnBatches: 2, bnBatchSize: 32 };
    const ra = await train(tiny(a, { ...extra, maxSteps: 5 }));
    assert.ok(ra.stepLosses.every(Number.isFinite));
    await train(tiny(b, { ...extra, maxSteps: 3 }));
    await train(tiny(b, { ...extra, maxSteps: 2, resume: true }));
    const wa = await loadWeights(`${a}/checkpoint`);
    const wb = await loadWeights(`${b}/checkpoint`);
    // Trainable weights and the moving statistics the steps used (re-estimated at steps 0, 2, 4).
    for (const [name, t] of wa.tensors) assert.deepEqual(wb.tensors.get(name)!.data, t.data, name);
    assert.match(String((wa.meta.recipe as { bn?: string }).bn), /frozen/);
    const p = parseArgs(["--frozen-bn", "--bn-every", "50"]);
    assert.equal(p.frozenBn, true);
    assert.equal(p.bnEvery, 50);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("frozen-BN steps lower the loss at the smallest side with one set of statistics", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const o = tiny(dir, {
      frozenBn: true,
      bnEvery: 4,
      bnBatches: 2,
      bnBatchSize: 64,
      limitTrain: 384,
      resolutions: [14, 28],
      augment: { ...DEFAULT_OPTIONS.augment, hflip: 0, padCrop: 0 },
    });
    o.recipe = { ...o.recipe, lr: 1e-2 };
    const r = await train(o);
    const first = (r.stepLosses[0]! + r.stepLosses[1]! + r.stepLosses[2]!) / 3;
    const last = (r.stepLosses[9]! + r.stepLosses[10]! + r.stepLosses[11]!) / 3;
    assert.ok(last < first - 0.1, `loss should fall: first ${first}, last ${last}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
