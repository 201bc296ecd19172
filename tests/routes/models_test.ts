import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { servedCostDefaults } from "../../routes/models.ts";
import { ModelRegistry, variantCost } from "../../runtime/registry.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name:
    "GET /v1/models lists every variant with the manifest's accuracy tables and measured latency",
  fn: async () => {
    const a = await writeTinyArtifacts({
      alphas: [0.25, 1],
      edit: (m) => (m.accuracy.int8 = { "1": m.alpha * 0.9, "0.5": m.alpha * 0.7 }),
    });
    const registry = await ModelRegistry.open({ dir: a.dir, warmupRuns: 1 });
    const app = createApp({ readiness: registry, classify: { models: registry } });
    const before = await (await app.request("/v1/models")).json();
    assert.equal(before.ready, false);
    await registry.load();
    try {
      const res = await app.request("/v1/models");
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.ready, true);
      // int8 accuracy at beta 1 is alpha * 0.9 here: the widest is the most accurate.
      assert.deepEqual(body.default, { alpha: 1, beta: 1, backend: "ort-wasm" });
      assert.deepEqual(body.models.map((m: { id: string }) => m.id), [
        "mobilenet_v1_a0.25",
        "mobilenet_v1_a1",
      ]);
      for (const [i, m] of body.models.entries()) {
        // Copied from the manifest, never typed in.
        assert.deepEqual(m.accuracy, a.manifest.models[i]!.accuracy);
        assert.equal(m.sha256, a.manifest.models[i]!.sha256);
        const half = m.betas.find((b: { beta: number }) => b.beta === 0.5);
        assert.equal(half.resolution, 14);
        assert.equal(half.accuracy.int8, a.manifest.models[i]!.accuracy.int8["0.5"]);
        assert.equal(half.accuracy.float, null);
        assert.equal(half.macs, variantCost(registry.variants[i]!, 14).macs);
        assert.ok(half.warmLatencyMs["ort-wasm"] > 0);
      }
    } finally {
      await registry.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "GET /v1/models marks a beta below the stride plan's minimum as not served",
  fn: async () => {
    // Base 16 with the stem-1 plan: beta 0.5 gives 8 pixels, below the plan's 9.
    const a = await writeTinyArtifacts({ alphas: [0.5], baseResolution: 16 });
    const registry = await ModelRegistry.open({ dir: a.dir, warmupRuns: 0 });
    const body = await (await createApp({ classify: { models: registry } }).request("/v1/models"))
      .json();
    const rows = body.models[0].betas;
    assert.deepEqual(
      rows.map((r: { resolution: number; served: boolean }) => [r.resolution, r.served]),
      [[16, true], [14, true], [12, true], [8, false]],
    );
    assert.equal(rows[3].macs, undefined);
  },
});

Deno.test("GET /v1/cost describes the served model family once models are served", async () => {
  const a = await writeTinyArtifacts({ alphas: [0.5] });
  const registry = await ModelRegistry.open({ dir: a.dir });
  const app = createApp({ costDefaults: servedCostDefaults(registry)! });
  const body = await (await app.request("/v1/cost?alpha=0.5&beta=0.75")).json();
  assert.equal(body.model.resolution, 21);
  assert.equal(body.model.classes, 10);
  assert.equal(body.model.inputChannels, 1);
  assert.equal(body.model.stridePlan, "imagenet_stem1");
  assert.equal(body.totals.macs, variantCost(registry.variants[0]!, 21).macs);
});

Deno.test("GET /v1/cost describes each served width with its own stride plan when plans differ", async () => {
  const a = await writeTinyArtifacts({
    alphas: [0.25, 0.5],
    edit: (m) => {
      if (m.alpha === 0.25) m.stridePlan = "cifar";
    },
  });
  const registry = await ModelRegistry.open({ dir: a.dir });
  const app = createApp({ costDefaults: servedCostDefaults(registry)! });
  const quarter = await (await app.request("/v1/cost?alpha=0.25")).json();
  assert.equal(quarter.model.stridePlan, "cifar");
  assert.equal(quarter.totals.macs, variantCost(registry.variantForAlpha(0.25)!, 28).macs);
  const half = await (await app.request("/v1/cost?alpha=0.5&beta=0.75")).json();
  assert.equal(half.model.stridePlan, "imagenet_stem1");
  assert.equal(half.totals.macs, variantCost(registry.variantForAlpha(0.5)!, 21).macs);
  assert.match(half.model.defaultsFrom, /cifar \(alpha 0\.25\), imagenet_stem1 \(alpha 0\.5\)/);
  // A width that is not served, or an explicit stride_plan, keeps the usual rules.
  const other = await (await app.request("/v1/cost?alpha=0.25&stride_plan=imagenet")).json();
  assert.equal(other.model.stridePlan, "imagenet");
  const unserved = await (await app.request("/v1/cost?alpha=0.75")).json();
  assert.equal(unserved.model.stridePlan, registry.variants[0]!.stridePlan);
});
