import assert from "node:assert/strict";
import {
  type CalibrationStats,
  entropyMax,
  HISTOGRAM_BINS,
  rangesFor,
} from "../../../model/export/calibrate.ts";

function stats(h: Float64Array, max: number): CalibrationStats {
  return {
    images: 1,
    minMax: new Map([["t", { min: 0, max }], ["input", { min: -1, max: 2 }]]),
    histograms: new Map([["t", h]]),
    zeros: new Map([["t", 0]]),
  };
}

Deno.test("rangesFor() percentile cuts a long tail and keeps min/max for tensors that go negative", () => {
  const h = new Float64Array(HISTOGRAM_BINS);
  h[10] = 999_990; // the bulk near 10/2048 of the max
  h[HISTOGRAM_BINS - 1] = 10; // 0.001% outliers at the max
  const s = stats(h, 100);
  assert.equal(rangesFor(s, "minmax").get("t")!.max, 100);
  const p = rangesFor(s, "percentile:99.99").get("t")!.max;
  assert.ok(Math.abs(p - (11 / HISTOGRAM_BINS) * 100) < 1e-9, `percentile max ${p}`);
  assert.equal(rangesFor(s, "percentile:100").get("t")!.max, 100);
  assert.deepEqual(rangesFor(s, "entropy").get("input"), { min: -1, max: 2 });
  assert.throws(() => rangesFor(s, "percentile:0"), /percentile must be in \(0, 100\]/);
});

Deno.test("entropyMax() keeps the whole range of a uniform histogram and clips a far outlier", () => {
  const flat = new Float64Array(HISTOGRAM_BINS).fill(1);
  assert.ok(entropyMax(flat, 8) > 7.9);
  const tail = new Float64Array(HISTOGRAM_BINS);
  for (let i = 0; i < 300; i++) tail[i] = 1000 * Math.exp(-i / 60);
  tail[HISTOGRAM_BINS - 1] = 1;
  const t = entropyMax(tail, 8);
  assert.ok(t < 3, `threshold ${t} should sit near the bulk (bins < 300 of 2048 = 1.17)`);
  assert.ok(t >= (256 / HISTOGRAM_BINS) * 8);
});
