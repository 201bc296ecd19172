import { DEFAULT_OPTIONS, type TrainOptions } from "../../../model/train/train.ts";

/**
 * Options of a tiny training run for tests: in-process (no workers), own gradient kernels, 320
 * training and 64 test images, batch 32, one epoch, BN re-estimated on one batch, no checkpoints
 * between epoch ends, quiet; `extra` overrides any of them.
 */
export const tinyRun = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  ...DEFAULT_OPTIONS,
  out,
  workers: 0,
  kernels: "own",
  batch: 32,
  epochs: 1,
  limitTrain: 320,
  limitTest: 64,
  bnBatches: 1,
  bnBatchSize: 64,
  ckptEvery: 0,
  quiet: true,
  ...extra,
});

/** A tiny alpha 0.25 network at 16x16 (gradient tests on random inputs). */
export const TINY_SPEC = {
  alpha: 0.25,
  resolution: 16,
  inputChannels: 1,
  classes: 10,
  stridePlan: "imagenet_stem1" as const,
};
