import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { topK } from "../../routes/classify.ts";
import { betaKey } from "../../model/export/manifest.ts";
import { webgpuAdapterInfo } from "../../runtime/ort.ts";
import { DEFAULT_MODELS_DIR, ModelRegistry, variantCost } from "../../runtime/registry.ts";
import { labelledFixtures, readFixture } from "../fixtures/fixtures.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const artifacts = await writeTinyArtifacts({ alphas: [0.25, 0.5, 1] });
const registry = await ModelRegistry.open({ dir: artifacts.dir, warmupRuns: 1 });
const app = createApp({ readiness: registry, classify: { models: registry } });
const png = new Uint8Array(await readFixture("fmnist/png/t10k_00000.png"));

async function classify(query: string, init: RequestInit = {}) {
  const res = await app.request(`/v1/classify${query}`, { method: "POST", body: png, ...init });
  return { res, body: await res.json() };
}

Deno.test({
  ...opts,
  name: "POST /v1/classify answers 503 with Retry-After until the registry is loaded and warmed",
  fn: async () => {
    const { res, body } = await classify("");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.match(body.detail, /not loaded yet/);
    assert.equal((await app.request("/readyz")).status, 503);
    await registry.load();
    assert.equal((await app.request("/readyz")).status, 200);
  },
});

Deno.test({
  ...opts,
  name:
    "POST /v1/classify answers predictions, the model that ran, its cost, timings and Server-Timing",
  fn: async () => {
    const { res, body } = await classify("?alpha=0.5&beta=0.75&topk=3", {
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.predictions.length, 3);
    for (const p of body.predictions) {
      assert.equal(p.label, artifacts.manifest.models[0]!.labels[p.index]);
      assert.ok(p.score > 0 && p.score < 1);
    }
    assert.ok(body.predictions[0].score >= body.predictions[1].score);
    assert.deepEqual(body.model, {
      id: "mobilenet_v1_a0.5",
      arch: "mobilenet_v1",
      alpha: 0.5,
      beta: 0.75,
      resolution: 21,
      precision: "int8",
      backend: "ort-wasm",
      trained: false,
    });
    assert.deepEqual(body.cost, variantCost(registry.variantForAlpha(0.5)!, 21));
    assert.deepEqual(body.image, { type: "png", width: 28, height: 28, inverted: false });
    assert.deepEqual(Object.keys(body.timing_ms), [
      "decode",
      "preprocess",
      "queue",
      "inference",
      "total",
    ]);
    const st = res.headers.get("server-timing") ?? "";
    for (const k of ["decode", "preprocess", "queue", "inference", "total"]) {
      assert.match(st, new RegExp(`${k};dur=[0-9.]+`));
    }
  },
});

Deno.test({
  ...opts,
  name: "POST /v1/classify gives the same answer for a raw body and for multipart field image",
  fn: async () => {
    const raw = await classify("?alpha=0.25");
    const form = new FormData();
    form.append("note", "a field that is ignored");
    form.append("image", new File([png as BlobPart], "shoe.png", { type: "image/png" }));
    const multi = await classify("?alpha=0.25", { body: form });
    assert.equal(multi.res.status, 200, JSON.stringify(multi.body));
    assert.deepEqual(multi.body.predictions, raw.body.predictions);
  },
});

Deno.test({
  ...opts,
  name: "POST /v1/classify answers 400 for a multipart body without field image, naming the fields",
  fn: async () => {
    const form = new FormData();
    form.append("file", new File([png as BlobPart], "shoe.png"));
    const { res, body } = await classify("", { body: form });
    assert.equal(res.status, 400);
    assert.match(body.detail, /no file in field image \(fields: file\)/);
  },
});

Deno.test({
  ...opts,
  name:
    "POST /v1/classify defaults to the most accurate alpha in the manifest, beta 1 and top 5; resolution= sets pixels",
  fn: async () => {
    const d = await classify("");
    // The tiny manifest gives every width the same accuracy: the widest wins the tie.
    assert.equal(d.body.model.alpha, 1);
    assert.equal(d.body.model.resolution, 28);
    assert.equal(d.body.predictions.length, 5);
    const r = await classify("?resolution=14");
    assert.equal(r.body.model.resolution, 14);
    assert.equal(r.body.model.beta, 0.5);
  },
});

Deno.test({
  ...opts,
  name: "POST /v1/classify invert=true flips polarity and the answer says so",
  fn: async () => {
    const { body } = await classify("?invert=true");
    assert.equal(body.image.inverted, true);
    const auto = await classify("?invert=auto");
    assert.equal(auto.body.image.inverted, false);
  },
});

Deno.test("topK() equals a full sort (score down, index up on ties) for every k", () => {
  const labels = Array.from({ length: 12 }, (_, i) => `c${i}`);
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let t = 0; t < 300; t++) {
    const n = 1 + Math.floor(next() * 12);
    // Many ties: a third of the logits are small integers.
    const logits = new Float32Array(n).map(() =>
      next() < 0.3 ? Math.floor(next() * 3) : (next() - 0.5) * 20
    );
    const max = Math.max(...logits);
    const exp = Array.from(logits, (x) => Math.exp(x - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    const sorted = exp.map((e, index) => ({ label: labels[index]!, index, score: e / sum }))
      .sort((a, b) => b.score - a.score || a.index - b.index);
    for (let k = 1; k <= n + 1; k++) {
      assert.deepEqual(topK(logits, labels, k), sorted.slice(0, k), `[${logits}] k=${k}`);
    }
  }
});

Deno.test("topK() gives softmax scores summing to 1 over all classes, best first", () => {
  const p = topK(new Float32Array([1, 3, 2, 3]), ["a", "b", "c", "d"], 4);
  assert.deepEqual(p.map((x) => x.index), [1, 3, 2, 0]);
  assert.ok(Math.abs(p.reduce((s, x) => s + x.score, 0) - 1) < 1e-12);
  // Large logits must not overflow.
  const big = topK(new Float32Array([1000, 999]), ["a", "b"], 1);
  assert.ok(Math.abs(big[0]!.score - 1 / (1 + Math.exp(-1))) < 1e-9);
});

// --- the shipped models on the Fashion-MNIST fixtures -----------------------------------------

const shipped = await Deno.stat(`${DEFAULT_MODELS_DIR}manifest.json`).then(() => true, () => false);
if (!shipped) console.log("fixture accuracy skipped: model/artifacts/ has no manifest.json yet");

/** Top-1 correctness per fixture index for the smallest shipped width, served in-process. */
async function fixtureResults() {
  const models = await ModelRegistry.open({ warmupRuns: 0 });
  await models.load();
  const served = createApp({ readiness: models, classify: { models } });
  try {
    // The smallest width: the fastest to run 450 requests, and the one most sensitive to input.
    const alpha = models.alphas[0]!;
    const m = models.variantForAlpha(alpha)!.manifest;
    const correct = async (kind: "png" | "jpeg" | "photo") => {
      const out = new Map<number, boolean>();
      for (const f of await labelledFixtures(kind)) {
        const res = await served.request(`/v1/classify?alpha=${alpha}&topk=1`, {
          method: "POST",
          body: new Uint8Array(await readFixture(f.file)),
        });
        const body = await res.json();
        assert.equal(res.status, 200, `${f.file}: ${JSON.stringify(body)}`);
        out.set(Number(f.file.match(/(\d+)\.\w+$/)![1]), body.predictions[0].index === f.label);
      }
      return out;
    };
    return {
      m,
      png: await correct("png"),
      jpeg: await correct("jpeg"),
      photo: await correct("photo"),
    };
  } finally {
    await models.close();
  }
}

const rate = (r: Map<number, boolean>, keys = [...r.keys()]) =>
  keys.filter((k) => r.get(k)).length / keys.length;

Deno.test({
  ...opts,
  name: "POST /v1/classify on the PNG fixtures matches deno task eval's accuracy",
  ignore: !shipped,
  fn: async () => {
    const { m, png, jpeg, photo } = await fixtureResults();
    const evalAcc = m.accuracy.int8[betaKey(1)];
    const accPng = rate(png);
    console.log(
      `${m.id} (trained: ${m.trained}): eval int8 ${
        evalAcc ?? "not measured"
      }, fixtures png ${accPng}, ` +
        `jpeg ${rate(jpeg)}, photo ${rate(photo)} vs the same ${photo.size} originals ${
          rate(png, [...photo.keys()])
        }`,
    );
    if (evalAcc === undefined) {
      console.log("eval comparison skipped: the manifest has no int8 accuracy at beta 1 yet");
      return;
    }
    // Sampling noise of 200 images: 3 binomial standard deviations, plus a point for the
    // fixtures being the first 20 per class rather than a random draw.
    const sigma = Math.sqrt(evalAcc * (1 - evalAcc) / png.size);
    assert.ok(
      Math.abs(accPng - evalAcc) <= 3 * sigma + 0.01,
      `png fixtures ${accPng} vs eval ${evalAcc} (3 sigma ${3 * sigma})`,
    );
  },
});

// Issue #4's target: photo-like copies must not lose accuracy. The multi-resolution alpha 0.25
// model trained without photo augmentation lost 8 points (70% against 78%); with the photo round
// trip (`--resample 0.5`, model/train/queue.sh) the next model gave 76% against 78%, and the
// shipped one (Adam 1e-2, 6 epochs + 2 photo epochs) 88% against 82%. The bound is one-sided: these
// are 50 images (one image is 2 points), and on 2,000 test images the same model loses 1.0 point to
// a 1024-px round trip (`deno run -A bench/photo_blur_eval.ts --limit 2000 --sides 28,1024`:
// 90.00% against 89.00%), so the 6-point gain here is the sample, not a property to guard.
Deno.test({
  ...opts,
  name: "POST /v1/classify: photo-like copies score no more than 3 points below their originals",
  ignore: !shipped,
  fn: async () => {
    const { m, png, photo } = await fixtureResults();
    assert.ok(m.trained, `${m.id} is an untrained stand-in`);
    const accPhoto = rate(photo);
    const accPngSame = rate(png, [...photo.keys()]);
    assert.ok(accPngSame - accPhoto <= 0.03, `photo ${accPhoto} vs png ${accPngSame}`);
  },
});

const NO_WEBGPU = (await webgpuAdapterInfo()) === null;
if (NO_WEBGPU) console.log("backend=ort-webgpu test skipped: navigator.gpu gives no adapter");

Deno.test({
  ...opts,
  name:
    "POST /v1/classify?backend=ort-webgpu answers what ort-wasm answers (BACKEND=ort-wasm,ort-webgpu)",
  ignore: NO_WEBGPU,
  fn: async () => {
    const both = await ModelRegistry.open({
      dir: artifacts.dir,
      backends: ["ort-wasm", "ort-webgpu"],
      warmupRuns: 1,
    });
    await both.load();
    const app2 = createApp({ readiness: both, classify: { models: both } });
    try {
      const ask = async (backend: string) => {
        const res = await app2.request(`/v1/classify?alpha=0.25&backend=${backend}`, {
          method: "POST",
          body: png,
        });
        return await res.json();
      };
      const wasm = await ask("ort-wasm");
      const gpu = await ask("ort-webgpu");
      assert.equal(gpu.model.backend, "ort-webgpu");
      assert.deepEqual(
        gpu.predictions.map((p: { index: number }) => p.index),
        wasm.predictions.map((p: { index: number }) => p.index),
      );
      gpu.predictions.forEach((p: { score: number }, i: number) =>
        assert.ok(Math.abs(p.score - wasm.predictions[i].score) < 1e-3)
      );
    } finally {
      await both.close();
    }
  },
});
