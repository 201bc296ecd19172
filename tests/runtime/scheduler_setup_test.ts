import assert from "node:assert/strict";
import { ModelRegistry } from "../../runtime/registry.ts";
import {
  chooseAuto,
  schedulerOptionsFromEnv,
  startScheduler,
  workersEnabled,
} from "../../runtime/scheduler_setup.ts";
import { writeTinyArtifacts } from "./tiny_artifacts.ts";

const env = (o: Record<string, string>) => ({ get: (k: string) => o[k] });

Deno.test("schedulerOptionsFromEnv() reads WORKERS, MAX_BATCH, MAX_WAIT_MS, MAX_QUEUE, WORKER_NICE, MAX_LOOP_LAG_MS and names a bad one", () => {
  assert.deepEqual(
    schedulerOptionsFromEnv(
      env({
        WORKERS: "3",
        MAX_BATCH: "8",
        MAX_WAIT_MS: "0.5",
        MAX_QUEUE: "64",
        WORKER_NICE: "0",
        MAX_LOOP_LAG_MS: "7.5",
      }),
    ),
    { workers: 3, maxBatch: 8, maxWaitMs: 0.5, maxQueue: 64, workerNice: 0, maxLoopLagMs: 7.5 },
  );
  assert.throws(() => schedulerOptionsFromEnv(env({ MAX_LOOP_LAG_MS: "-2" })), /MAX_LOOP_LAG_MS/);
  assert.deepEqual(schedulerOptionsFromEnv(env({})), { workerNice: 10 });
  assert.throws(
    () => schedulerOptionsFromEnv(env({ WORKER_NICE: "20" })),
    /WORKER_NICE must be an integer in 0\.\.19 .*current value is 20/,
  );
  assert.throws(
    () => schedulerOptionsFromEnv(env({ MAX_BATCH: "1.5" })),
    /MAX_BATCH as it must be an integer >= 1: current value is 1.5/,
  );
  assert.throws(() => schedulerOptionsFromEnv(env({ MAX_WAIT_MS: "-1" })), /MAX_WAIT_MS/);
  assert.equal(workersEnabled(env({ WORKERS: "0" })), false);
  assert.equal(workersEnabled(env({})), true);
});

Deno.test("startScheduler() serves the registry's models from workers and chooseAuto() trades accuracy for the deadline", async () => {
  // Two widths; int8 accuracy: alpha 0.5 beats 0.25, beta 1 beats 0.75 (manifest numbers).
  const art = await writeTinyArtifacts({
    alphas: [0.25, 0.5],
    edit: (m) => {
      m.accuracy.int8 = m.alpha === 0.5 ? { "1": 0.9, "0.75": 0.85 } : { "1": 0.8, "0.75": 0.7 };
    },
  });
  const registry = await ModelRegistry.open({ dir: art.dir, inProcess: false });
  await registry.load();
  const scheduler = await startScheduler(registry, { env: env({ WORKERS: "1" }), warmupRuns: 1 });
  try {
    for (const v of registry.variants) {
      assert.ok(v.latencyMs["ort-wasm"]?.["1"]! > 0, "warm latency measured in the workers");
    }
    const best = chooseAuto(scheduler, registry, {
      alpha: "auto",
      beta: "auto",
      backend: "ort-wasm",
    });
    assert.equal(best?.variant.manifest.alpha, 0.5);
    assert.equal(best?.beta, 1);
    const fixedAlpha = chooseAuto(scheduler, registry, {
      alpha: 0.25,
      beta: "auto",
      backend: "ort-wasm",
      deadlineAt: performance.now() + 60_000,
    });
    assert.equal(fixedAlpha?.variant.manifest.alpha, 0.25);
    assert.equal(fixedAlpha?.resolution, 28);
    const none = chooseAuto(scheduler, registry, {
      alpha: "auto",
      beta: "auto",
      backend: "ort-wasm",
      deadlineAt: performance.now() - 1,
    });
    assert.equal(none, undefined, "nothing fits a deadline already passed");
    // The workers answer what the model computes.
    const m = registry.loadedModels[0]!;
    const input = new Float32Array(28 * 28).fill(0.5);
    const r = await scheduler.infer({
      model: m.id,
      backend: "ort-wasm",
      input,
      shape: [1, 1, 28, 28],
    });
    assert.equal(r.logits.length, m.classes);
  } finally {
    await scheduler.close();
    await registry.close();
    await Deno.remove(art.dir, { recursive: true });
  }
});
