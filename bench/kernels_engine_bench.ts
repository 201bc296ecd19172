/**
 * Whole-network int8 inference: the project's engine on its WASM SIMD kernels (`kernels-wasm`)
 * against onnxruntime-web's WASM backend (`ort-wasm`) and native onnxruntime-node, on the same int8
 * QDQ ONNX file, in one process, alternating, one thread each, batch 1 (and batch 8 throughput).
 * Latencies are medians of single calls, with the 10th percentile in parentheses: on a shared,
 * loaded machine the low percentile is closer to the uncontended cost.
 *
 *   deno run -A bench/kernels_engine_bench.ts [--alphas 0.25,1] [--rounds 20] [--cold 3]
 *     [--onnx file.onnx ...] [--generated] [--write]
 *
 * `--write` also puts the tables in docs/performance.md, between `<!-- kernels-engine:start -->`
 * and `<!-- kernels-engine:end -->`.
 *
 * Models: the shipped ones (model/artifacts/manifest.json) at their base resolution; with
 * `--generated` (or when none are shipped) MobileNet V1 with the cifar stride plan at 32x32, built
 * from model/spec.ts with seeded random weights and calibrated activations
 * (tests/runtime/engine/qdq_fixture.ts); or any `--onnx` files (32x32, 1 channel). Also reports
 * the max |logit difference| and argmax agreement against onnxruntime-node, and the cold start of
 * each WASM runtime (a fresh `deno` process: load, first answer).
 */
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { buildSpec } from "../model/spec.ts";
import { Int8Engine } from "../runtime/engine/engine.ts";
import { ParallelInt8Engine } from "../runtime/engine/parallel_engine.ts";
import { buildQdqFixture, specConvs, waveImages } from "../tests/runtime/engine/qdq_fixture.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const rounds = Number(arg("rounds") ?? 20);
const alphas = (arg("alphas") ?? "0.25,0.5,0.75,1").split(",").map(Number);
const files = Deno.args.flatMap((a, i) => (Deno.args[i - 1] === "--onnx" ? [a] : []));
const coldRuns = Number(arg("cold") ?? 3);

interface Model {
  label: string;
  bytes: Uint8Array;
  side: number;
  channels: number;
}

const models: Model[] = [];
const manifestUrl = new URL("../model/artifacts/manifest.json", import.meta.url);
let shipped: {
  id: string;
  file: string;
  baseResolution: number;
  inputChannels: number;
  alpha: number;
}[] = [];
try {
  shipped = JSON.parse(await Deno.readTextFile(manifestUrl)).models;
} catch {
  shipped = [];
}
if (files.length) {
  for (const f of files) {
    models.push({ label: f, bytes: await Deno.readFile(f), side: 32, channels: 1 });
  }
} else if (shipped.length && !Deno.args.includes("--generated")) {
  for (const m of shipped.filter((m) => alphas.includes(m.alpha))) {
    models.push({
      label: `${m.id} (shipped, ${m.baseResolution}x${m.baseResolution})`,
      bytes: await Deno.readFile(new URL(m.file, manifestUrl)),
      side: m.baseResolution,
      channels: m.inputChannels,
    });
  }
} else {
  for (const alpha of alphas) {
    const spec = buildSpec({
      arch: "mobilenet_v1",
      alpha,
      resolution: 32,
      inputChannels: 1,
      classes: 10,
      stridePlan: "cifar",
    });
    const bytes = buildQdqFixture({
      layers: specConvs(spec),
      classes: 10,
      calibration: { count: 2, side: 32 },
      seed: 11,
    });
    models.push({
      label: `V1 alpha ${alpha}, cifar plan, 32x32 (generated)`,
      bytes,
      side: 32,
      channels: 1,
    });
  }
}

ortWeb.env.wasm.numThreads = 1;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!;
const median = (xs: number[]) => pct(xs, 0.5);

async function timeIt(f: () => Promise<unknown> | unknown, reps: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await f();
  return (performance.now() - t0) / reps;
}

/** Cold start: a fresh process that loads the model and answers one batch-1 request. */
async function coldStart(
  kind: "kernels-wasm" | "ort-wasm",
  file: string,
  side: number,
  channels: number,
): Promise<number> {
  const code = kind === "kernels-wasm"
    ? `import { Int8Engine } from "${new URL("../runtime/engine/engine.ts", import.meta.url)}";
       const e = await Int8Engine.load(await Deno.readFile("${file}"), { maxBatch: 1 });
       e.run(new Float32Array(${channels * side * side}), [1, ${channels}, ${side}, ${side}]);`
    : `import * as ort from "onnxruntime-web"; ort.env.wasm.numThreads = 1;
       const s = await ort.InferenceSession.create(await Deno.readFile("${file}"));
       await s.run({ input: new ort.Tensor("float32", new Float32Array(${
      channels * side * side
    }), [1, ${channels}, ${side}, ${side}]) });`;
  const script = await Deno.makeTempFile({
    dir: new URL("../", import.meta.url).pathname,
    suffix: "_cold.ts",
  });
  await Deno.writeTextFile(script, code);
  try {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stdout: "null",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t0;
    if (!out.success) {
      throw new Error(`cold start of ${kind} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    return ms;
  } finally {
    await Deno.remove(script);
  }
}

const rows: string[] = [];
const coldRows: string[] = [];
for (const m of models) {
  const t0 = performance.now();
  const engine = await Int8Engine.load(m.bytes, { maxBatch: 8 });
  const engineLoad = performance.now() - t0;
  const node = await ortNode.InferenceSession.create(m.bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const parallel = await ParallelInt8Engine.load(m.bytes, { maxBatch: 8 });
  const web = await ortWeb.InferenceSession.create(m.bytes);
  const shape1 = [1, m.channels, m.side, m.side] as const;
  const shape8 = [8, m.channels, m.side, m.side] as const;
  const x1 = waveImages(1, m.channels, m.side, m.side, 3);
  const x8 = waveImages(8, m.channels, m.side, m.side, 4);

  // correctness on 64 images against native onnxruntime
  const xc = waveImages(64, m.channels, m.side, m.side, 5);
  const mine = engine.run(xc, [64, m.channels, m.side, m.side]);
  const ref =
    (await node.run({ input: new ortNode.Tensor("float32", xc, [64, m.channels, m.side, m.side]) }))
      .logits!
      .data as Float32Array;
  let maxDiff = 0;
  let agree = 0;
  const classes = engine.classes;
  for (let i = 0; i < 64; i++) {
    let a = 0;
    let b = 0;
    for (let j = 0; j < classes; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(mine[i * classes + j]! - ref[i * classes + j]!));
      if (mine[i * classes + j]! > mine[i * classes + a]!) a = j;
      if (ref[i * classes + j]! > ref[i * classes + b]!) b = j;
    }
    if (a === b) agree++;
  }

  const runners = {
    engine1: () => engine.run(x1, shape1),
    node1: () => node.run({ input: new ortNode.Tensor("float32", x1, [...shape1]) }),
    web1: () => web.run({ input: new ortWeb.Tensor("float32", x1, [...shape1]) }),
    engine8: () => engine.run(x8, shape8),
    parallel8: () => parallel.run(x8, shape8),
    node8: () => node.run({ input: new ortNode.Tensor("float32", x8, [...shape8]) }),
  };
  const times: Record<keyof typeof runners, number[]> = {
    engine1: [],
    node1: [],
    web1: [],
    engine8: [],
    parallel8: [],
    node8: [],
  };
  // warm up (and let V8 tier the wasm up), then time single calls, alternating between runners
  for (const f of Object.values(runners)) for (let i = 0; i < 20; i++) await f();
  for (let r = 0; r < rounds; r++) {
    for (const [k, f] of Object.entries(runners)) {
      const reps = k.endsWith("8") ? 2 : 10;
      for (let i = 0; i < reps; i++) times[k as keyof typeof runners].push(await timeIt(f, 1));
    }
  }
  const e1 = median(times.engine1);
  const n1 = median(times.node1);
  const w1 = median(times.web1);
  const e8 = median(times.engine8);
  const n8 = median(times.node8);
  const p8 = median(times.parallel8);
  const pe1 = pct(times.engine1, 0.1);
  const pn1 = pct(times.node1, 0.1);
  const pw1 = pct(times.web1, 0.1);
  rows.push(
    `| ${m.label} | ${e1.toFixed(3)} (${pe1.toFixed(3)}) | ${w1.toFixed(3)} (${pw1.toFixed(3)}) | ${
      n1.toFixed(3)
    } (${pn1.toFixed(3)}) | ${(w1 / e1).toFixed(1)}x (${(pw1 / pe1).toFixed(1)}x) | ${
      (e1 / n1).toFixed(2)
    }x (${(pe1 / pn1).toFixed(2)}x) | ${(8000 / e8).toFixed(0)} | ${(8000 / p8).toFixed(0)} | ${
      (8000 / n8).toFixed(0)
    } | ${engineLoad.toFixed(1)} | ${maxDiff.toExponential(2)} | ${agree}/64 |`,
  );
  await node.release();
  parallel.close();
  await web.release();

  const file = await Deno.makeTempFile({ suffix: ".onnx" });
  await Deno.writeFile(file, m.bytes);
  const ck: number[] = [];
  const cw: number[] = [];
  for (let i = 0; i < coldRuns; i++) {
    ck.push(await coldStart("kernels-wasm", file, m.side, m.channels));
    cw.push(await coldStart("ort-wasm", file, m.side, m.channels));
  }
  await Deno.remove(file);
  coldRows.push(
    `| ${m.label} | ${median(ck).toFixed(0)} | ${median(cw).toFixed(0)} | ${
      (median(cw) / median(ck)).toFixed(1)
    }x |`,
  );
}

const load = Deno.loadavg()[0]!.toFixed(1);
const command = `deno run -A bench/kernels_engine_bench.ts${
  Deno.args.length ? " " + Deno.args.join(" ") : ""
}`;
const header = `Measured ${
  new Date().toISOString().slice(0, 16).replace("T", " ")
} UTC, ${navigator.hardwareConcurrency} cores, load average ${load} at the end (other work shares the cores: trust the ratios and the 10th percentiles more than the medians). Batch 1, one thread each, median ms of single calls with the 10th percentile in parentheses, ${rounds} alternating rounds. Command: \`${command}\`.`;
const latency = [
  "| model | kernels-wasm ms | ort-wasm ms | onnxruntime-node ms | kernels-wasm speed-up vs ort-wasm | kernels-wasm / native | kernels-wasm img/s (batch 8) | kernels-wasm 2 threads img/s (batch 8) | native img/s (batch 8, 1 thread) | engine load ms | max abs logit diff vs native | argmax agree |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...rows,
].join("\n");
const cold = [
  `Cold start: a new \`deno run\` process that loads the model and answers one request (median of ${coldRuns}, ms).`,
  "",
  "| model | kernels-wasm | ort-wasm | ratio |",
  "|---|---:|---:|---:|",
  ...coldRows,
].join("\n");
console.log(`\n${header}\n\n${latency}\n\n${cold}`);

if (Deno.args.includes("--write")) {
  await writeSection(
    "kernels-engine",
    `## int8 engine: kernels-wasm vs ort-wasm vs onnxruntime-node (bench/kernels_engine_bench.ts)\n\n${header}\n\n${latency}\n\n${cold}\n`,
  );
}

/** Replaces (or appends) the text between `<!-- name:start -->` and `<!-- name:end -->`. */
async function writeSection(name: string, body: string): Promise<void> {
  const doc = new URL("../docs/performance.md", import.meta.url);
  let text: string;
  try {
    text = await Deno.readTextFile(doc);
  } catch {
    text = "# Performance\n\nSections below are written by the benchmark scripts in bench/.\n";
  }
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i
    ? text.slice(0, i) + block + text.slice(j + end.length)
    : `${text.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(doc, text);
  // Keep the doc as `deno fmt` writes it, so `deno task ok` stays green after a bench run.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", doc.pathname] }).output();
}
