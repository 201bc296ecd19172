import assert from "node:assert/strict";
import {
  DEFAULT_MODELS_DIR,
  ModelRegistry,
  registryOptionsFromEnv,
  variantCost,
} from "../../runtime/registry.ts";
import { writeTinyArtifacts } from "./tiny_artifacts.ts";
import { tinyLogits } from "./tiny_model.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

function env(vars: Record<string, string>) {
  return { get: (k: string) => vars[k] };
}

Deno.test({
  ...opts,
  name: "registry is not ready until load() verified and warmed every variant, then infers",
  fn: async () => {
    const a = await writeTinyArtifacts({ alphas: [0.25, 0.5] });
    const r = await ModelRegistry.open({ dir: a.dir, warmupRuns: 2 });
    assert.equal(r.ready(), false);
    assert.match(r.reason(), /not loaded yet/);
    assert.deepEqual(r.alphas, [0.25, 0.5]);
    await r.load();
    try {
      assert.equal(r.ready(), true);
      // Warm-up measured every beta the manifest tables use (28 * 0.5 = 14 >= the plan's 9 pixels).
      for (const v of r.variants) {
        assert.deepEqual(Object.keys(v.latencyMs["ort-wasm"]!).sort(), [
          "0.5",
          "0.75",
          "0.875",
          "1",
        ]);
      }
      const x = new Float32Array(28 * 28).map((_, i) => (i % 17) / 17);
      const v = r.variantForAlpha(0.5)!;
      const res = await r.infer({
        model: v.manifest.id,
        backend: "ort-wasm",
        input: x,
        shape: [1, 1, 28, 28],
      });
      const want = tinyLogits(a.models[1]!, x, 1, 28, 28);
      res.logits.forEach((y, i) => assert.ok(Math.abs(y - want[i]!) < 1e-5, `logit ${i}`));
      assert.ok(res.inferenceMs >= 0 && res.queueMs >= 0);
      assert.equal(r.loadedModels.length, 2);
    } finally {
      await r.close();
    }
    assert.equal(r.ready(), false);
  },
});

Deno.test({
  ...opts,
  name: "registry load() fails fast naming the model and both hashes when a file's sha256 differs",
  fn: async () => {
    const a = await writeTinyArtifacts({
      alphas: [0.25],
      edit: (m) => (m.sha256 = "0".repeat(64)),
    });
    const r = await ModelRegistry.open({ dir: a.dir });
    await assert.rejects(
      r.load(),
      /model mobilenet_v1_a0.25 as the sha256 of mobilenet_v1_a0.25.onnx is [0-9a-f]{64}: the manifest says 0{64}/,
    );
    assert.equal(r.ready(), false);
    assert.match(r.reason(), /failed to load: .*sha256/);
  },
});

Deno.test({
  ...opts,
  name: "registry load() names the input tensor and both shapes when the ONNX input differs",
  fn: async () => {
    const a = await writeTinyArtifacts({
      alphas: [0.25],
      edit: (m) => (m.input.shape = ["batch", 1, 28, 28]),
    });
    const r = await ModelRegistry.open({ dir: a.dir });
    await assert.rejects(
      r.load(),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message.includes(
          "input input has shape [batch,1,height,width] in mobilenet_v1_a0.25.onnx: the manifest says [batch,1,28,28]",
        ),
    );
  },
});

Deno.test({
  ...opts,
  name: "registry load() names the missing output and lists the file's outputs",
  fn: async () => {
    const a = await writeTinyArtifacts({
      alphas: [0.25],
      edit: (m) => (m.output.name = "probs"),
    });
    const r = await ModelRegistry.open({ dir: a.dir });
    await assert.rejects(
      r.load(),
      /has no output named probs: its outputs are logits \[batch,10\]/,
    );
  },
});

Deno.test({
  ...opts,
  name: "registry load() refuses a file whose size differs from the manifest",
  fn: async () => {
    const a = await writeTinyArtifacts({ alphas: [0.25] });
    const file = `${a.dir}/${a.manifest.models[0]!.file}`;
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.subarray(0, bytes.length - 10));
    const r = await ModelRegistry.open({ dir: a.dir });
    await assert.rejects(r.load(), /has \d+ bytes: the manifest says \d+/);
  },
});

Deno.test({
  ...opts,
  name: "registry with inProcess: false verifies the files, is ready, and refuses to infer itself",
  fn: async () => {
    const a = await writeTinyArtifacts({ alphas: [0.25] });
    const r = await ModelRegistry.open({ dir: a.dir, inProcess: false });
    await r.load();
    assert.ok(r.ready());
    assert.equal(r.loadedModels[0]!.id, "mobilenet_v1_a0.25");
    await assert.rejects(
      r.infer({
        model: "mobilenet_v1_a0.25",
        backend: "ort-wasm",
        input: new Float32Array(784),
        shape: [1, 1, 28, 28],
      }),
      /inProcess: false/,
    );
  },
});

Deno.test("registry defaultVariant: trained first, then the most accurate at beta 1, then the widest", async () => {
  const measured = await writeTinyArtifacts({
    alphas: [0.25, 0.5, 1],
    edit: (m) => (m.accuracy.int8 = { "1": m.alpha === 0.5 ? 0.9 : 0.3 }),
  });
  assert.equal(
    (await ModelRegistry.open({ dir: measured.dir })).defaultVariant.manifest.alpha,
    0.5,
  );
  const none = await writeTinyArtifacts({
    alphas: [0.25, 0.5],
    edit: (m) => (m.accuracy.int8 = {}),
  });
  assert.equal((await ModelRegistry.open({ dir: none.dir })).defaultVariant.manifest.alpha, 0.5);
  // A trained model whose eval has not run yet still beats an evaluated untrained stand-in.
  const mixed = await writeTinyArtifacts({
    alphas: [0.25, 0.5],
    edit: (m) => {
      m.trained = m.alpha === 0.25;
      m.accuracy.int8 = m.trained ? {} : { "1": 0.3 };
    },
  });
  assert.equal((await ModelRegistry.open({ dir: mixed.dir })).defaultVariant.manifest.alpha, 0.25);
});

Deno.test("registry open() says to set MODELS_DIR when the directory has no manifest", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(ModelRegistry.open({ dir }), /manifest.json cannot be read.*Set MODELS_DIR/);
});

Deno.test("registry open() refuses a manifest entry whose stride plan the spec cannot resolve", async () => {
  const a = await writeTinyArtifacts({ alphas: [0.25], edit: (m) => (m.stridePlan = "2,2") });
  await assert.rejects(ModelRegistry.open({ dir: a.dir }), /must list 14 strides/);
});

Deno.test("registryOptionsFromEnv reads MODELS_DIR, BACKEND (first is default) and ORT_THREADS", () => {
  assert.deepEqual(
    registryOptionsFromEnv(
      env({ MODELS_DIR: "/m", BACKEND: "ort-wasm, ort-webgpu", ORT_THREADS: "2" }),
    ),
    { dir: "/m", backends: ["ort-wasm", "ort-webgpu"], numThreads: 2 },
  );
  // Unset BACKEND: the own int8 engine answers by default, onnxruntime-web stays selectable.
  assert.deepEqual(registryOptionsFromEnv(env({})), { backends: ["kernels-wasm", "ort-wasm"] });
  assert.throws(() => registryOptionsFromEnv(env({ ORT_THREADS: "two" })), /positive integer/);
  assert.ok(DEFAULT_MODELS_DIR.endsWith("/model/artifacts/"));
});

Deno.test("registry refuses a BACKEND name with no implementation, listing the known ones", async () => {
  const a = await writeTinyArtifacts({ alphas: [0.25] });
  await assert.rejects(
    ModelRegistry.open({ dir: a.dir, backends: ["tensorrt"] }),
    /Cannot use backend tensorrt .*ort-wasm, ort-webgpu/,
  );
});

Deno.test("variantCost() gives the spec's MACs at the resolution that ran", async () => {
  const a = await writeTinyArtifacts({ alphas: [0.25] });
  const r = await ModelRegistry.open({ dir: a.dir });
  const v = r.variants[0]!;
  const full = variantCost(v, 28);
  const half = variantCost(v, 14);
  assert.ok(full.macs > half.macs * 3, `${full.macs} vs ${half.macs}`);
  assert.equal(full.params, half.params);
});

const shipped = await Deno.stat(`${DEFAULT_MODELS_DIR}manifest.json`).then(() => true, () => false);
Deno.test({
  ...opts,
  name: "registry loads, verifies and warms the shipped model/artifacts",
  ignore: !shipped,
  fn: async () => {
    const r = await ModelRegistry.open({ warmupRuns: 1 });
    await r.load();
    try {
      assert.ok(r.ready());
      assert.ok(r.variants.length >= 1);
    } finally {
      await r.close();
    }
  },
});
if (!shipped) console.log(`shipped-model test skipped: no ${DEFAULT_MODELS_DIR}manifest.json yet`);
