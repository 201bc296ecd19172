/**
 * `deno task train`: trains a MobileNet V1 built from `model/spec.ts` with TensorFlow.js on the
 * wasm backend, data-parallel over Deno Workers, with checkpoints every N steps and every epoch.
 *
 * @example
 * deno task train --alpha 0.25 --plan imagenet_stem1 --resolution 28 --epochs 3 \
 *   --out model/train/runs/v1_a025 --resume
 *
 * Outputs in `--out`: `checkpoint/` (weights + optimizer + loop state, for `--resume`),
 * `model/` (the latest evaluated weights with re-estimated BN statistics and the meta the
 * exporter needs: mean, std, polarity, labels, arch, alpha, stride plan, resolution, accuracy per
 * epoch, command, recipe) and `history.jsonl` (one line per epoch).
 */
import {
  buildSpec,
  type ModelSpec,
  type SpecOptions,
  STRIDE_PLANS,
  type StridePlan,
} from "../spec.ts";
import { initDirs, loadWeights, type NamedTensors, saveWeights } from "../weights.ts";
import { resizeArea } from "../../kernels/image/resize.ts";
import {
  type AugmentOptions,
  type BatchOptions,
  type FitMode,
  LIGHT_AUGMENT,
  makeBatch,
  NO_AUGMENT,
  SEED_AUGMENT,
} from "./augment.ts";
// Types only: distill.ts (and onnxruntime-node) loads when a run has teachers.
import type { BatchTeachers, TargetSource } from "./distill.ts";
import {
  checkpointPath,
  finishedEpochs,
  flatten,
  loadCheckpoint,
  saveCheckpoint,
  unflatten,
} from "./checkpoint.ts";
import {
  channelStats,
  type DataSplits,
  DEFAULT_FASHION_MNIST_DIR,
  loadCifarDataset,
  loadFolderDataset,
  loadIdxDataset,
  takeFirst,
} from "./data.ts";
import { GRAD_KERNELS, type GradKernels } from "./backend.ts";
import { bnStatsFromSums, type BnSums, initWeights, paramInfos } from "./mobilenet.ts";
import { DEFAULT_RECIPE, Optimizer, type RecipeOptions, schedule, SEED_RECIPE } from "./optim.ts";
import { TrainPool } from "./pool.ts";
import { Rng } from "./rng.ts";

export type DatasetKind = "fashion-mnist" | "cifar" | "folder";

export interface TrainOptions {
  out: string;
  dataset: DatasetKind;
  data: string;
  alpha: number;
  plan: StridePlan;
  /** Input side; defaults to the dataset's. */
  resolution?: number;
  /**
   * Train-time resolutions (multi-resolution training): each step draws one (seeded, resumable)
   * and the batch is made at the base resolution then area-resized to it, as the server does.
   * Empty: only the base resolution (single-resolution training).
   */
  resolutions: number[];
  /**
   * Start from this weights folder (another run's `model/`): fine-tuning. Several, comma-separated:
   * start from the mean of their weights (weight averaging of fine-tunes that share a start, a
   * "model soup"). Empty: random init.
   */
  init: string;
  /**
   * Frozen-BN training: BN normalizes with moving statistics (re-estimated on the resolution mix
   * every `bnEvery` steps) instead of batch statistics, so the weights learn to serve every
   * resolution with the one set of statistics the exported model has.
   */
  frozenBn: boolean;
  bnEvery: number;
  /**
   * Quantization-aware training: weights fake-quantized to -weightQmax..weightQmax in every
   * forward pass (`TfMobileNet`), recorded in the meta so `deno task export` quantizes to the
   * same range. 0: float training (the export's default 7-bit range).
   */
  weightQmax: number;
  /**
   * Knowledge distillation (model/train/distill.ts): teacher checkpoints (`<run>/model`; none:
   * labels only), the soft-target term's share of the loss and its temperature.
   */
  teachers: string[];
  distillWeight: number;
  distillTemp: number;
  /** Soft targets once on the un-augmented images (`fixed`) or per augmented batch (`batch`). */
  distillTargets: TargetSource;
  fit: FitMode;
  /** Channels to decode folder datasets to (1 gray, 3 RGB). */
  channels: number;
  epochs: number;
  batch: number;
  seed: number;
  workers: number;
  kernels: GradKernels;
  resume: boolean;
  /** Checkpoint every this many steps (0: only at epoch ends). */
  ckptEvery: number;
  /** Progress lines per epoch. */
  progressLines: number;
  bnBatches: number;
  bnBatchSize: number;
  evalBatch: number;
  /**
   * Multi-resolution runs evaluate every resolution only every this many epochs and at the last
   * one (other epochs: the base resolution alone); 1 = every epoch.
   */
  evalEvery: number;
  limitTrain: number;
  limitTest: number;
  /** Stop after this many steps in this invocation (0: no limit); for tests and benchmarks. */
  maxSteps: number;
  /**
   * Do not train: re-estimate BN statistics for the checkpoint's weights, evaluate them on the
   * test set and write `model/` (with `meta.snapshot` saying where in its epoch the run stood).
   */
  snapshot: boolean;
  augment: AugmentOptions;
  augmentName: string;
  recipe: RecipeOptions;
  recipeName: string;
  command: string;
  quiet: boolean;
}

export const DEFAULT_OPTIONS: TrainOptions = {
  out: "model/train/runs/dev",
  dataset: "fashion-mnist",
  data: DEFAULT_FASHION_MNIST_DIR,
  alpha: 0.25,
  plan: "imagenet_stem1",
  fit: "pad",
  resolutions: [],
  init: "",
  frozenBn: false,
  bnEvery: 200,
  weightQmax: 0,
  teachers: [],
  distillWeight: 0.5,
  distillTemp: 2,
  distillTargets: "fixed",
  channels: 1,
  epochs: 3,
  batch: 64,
  seed: 1,
  workers: 2,
  kernels: "composed",
  resume: false,
  ckptEvery: 200,
  progressLines: 20,
  bnBatches: 20,
  bnBatchSize: 256,
  evalBatch: 500,
  evalEvery: 1,
  limitTrain: 0,
  limitTest: 0,
  maxSteps: 0,
  snapshot: false,
  augment: LIGHT_AUGMENT,
  augmentName: "light",
  recipe: DEFAULT_RECIPE,
  recipeName: "default",
  command: "",
  quiet: false,
};

export interface EpochRecord {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number;
  lr: number;
  phase: string;
  imagesPerSecond: number;
  seconds: number;
  /** Test accuracy at each train-time resolution (multi-resolution runs), keyed by side. */
  testAccuracyByResolution?: Record<string, number>;
}

interface LoopState {
  epoch: number;
  step: number;
  augRng: number[];
  /** State of the train-time resolution draw before the next batch (multi-resolution runs). */
  resRng?: number[];
  seconds: number;
  history: EpochRecord[];
  /** Running sums of the current epoch (so a resumed epoch reports the whole epoch). */
  epochLoss: number;
  epochCorrect: number;
  epochSeen: number;
}

async function loadData(o: TrainOptions): Promise<DataSplits> {
  switch (o.dataset) {
    case "fashion-mnist":
      return await loadIdxDataset(o.data);
    case "cifar":
      return await loadCifarDataset(o.data);
    case "folder": {
      const { decodeForTraining } = await import("./decode.ts");
      return await loadFolderDataset(o.data, o.channels, decodeForTraining);
    }
  }
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(sec).padStart(2, "0")}s`;
}

/**
 * `makeBatch` at side `r`: at the base resolution (`bopts.resolution`) it is `makeBatch` itself;
 * otherwise the batch is made (and augmented) at the base resolution into `scratch`, then each image
 * is area-averaged to `r x r` with the server's resize (`kernels/image/resize.ts`). The resize is
 * linear with weights summing to 1, so resizing normalized values equals normalizing resized pixels.
 */
export function makeBatchAt(
  d: DataSplits["train"],
  indices: ArrayLike<number>,
  bopts: BatchOptions,
  r: number,
  rng: Rng,
  x: Float32Array,
  labels: Int32Array,
  scratch: Float32Array,
): void {
  const R = bopts.resolution;
  if (r === R) {
    makeBatch(d, indices, bopts, rng, x, labels);
    return;
  }
  const C = d.channels;
  makeBatch(d, indices, bopts, rng, scratch, labels);
  const inPx = R * R * C;
  const outPx = r * r * C;
  for (let b = 0; b < indices.length; b++) {
    resizeArea(
      scratch.subarray(b * inPx, (b + 1) * inPx),
      R,
      R,
      C,
      r,
      r,
      x.subarray(b * outPx, (b + 1) * outPx),
    );
  }
}

/** Fills the spec options and normalization constants the run and its checkpoint record. */
export function specOptionsFor(o: TrainOptions, d: DataSplits): SpecOptions {
  return {
    arch: "mobilenet_v1",
    alpha: o.alpha,
    resolution: o.resolution ?? d.train.height,
    inputChannels: d.train.channels,
    classes: d.train.labelNames.length,
    stridePlan: o.plan,
  };
}

/** Evaluates accuracy on a dataset with the given weights. */
async function evaluate(
  pool: TrainPool,
  flat: Float32Array,
  stats: NamedTensors,
  d: DataSplits["test"],
  bopts: BatchOptions,
  batch: number,
  resolution: number = bopts.resolution,
): Promise<number> {
  const px = resolution * resolution * d.channels;
  const x = new Float32Array(batch * px);
  const scratch = new Float32Array(batch * bopts.resolution * bopts.resolution * d.channels);
  const labels = new Int32Array(batch);
  const rng = new Rng(0);
  let correct = 0;
  for (let s = 0; s < d.n; s += batch) {
    const n = Math.min(batch, d.n - s);
    const idx = Array.from({ length: n }, (_, i) => s + i);
    makeBatchAt(d, idx, { ...bopts, augment: NO_AUGMENT }, resolution, rng, x, labels, scratch);
    const pred = await pool.predict(flat, stats, x.subarray(0, n * px), n, resolution);
    for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
  }
  return correct / d.n;
}

/**
 * Re-estimates BN moving statistics on un-augmented training batches. With `resolutions`
 * (multi-resolution runs), batch b is made at `resolutions[b % k]`: one set of statistics for a
 * mix of the resolutions, since the exported model has one BN per layer for every beta.
 */
async function reestimateBn(
  pool: TrainPool,
  flat: Float32Array,
  d: DataSplits["train"],
  bopts: BatchOptions,
  batches: number,
  batchSize: number,
  seed: number,
  resolutions: readonly number[] = [],
): Promise<NamedTensors> {
  const res = resolutions.length > 0 ? resolutions : [bopts.resolution];
  const maxR = Math.max(bopts.resolution, ...res);
  const x = new Float32Array(batchSize * maxR * maxR * d.channels);
  const scratch = new Float32Array(batchSize * bopts.resolution * bopts.resolution * d.channels);
  const labels = new Int32Array(batchSize);
  const rng = new Rng(seed);
  const perm = rng.permutation(d.n);
  const sums: BnSums = { batches: 0, sums: new Map() };
  const total = Math.min(batches, Math.floor(d.n / batchSize) || 1);
  for (let b = 0; b < total; b++) {
    const n = Math.min(batchSize, d.n - b * batchSize);
    const r = res[b % res.length]!;
    makeBatchAt(
      d,
      perm.subarray(b * batchSize, b * batchSize + n),
      { ...bopts, augment: NO_AUGMENT },
      r,
      rng,
      x,
      labels,
      scratch,
    );
    await pool.collectBn(flat, x.subarray(0, n * r * r * d.channels), n, sums, r);
  }
  return bnStatsFromSums(sums);
}

export interface TrainResult {
  spec: ModelSpec;
  history: EpochRecord[];
  /** Losses of each step run in this invocation. */
  stepLosses: number[];
  /** Input side of each step run in this invocation. */
  stepResolutions: number[];
  weights: NamedTensors;
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const log = (s: string) => {
    if (!o.quiet) console.log(s);
  };
  if (o.epochs === 0 && !o.snapshot && !o.init) {
    // Checked before the data loads and the workers start.
    throw new RangeError(`Cannot run --epochs 0 without --init, as it evaluates --init's weights`);
  }
  const data = await loadData(o);
  if (o.limitTrain > 0) data.train = takeFirst(data.train, o.limitTrain);
  if (o.limitTest > 0) data.test = takeFirst(data.test, o.limitTest);
  const specOpts = specOptionsFor(o, data);
  const spec = buildSpec(specOpts);
  const infos = paramInfos(spec);
  const trainable = infos.filter((p) => p.trainable);
  const { mean, std } = channelStats(data.train);
  const bopts: BatchOptions = {
    resolution: spec.resolution,
    mean,
    std,
    fit: o.fit,
    augment: o.augment,
  };
  const multiRes = o.resolutions.length > 0;
  for (const r of o.resolutions) {
    if (!Number.isInteger(r) || r < 1 || r > 4 * spec.resolution) {
      throw new RangeError(
        `Cannot train at resolution ${r} as --resolutions must hold integers in [1, ${
          4 * spec.resolution
        }] (base ${spec.resolution}): current value is ${o.resolutions.join(",")}`,
      );
    }
  }
  /** Resolutions evaluated and used for BN re-estimation (the base alone when not multi-res). */
  const evalRes = multiRes ? o.resolutions : [spec.resolution];

  let weights: NamedTensors;
  let opt: Optimizer;
  let state: LoopState;
  const ckptDir = `${o.out}/checkpoint`;
  const loaded = o.resume ? await loadCheckpoint(ckptDir, trainable) : undefined;
  if (loaded) {
    weights = loaded.weights;
    opt = loaded.opt;
    state = loaded.meta.state as LoopState;
    log(`resumed ${ckptDir} at epoch ${state.epoch + 1} step ${state.step}`);
  } else {
    weights = initWeights(spec, new Rng(o.seed));
    if (o.init) {
      // Fine-tuning: every tensor of the spec comes from the other run(s) (shapes checked); from
      // several, their element-wise mean.
      const dirs = initDirs(o.init);
      const srcs = [];
      for (const d of dirs) srcs.push({ dir: d, tensors: (await loadWeights(d)).tensors });
      for (const p of infos) {
        const data = new Float32Array(p.size);
        for (const { dir, tensors } of srcs) {
          const t = tensors.get(p.name);
          if (!t || t.data.length !== p.size) {
            throw new TypeError(
              `Cannot initialize from ${dir} as ${p.name} must hold ${p.size} values [${p.shape}]: ` +
                `current ${t ? `[${t.shape}]` : "missing"}`,
            );
          }
          for (let i = 0; i < p.size; i++) data[i] = data[i]! + t.data[i]! / srcs.length;
        }
        weights.set(p.name, { shape: [...p.shape], data });
      }
      log(
        dirs.length > 1
          ? `initialized from the mean of ${dirs.length} runs' weights: ${dirs.join(", ")}`
          : `initialized from ${o.init}`,
      );
    }
    opt = new Optimizer(trainable.reduce((a, p) => a + p.size, 0));
    state = {
      epoch: 0,
      step: 0,
      augRng: new Rng(o.seed + 1).state(),
      seconds: 0,
      history: [],
      epochLoss: 0,
      epochCorrect: 0,
      epochSeen: 0,
    };
  }
  if (multiRes && !state.resRng) state.resRng = new Rng(o.seed + 2).state();
  const flat = flatten(trainable, weights);
  unflatten(trainable, flat, weights);
  const stats = (): NamedTensors => {
    const s: NamedTensors = new Map();
    for (const p of infos) if (!p.trainable) s.set(p.name, weights.get(p.name)!);
    return s;
  };

  const meta = (): Record<string, unknown> => ({
    arch: spec.arch,
    alpha: spec.alpha,
    stridePlan: spec.stridePlan,
    strides: spec.strides,
    resolution: spec.resolution,
    inputChannels: spec.inputChannels,
    classes: spec.classes,
    labels: data.train.labelNames,
    dataset: data.name,
    mean,
    std,
    polarity: data.name === "fashion-mnist" ? "light-on-dark" : "natural",
    fit: o.fit,
    ...(o.weightQmax > 0 ? { weightQmax: o.weightQmax } : {}),
    epochs: state.history.length,
    epochBudget: o.epochs,
    seconds: Math.round(state.seconds),
    command: o.command,
    recipe: {
      name: o.recipeName,
      ...o.recipe,
      batch: o.batch,
      seed: o.seed,
      augment: o.augmentName,
      ...o.augment,
      ...(multiRes
        ? {
          resolutions: o.resolutions,
          resolutionDraw: "one per step, uniform, seeded (state.resRng)",
          resize: "batch made at the base resolution, then kernels/image/resize.ts resizeArea",
          bnReestimation: `mixed: batch b at resolutions[b % ${o.resolutions.length}]`,
        }
        : {}),
      ...(o.init ? { init: o.init } : {}),
      ...(o.teachers.length > 0
        ? {
          distill: {
            teachers: o.teachers,
            weight: o.distillWeight,
            temperature: o.distillTemp,
            targets: o.distillTargets === "batch"
              ? "mean softmax(logits / T) of the teachers on each training batch as augmented, at the base resolution"
              : "mean softmax(logits / T) of the teachers on the un-augmented training images",
          },
        }
        : {}),
      ...(o.frozenBn
        ? {
          bn:
            `frozen: moving statistics re-estimated (mix of resolutions) every ${o.bnEvery} steps`,
        }
        : {}),
    },
    testAccuracy: state.history.map((h) => h.testAccuracy),
    history: state.history,
    kernels: o.kernels,
    workers: o.workers,
    trainImages: data.train.n,
    testImages: data.test.n,
    state,
  });

  await Deno.mkdir(o.out, { recursive: true });
  const pool = await TrainPool.create(
    specOpts,
    o.workers,
    o.kernels,
    o.weightQmax > 0 ? o.weightQmax : undefined,
  );
  const maxR = Math.max(spec.resolution, ...o.resolutions);
  const px = maxR * maxR * spec.inputChannels;
  const basePx = spec.resolution * spec.resolution * spec.inputChannels;
  const stepsPerEpoch = Math.floor(data.train.n / o.batch) || 1;
  const stepLosses: number[] = [];
  /** Resolution of each step run in this invocation. */
  const stepResolutions: number[] = [];
  const bufs = [0, 1].map(() => ({
    x: new Float32Array(o.batch * px),
    labels: new Int32Array(o.batch),
    r: spec.resolution,
    idx: new Int32Array(o.batch),
    /** The batch teachers' soft targets for this batch (`--distill-targets batch`). */
    soft: undefined as Promise<Float32Array> | undefined,
  }));
  const scratch = new Float32Array(multiRes ? o.batch * basePx : 0);
  log(
    `train ${spec.arch} alpha ${spec.alpha} plan ${spec.stridePlan} ${spec.resolution}x${spec.resolution}x${spec.inputChannels} ` +
      `classes ${spec.classes}: ${flat.length} trainable params, ${data.train.n} train / ${data.test.n} test images, ` +
      `batch ${o.batch}, ${stepsPerEpoch} steps/epoch, ${o.workers} workers, ${o.kernels} kernels` +
      (multiRes ? `, resolutions ${o.resolutions.join(",")}` : ""),
  );
  let stepsRun = 0;
  /** Re-estimates the BN moving statistics for the current weights on batches at `sides`. */
  const setBn = async (bnSeed: number, sides: number[]) => {
    const bn = await reestimateBn(
      pool,
      flat,
      data.train,
      bopts,
      o.bnBatches,
      o.bnBatchSize,
      bnSeed,
      sides,
    );
    for (const [k, v] of bn) weights.set(k, v);
  };
  /**
   * Re-estimates the BN statistics for the current weights, then tests the base side and, when
   * `allSides` (multi-resolution runs), every train-time side (`byRes`, empty otherwise).
   */
  const reestimateAndTest = async (bnSeed: number, allSides: boolean) => {
    await setBn(bnSeed, multiRes ? o.resolutions : []);
    const acc = await evaluate(pool, flat, stats(), data.test, bopts, o.evalBatch);
    const byRes: Record<string, number> = {};
    if (multiRes && allSides) {
      for (const r of evalRes) {
        byRes[String(r)] = r === spec.resolution
          ? acc
          : await evaluate(pool, flat, stats(), data.test, bopts, o.evalBatch, r);
      }
    }
    return { acc, byRes };
  };
  /** The log's per-side accuracies ("" when none were tested). */
  const perSide = (byRes: Record<string, number>) =>
    Object.keys(byRes).length
      ? `; test acc per resolution ${
        Object.entries(byRes).map(([r, a]) => `${r}: ${(100 * a).toFixed(2)}%`).join(", ")
      } (BN on a mix of them)`
      : "";
  /**
   * No training: re-estimates BN for the current weights, tests them, writes OUT/model with
   * `meta[key]` (`fields` plus the accuracies) and logs `what` with the result.
   */
  const writeTested = async (
    key: "snapshot" | "average",
    fields: Record<string, unknown>,
    bnSeed: number,
    allSides: boolean,
    what: string,
  ) => {
    const t0 = performance.now();
    const { acc, byRes } = await reestimateAndTest(bnSeed, allSides);
    const m = meta();
    delete m.state;
    m[key] = {
      ...fields,
      testAccuracy: acc,
      ...(Object.keys(byRes).length ? { testAccuracyByResolution: byRes } : {}),
      testImages: data.test.n,
    };
    await saveWeights(`${o.out}/model`, weights, m);
    log(
      `${what}: test acc ${(100 * acc).toFixed(2)}% ` +
        `(BN re-estimated; ${((performance.now() - t0) / 1000).toFixed(1)} s)` +
        perSide(byRes) + ` -> ${o.out}/model`,
    );
    return { spec, history: state.history, stepLosses, stepResolutions, weights };
  };
  if (o.snapshot || o.epochs === 0) {
    try {
      if (o.snapshot) {
        if (!loaded) {
          throw new TypeError(`Cannot snapshot ${o.out} as it has no checkpoint to read`);
        }
        return await writeTested(
          "snapshot",
          { epoch: state.epoch, step: state.step, stepsPerEpoch },
          o.seed + state.epoch,
          false,
          `snapshot of epoch ${state.epoch + 1} at step ${state.step}/${stepsPerEpoch}`,
        );
      }
      // --epochs 0: --init's weights (one run's, or the mean of several), tested at every side.
      const sources = initDirs(o.init);
      return await writeTested(
        "average",
        { sources },
        o.seed,
        true,
        `${sources.length} runs' weights averaged`,
      );
    } finally {
      pool.close();
    }
  }
  let batchTeachers: BatchTeachers | undefined;
  try {
    // Knowledge distillation: the teachers' soft targets for every training image, made (or reused)
    // before the first step, each step sending the rows of its batch (`fixed`); or the teachers run
    // on each batch as augmented, at the base resolution, while the workers compute the step before
    // (`batch`).
    const distill = o.teachers.length > 0 ? await import("./distill.ts") : undefined;
    batchTeachers = distill && o.distillTargets === "batch"
      ? await distill.BatchTeachers.load(o.teachers, o.distillTemp, {
        mean: bopts.mean,
        std: bopts.std,
        fit: bopts.fit,
        channels: spec.inputChannels,
      })
      : undefined;
    const targets = distill && !batchTeachers
      ? await distill.cachedTeacherTargets(
        o.out,
        { teachers: o.teachers, weight: o.distillWeight, temperature: o.distillTemp },
        data.train,
        log,
      )
      : undefined;
    const teacherClasses = (batchTeachers ?? targets)?.classes;
    if (teacherClasses !== undefined && teacherClasses !== spec.classes) {
      throw new RangeError(
        `Cannot distill as the teachers have ${teacherClasses} classes and the model ${spec.classes}`,
      );
    }
    while (state.epoch < o.epochs) {
      const { phase, lr } = schedule(o.recipe, state.epoch, o.epochs);
      const perm = new Rng(o.seed * 7919 + state.epoch + 17).permutation(data.train.n);
      const augRng = new Rng(state.augRng);
      const resRng = multiRes ? new Rng(state.resRng!) : undefined;
      const every = Math.max(1, Math.ceil(stepsPerEpoch / o.progressLines));
      const fill = (step: number, buf: typeof bufs[number]) => {
        buf.r = resRng ? o.resolutions[resRng.int(o.resolutions.length)]! : spec.resolution;
        buf.idx.set(perm.subarray(step * o.batch, (step + 1) * o.batch));
        makeBatchAt(
          data.train,
          perm.subarray(step * o.batch, (step + 1) * o.batch),
          bopts,
          buf.r,
          augRng,
          buf.x,
          buf.labels,
          scratch,
        );
        if (batchTeachers) {
          // `targets` copies its input before its first await, so the next fill may reuse scratch.
          buf.soft = batchTeachers.targets(
            buf.r === spec.resolution ? buf.x : scratch,
            o.batch,
            spec.resolution,
          );
          buf.soft.catch(() => {}); // awaited (and thrown) by its step; not unhandled if never run
        }
      };
      let t0 = performance.now();
      let imgsSince = 0;
      let lastSave = state.step;
      if (state.step < stepsPerEpoch) fill(state.step, bufs[state.step % 2]!);
      while (state.step < stepsPerEpoch) {
        if (o.maxSteps > 0 && stepsRun >= o.maxSteps) break;
        if (o.frozenBn && state.step % o.bnEvery === 0) {
          // The statistics between re-estimations travel in the checkpoint (exact resume).
          await setBn(o.seed + 100003 * state.epoch + state.step, evalRes);
        }
        const cur = bufs[state.step % 2]!;
        const curPx = cur.r * cur.r * spec.inputChannels;
        const pending = pool.gradients(
          flat,
          cur.x.subarray(0, o.batch * curPx),
          cur.labels,
          o.batch,
          cur.r,
          o.frozenBn ? stats() : undefined,
          targets || batchTeachers
            ? {
              soft: targets
                ? distill!.gatherRows(targets.soft, spec.classes, cur.idx)
                : await cur.soft!,
              weight: o.distillWeight,
              temperature: o.distillTemp,
            }
            : undefined,
        );
        stepResolutions.push(cur.r);
        // Prepare the next batch while the workers compute this one.
        const nextStep = state.step + 1;
        let nextAugState: number[] | undefined;
        let nextResState: number[] | undefined;
        if (nextStep < stepsPerEpoch) {
          // Checkpoints store the RNG states before the next batch is drawn.
          nextAugState = augRng.state();
          nextResState = resRng?.state();
          fill(nextStep, bufs[nextStep % 2]!);
        }
        const r = await pending;
        opt.step(flat, r.grads, o.recipe, phase, lr);
        stepsRun++;
        stepLosses.push(r.loss);
        state.step++;
        state.epochLoss += r.loss * o.batch;
        state.epochCorrect += r.correct;
        state.epochSeen += o.batch;
        state.augRng = nextAugState ?? augRng.state();
        if (resRng) state.resRng = nextResState ?? resRng.state();
        imgsSince += o.batch;
        const now = performance.now();
        if (state.step % every === 0 || state.step === stepsPerEpoch) {
          const dt = (now - t0) / 1000;
          state.seconds += dt;
          const ips = imgsSince / dt;
          const left = (stepsPerEpoch - state.step) * o.batch / ips;
          const frac = state.step / stepsPerEpoch;
          const bar = "#".repeat(Math.round(frac * 20)).padEnd(20, ".");
          log(
            `epoch ${state.epoch + 1}/${o.epochs} [${bar}] ${
              (frac * 100).toFixed(0).padStart(3)
            }% ` +
              `step ${state.step}/${stepsPerEpoch} loss ${
                (state.epochLoss / state.epochSeen).toFixed(4)
              } ` +
              `acc ${(100 * state.epochCorrect / state.epochSeen).toFixed(2)}% ${
                ips.toFixed(1)
              } img/s ` +
              `lr ${lr.toExponential(2)} ${phase} ETA ${fmtTime(left)}`,
          );
          t0 = now;
          imgsSince = 0;
        }
        if (o.ckptEvery > 0 && state.step - lastSave >= o.ckptEvery && state.step < stepsPerEpoch) {
          const dt = (performance.now() - t0) / 1000;
          state.seconds += dt;
          t0 = performance.now();
          await saveCheckpoint(ckptDir, weights, trainable, opt, meta());
          lastSave = state.step;
        }
      }
      if (state.step < stepsPerEpoch) {
        // Stopped by maxSteps: keep the position.
        await saveCheckpoint(ckptDir, weights, trainable, opt, meta());
        break;
      }
      // Epoch end: re-estimate BN statistics, evaluate, checkpoint.
      const tEval = performance.now();
      const allRes = (state.epoch + 1) % o.evalEvery === 0 || state.epoch + 1 === o.epochs;
      const { acc, byRes } = await reestimateAndTest(o.seed + state.epoch, allRes);
      const rec: EpochRecord = {
        epoch: state.epoch + 1,
        loss: state.epochLoss / state.epochSeen,
        trainAccuracy: state.epochCorrect / state.epochSeen,
        testAccuracy: acc,
        lr,
        phase,
        imagesPerSecond: 0,
        seconds: 0,
        ...(Object.keys(byRes).length ? { testAccuracyByResolution: byRes } : {}),
      };
      state.history.push(rec);
      const totalSeconds = state.seconds;
      rec.seconds = Math.round(totalSeconds);
      rec.imagesPerSecond = Math.round(
        10 * stepsPerEpoch * o.batch * state.history.length / Math.max(totalSeconds, 1e-9),
      ) / 10;
      log(
        `epoch ${rec.epoch}/${o.epochs} done: loss ${rec.loss.toFixed(4)} train acc ${
          (100 * rec.trainAccuracy).toFixed(2)
        }% ` +
          `test acc ${(100 * acc).toFixed(2)}% (BN re-estimated on ${
            Math.min(o.bnBatches, Math.floor(data.train.n / o.bnBatchSize) || 1)
          } batches; ` +
          `eval ${((performance.now() - tEval) / 1000).toFixed(1)} s) training time ${
            fmtTime(totalSeconds)
          }` +
          perSide(byRes),
      );
      state.epoch++;
      state.step = 0;
      state.epochLoss = 0;
      state.epochCorrect = 0;
      state.epochSeen = 0;
      await saveCheckpoint(ckptDir, weights, trainable, opt, meta());
      const m = meta();
      delete m.state;
      await saveWeights(`${o.out}/model`, weights, m);
      await Deno.writeTextFile(`${o.out}/history.jsonl`, JSON.stringify(rec) + "\n", {
        append: true,
      });
    }
  } finally {
    pool.close();
    await batchTeachers?.close();
  }
  return { spec, history: state.history, stepLosses, stepResolutions, weights };
}

/**
 * What `--resume` finds in `o.out`, checked before any data loads: `finished` when its
 * `history.jsonl` already records `--epochs` epochs (with `model/` written), so a queue that walks
 * its finished runs returns at once and writes nothing. Throws when the folder records fewer
 * epochs than asked but holds no checkpoint (the large runs' checkpoints are not committed, so a
 * fresh clone has none): training would start again from epoch 1 and overwrite the committed
 * `model/`. Without `--resume`, with `--snapshot` or with `--epochs 0` it always says train.
 */
export async function resumeStatus(
  o: Pick<TrainOptions, "out" | "resume" | "snapshot" | "epochs">,
): Promise<{ finished: boolean; message: string }> {
  if (!o.resume || o.snapshot || o.epochs === 0) return { finished: false, message: "" };
  const done = await finishedEpochs(o.out);
  if (done >= o.epochs) {
    return {
      finished: true,
      message: `${o.out} is finished: its history.jsonl records epoch ${done} of the ${o.epochs} ` +
        `asked and model/ holds its weights; nothing to train`,
    };
  }
  if (done > 0 && (await checkpointPath(`${o.out}/checkpoint`)) === undefined) {
    throw new TypeError(
      `Cannot resume ${o.out} as its checkpoint/ is missing while history.jsonl records ` +
        `${done} of the ${o.epochs} epochs asked (checkpoints of large runs are not committed): ` +
        `pass --epochs ${done} to accept it as finished, or train further into a new --out ` +
        `with --init ${o.out}/model`,
    );
  }
  return { finished: false, message: "" };
}

// --- command line ---------------------------------------------------------------------------

const USAGE = `deno task train [options]
  --out DIR            run folder (default model/train/runs/dev)
  --dataset KIND       fashion-mnist | cifar | folder (default fashion-mnist)
  --data DIR           dataset directory (default ${DEFAULT_FASHION_MNIST_DIR})
  --alpha A            width multiplier (default 0.25)
  --plan P             ${
  STRIDE_PLANS.join(" | ")
} | comma-separated strides (default imagenet_stem1)
  --resolution R       input side (default: the dataset's)
  --resolutions LIST   train-time sides, e.g. 14,18,21,24,28: one drawn per step (seeded), the batch
                       area-resized to it as the server does; BN re-estimated on a mix; test accuracy
                       recorded per side (default: only --resolution)
  --init DIR[,DIR..]   start from these weights (another run's model/ folder): fine-tuning; from
                       several, from the mean of their weights (a model soup); with --epochs 0
                       only re-estimate BN, test and write OUT/model
  --frozen-bn          train with BN in inference mode (moving statistics re-estimated on the
                       resolution mix every --bn-every steps, default 200): one BN set for all sides
  --weight-qmax Q      quantization-aware training: weights fake-quantized to -Q..Q (1..64) in
                       every forward pass; the export then quantizes to the same range
  --teachers DIR[,DIR..]  knowledge distillation from these checkpoints' mean softmax(logits / T)
                       (made once per run, cached as OUT/teachers.f32); --distill-weight W its
                       share of the loss (default 0.5), --distill-temp T (default 2);
                       --distill-targets batch: the teachers run on every training batch as
                       augmented instead (slower; no cache)
  --fit pad|resize     how images reach the resolution (default pad)
  --channels 1|3       channels of folder datasets (default 1)
  --epochs N --batch B --seed S --workers W (default 3, 64, 1, 2)
  --kernels K          ${GRAD_KERNELS.join(" | ")} (gradient kernels)
  --resume             continue from OUT/checkpoint (a run whose history.jsonl already records
                       --epochs epochs is left as it is)
  --status             print what --resume would do (train, or finished: ...) and exit
  --ckpt-every N       checkpoint every N steps (default 200)
  --augment NAME       light | seed | none; then --hflip P --vflip P --rotate DEG --translate F
                       --perspective P --erase P --pad-crop PX override single values;
                       --resample P: the photo round trip (bilinear upscale 2x-40x, area
                       downscale back: the blur a phone photo gets on its way to the model)
  --recipe NAME        default (Adam 1e-2, x0.5 every 2 epochs) | seed (Adam 0.01 x0.9/5, SGD last 5)
  --lr --lr-step --lr-gamma --sgd-epochs --sgd-lr --weight-decay
  --snapshot           no training: re-estimate BN, evaluate and write OUT/model from the checkpoint
  --eval-every N        multi-resolution runs: test every resolution every N epochs and at the
                       last (default 1); other epochs test the base resolution only
  --bn-batches N --progress-lines N --limit-train N --limit-test N --max-steps N --quiet`;

export function parseArgs(args: string[]): TrainOptions {
  const o: TrainOptions = {
    ...DEFAULT_OPTIONS,
    augment: { ...LIGHT_AUGMENT },
    recipe: { ...DEFAULT_RECIPE },
  };
  const augOverrides: Partial<AugmentOptions> = {};
  const recipeOverrides: Partial<RecipeOptions> = {};
  const num = (k: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) {
      throw new RangeError(`Cannot parse ${k} as it must be a number: current value is ${v}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const k = args[i]!;
    const v = () => args[++i];
    switch (k) {
      case "--out":
        o.out = v()!;
        break;
      case "--dataset": {
        const d = v();
        if (d !== "fashion-mnist" && d !== "cifar" && d !== "folder") {
          throw new RangeError(
            `Cannot parse --dataset as it must be one of fashion-mnist, cifar, folder: current value is ${d}`,
          );
        }
        o.dataset = d;
        break;
      }
      case "--data":
        o.data = v()!;
        break;
      case "--alpha":
        o.alpha = num(k, v());
        break;
      case "--plan": {
        const p = v()!;
        o.plan = /^[12](,[12])*$/.test(p) ? p.split(",").map(Number) : p as StridePlan;
        break;
      }
      case "--resolution":
        o.resolution = num(k, v());
        break;
      case "--resolutions": {
        const list = v();
        o.resolutions = (list ?? "").split(",").map((t) => num(k, t.trim()));
        break;
      }
      case "--frozen-bn":
        o.frozenBn = true;
        break;
      case "--bn-every":
        o.bnEvery = num(k, v());
        break;
      case "--init":
        o.init = v() ?? "";
        if (!o.init) throw new RangeError(`Cannot parse --init as it needs a weights folder`);
        break;
      case "--fit": {
        const f = v();
        if (f !== "pad" && f !== "resize") {
          throw new RangeError(
            `Cannot parse --fit as it must be pad or resize: current value is ${f}`,
          );
        }
        o.fit = f;
        break;
      }
      case "--channels":
        o.channels = num(k, v());
        break;
      case "--epochs":
        o.epochs = num(k, v());
        break;
      case "--batch":
        o.batch = num(k, v());
        break;
      case "--seed":
        o.seed = num(k, v());
        break;
      case "--workers":
        o.workers = num(k, v());
        break;
      case "--kernels": {
        const kk = v() as GradKernels;
        if (!GRAD_KERNELS.includes(kk)) {
          throw new RangeError(
            `Cannot parse --kernels as it must be one of ${
              GRAD_KERNELS.join(", ")
            }: current value is ${kk}`,
          );
        }
        o.kernels = kk;
        break;
      }
      case "--resume":
        o.resume = true;
        break;
      case "--ckpt-every":
        o.ckptEvery = num(k, v());
        break;
      case "--eval-every":
        o.evalEvery = num(k, v());
        if (!Number.isInteger(o.evalEvery) || o.evalEvery < 1) {
          throw new RangeError(
            `--eval-every must be a positive integer (epochs): current value is ${o.evalEvery}`,
          );
        }
        break;
      case "--bn-batches":
        o.bnBatches = num(k, v());
        break;
      case "--progress-lines":
        o.progressLines = num(k, v());
        break;
      case "--limit-train":
        o.limitTrain = num(k, v());
        break;
      case "--limit-test":
        o.limitTest = num(k, v());
        break;
      case "--snapshot":
        o.snapshot = true;
        break;
      case "--max-steps":
        o.maxSteps = num(k, v());
        break;
      case "--quiet":
        o.quiet = true;
        break;
      case "--augment": {
        const a = v();
        const presets: Record<string, AugmentOptions> = {
          light: LIGHT_AUGMENT,
          seed: SEED_AUGMENT,
          none: NO_AUGMENT,
        };
        if (!a || !presets[a]) {
          throw new RangeError(
            `Cannot parse --augment as it must be one of light, seed, none: current value is ${a}`,
          );
        }
        o.augment = { ...presets[a]! };
        o.augmentName = a;
        break;
      }
      case "--hflip":
        augOverrides.hflip = num(k, v());
        break;
      case "--vflip":
        augOverrides.vflip = num(k, v());
        break;
      case "--rotate":
        augOverrides.rotate = num(k, v());
        break;
      case "--translate":
        augOverrides.translate = num(k, v());
        break;
      case "--perspective":
        augOverrides.perspective = num(k, v());
        break;
      case "--erase":
        augOverrides.erase = num(k, v());
        break;
      case "--pad-crop":
        augOverrides.padCrop = num(k, v());
        break;
      case "--resample":
        augOverrides.resample = num(k, v());
        break;
      case "--weight-qmax": {
        const q = num(k, v());
        if (!Number.isInteger(q) || q < 1 || q > 64) {
          throw new RangeError(
            `Cannot parse --weight-qmax as it must be an integer in 1..64 (the int8 engine's 7-bit range): current value is ${q}`,
          );
        }
        o.weightQmax = q;
        break;
      }
      case "--recipe": {
        const r = v();
        if (r !== "default" && r !== "seed") {
          throw new RangeError(
            `Cannot parse --recipe as it must be default or seed: current value is ${r}`,
          );
        }
        o.recipe = { ...(r === "seed" ? SEED_RECIPE : DEFAULT_RECIPE) };
        o.recipeName = r;
        break;
      }
      case "--lr":
        recipeOverrides.lr = num(k, v());
        break;
      case "--lr-step":
        recipeOverrides.lrStep = num(k, v());
        break;
      case "--lr-gamma":
        recipeOverrides.lrGamma = num(k, v());
        break;
      case "--sgd-epochs":
        recipeOverrides.sgdEpochs = num(k, v());
        break;
      case "--sgd-lr":
        recipeOverrides.sgdLr = num(k, v());
        break;
      case "--weight-decay":
        recipeOverrides.weightDecay = num(k, v());
        break;
      case "--teachers":
        o.teachers = (v() ?? "").split(",").filter((t) => t.length > 0);
        if (o.teachers.length === 0) {
          throw new RangeError(`Cannot parse --teachers as it needs teacher weights folders`);
        }
        break;
      case "--distill-weight":
        o.distillWeight = num(k, v());
        if (!(o.distillWeight >= 0 && o.distillWeight <= 1)) {
          throw new RangeError(
            `Cannot parse --distill-weight as it must lie in [0, 1]: current value is ${o.distillWeight}`,
          );
        }
        break;
      case "--distill-targets": {
        const t = v();
        if (t !== "fixed" && t !== "batch") {
          throw new RangeError(
            `Cannot parse --distill-targets as it must be fixed or batch: current value is ${t}`,
          );
        }
        o.distillTargets = t;
        break;
      }
      case "--distill-temp":
        o.distillTemp = num(k, v());
        if (!(o.distillTemp > 0)) {
          throw new RangeError(
            `Cannot parse --distill-temp as it must be above 0: current value is ${o.distillTemp}`,
          );
        }
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new RangeError(`Cannot parse arguments as ${k} is unknown:\n${USAGE}`);
    }
  }
  Object.assign(o.augment, augOverrides);
  Object.assign(o.recipe, recipeOverrides);
  if (!Number.isInteger(o.batch) || o.batch < 1) {
    throw new RangeError(
      `Cannot train as --batch must be a positive integer: current value is ${o.batch}`,
    );
  }
  if (!Number.isInteger(o.bnEvery) || o.bnEvery < 1) {
    throw new RangeError(
      `Cannot train as --bn-every must be a positive integer: current value is ${o.bnEvery}`,
    );
  }
  if (!Number.isInteger(o.workers) || o.workers < 0) {
    throw new RangeError(
      `Cannot train as --workers must be an integer >= 0: current value is ${o.workers}`,
    );
  }
  return o;
}

if (import.meta.main) {
  // --status (command line only): print what --resume would do and exit (the queue's check).
  const statusOnly = Deno.args.includes("--status");
  const args = Deno.args.filter((a) => a !== "--status");
  const o = parseArgs(args);
  const status = await resumeStatus(o);
  if (statusOnly) {
    console.log(status.finished ? `finished: ${status.message}` : "train");
  } else if (status.finished) {
    console.log(status.message);
  } else {
    o.command = ["deno task train", ...args].join(" ");
    await Deno.mkdir(o.out, { recursive: true });
    await Deno.writeTextFile(`${o.out}/command.txt`, o.command + "\n", { append: true });
    await train(o);
  }
}
