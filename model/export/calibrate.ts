/**
 * The project's own activation calibrator for static int8 quantization.
 *
 * The float model is exported once more with every quantized activation (`<layer>.out`,
 * `pool.out`) as an extra graph output and run with onnxruntime-node over calibration batches.
 * Pass 1 records each tensor's min and max; pass 2 (percentile, entropy) fills a 2048-bin
 * histogram over [0, max] of each non-negative tensor. Methods:
 * - `minmax`: the observed range.
 * - `percentile:<p>`: the max is the p-th percentile of all values (zeros included, as
 *   onnxruntime's percentile calibrator counts them).
 * - `entropy`: the max minimizes KL(P || Q) between the clipped histogram P and its 256-level
 *   quantized version Q (TensorRT's method, arXiv 2004.09602, with 256 levels for uint8 at zp 0),
 *   on the histogram without exact zeros.
 * Tensors that can be negative (the normalized input) always use min/max.
 */
import * as ort from "onnxruntime-node";
import type { ModelSpec } from "../spec.ts";
import type { FoldedLayer } from "./fold_bn.ts";
import { activationName, buildFloatModel, INPUT_NAME } from "./float_graph.ts";
import { encodeModel } from "./onnx_writer.ts";
import type { Range } from "./quantize.ts";

export type CalibrationMethod = "minmax" | "entropy" | `percentile:${number}`;

export const HISTOGRAM_BINS = 2048;

/** One calibration batch: NCHW float input. */
export interface CalibrationBatch {
  data: Float32Array;
  shape: [number, number, number, number];
}

/** Statistics collected once, from which any method's ranges are derived. */
export interface CalibrationStats {
  images: number;
  minMax: Map<string, Range>;
  /** Histograms over [0, max] for tensors whose min is >= 0. */
  histograms: Map<string, Float64Array>;
  /** How many values were exactly 0 (ReLU's dead zone), per histogram; they sit in bin 0. */
  zeros: Map<string, number>;
}

/** The activation tensors of the float graph that the int8 graph quantizes. */
export function quantizedActivations(folded: FoldedLayer[]): string[] {
  const names: string[] = [];
  for (const f of folded) if (f.kind === "conv") names.push(activationName(f.layer.name));
  names.push("pool.out");
  return names;
}

/** Runs the float model over the batches and collects min/max and histograms. */
export async function collectStats(
  spec: ModelSpec,
  folded: FoldedLayer[],
  batches: CalibrationBatch[],
): Promise<CalibrationStats> {
  const names = quantizedActivations(folded);
  const bytes = encodeModel(buildFloatModel(spec, folded, { extraOutputs: names }));
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const minMax = new Map<string, Range>();
    const update = (name: string, data: Float32Array) => {
      const r = minMax.get(name) ?? { min: Infinity, max: -Infinity };
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (v < r.min) r.min = v;
        if (v > r.max) r.max = v;
      }
      minMax.set(name, r);
    };
    let images = 0;
    for (const b of batches) {
      update(INPUT_NAME, b.data);
      const out = await session.run({ [INPUT_NAME]: new ort.Tensor("float32", b.data, b.shape) });
      for (const n of names) update(n, out[n]!.data as Float32Array);
      images += b.shape[0];
    }
    const histograms = new Map<string, Float64Array>();
    const zeros = new Map<string, number>();
    for (const n of names) {
      if (minMax.get(n)!.min >= 0) histograms.set(n, new Float64Array(HISTOGRAM_BINS));
    }
    for (const b of batches) {
      const out = await session.run({ [INPUT_NAME]: new ort.Tensor("float32", b.data, b.shape) });
      for (const [n, h] of histograms) {
        const max = minMax.get(n)!.max;
        if (max <= 0) continue;
        const k = HISTOGRAM_BINS / max;
        const data = out[n]!.data as Float32Array;
        let z = 0;
        for (let i = 0; i < data.length; i++) {
          const v = data[i]!;
          if (v === 0) z++;
          h[Math.min(HISTOGRAM_BINS - 1, Math.floor(v * k))]! += 1;
        }
        zeros.set(n, (zeros.get(n) ?? 0) + z);
      }
    }
    return { images, minMax, histograms, zeros };
  } finally {
    await session.release();
  }
}

function percentileMax(h: Float64Array, max: number, p: number): number {
  let total = 0;
  for (const v of h) total += v;
  const target = total * p / 100;
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    acc += h[i]!;
    if (acc >= target) return Math.min(max, ((i + 1) / h.length) * max);
  }
  return max;
}

/** KL-divergence threshold search over histogram prefixes (TensorRT's entropy calibration). */
export function entropyMax(h: Float64Array, max: number, levels = 256): number {
  const bins = h.length;
  let best = bins;
  let bestKl = Infinity;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let i = levels; i <= bins; i += 8) {
    // P: the first i bins, with everything above folded into the last one.
    let outliers = 0;
    for (let j = i; j < bins; j++) outliers += h[j]!;
    for (let j = 0; j < i; j++) p[j] = h[j]!;
    p[i - 1]! += outliers;
    // Q: the first i bins merged into `levels` groups, each spread evenly over its non-empty bins.
    q.fill(0, 0, i);
    const step = i / levels;
    for (let g = 0; g < levels; g++) {
      const start = Math.floor(g * step);
      const end = g === levels - 1 ? i : Math.floor((g + 1) * step);
      let sum = 0;
      let nonzero = 0;
      for (let j = start; j < end; j++) {
        sum += h[j]!;
        if (h[j]! > 0) nonzero++;
      }
      if (nonzero === 0) continue;
      for (let j = start; j < end; j++) if (h[j]! > 0) q[j] = sum / nonzero;
    }
    let ps = 0;
    let qs = 0;
    for (let j = 0; j < i; j++) {
      ps += p[j]!;
      qs += q[j]!;
    }
    if (ps === 0 || qs === 0) continue;
    let kl = 0;
    for (let j = 0; j < i; j++) {
      const pj = p[j]! / ps;
      if (pj === 0) continue;
      const qj = q[j]! / qs;
      kl += qj > 0 ? pj * Math.log(pj / qj) : pj * 30; // an empty Q bin under mass: heavy penalty
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return (best / bins) * max;
}

/** Derives each tensor's range for a method from collected statistics. */
export function rangesFor(stats: CalibrationStats, method: CalibrationMethod): Map<string, Range> {
  const out = new Map<string, Range>();
  for (const [name, r] of stats.minMax) {
    const h = stats.histograms.get(name);
    if (method === "minmax" || !h || r.max <= 0) {
      out.set(name, { ...r });
    } else if (method === "entropy") {
      // Exact zeros are exact at any threshold: leaving them in bin 0 (often most of a post-ReLU
      // tensor) makes KL favour tiny ranges that clip the informative tail.
      const nz = h.slice();
      nz[0] = Math.max(0, nz[0]! - (stats.zeros.get(name) ?? 0));
      out.set(name, { min: r.min, max: entropyMax(nz, r.max) });
    } else if (method.startsWith("percentile:")) {
      const p = Number(method.slice("percentile:".length));
      if (!(p > 0 && p <= 100)) {
        throw new RangeError(
          `Cannot calibrate with ${method} as the percentile must be in (0, 100]: current value is ${p}`,
        );
      }
      out.set(name, { min: r.min, max: percentileMax(h, r.max, p) });
    } else {
      throw new RangeError(
        `Cannot calibrate with ${method} as the method must be minmax, entropy or percentile:<p>`,
      );
    }
  }
  return out;
}
