/**
 * A/B of two builds of kernels.wasm on one model, in one process, alternating call by call: the
 * way to judge a kernel change on a shared, noisy machine.
 *
 *   git show HEAD:kernels/wasm/kernels.wasm > /tmp/old.wasm
 *   deno run -A bench/kernels_ab_bench.ts --old /tmp/old.wasm [--new kernels/wasm/kernels.wasm]
 *     [--model model/artifacts/mobilenet_v1_a0.25.onnx] [--side 28] [--batch 1]
 *
 * Prints whole-network p10 / median times of both and the per-kernel-kind p10 sums. Both builds
 * must export what kernels/wasm/int8_wasm.ts expects (the loader refuses older export sets).
 */
import { Int8Engine } from "../runtime/engine/engine.ts";
import { waveImages } from "../tests/runtime/engine/qdq_fixture.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] ?? dflt : dflt;
}

const oldPath = arg("old", "");
if (!oldPath) {
  console.error(
    "usage: deno run -A bench/kernels_ab_bench.ts --old OLD.wasm [--new NEW.wasm] [--model M.onnx]",
  );
  Deno.exit(2);
}
const newPath = arg("new", new URL("../kernels/wasm/kernels.wasm", import.meta.url).pathname);
const modelPath = arg(
  "model",
  new URL("../model/artifacts/mobilenet_v1_a0.25.onnx", import.meta.url).pathname,
);
const side = Number(arg("side", "28"));
const batch = Number(arg("batch", "1"));

const bytes = await Deno.readFile(modelPath);
const engines = await Promise.all(
  [oldPath, newPath].map(async (p) =>
    await Int8Engine.load(bytes, {
      maxBatch: 8,
      module: new WebAssembly.Module(await Deno.readFile(p)),
    })
  ),
);
const channels = engines[0]!.inputChannels;
const shape = [batch, channels, side, side] as const;
const x = waveImages(batch, channels, side, side, 1);
for (let i = 0; i < 200; i++) for (const e of engines) e.run(x, shape);
const times: number[][] = [[], []];
for (let r = 0; r < 500; r++) {
  engines.forEach((e, j) => {
    const t0 = performance.now();
    e.run(x, shape);
    times[j]!.push(performance.now() - t0);
  });
}
const pct = (t: number[], p: number) => [...t].sort((a, b) => a - b)[Math.floor(t.length * p)]!;
const [o, n] = times as [number[], number[]];
console.log(`${modelPath} batch ${batch} ${side}x${side}`);
console.log(
  `old p10 ${pct(o, 0.1).toFixed(3)} ms, median ${pct(o, 0.5).toFixed(3)} | new p10 ${
    pct(n, 0.1).toFixed(3)
  } ms, median ${pct(n, 0.5).toFixed(3)} | new/old p10 ${(pct(n, 0.1) / pct(o, 0.1)).toFixed(3)}`,
);
const profiles = engines.map((e) => e.profile(x, shape, 200));
const kinds = [...new Set(profiles[0]!.map((r) => r.kind))];
for (const k of kinds) {
  const [a, b] = profiles.map((p) =>
    p.filter((r) => r.kind === k).reduce((s, r) => s + r.ms, 0)
  ) as [number, number];
  console.log(
    `  ${k.padEnd(12)} old ${a.toFixed(4)} new ${b.toFixed(4)} ratio ${(b / a).toFixed(3)}`,
  );
}
