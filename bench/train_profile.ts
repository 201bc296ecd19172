/**
 * Per-kernel time of one training step (tf.profile), to see where a step goes.
 * deno run -A bench/train_profile.ts [alpha] [plan] [resolution] [batch] [kernels]
 */
import * as tf from "@tensorflow/tfjs-core";
import { buildSpec, type StridePlan } from "../model/spec.ts";
import { type GradKernels, setupBackend } from "../model/train/backend.ts";
import { initWeights, TfMobileNet } from "../model/train/mobilenet.ts";
import { Rng } from "../model/train/rng.ts";

const [alpha = "0.25", plan = "cifar", res = "32", batch = "32", kernels = "own"] = Deno.args;
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
for (let i = 0; i < 2; i++) m.gradients(x, y, n);
for (let i = 0; i < 4; i++) {
  const t0 = performance.now();
  m.gradients(x, y, n);
  console.log(
    "step ms",
    (performance.now() - t0).toFixed(0),
    tf.memory().numTensors,
    (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length,
  );
}
const t = performance.now();
const reps = 4;
for (let i = 0; i < reps; i++) m.gradients(x, y, n);
const ms = (performance.now() - t) / reps;
console.log(
  `${kernels} alpha ${alpha} ${plan} ${res}: ${ms.toFixed(1)} ms/step, ${
    (n / ms * 1000).toFixed(1)
  } img/s (one thread)`,
);
const prof = await tf.profile(() => {
  m.gradients(x, y, n);
});
const agg = new Map<string, [number, number]>();
for (const k of prof.kernels) {
  const a = agg.get(k.name) ?? [0, 0];
  a[0] += k.kernelTimeMs as number;
  a[1]++;
  agg.set(k.name, a);
}
for (const [k, [v, c]] of [...agg].sort((a, b) => b[1][0] - a[1][0]).slice(0, 22)) {
  console.log(`${k.padEnd(40)} ${v.toFixed(1).padStart(8)} ms ${String(c).padStart(5)} calls`);
}
