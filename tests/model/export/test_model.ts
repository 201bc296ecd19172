/**
 * Shared test subject: a deterministic MobileNet V1 (alpha 0.25, stride-1 stem, 28x28x1, 10
 * classes) with seeded random weights whose BN statistics are re-estimated on 16 real
 * Fashion-MNIST training images, plus real test images. Built once per test file in ~1 s.
 */
import { channelStats, type Dataset, loadIdxDataset } from "../../../model/train/data.ts";
import { buildSpec, type ModelSpec } from "../../../model/spec.ts";
import type { NamedTensors } from "../../../model/weights.ts";
import { inputBatch, type InputPlan } from "../../../model/export/pipeline.ts";
import { randomWeights, reestimateBatchNorm } from "../../../model/export/random_weights.ts";

export interface TestModel {
  spec: ModelSpec;
  tensors: NamedTensors;
  plan: InputPlan;
  train: Dataset;
  test: Dataset;
}

export async function makeTestModel(seed = 7): Promise<TestModel> {
  const ds = await loadIdxDataset();
  const { mean, std } = channelStats(ds.test);
  const spec = buildSpec({
    alpha: 0.25,
    resolution: 28,
    stridePlan: "imagenet_stem1",
    inputChannels: 1,
    classes: 10,
  });
  const plan: InputPlan = { resolution: 28, base: 28, fit: "resize", mean, std };
  const tensors = randomWeights(spec, seed);
  const idx = Array.from({ length: 16 }, (_, i) => i);
  reestimateBatchNorm(spec, tensors, {
    data: inputBatch(ds.train, idx, plan),
    shape: [16, 1, 28, 28],
  });
  return { spec, tensors, plan, train: ds.train, test: ds.test };
}
