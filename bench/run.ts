/**
 * `deno task bench`: runs the benchmarks that write docs/performance.md, one after another (never
 * two at once: the machine has 2 cores), each as its own process with its own `--write` section.
 *
 *   deno task bench            # engine, end-to-end, load (quick matrix)
 *   deno task bench --all      # also WebGPU (software adapter), kernels, images, training
 *
 * Pause any training run first (model/train/queue.sh resumes from its checkpoints): timings taken
 * beside it are not comparable.
 */
const all = Deno.args.includes("--all");

const steps: { name: string; args: string[]; optional?: boolean }[] = [
  {
    name: "own int8 engine vs onnxruntime-web vs onnxruntime-node",
    args: ["bench/kernels_engine_bench.ts", "--rounds", "20", "--cold", "5", "--write"],
  },
  { name: "end-to-end classify latency", args: ["bench/e2e_bench.ts", "--rounds", "7", "--write"] },
  {
    name: "under load",
    args: ["bench/loadtest.ts", "--alpha", "0.25,1", "--concurrency", "1,8,32", "--duration", "5"],
  },
];
if (all) {
  steps.push(
    {
      name: "kernels-webgpu vs kernels-wasm",
      args: ["bench/kernels_webgpu_bench.ts", "--write"],
      optional: true,
    },
    { name: "int8 kernels GMAC/s", args: ["bench/kernels_bench.ts"] },
    { name: "image decode", args: ["bench/image_bench.ts"] },
    { name: "training img/s", args: ["bench/train_bench.ts"] },
  );
}

let failed = 0;
for (const step of steps) {
  console.log(`\n== ${step.name}: deno run -A ${step.args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...step.args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    console.log(`${step.name}: exited ${code}${step.optional ? " (optional: skipped)" : ""}`);
    if (!step.optional) failed++;
  }
}
Deno.exit(failed ? 1 : 0);
