/**
 * int8 kernel throughput: wasm SIMD (kernels/wasm) vs the TypeScript reference (kernels/int8) in
 * the same process, alternating, one thread. Prints GMAC/s per kernel and the speed ratio.
 *
 *   deno run -A bench/kernels_bench.ts [--quick] [--full-range]
 *
 * Shapes are MobileNet V1 layers (cifar stride plan, alpha 1.0, 32x32 input) plus a 5x5 depthwise
 * as V3 uses. Timings are medians of alternating rounds; trust the ratio more than the absolute
 * numbers on a shared machine. Weights are 7-bit (-64..64, the shipped models' format: the GEMMs
 * take the relaxed-dot path) unless `--full-range` (-128..127: the int16 path everywhere); the
 * "path" column says which arithmetic each kernel used.
 */
import { createConv2dPlan, type NHWC, runConv2dPlan } from "../kernels/int8/conv2d.ts";
import { createGemmPlan, runGemmPlan, runGemmPlanFloat } from "../kernels/int8/gemm.ts";
import { createGlobalAvgPoolPlan, globalAvgPoolInt8 } from "../kernels/int8/global_avg_pool.ts";
import { packConv2d, packGemm, packGlobalAvgPool } from "../kernels/wasm/int8_layers.ts";
import { loadInt8Wasm } from "../kernels/wasm/int8_wasm.ts";

const quick = Deno.args.includes("--quick");
const wasm = await loadInt8Wasm();

let seed = 12345;
const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const u8 = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
const fullRange = Deno.args.includes("--full-range");
/**
 * Weights as `n` values; 7-bit ones as the exporter makes them (scale = max|w| / 64 per channel):
 * -63..63 with one +-64 in each run of `per` values (one output channel).
 */
const i8 = (n: number, per = n) =>
  Int8Array.from({ length: n }, (_, i) => {
    if (fullRange) return Math.floor(rand() * 256) - 128;
    if (i % per === 0) return rand() < 0.5 ? 64 : -64;
    return Math.floor(rand() * 127) - 63;
  });

interface Bench {
  name: string;
  path: string;
  macs: number;
  ref: () => void;
  wasm: () => void;
}

function convBench(
  name: string,
  shape: NHWC,
  outC: number,
  k: number,
  stride: number,
  depthwise: boolean,
): Bench {
  const c = shape[3];
  const oc = depthwise ? c : outC;
  const inPer = depthwise ? 1 : c;
  const plan = createConv2dPlan(shape, {
    weights: i8(oc * inPer * k * k, inPer * k * k),
    weightShape: [oc, inPer, k, k],
    weightScales: Float32Array.from({ length: oc }, () => 0.01),
    bias: new Int32Array(oc),
    inScale: 0.02,
    inZeroPoint: 3,
    outScale: 0.5,
    outZeroPoint: 128,
    strides: stride,
    groups: depthwise ? c : 1,
  });
  const input = u8(shape.reduce((a, b) => a * b, 1));
  const macs = plan.outH * plan.outW * oc * inPer * k * k * shape[0];
  if (!depthwise && k === 1) {
    const g = createGemmPlan([shape[0] * shape[1] * shape[2], c], {
      weights: i8(oc * c, c),
      outChannels: oc,
      weightScales: [0.01],
      inScale: 0.02,
      inZeroPoint: 3,
      outScale: 0.5,
      outZeroPoint: 128,
    });
    const layer = packGemm(wasm, g);
    const rows = shape[0] * shape[1] * shape[2];
    const inPtr = wasm.put(input);
    const outPtr = wasm.alloc(rows * oc);
    const scratch = wasm.alloc(layer.scratchBytes(rows));
    return {
      name,
      path: layer.path,
      macs,
      ref: () => void runGemmPlan(g, input),
      wasm: () => layer.run(inPtr, outPtr, rows, scratch),
    };
  }
  const layer = packConv2d(wasm, plan, "same_upper");
  const [n, h, w] = shape;
  const inPtr = wasm.put(input);
  const outPtr = wasm.alloc(n * plan.outH * plan.outW * oc);
  const scratch = wasm.alloc(layer.scratchBytes(n, h, w));
  return {
    name,
    path: layer.path,
    macs,
    ref: () => void runConv2dPlan(plan, input),
    wasm: () => layer.run(inPtr, outPtr, n, h, w, scratch),
  };
}

function fcBench(name: string, batch: number, k: number, n: number): Bench {
  const plan = createGemmPlan([batch, k], {
    weights: i8(n * k, k),
    outChannels: n,
    weightScales: [0.01],
    inScale: 0.02,
    inZeroPoint: 3,
    output: "float32",
  });
  const input = u8(batch * k);
  const layer = packGemm(wasm, plan);
  const inPtr = wasm.put(input);
  const outPtr = wasm.alloc(batch * n * 4);
  const scratch = wasm.alloc(layer.scratchBytes(batch));
  return {
    name,
    path: layer.path,
    macs: batch * k * n,
    ref: () => void runGemmPlanFloat(plan, input),
    wasm: () => layer.run(inPtr, outPtr, batch, scratch),
  };
}

function gapBench(name: string, shape: NHWC): Bench {
  const params = { input: { scale: 0.05, zeroPoint: 3 }, output: { scale: 0.05, zeroPoint: 3 } };
  const plan = createGlobalAvgPoolPlan(shape, params);
  const input = u8(shape.reduce((a, b) => a * b, 1));
  const layer = packGlobalAvgPool(wasm, plan, { inScale: 0.05, outScale: 0.05 });
  const inPtr = wasm.put(input);
  const outPtr = wasm.alloc(shape[0] * shape[3]);
  // "MACs" for pooling: one add per input element.
  return {
    name,
    path: "-",
    macs: input.length,
    ref: () => void globalAvgPoolInt8(input, shape, params),
    wasm: () => layer.run(inPtr, outPtr, shape[0], shape[1] * shape[2], shape[3]),
  };
}

const benches: Bench[] = [
  convBench("first conv 3x3 s1 1->32 @32x32", [1, 32, 32, 1], 32, 3, 1, false),
  convBench("first conv 3x3 s2 3->32 @32x32", [1, 32, 32, 3], 32, 3, 2, false),
  convBench("depthwise 3x3 s1 64ch @32x32", [1, 32, 32, 64], 0, 3, 1, true),
  convBench("depthwise 3x3 s2 128ch @32x32", [1, 32, 32, 128], 0, 3, 2, true),
  convBench("depthwise 3x3 s1 512ch @4x4", [1, 4, 4, 512], 0, 3, 1, true),
  convBench("depthwise 5x5 s1 120ch @14x14", [1, 14, 14, 120], 0, 5, 1, true),
  convBench("pointwise 64->128 @32x32", [1, 32, 32, 64], 128, 1, 1, false),
  convBench("pointwise 256->256 @8x8", [1, 8, 8, 256], 256, 1, 1, false),
  convBench("pointwise 512->512 @4x4", [1, 4, 4, 512], 512, 1, 1, false),
  convBench("pointwise 1024->1024 @2x2 batch 8", [8, 2, 2, 1024], 1024, 1, 1, false),
  gapBench("global avg pool 1024ch @2x2 batch 8", [8, 2, 2, 1024]),
  fcBench("fc 1024->10 float logits batch 8", 8, 1024, 10),
];

/** Seconds per call of f, averaged over `reps` calls. */
function time(f: () => void, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / 1000 / reps;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!;

console.log(
  `int8 kernels, one thread, ${
    quick ? "quick" : "full"
  } run (${navigator.hardwareConcurrency} cores visible)`,
);
console.log(
  "GMAC/s from the median sample, 10th-percentile time in parentheses (closer to uncontended on a shared machine)",
);
console.log(
  `weights: ${
    fullRange ? "full int8 range (-128..127)" : "7-bit (-64..64, as the shipped models)"
  }`,
);
console.log("| kernel | path | MACs | TS reference GMAC/s | wasm SIMD GMAC/s | wasm / TS |");
console.log("|---|---|---:|---:|---:|---:|");
for (const b of benches) {
  // warm up (V8 tiers wasm up in the background), then samples of ~0.5 ms (wasm) / ~5 ms (TS)
  for (let i = 0; i < 20; i++) b.wasm();
  b.ref();
  const repsW = Math.max(1, Math.round(0.0005 / time(b.wasm, 3)));
  const repsR = Math.max(1, Math.round(0.005 / time(b.ref, 1)));
  const rw: number[] = [];
  const rr: number[] = [];
  for (let round = 0; round < (quick ? 5 : 15); round++) {
    for (let i = 0; i < 4; i++) rw.push(time(b.wasm, repsW));
    rr.push(time(b.ref, repsR));
  }
  const g = (t: number) => b.macs / t / 1e9;
  const gw = g(pct(rw, 0.5));
  const gr = g(pct(rr, 0.5));
  const gw10 = g(pct(rw, 0.1));
  const gr10 = g(pct(rr, 0.1));
  console.log(
    `| ${b.name} | ${b.path} | ${b.macs.toLocaleString("en")} | ${gr.toFixed(3)} (${
      gr10.toFixed(3)
    }) | ${gw.toFixed(2)} (${gw10.toFixed(2)}) | ${(gw / gr).toFixed(0)}x (${
      (gw10 / gr10).toFixed(0)
    }x) |`,
  );
}
