import assert from "node:assert/strict";
import { TINY_SPEC, tinyRun } from "./tiny.ts";
import * as tf from "@tensorflow/tfjs-core";
import { setupBackend } from "../../../model/train/backend.ts";
import { buildSpec } from "../../../model/spec.ts";
import { initWeights, paramInfos, TfMobileNet } from "../../../model/train/mobilenet.ts";
import { Rng } from "../../../model/train/rng.ts";
import { flatten } from "../../../model/train/checkpoint.ts";
import { TrainPool } from "../../../model/train/pool.ts";
import { BatchTeachers, cachedTeacherTargets, gatherRows } from "../../../model/train/distill.ts";
import {
  addSoftmaxRows,
  basePlan,
  type ImageSet,
  inputBatch,
  parseCheckpointMeta,
} from "../../../model/export/pipeline.ts";
import { parseArgs, train, type TrainOptions } from "../../../model/train/train.ts";
import { loadWeights } from "../../../model/weights.ts";
import { NO_AUGMENT } from "../../../model/train/augment.ts";
import { DEFAULT_FASHION_MNIST_DIR, loadIdxDataset, takeFirst } from "../../../model/train/data.ts";

/** Tolerance of float32 sums over a tiny model's gradients, relative to their largest magnitude. */
const GRAD_RTOL = 1e-4;

const specOpts = TINY_SPEC;

function batch(seed: number, n: number) {
  const rng = new Rng(seed);
  return {
    x: Float32Array.from({ length: n * 256 }, () => rng.normal()),
    labels: Int32Array.from({ length: n }, () => rng.int(10)),
  };
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  let scale = 0;
  for (const v of a) scale = Math.max(scale, Math.abs(v));
  assert.ok(scale > 0, `${what}: reference gradients are all zero`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(
      Math.abs(a[i]! - b[i]!) <= GRAD_RTOL * scale,
      `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`,
    );
  }
}

Deno.test("addSoftmaxRows() applies the temperature to the logits and adds scaled rows", () => {
  const out = new Float32Array(4);
  // Row 1: logits 0 and ln 3 -> 1/4, 3/4 at T = 1; row 2 at T = 2 -> 1/(1+sqrt 3), sqrt 3/(1+sqrt 3).
  addSoftmaxRows(Float32Array.of(0, Math.log(3), 0, Math.log(3)), 2, 1, out, 0.5);
  assert.deepEqual([...out].map((v) => +v.toFixed(6)), [0.125, 0.375, 0.125, 0.375]);
  const t2 = new Float32Array(2);
  addSoftmaxRows(Float32Array.of(0, Math.log(3)), 2, 2, t2);
  assert.ok(Math.abs(t2[1]! - Math.sqrt(3) / (1 + Math.sqrt(3))) < 1e-6);
  assert.throws(() => addSoftmaxRows(new Float32Array(3), 2, 1, new Float32Array(3)), RangeError);
});

Deno.test("gatherRows() picks the rows of a batch and refuses images past the targets", () => {
  const soft = Float32Array.from({ length: 8 }, (_, i) => i);
  assert.deepEqual([...gatherRows(soft, 2, [3, 0])], [6, 7, 0, 1]);
  assert.throws(() => gatherRows(soft, 2, [4]), /cover 4 images/);
});

Deno.test("the distillation loss: weight 0 is the labels' loss, the student's own softmax adds no gradient", async () => {
  await setupBackend("own");
  const spec = buildSpec(specOpts);
  const m = new TfMobileNet(spec, { fusedBn: true });
  try {
    m.setWeights(initWeights(spec, new Rng(3)));
    const { x, labels } = batch(4, 8);
    const hard = m.gradients(x, labels, 8);
    const t = 2;
    // The student's own probabilities at T (batch-statistics BN, as gradients() trains): the
    // soft term's gradient, softmax(z / T) - soft, is then zero, leaving (1 - w) x the labels'.
    const logits = tf.tidy(() => m.forward(tf.tensor4d(x, [8, 16, 16, 1]), true).dataSync());
    const own = new Float32Array(logits.length);
    addSoftmaxRows(logits as Float32Array, 10, t, own);
    const zero = m.gradients(x, labels, 8, 16, false, { soft: own, weight: 0, temperature: t });
    assert.equal(zero.loss, hard.loss);
    assert.deepEqual(zero.grads, hard.grads);
    const half = m.gradients(x, labels, 8, 16, false, { soft: own, weight: 0.5, temperature: t });
    assertClose(hard.grads.map((g) => 0.5 * g), half.grads, "w 0.5, own soft targets");
    // One-hot targets at T = 1 with weight 1: the soft term is the labels' loss itself.
    const onehot = new Float32Array(80);
    labels.forEach((l, i) => onehot[i * 10 + l] = 1);
    const same = m.gradients(x, labels, 8, 16, false, { soft: onehot, weight: 1, temperature: 1 });
    assert.ok(Math.abs(same.loss - hard.loss) < 1e-5, `${same.loss} vs ${hard.loss}`);
    assertClose(hard.grads, same.grads, "one-hot targets");
    // Other targets change the gradient (the term is not ignored).
    const uniform = new Float32Array(80).fill(0.1);
    const moved = m.gradients(x, labels, 8, 16, false, {
      soft: uniform,
      weight: 1,
      temperature: 1,
    });
    assert.ok(Math.abs(moved.loss - hard.loss) > 1e-3);
  } finally {
    m.dispose();
  }
});

Deno.test("two workers split the soft targets with their shards: same loss and gradients as one process", async () => {
  const spec = buildSpec(specOpts);
  const infos = paramInfos(spec).filter((p) => p.trainable);
  const flat = flatten(infos, initWeights(spec, new Rng(5)));
  const { x, labels } = batch(6, 8);
  const rng = new Rng(7);
  const soft = new Float32Array(80);
  addSoftmaxRows(Float32Array.from({ length: 80 }, () => 3 * rng.normal()), 10, 1, soft);
  const d = { soft, weight: 0.7, temperature: 3 };
  const local = await TrainPool.create(specOpts, 0, "own");
  const pair = await TrainPool.create(specOpts, 2, "own");
  try {
    const b = await pair.gradients(flat, x, labels, 8, 16, undefined, d);
    // Batch-statistics BN: each shard normalizes with its own 4 images, as plain data-parallel
    // training does, so compare against the in-process model run shard by shard.
    const halves = await Promise.all([0, 1].map((h) =>
      local.gradients(
        flat,
        x.slice(h * 4 * 256, (h + 1) * 4 * 256),
        labels.slice(h * 4, (h + 1) * 4),
        4,
        16,
        undefined,
        { ...d, soft: soft.slice(h * 40, (h + 1) * 40) },
      )
    ));
    assert.ok(Math.abs(b.loss - (halves[0]!.loss + halves[1]!.loss) / 2) < 1e-5);
    assertClose(
      halves[0]!.grads.map((g, i) => (g + halves[1]!.grads[i]!) / 2),
      b.grads,
      "2 workers",
    );
  } finally {
    local.close();
    pair.close();
  }
});

const tiny = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions =>
  tinyRun(out, { limitTrain: 96, ...extra });

/**
 * Runs `fn` in a temporary folder holding a tiny trained teacher (`teacher`, its `model` folder)
 * with the first 96 training images it trained on (`few`); removes the folder afterwards.
 */
async function withTinyTeacher(
  fn: (dir: string, teacher: string, few: ImageSet) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await train(tiny(`${dir}/teacher`));
    const { train: set } = await loadIdxDataset(DEFAULT_FASHION_MNIST_DIR);
    await fn(dir, `${dir}/teacher/model`, takeFirst(set, 96));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("--teachers: the soft targets are cached per teacher hash and T, and the run records them", async () => {
  await withTinyTeacher(async (dir, teacher, few) => {
    const out = `${dir}/student`;
    const o = { teachers: [teacher], weight: 0.5, temperature: 2 };
    const a = await cachedTeacherTargets(out, o, few);
    assert.equal(a.soft.length, 960);
    for (let i = 0; i < 96; i++) {
      const sum = a.soft.subarray(i * 10, i * 10 + 10).reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i} sums to ${sum}`);
    }
    // Two copies of one teacher average to that teacher; T = 1 rows are the T = 2 rows squared,
    // renormalized (softmax(z / 2) is proportional to sqrt(softmax(z))).
    const twice = await cachedTeacherTargets(
      `${dir}/twice`,
      { ...o, teachers: [teacher, teacher] },
      few,
    );
    assertClose(a.soft, twice.soft, "two copies");
    const t1 = await cachedTeacherTargets(`${dir}/t1`, { ...o, temperature: 1 }, few);
    for (let i = 0; i < 96; i++) {
      const sq = [...a.soft.subarray(i * 10, i * 10 + 10)].map((p) => p * p);
      const s = sq.reduce((u, v) => u + v, 0);
      for (let k = 0; k < 10; k++) assert.ok(Math.abs(sq[k]! / s - t1.soft[i * 10 + k]!) < 1e-5);
    }
    // The cache: a marked file is reused while the key holds, recomputed when T changes.
    const marked = new Float32Array(960).fill(0.1);
    await Deno.writeFile(`${out}/teachers.f32`, new Uint8Array(marked.buffer));
    assert.deepEqual((await cachedTeacherTargets(out, o, few)).soft, marked);
    assert.notDeepEqual(
      (await cachedTeacherTargets(out, { ...o, temperature: 3 }, few)).soft,
      marked,
    );
    // A distilled run: trains, and its meta records the teachers.
    const s = tiny(`${dir}/run`, {
      teachers: [teacher],
      distillWeight: 0.8,
      distillTemp: 2,
      maxSteps: 2,
    });
    const r = await train({ ...s, epochs: 1 });
    assert.equal(r.stepLosses.length, 2);
    assert.ok(r.stepLosses.every(Number.isFinite));
    const f32 = await Deno.stat(`${dir}/run/teachers.f32`);
    assert.equal(f32.size, 96 * 10 * 4);
    const done = tiny(`${dir}/run2`, { teachers: [teacher], distillWeight: 0.8, distillTemp: 2 });
    await train(done);
    const { meta } = await loadWeights(`${dir}/run2/model`);
    const recipe = meta.recipe as {
      distill?: { teachers: string[]; weight: number; temperature: number };
    };
    assert.deepEqual(recipe.distill?.teachers, [teacher]);
    assert.equal(recipe.distill?.weight, 0.8);
    assert.equal(recipe.distill?.temperature, 2);
  });
});

Deno.test("--distill-targets batch: the teachers' targets of a batch are the fixed targets' rows on the same images, and a run trains with them", async () => {
  await withTinyTeacher(async (dir, teacher, few) => {
    const o = { teachers: [teacher, teacher], weight: 0.5, temperature: 3 };
    const fixed = await cachedTeacherTargets(`${dir}/fixed`, o, few);
    const plan = basePlan(parseCheckpointMeta((await loadWeights(teacher)).meta));
    const bt = await BatchTeachers.load(o.teachers, 3, { ...plan, channels: 1 });
    try {
      assert.equal(bt.classes, 10);
      const idx = [5, 0, 77, 31];
      // One gray channel: the NCHW batch is the NHWC one.
      const soft = await bt.targets(inputBatch(few, idx, plan), idx.length, plan.resolution);
      const want = gatherRows(fixed.soft, 10, idx);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(soft[i]! - want[i]!) < 1e-6, `[${i}] ${soft[i]} vs ${want[i]}`);
      }
    } finally {
      await bt.close();
    }
    // A teacher whose inputs mean something else is refused, not silently misread.
    await assert.rejects(
      BatchTeachers.load([teacher], 2, { ...plan, mean: [0], channels: 1 }),
      /differs from the student's.*--distill-targets fixed/,
    );
    await assert.rejects(
      BatchTeachers.load([teacher], 2, { ...plan, channels: 3 }),
      /channels 1/,
    );
    // Without augmentation both kinds of targets are the same rows, so the training steps agree.
    const plain = { augment: NO_AUGMENT, augmentName: "none", distillWeight: 1, distillTemp: 3 };
    const viaFixed = await train(tiny(`${dir}/plain_fixed`, { teachers: [teacher], ...plain }));
    const viaBatch = await train(
      tiny(`${dir}/plain_batch`, { teachers: [teacher], distillTargets: "batch", ...plain }),
    );
    assert.equal(viaBatch.stepLosses.length, 3);
    viaFixed.stepLosses.forEach((l, i) =>
      assert.ok(
        Math.abs(l - viaBatch.stepLosses[i]!) < 1e-5,
        `step ${i}: ${l} vs ${viaBatch.stepLosses[i]}`,
      )
    );
    // A run with augmented batches: finite losses, no cache file, the recipe says where the
    // targets came from.
    const r = await train(tiny(`${dir}/run`, {
      teachers: [teacher],
      distillTargets: "batch",
      distillWeight: 0.8,
      distillTemp: 2,
    }));
    assert.equal(r.stepLosses.length, 3);
    assert.ok(r.stepLosses.every(Number.isFinite));
    await assert.rejects(Deno.stat(`${dir}/run/teachers.f32`), Deno.errors.NotFound);
    const { meta } = await loadWeights(`${dir}/run/model`);
    const recipe = meta.recipe as { distill?: { targets: string } };
    assert.match(recipe.distill?.targets ?? "", /each training batch as augmented/);
  });
});

Deno.test("parseArgs() reads --teachers, --distill-weight and --distill-temp and refuses bad values", () => {
  const o = parseArgs([
    "--teachers",
    "a/model,b/model",
    "--distill-weight",
    "0.7",
    "--distill-temp",
    "4",
    "--distill-targets",
    "batch",
  ]);
  assert.equal(o.distillTargets, "batch");
  assert.equal(parseArgs([]).distillTargets, "fixed");
  assert.throws(() => parseArgs(["--distill-targets", "augmented"]), /fixed or batch/);
  assert.deepEqual(o.teachers, ["a/model", "b/model"]);
  assert.equal(o.distillWeight, 0.7);
  assert.equal(o.distillTemp, 4);
  assert.deepEqual(parseArgs([]).teachers, []);
  assert.throws(() => parseArgs(["--distill-weight", "1.5"]), /\[0, 1\]/);
  assert.throws(() => parseArgs(["--distill-temp", "0"]), /above 0/);
  assert.throws(() => parseArgs(["--teachers", ""]), /needs teacher/);
});
