/**
 * Untrained stand-in checkpoints, for shipping loadable files before trained weights exist:
 * seeded random weights (`random_weights.ts`), BN statistics re-estimated on 64 training images,
 * and a ridge-regression classifier head fitted on 2000 training images' pooled features.
 * Everything is deterministic in the seed, so eval can rebuild the same float model.
 */
import * as ort from "onnxruntime-node";
import { channelStats, type Dataset } from "../train/data.ts";
import { encodeWeights, type NamedTensors } from "../weights.ts";
import { foldModel } from "./fold_bn.ts";
import { buildFloatModel, INPUT_NAME } from "./float_graph.ts";
import { sha256Hex } from "./manifest.ts";
import { encodeModel } from "./onnx_writer.ts";
import { type CheckpointMeta, type ImageSet, inputBatch, specFromMeta } from "./pipeline.ts";
import { fitHead, randomWeights, reestimateBatchNorm } from "./random_weights.ts";

export interface StandInOptions {
  alpha: number;
  plan: string;
  resolution: number;
  seed: number;
}

export const STAND_IN_PREFIX = "random:";

/** `random:seed=1,alpha=0.25,plan=imagenet_stem1,resolution=28` */
export function standInSource(o: StandInOptions): string {
  return `${STAND_IN_PREFIX}seed=${o.seed},alpha=${o.alpha},plan=${o.plan},resolution=${o.resolution}`;
}

export function parseStandInSource(s: string): StandInOptions {
  const kv = Object.fromEntries(
    s.slice(STAND_IN_PREFIX.length).split(",").map((p) => p.split("=") as [string, string]),
  );
  const o = {
    seed: Number(kv.seed),
    alpha: Number(kv.alpha),
    plan: String(kv.plan),
    resolution: Number(kv.resolution),
  };
  if (![o.seed, o.alpha, o.resolution].every(Number.isFinite)) {
    throw new TypeError(
      `Cannot read stand-in source ${s} as seed, alpha and resolution must be numbers`,
    );
  }
  return o;
}

export async function standInWeights(
  o: StandInOptions,
  train: ImageSet,
  labels: string[],
): Promise<{ meta: CheckpointMeta; tensors: NamedTensors; source: string; weightsSha256: string }> {
  const { mean, std } = channelStats({ ...train, labelNames: labels } as Dataset);
  const meta: CheckpointMeta = {
    arch: "mobilenet_v1",
    alpha: o.alpha,
    stridePlan: o.plan,
    resolution: o.resolution,
    inputChannels: train.channels,
    classes: labels.length,
    labels,
    mean,
    std,
    polarity: "light-on-dark",
    fit: "resize",
    epochs: 0,
    seconds: 0,
    command: "none: untrained stand-in",
    recipe: "untrained: random weights, BN re-estimated, ridge-fitted head",
  };
  const spec = specFromMeta(meta);
  const plan = { resolution: o.resolution, base: o.resolution, fit: meta.fit, mean, std };
  const tensors = randomWeights(spec, o.seed);
  const r = o.resolution;
  const c = train.channels;
  const bnIdx = Array.from({ length: 64 }, (_, i) => i);
  reestimateBatchNorm(spec, tensors, {
    data: inputBatch(train, bnIdx, plan),
    shape: [64, c, r, r],
  });
  const session = await ort.InferenceSession.create(
    encodeModel(buildFloatModel(spec, foldModel(spec, tensors), { extraOutputs: ["pool.out"] })),
    { intraOpNumThreads: 1 }, // one thread: the same features, bit for bit, on every run
  );
  const n = 2000;
  const feats: Float32Array[] = [];
  for (let s = 0; s < n; s += 250) {
    const idx = Array.from({ length: 250 }, (_, i) => 1000 + s + i);
    const out = await session.run({
      [INPUT_NAME]: new ort.Tensor("float32", inputBatch(train, idx, plan), [250, c, r, r]),
    });
    feats.push(out["pool.out"]!.data as Float32Array);
  }
  await session.release();
  const d = feats[0]!.length / 250;
  const all = new Float32Array(n * d);
  feats.forEach((f, i) => all.set(f, i * 250 * d));
  fitHead(tensors, "fc", all, train.labels.subarray(1000, 1000 + n), labels.length, 1e-3);
  return {
    meta,
    tensors,
    source: standInSource(o),
    weightsSha256: await sha256Hex(encodeWeights(tensors).bin),
  };
}
