/**
 * Per-kernel time of one training step (tf.profile), to see where a step goes.
 * deno run -A bench/train_profile.ts [alpha] [plan] [resolution] [batch] [kernels] [reps]
 *
 * One thread, in-process. Prints the fastest and the median of `reps` timed steps (default 12,
 * after 3 untimed) and, per tfjs kernel, its summed time in one step: the least over 3 profiled
 * steps, so another process's burst on the shared machine does not land in the table. Kernels
 * nest (a kernel that calls tfjs ops, the custom-gradient `forward`), so the column does not add
 * up to the step.
 */
import * as tf from "@tensorflow/tfjs-core";
import { buildSpec, type StridePlan } from "../model/spec.ts";
import { type GradKernels, setupBackend } from "../model/train/backend.ts";
import { initWeights, TfMobileNet } from "../model/train/mobilenet.ts";
import { Rng } from "../model/train/rng.ts";

const [alpha = "0.25", plan = "cifar", res = "32", batch = "32", kernels = "own", reps = "12"] =
  Deno.args;
await setupBackend(kernels as GradKernels);
const spec = buildSpec({
  alpha: Number(alpha),
  resolution: Number(res),
  inputChannels: 1,
  classes: 10,
  stridePlan: plan as StridePlan,
});
const m = new TfMobileNet(spec, { fusedBn: kernels === "own" });
m.setWeights(initWeights(spec, new Rng(1)));
const n = Number(batch);
const rng = new Rng(2);
const x = Float32Array.from({ length: n * spec.resolution ** 2 }, () => rng.normal());
const y = Int32Array.from({ length: n }, () => rng.int(10));
for (let i = 0; i < 3; i++) m.gradients(x, y, n);
const times: number[] = [];
for (let i = 0; i < Number(reps); i++) {
  const t0 = performance.now();
  m.gradients(x, y, n);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const best = times[0]!;
const median = times[times.length >> 1]!;
console.log(
  `${kernels} alpha ${alpha} ${plan} ${res}, batch ${n}, one thread: fastest step ${
    best.toFixed(1)
  } ms (${(n / best * 1000).toFixed(1)} img/s), median ${median.toFixed(1)} ms (${
    (n / median * 1000).toFixed(1)
  } img/s) of ${times.length}`,
);
const agg = new Map<string, [number, number]>();
for (let r = 0; r < 3; r++) {
  const prof = await tf.profile(() => {
    m.gradients(x, y, n);
  });
  const step = new Map<string, [number, number]>();
  for (const k of prof.kernels) {
    const a = step.get(k.name) ?? [0, 0];
    a[0] += k.kernelTimeMs as number;
    a[1]++;
    step.set(k.name, a);
  }
  for (const [k, [v, c]] of step) {
    const prev = agg.get(k);
    agg.set(k, [Math.min(prev?.[0] ?? Infinity, v), c]);
  }
}
for (const [k, [v, c]] of [...agg].sort((a, b) => b[1][0] - a[1][0]).slice(0, 22)) {
  console.log(`${k.padEnd(40)} ${v.toFixed(1).padStart(8)} ms ${String(c).padStart(5)} calls`);
}
