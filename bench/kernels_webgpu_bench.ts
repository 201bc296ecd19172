/**
 * Whole-network int8 inference on the WGSL kernels (`kernels-webgpu`, WebGpuInt8Engine) against
 * the WASM SIMD kernels (`kernels-wasm`, Int8Engine, one thread), the same shipped QDQ file, in one
 * process, alternating call by call. Latencies are medians of single calls with the 10th
 * percentile in parentheses; the ratio is webgpu / wasm of the medians. It also checks that both
 * engines gave the same logits on the benchmark input.
 *
 *   deno run -A bench/kernels_webgpu_bench.ts [--rounds 10] [--batches 1,8] [--models a0.25,a1]
 *     [--write]
 *
 * `--write` also puts the table in docs/performance.md, between `<!-- kernels-webgpu:start -->`
 * and `<!-- kernels-webgpu:end -->`.
 *
 * On a machine without a GPU the adapter is Mesa's llvmpipe (a software rasterizer): the numbers
 * then describe llvmpipe, not a GPU. The adapter is printed with the table.
 */
import { Int8Engine } from "../runtime/engine/engine.ts";
import { WebGpuInt8Engine } from "../runtime/engine/webgpu_engine.ts";
import { waveImages } from "../tests/runtime/engine/qdq_fixture.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const rounds = Number(arg("rounds") ?? 10);
const batches = (arg("batches") ?? "1,8").split(",").map(Number);
const wanted = arg("models")?.split(",");

const ARTIFACTS = new URL("../model/artifacts/", import.meta.url);
const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS))) as {
  models: { id: string; file: string; baseResolution: number; inputChannels: number }[];
};

const adapter = await navigator.gpu?.requestAdapter();
if (!adapter) {
  console.log("kernels-webgpu bench skipped: this runtime has no WebGPU adapter");
  Deno.exit(0);
}
const device = await adapter.requestDevice();
const adapterText = `${
  adapter.info.description || adapter.info.vendor
} (fallback adapter: ${adapter.info.isFallbackAdapter})`;
console.log(`adapter: ${adapterText}`);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!;
const fmt = (xs: number[]) => `${pct(xs, 0.5).toFixed(2)} (${pct(xs, 0.1).toFixed(2)})`;

const rows = [
  "| model | batch | kernels-wasm ms | kernels-webgpu ms | webgpu / wasm | same logits |",
  "|---|---:|---:|---:|---:|---|",
];
console.log(rows.join("\n"));
for (const m of manifest.models) {
  if (m.inputChannels !== 1) continue;
  if (wanted && !wanted.some((w) => m.id.endsWith(w.replace(/^a/, "_a")))) continue;
  const bytes = await Deno.readFile(new URL(m.file, ARTIFACTS));
  const maxBatch = Math.max(...batches);
  const wasm = await Int8Engine.load(bytes, { maxBatch });
  const gpu = await WebGpuInt8Engine.load(bytes, { maxBatch, device });
  const side = m.baseResolution;
  for (const n of batches) {
    const x = waveImages(n, 1, side, side, 11);
    const shape = [n, 1, side, side] as const;
    const a = wasm.run(x, shape);
    const b = await gpu.run(x, shape); // first call also allocates this size's buffers
    const same = a.every((v, i) => v === b[i]);
    const tw: number[] = [];
    const tg: number[] = [];
    for (let r = 0; r < rounds; r++) {
      let t0 = performance.now();
      wasm.run(x, shape);
      tw.push(performance.now() - t0);
      t0 = performance.now();
      await gpu.run(x, shape);
      tg.push(performance.now() - t0);
    }
    const ratio = pct(tg, 0.5) / pct(tw, 0.5);
    rows.push(`| ${m.id} | ${n} | ${fmt(tw)} | ${fmt(tg)} | ${ratio.toFixed(1)}x | ${same} |`);
    console.log(rows.at(-1));
  }
  await gpu.destroy();
}
device.destroy();

if (Deno.args.includes("--write")) {
  const when = new Date().toISOString().slice(0, 16).replace("T", " ");
  const load = Deno.loadavg()[0]!.toFixed(1);
  const command = ["deno run -A bench/kernels_webgpu_bench.ts", ...Deno.args].join(" ");
  await writeSection(
    "kernels-webgpu",
    [
      "## int8 engine on WGSL: kernels-webgpu vs kernels-wasm (bench/kernels_webgpu_bench.ts)",
      "",
      `Measured ${when} UTC on the adapter ${adapterText}, ${navigator.hardwareConcurrency} cores, load average ${load} at the end (other work shares the cores). Median ms of single calls with the 10th percentile in parentheses, ${rounds} alternating rounds, kernels-wasm on one thread; "same logits" compares the two engines' outputs on the benchmark input. Command: \`${command}\`.`,
      "",
      ...rows,
    ].join("\n"),
  );
}

/** Replaces (or appends) the text between `<!-- name:start -->` and `<!-- name:end -->`. */
async function writeSection(name: string, body: string): Promise<void> {
  const doc = new URL("../docs/performance.md", import.meta.url);
  let text = await Deno.readTextFile(doc);
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n\n${body.trimEnd()}\n\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i
    ? text.slice(0, i) + block + text.slice(j + end.length)
    : `${text.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(doc, text);
  // Keep the doc as `deno fmt` writes it, so `deno task ok` stays green after a bench run.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", doc.pathname] }).output();
}
