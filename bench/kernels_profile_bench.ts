/**
 * Per-layer profile of the int8 engine (kernels-wasm, one thread): where the time of one forward
 * pass goes, layer by layer, with multiply-adds and GMAC/s, and the totals per kernel kind.
 * Each layer's time is the 10th percentile over `--reps` whole-network passes (Int8Engine.profile).
 *
 *   bench/quiet.sh deno run -A bench/kernels_profile_bench.ts [--alphas 0.25,1] [--reps 200]
 *     [--batch 1] [--layers]
 *
 * Models: the shipped ones (model/artifacts/manifest.json) at their base resolution. `--layers`
 * prints every layer; without it only the per-kind totals.
 */
import { Int8Engine } from "../runtime/engine/engine.ts";
import { waveImages } from "../tests/runtime/engine/qdq_fixture.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const alphas = (arg("alphas") ?? "0.25,0.5,0.75,1").split(",").map(Number);
const reps = Number(arg("reps") ?? 200);
const batch = Number(arg("batch") ?? 1);
const showLayers = Deno.args.includes("--layers");

const manifestUrl = new URL("../model/artifacts/manifest.json", import.meta.url);
const shipped: {
  id: string;
  file: string;
  baseResolution: number;
  inputChannels: number;
  alpha: number;
}[] = JSON.parse(await Deno.readTextFile(manifestUrl)).models;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!;

for (const m of shipped.filter((m) => alphas.includes(m.alpha))) {
  const engine = await Int8Engine.load(await Deno.readFile(new URL(m.file, manifestUrl)), {
    maxBatch: Math.max(8, batch),
  });
  const side = m.baseResolution;
  const shape = [batch, m.inputChannels, side, side] as const;
  const x = waveImages(batch, m.inputChannels, side, side, 3);
  for (let i = 0; i < 200; i++) engine.run(x, shape);
  const whole: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    engine.run(x, shape);
    whole.push(performance.now() - t0);
  }
  const prof = engine.profile(x, shape, reps);
  const steps = new Map(engine.graph.steps.map((s) => [s.output, s]));
  const byKind = new Map<string, { ms: number; macs: number; n: number }>();
  let sumMs = 0;
  let sumMacs = 0;
  const lines: string[] = [];
  for (const r of prof) {
    const s = steps.get(r.layer);
    let macs = 0;
    let kind = r.kind;
    if (s?.op === "conv") {
      const [o, i, kh, kw] = s.weightShape;
      macs = batch * r.outShape[0] * r.outShape[1] * o * i * kh * kw;
      if (r.kind === "depthwise") kind = `depthwise ${kh}x${kw} s${s.strides[0]}`;
      else if (r.kind === "gemm_im2col") kind = `conv ${kh}x${kw} s${s.strides[0]}`;
      else kind = "pointwise";
      kind += ` (${r.path})`;
    } else if (s?.op === "gemm") {
      macs = batch * s.inFeatures * s.outFeatures;
      kind += ` (${r.path})`;
    }
    const k = byKind.get(kind) ?? { ms: 0, macs: 0, n: 0 };
    k.ms += r.ms;
    k.macs += macs;
    k.n++;
    byKind.set(kind, k);
    sumMs += r.ms;
    sumMacs += macs;
    lines.push(
      `| ${r.layer} | ${kind} | ${r.inShape.join("x")} | ${r.outShape.join("x")} | ${
        (macs / 1e6).toFixed(2)
      } | ${(r.ms * 1000).toFixed(1)} | ${macs ? (macs / r.ms / 1e6).toFixed(1) : "-"} |`,
    );
  }
  console.log(
    `\n${m.id} ${side}x${side} batch ${batch}: whole pass p10 ${pct(whole, 0.1).toFixed(3)} ms, ` +
      `median ${pct(whole, 0.5).toFixed(3)} ms; sum of layer p10s ${sumMs.toFixed(3)} ms; ` +
      `${(sumMacs / 1e6).toFixed(2)} M MACs (${(sumMacs / sumMs / 1e6).toFixed(1)} GMAC/s)`,
  );
  if (showLayers) {
    console.log("| layer | kind | in | out | M MACs | us (p10) | GMAC/s |");
    console.log("|---|---|---|---|---:|---:|---:|");
    for (const l of lines) console.log(l);
  }
  console.log("| kind | layers | M MACs | ms (sum of p10) | share | GMAC/s |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [k, v] of byKind) {
    console.log(
      `| ${k} | ${v.n} | ${(v.macs / 1e6).toFixed(2)} | ${v.ms.toFixed(3)} | ${
        (100 * v.ms / sumMs).toFixed(0)
      }% | ${v.macs ? (v.macs / v.ms / 1e6).toFixed(1) : "-"} |`,
    );
  }
}
