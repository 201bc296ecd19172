/**
 * Training throughput (img/s) per alpha and stride plan, stock-composed gradient kernels against
 * the project's own, data-parallel over the same number of workers, measured in one process with
 * the two implementations' steps alternating so both see the same machine load.
 *
 * deno run -A bench/train_bench.ts [--workers 2] [--batch 64] [--steps 3] [--warmup 1]
 *   [--configs 0.25:cifar:32,0.25:imagenet_stem1:28,...] [--only own]
 *
 * `--warmup N` untimed steps per implementation first (default 1). V8 compiles wasm functions
 * with its baseline compiler and tiers hot ones up in the background, so a fresh worker reaches
 * its steady speed only after ~10 steps (own kernels, alpha 0.25 cifar 32: the first steps take
 * 2-4x longer); `--warmup 10` measures the steady state a training run sees.
 *
 * Do not run it while a training run is going: both would share the two cores.
 */
import { buildSpec, type StridePlan } from "../model/spec.ts";
import { type GradKernels } from "../model/train/backend.ts";
import { flatten } from "../model/train/checkpoint.ts";
import { initWeights, paramInfos } from "../model/train/mobilenet.ts";
import { TrainPool } from "../model/train/pool.ts";
import { Rng } from "../model/train/rng.ts";

function arg(name: string, def: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1]! : def;
}

const workers = Number(arg("workers", "2"));
const batch = Number(arg("batch", "64"));
const steps = Number(arg("steps", "3"));
const warmup = Number(arg("warmup", "1"));
const only = arg("only", "");
const configs = arg(
  "configs",
  "0.25:cifar:32,0.25:imagenet_stem1:28,0.5:imagenet_stem1:28,1:imagenet_stem1:28",
)
  .split(",").map((c) => {
    const [a, p, r] = c.split(":");
    return { alpha: Number(a), plan: p as StridePlan, resolution: Number(r) };
  });
const kinds: GradKernels[] = only ? [only as GradKernels] : ["composed", "own"];

console.log(
  `# Training throughput, batch ${batch}, ${workers} workers, median of ${steps} steps after ${warmup} warm-up\n`,
);
console.log(
  `| alpha | plan | input | MACs/img | ${kinds.map((k) => `${k} img/s`).join(" | ")} |${
    kinds.length > 1 ? " own / composed |" : ""
  }`,
);
console.log(
  `|---|---|---|---|${kinds.map(() => "---|").join("")}${kinds.length > 1 ? "---|" : ""}`,
);
for (const c of configs) {
  const specOpts = {
    alpha: c.alpha,
    resolution: c.resolution,
    inputChannels: 1,
    classes: 10,
    stridePlan: c.plan,
  };
  const spec = buildSpec(specOpts);
  let macs = 0;
  for (const l of spec.layers) {
    if (l.kind === "conv") {
      macs += l.outShape[0] * l.outShape[1] * l.outShape[2] * l.kernel * l.kernel *
        (l.inShape[0] / l.groups);
    } else if (l.kind === "fc") macs += l.inShape[0] * l.outShape[0];
  }
  const flat = flatten(paramInfos(spec).filter((p) => p.trainable), initWeights(spec, new Rng(1)));
  const rng = new Rng(2);
  const px = spec.resolution * spec.resolution;
  const x = Float32Array.from({ length: batch * px }, () => rng.normal());
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  const pools = new Map<GradKernels, TrainPool>();
  for (const k of kinds) pools.set(k, await TrainPool.create(specOpts, workers, k));
  const times = new Map<GradKernels, number[]>(kinds.map((k) => [k, []]));
  for (let s = 0; s < warmup; s++) {
    for (const k of kinds) await pools.get(k)!.gradients(flat, x, labels, batch);
  }
  for (let s = 0; s < steps; s++) {
    for (const k of kinds) {
      const t = performance.now();
      await pools.get(k)!.gradients(flat, x, labels, batch);
      times.get(k)!.push(performance.now() - t);
    }
  }
  for (const p of pools.values()) p.close();
  const ips = kinds.map((k) => {
    const t = times.get(k)!.sort((a, b) => a - b);
    return batch / (t[Math.floor(t.length / 2)]! / 1000);
  });
  const ratio = kinds.length > 1 ? ` ${(ips[1]! / ips[0]!).toFixed(2)}x |` : "";
  console.log(
    `| ${c.alpha} | ${c.plan} | ${c.resolution} | ${(macs / 1e6).toFixed(1)}M | ${
      ips.map((v) => v.toFixed(1)).join(" | ")
    } |${ratio}`,
  );
}
