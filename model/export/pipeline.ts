/**
 * The export pipeline as functions, shared by `export.ts`, `eval.ts` and the tests:
 * checkpoint -> spec -> folded float ONNX (verified against the TypeScript reference in
 * onnxruntime-node and onnxruntime-web) -> calibration -> int8 QDQ ONNX (method chosen by
 * held-out accuracy) -> manifest entry.
 */
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { buildSpec, type ModelSpec, type StridePlan } from "../spec.ts";
import { loadWeights, type NamedTensors } from "../weights.ts";
import {
  type CalibrationBatch,
  type CalibrationMethod,
  collectStats,
  rangesFor,
} from "./calibrate.ts";
import { foldModel } from "./fold_bn.ts";
import { buildFloatModel, INPUT_NAME, OUTPUT_NAME } from "./float_graph.ts";
import { encodeModel } from "./onnx_writer.ts";
import { makeInputBatch, type Normalization } from "./preprocess.ts";
import { foldedAsTrained, quantizeModel } from "./quantize.ts";
import { referenceForward } from "./reference.ts";

/** HWC uint8 images with labels (the shape `model/train/data.ts` loads). */
export interface ImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
}

export interface InputPlan extends Normalization {
  /** Model input side. */
  resolution: number;
  /** Base resolution (beta = 1). */
  base: number;
  fit: "resize" | "pad";
}

/** Fills an NCHW batch: area resize (fit "resize") or resize by res/base then zero-pad ("pad"). */
export function inputBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  plan: InputPlan,
): Float32Array {
  const { height: h, width: w, channels: c } = set;
  if (plan.fit === "resize") {
    return makeInputBatch(set.images, h, w, c, indices, plan.resolution, plan);
  }
  // "pad": the image keeps its size relative to the base canvas (28 in 32 at beta 1).
  const r = plan.resolution;
  const inner = Math.max(1, Math.round((h * r) / plan.base));
  const innerBatch = makeInputBatch(set.images, h, w, c, indices, inner, plan);
  const out = new Float32Array(indices.length * c * r * r);
  const off = Math.floor((r - inner) / 2);
  for (let b = 0; b < indices.length; b++) {
    for (let ch = 0; ch < c; ch++) {
      const bg = -plan.mean[ch]! / plan.std[ch]!;
      const dst = (b * c + ch) * r * r;
      out.fill(bg, dst, dst + r * r);
      for (let y = 0; y < inner; y++) {
        for (let x = 0; x < inner; x++) {
          out[dst + (y + off) * r + x + off] = innerBatch[((b * c + ch) * inner + y) * inner + x]!;
        }
      }
    }
  }
  return out;
}

/** The checkpoint meta fields the exporter needs (written by model/train/train.ts). */
export interface CheckpointMeta {
  arch: string;
  alpha: number;
  stridePlan: string;
  resolution: number;
  inputChannels: number;
  classes: number;
  labels: string[];
  mean: number[];
  std: number[];
  polarity: "light-on-dark" | "natural";
  fit: "resize" | "pad";
  epochs: number;
  seconds: number;
  command: string;
  recipe: string;
  /** Quantization-aware training's weight range (`train.ts --weight-qmax`), if it had one. */
  weightQmax?: number | undefined;
}

function need<T>(
  meta: Record<string, unknown>,
  key: string,
  type: "string" | "number" | "array",
): T {
  const v = meta[key];
  const ok = type === "array"
    ? Array.isArray(v)
    : type === "string"
    ? typeof v === "string"
    : typeof v === "number";
  if (!ok) {
    throw new TypeError(
      `Cannot export as checkpoint meta.${key} must be a ${type}: current value is ${
        JSON.stringify(v)
      }`,
    );
  }
  return v as T;
}

export function parseCheckpointMeta(meta: Record<string, unknown>): CheckpointMeta {
  const recipe = meta.recipe;
  const fit = meta.fit ?? "resize";
  if (fit !== "resize" && fit !== "pad") {
    throw new TypeError(`Cannot export as meta.fit must be resize or pad: current value is ${fit}`);
  }
  const polarity = meta.polarity ?? "light-on-dark";
  if (polarity !== "light-on-dark" && polarity !== "natural") {
    throw new TypeError(
      `Cannot export as meta.polarity must be light-on-dark or natural: current value is ${polarity}`,
    );
  }
  return {
    arch: need<string>(meta, "arch", "string"),
    alpha: need<number>(meta, "alpha", "number"),
    stridePlan: need<string>(meta, "stridePlan", "string"),
    resolution: need<number>(meta, "resolution", "number"),
    inputChannels: need<number>(meta, "inputChannels", "number"),
    classes: need<number>(meta, "classes", "number"),
    labels: need<string[]>(meta, "labels", "array"),
    mean: need<number[]>(meta, "mean", "array"),
    std: need<number[]>(meta, "std", "array"),
    polarity,
    fit,
    epochs: Number(meta.epochs ?? 0),
    seconds: Number(meta.seconds ?? 0),
    command: String(meta.command ?? ""),
    recipe: typeof recipe === "string" ? recipe : JSON.stringify(recipe ?? null),
    ...(typeof meta.weightQmax === "number" ? { weightQmax: meta.weightQmax } : {}),
  };
}

/** Builds the spec a checkpoint was trained with. */
export function specFromMeta(
  m: Pick<
    CheckpointMeta,
    "arch" | "alpha" | "stridePlan" | "resolution" | "inputChannels" | "classes"
  >,
  resolution = m.resolution,
): ModelSpec {
  const plan: StridePlan = m.stridePlan.includes(",")
    ? m.stridePlan.split(",").map(Number)
    : m.stridePlan as StridePlan;
  return buildSpec({
    arch: m.arch as ModelSpec["arch"],
    alpha: m.alpha,
    resolution,
    stridePlan: plan,
    inputChannels: m.inputChannels,
    classes: m.classes,
  });
}

/** A checkpoint's own input plan: its base resolution, fit and normalization (beta 1). */
export function basePlan(
  m: Pick<CheckpointMeta, "resolution" | "fit" | "mean" | "std">,
): InputPlan {
  return { resolution: m.resolution, base: m.resolution, fit: m.fit, mean: m.mean, std: m.std };
}

/**
 * A trained checkpoint (`<run>/model`) as float ONNX in onnxruntime-node, fake-quantized as it
 * trained (as export scores it), with its spec and base input plan; the caller releases the session.
 * `threads`: its intra-op threads (default 2). `classes`: the class count of the models it is used
 * with (0: any); a checkpoint with another count is refused before its session is made.
 */
export async function checkpointFloatSession(
  dir: string,
  o: { threads?: number; classes?: number } = {},
): Promise<{
  session: ortNode.InferenceSession;
  spec: ModelSpec;
  plan: InputPlan;
}> {
  const w = await loadWeights(dir);
  const meta = parseCheckpointMeta(w.meta);
  const spec = specFromMeta(meta);
  if (o.classes && spec.classes !== o.classes) {
    throw new RangeError(
      `Cannot use ${dir} with the models before it as it has ${spec.classes} classes, not ${o.classes}`,
    );
  }
  const folded = foldedAsTrained(foldModel(spec, w.tensors), meta.weightQmax);
  const session = await nodeSession(encodeModel(buildFloatModel(spec, folded)), o.threads);
  return { session, spec, plan: basePlan(meta) };
}

/** Row-wise softmax of `[n, classes]` logits divided by `temperature`, added into `out`. */
export function addSoftmaxRows(
  logits: Float32Array,
  classes: number,
  temperature: number,
  out: Float32Array,
  scale = 1,
): void {
  if (logits.length !== out.length || logits.length % classes !== 0) {
    throw new RangeError(
      `Cannot add softmax rows as logits (${logits.length}) and out (${out.length}) must be equal multiples of ${classes}`,
    );
  }
  const row = new Float64Array(classes);
  for (let o = 0; o < logits.length; o += classes) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[o + k]! / temperature);
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += row[k] = Math.exp(logits[o + k]! / temperature - max);
    for (let k = 0; k < classes; k++) out[o + k]! += scale * row[k]! / sum;
  }
}

export function argmax(logits: Float32Array, i: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) {
    if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
  }
  return best;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) {
    throw new RangeError(
      `Cannot compare tensors as their lengths differ: ${a.length} vs ${b.length}`,
    );
  }
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Runs a model in onnxruntime-node over a whole set in batches; returns all logits. */
export async function runNode(
  session: ortNode.InferenceSession,
  set: ImageSet,
  indices: ArrayLike<number>,
  plan: InputPlan,
  classes: number,
  batch = 250,
): Promise<Float32Array> {
  const n = indices.length;
  const out = new Float32Array(n * classes);
  const r = plan.resolution;
  for (let s = 0; s < n; s += batch) {
    const idx = Array.from({ length: Math.min(batch, n - s) }, (_, i) => indices[s + i]!);
    const x = inputBatch(set, idx, plan);
    const res = await session.run({
      [INPUT_NAME]: new ortNode.Tensor("float32", x, [idx.length, set.channels, r, r]),
    });
    out.set(res[OUTPUT_NAME]!.data as Float32Array, s * classes);
  }
  return out;
}

export function accuracyOf(
  logits: Float32Array,
  labels: ArrayLike<number>,
  indices: ArrayLike<number>,
  classes: number,
): number {
  let ok = 0;
  for (let i = 0; i < indices.length; i++) {
    if (argmax(logits, i, classes) === labels[indices[i]!]) ok++;
  }
  return ok / indices.length;
}

export async function nodeSession(
  bytes: Uint8Array,
  threads = 2,
): Promise<ortNode.InferenceSession> {
  return await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: threads });
}

export async function webLogits(
  bytes: Uint8Array,
  x: Float32Array,
  shape: number[],
): Promise<Float32Array> {
  ortWeb.env.wasm.numThreads = 1;
  const s = await ortWeb.InferenceSession.create(bytes);
  try {
    const r = await s.run({ [INPUT_NAME]: new ortWeb.Tensor("float32", x, shape) });
    return r[OUTPUT_NAME]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** Deterministic shuffled sample of `count` distinct indices in [from, to). */
export function sampleIndices(count: number, from: number, to: number, seed: number): number[] {
  const idx = Array.from({ length: to - from }, (_, i) => from + i);
  let a = seed >>> 0;
  for (let i = idx.length - 1; i > 0; i--) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const j = a % (i + 1);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, count);
}

export interface ExportOptions {
  spec: ModelSpec;
  tensors: NamedTensors;
  plan: InputPlan;
  train: ImageSet;
  test: ImageSet;
  calibrationImages: number;
  heldOutImages: number;
  verifyImages: number;
  methods: CalibrationMethod[];
  /** Weight range -qmax..qmax (default `WEIGHT_QMAX`, 64): a QAT run's `weightQmax`. */
  weightQmax?: number | undefined;
  log?: (line: string) => void;
}

export interface ExportResult {
  floatBytes: Uint8Array;
  int8Bytes: Uint8Array;
  method: CalibrationMethod;
  candidates: Record<string, number>;
  verification: {
    images: number;
    floatOrtNode: number;
    floatOrtWeb: number;
    int8OrtWebVsNode: number;
  };
  /** Argmax agreement of int8 with float on the verification images. */
  verifyAgreement: number;
}

/**
 * Folds, writes, verifies, calibrates and quantizes. Calibration uses `calibrationImages`
 * training images; each method is scored on `heldOutImages` other training images; the best
 * (ties: earlier in `methods`) is kept.
 */
export async function exportModel(o: ExportOptions): Promise<ExportResult> {
  const log = o.log ?? (() => {});
  const { spec, plan } = o;
  const classes = spec.classes;
  const folded = foldModel(spec, o.tensors);
  const floatBytes = encodeModel(buildFloatModel(spec, folded));
  // A quantization-aware run's model is its weights as trained (fake-quantized): calibrate, score
  // and quantize that; the writer check against the TypeScript reference uses the raw weights.
  const trained = foldedAsTrained(folded, o.weightQmax);
  const trainedBytes = trained === folded
    ? floatBytes
    : encodeModel(buildFloatModel(spec, trained));

  // 1. Float ONNX against the TypeScript reference on real test images.
  const vIdx = Array.from({ length: o.verifyImages }, (_, i) => i);
  const vx = inputBatch(o.test, vIdx, plan);
  const shape = [vIdx.length, spec.inputChannels, plan.resolution, plan.resolution];
  const ref = referenceForward(spec, o.tensors, {
    data: vx,
    shape: shape as [number, number, number, number],
  });
  const fSession = await nodeSession(floatBytes);
  const fNode = (await fSession.run({ [INPUT_NAME]: new ortNode.Tensor("float32", vx, shape) }))[
    OUTPUT_NAME
  ]!.data as Float32Array;
  const fWeb = await webLogits(floatBytes, vx, shape);
  const verification = {
    images: vIdx.length,
    floatOrtNode: maxAbsDiff(ref, fNode),
    floatOrtWeb: maxAbsDiff(ref, fWeb),
    int8OrtWebVsNode: 0,
  };
  log(
    `float ONNX vs TypeScript reference on ${vIdx.length} test images: max abs logit diff ` +
      `onnxruntime-node ${verification.floatOrtNode.toExponential(2)}, onnxruntime-web ${
        verification.floatOrtWeb.toExponential(2)
      }`,
  );

  // 2. Calibration statistics on training images.
  const pick = sampleIndices(o.calibrationImages + o.heldOutImages, 0, o.train.n, 1234);
  const heldIdx = pick.slice(0, o.heldOutImages).sort((a, b) => a - b);
  const calOnly = pick.slice(o.heldOutImages).sort((a, b) => a - b);
  const batches: CalibrationBatch[] = [];
  for (let s = 0; s < calOnly.length; s += 100) {
    const idx = calOnly.slice(s, s + 100);
    batches.push({
      data: inputBatch(o.train, idx, plan),
      shape: [idx.length, spec.inputChannels, plan.resolution, plan.resolution],
    });
  }
  const stats = await collectStats(spec, trained, batches);
  const tSession = trained === folded ? fSession : await nodeSession(trainedBytes);
  const floatHeld = await runNode(tSession, o.train, heldIdx, plan, classes);
  const floatHeldAcc = accuracyOf(floatHeld, o.train.labels, heldIdx, classes);
  log(
    `calibrated on ${stats.images} training images; float held-out accuracy ${
      (100 * floatHeldAcc).toFixed(2)
    }% on ${heldIdx.length}`,
  );

  // 3. One int8 model per method, scored on held-out training images.
  const candidates: Record<string, number> = {};
  let best: { method: CalibrationMethod; acc: number; bytes: Uint8Array } | undefined;
  for (const method of o.methods) {
    const q = quantizeModel(spec, trained, rangesFor(stats, method), {
      calibration: `${method}, ${stats.images} training images`,
      weightQmax: o.weightQmax,
    });
    const bytes = encodeModel(q);
    const s = await nodeSession(bytes);
    const logits = await runNode(s, o.train, heldIdx, plan, classes);
    await s.release();
    const acc = accuracyOf(logits, o.train.labels, heldIdx, classes);
    candidates[method] = acc;
    log(`int8 ${method}: held-out accuracy ${(100 * acc).toFixed(2)}%`);
    if (!best || acc > best.acc) best = { method, acc, bytes };
  }
  if (!best) throw new RangeError("Cannot quantize as no calibration method was given");

  // 4. The chosen int8 model in both runtimes on the verification images.
  const qs = await nodeSession(best.bytes);
  const qNode = (await qs.run({ [INPUT_NAME]: new ortNode.Tensor("float32", vx, shape) }))[
    OUTPUT_NAME
  ]!.data as Float32Array;
  await qs.release();
  const qWeb = await webLogits(best.bytes, vx, shape);
  verification.int8OrtWebVsNode = maxAbsDiff(qNode, qWeb);
  const tNode = tSession === fSession
    ? fNode
    : (await tSession.run({ [INPUT_NAME]: new ortNode.Tensor("float32", vx, shape) }))[OUTPUT_NAME]!
      .data as Float32Array;
  let agree = 0;
  for (let i = 0; i < vIdx.length; i++) {
    if (argmax(qNode, i, classes) === argmax(tNode, i, classes)) agree++;
  }
  await fSession.release();
  if (tSession !== fSession) await tSession.release();
  log(
    `int8 (${best.method}) onnxruntime-web vs -node max abs logit diff ${
      verification.int8OrtWebVsNode.toExponential(2)
    }; int8/float argmax agreement ${agree}/${vIdx.length}`,
  );
  return {
    floatBytes,
    int8Bytes: best.bytes,
    method: best.method,
    candidates,
    verification,
    verifyAgreement: agree / vIdx.length,
  };
}
