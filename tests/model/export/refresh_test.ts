import assert from "node:assert/strict";
import { bestPerAlpha, listRuns, parseMaxQmax } from "../../../model/export/refresh.ts";
import { saveWeights } from "../../../model/weights.ts";

Deno.test("listRuns() and bestPerAlpha() pick per alpha the best run, multi-resolution runs first", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = new Map([["x", { shape: [1], data: new Float32Array([1]) }]]);
    const meta = (alpha: number, acc: number[]) => ({
      arch: "mobilenet_v1",
      alpha,
      testAccuracy: acc,
      epochs: acc.length,
    });
    await saveWeights(`${dir}/a/model`, t, meta(0.25, [0.7, 0.8]));
    await saveWeights(`${dir}/b/model`, t, meta(0.25, [0.9]));
    await saveWeights(`${dir}/c/model`, t, meta(0.5, [0.6]));
    await Deno.mkdir(`${dir}/d/checkpoint`, { recursive: true }); // a run with no finished epoch
    // A multi-resolution run wins over a better single-resolution one.
    await saveWeights(`${dir}/e/model`, t, {
      ...meta(0.5, [0.55]),
      history: [{ testAccuracyByResolution: { "14": 0.45, "28": 0.55 } }],
    });
    // A mid-epoch snapshot counts with its snapshot accuracy.
    await saveWeights(`${dir}/f/model`, t, { ...meta(0.75, []), snapshot: { testAccuracy: 0.7 } });
    const runs = await listRuns(dir);
    assert.equal(runs.length, 5);
    const best = bestPerAlpha(runs);
    assert.equal(best.get(0.25)!.dir, `${dir}/b/model`);
    assert.equal(best.get(0.5)!.dir, `${dir}/e/model`);
    assert.equal(best.get(0.5)!.meanAccuracy, 0.5);
    assert.match(best.get(0.5)!.weightsSha256, /^[0-9a-f]{64}$/);
    assert.equal(best.get(0.75)!.testAccuracy, 0.7);
    assert.deepEqual(await listRuns(`${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bestPerAlpha() prefers a run with accuracy recorded at several resolutions, then the best mean over them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = new Map([["x", { shape: [1], data: new Float32Array([1]) }]]);
    const meta = (acc: number, byRes?: Record<string, number>) => ({
      arch: "mobilenet_v1",
      alpha: 0.25,
      testAccuracy: [acc],
      epochs: 1,
      history: [{ testAccuracy: acc, ...(byRes ? { testAccuracyByResolution: byRes } : {}) }],
    });
    await saveWeights(`${dir}/single/model`, t, meta(0.84));
    await saveWeights(`${dir}/multi/model`, t, meta(0.82, { "14": 0.7, "21": 0.8, "28": 0.82 }));
    await saveWeights(`${dir}/multi2/model`, t, meta(0.83, { "14": 0.6, "21": 0.7, "28": 0.83 }));
    const runs = await listRuns(dir);
    const multi = runs.find((r) => r.dir.endsWith("/multi/model"))!;
    assert.equal(multi.resolutionsCovered, 3);
    assert.ok(Math.abs(multi.meanAccuracy - (0.7 + 0.8 + 0.82) / 3) < 1e-12);
    assert.equal(bestPerAlpha(runs).get(0.25)!.dir, `${dir}/multi/model`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bestPerAlpha() with --max-qmax keeps only runs trained for that weight range or narrower", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = new Map([["x", { shape: [1], data: new Float32Array([1]) }]]);
    const meta = (acc: number, weightQmax?: number) => ({
      arch: "mobilenet_v1",
      alpha: 1,
      testAccuracy: [acc],
      epochs: 1,
      ...(weightQmax ? { weightQmax } : {}),
    });
    await saveWeights(`${dir}/float/model`, t, meta(0.9));
    await saveWeights(`${dir}/q7/model`, t, meta(0.89, 7));
    await saveWeights(`${dir}/q3/model`, t, meta(0.88, 3));
    const runs = await listRuns(dir);
    assert.equal(runs.find((r) => r.dir.endsWith("/float/model"))!.weightQmax, 64);
    assert.equal(bestPerAlpha(runs).get(1)!.dir, `${dir}/float/model`);
    assert.equal(bestPerAlpha(runs, parseMaxQmax("1=7")).get(1)!.dir, `${dir}/q7/model`);
    assert.equal(bestPerAlpha(runs, parseMaxQmax("0.5=7,1=3")).get(1)!.dir, `${dir}/q3/model`);
    assert.equal(bestPerAlpha(runs, parseMaxQmax("1=2")).get(1), undefined);
    assert.throws(() => parseMaxQmax("1=65"), /1\.\.64/);
    assert.throws(() => parseMaxQmax("x"), /alpha=Q/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listRuns() counts a weight average (train --epochs 0 --init A,B) with its per-side accuracy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = new Map([["x", { shape: [1], data: new Float32Array([1]) }]]);
    const base = { arch: "mobilenet_v1", alpha: 1, epochs: 0, testAccuracy: [], history: [] };
    await saveWeights(`${dir}/trained/model`, t, {
      ...base,
      epochs: 1,
      testAccuracy: [0.93],
      history: [{ testAccuracyByResolution: { "14": 0.89, "28": 0.93 } }],
    });
    await saveWeights(`${dir}/soup/model`, t, {
      ...base,
      average: { testAccuracy: 0.935, testAccuracyByResolution: { "14": 0.895, "28": 0.935 } },
    });
    const runs = await listRuns(dir);
    const soup = runs.find((r) => r.dir === `${dir}/soup/model`)!;
    assert.equal(soup.testAccuracy, 0.935);
    assert.equal(soup.resolutionsCovered, 2);
    assert.ok(Math.abs(soup.meanAccuracy - 0.915) < 1e-12, `${soup.meanAccuracy}`);
    assert.equal(bestPerAlpha(runs).get(1)!.dir, `${dir}/soup/model`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
