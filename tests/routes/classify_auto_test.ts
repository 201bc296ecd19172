import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { ModelRegistry } from "../../runtime/registry.ts";
import { chooseAuto, scheduledInference, startScheduler } from "../../runtime/scheduler_setup.ts";
import { readFixture } from "../fixtures/fixtures.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";

Deno.test("POST /v1/classify with alpha=auto and beta=auto runs the most accurate variant that fits the deadline", async (t) => {
  // Manifest accuracy (int8): alpha 0.5 beats 0.25; beta 1 beats 0.75.
  const art = await writeTinyArtifacts({
    alphas: [0.25, 0.5],
    edit: (m) => {
      m.accuracy.int8 = m.alpha === 0.5 ? { "1": 0.9, "0.75": 0.85 } : { "1": 0.8, "0.75": 0.7 };
    },
  });
  const registry = await ModelRegistry.open({ dir: art.dir, inProcess: false });
  await registry.load();
  const scheduler = await startScheduler(registry, {
    env: { get: (k) => (k === "WORKERS" ? "1" : undefined) },
    warmupRuns: 1,
  });
  const app = createApp({
    classify: {
      models: registry,
      inference: scheduledInference(() => scheduler),
      auto: (want) => chooseAuto(scheduler, registry, want),
    },
  });
  const png = new Blob([new Uint8Array(await readFixture("fmnist/png/t10k_00000.png"))]);
  const post = (query: string) =>
    app.request(`/v1/classify?${query}`, { method: "POST", body: png });
  try {
    await t.step("without a deadline: the most accurate width and resolution", async () => {
      const res = await post("alpha=auto&beta=auto");
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.model.alpha, 0.5);
      assert.equal(body.model.beta, 1);
    });
    await t.step("a fixed alpha stays fixed while beta=auto picks the resolution", async () => {
      const body = await (await post("alpha=0.25&beta=auto&deadline_ms=60000")).json();
      assert.equal(body.model.alpha, 0.25);
      assert.equal(body.model.resolution, 28);
    });
    await t.step("a deadline no measured p95 fits: 503 with Retry-After, nothing run", async () => {
      const res = await post("alpha=auto&deadline_ms=0.001");
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "1");
      assert.equal((await res.json()).reason, "deadline_unmeetable");
    });
    await t.step("beta=auto with resolution is a 400", async () => {
      const res = await post("beta=auto&resolution=20");
      assert.equal(res.status, 400);
      assert.equal((await res.json()).param, "beta");
    });
  } finally {
    await scheduler.close();
    await registry.close();
    await Deno.remove(art.dir, { recursive: true });
  }
});

Deno.test("POST /v1/classify?alpha=auto without a scheduler answers 400 naming alpha", async () => {
  const art = await writeTinyArtifacts({ alphas: [0.25] });
  const registry = await ModelRegistry.open({ dir: art.dir, warmupRuns: 0 });
  await registry.load();
  try {
    const app = createApp({ classify: { models: registry } });
    const png = new Blob([new Uint8Array(await readFixture("fmnist/png/t10k_00000.png"))]);
    const res = await app.request("/v1/classify?alpha=auto", { method: "POST", body: png });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.param, "alpha");
    assert.match(body.detail, /WORKERS/);
  } finally {
    await registry.close();
    await Deno.remove(art.dir, { recursive: true });
  }
});
