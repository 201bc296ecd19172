/**
 * With the scheduler, small images are decoded by the inference workers in the batch they run in
 * (routes/classify.ts `inferImage`): the answer must be the one the in-process path gives, and an
 * image that cannot be decoded must get the same problem answer without failing its batch-mates.
 */
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { ModelRegistry } from "../../runtime/registry.ts";
import { scheduledInference, startScheduler } from "../../runtime/scheduler_setup.ts";
import { labelledFixtures, readFixture } from "../fixtures/fixtures.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";

Deno.test("Images decoded in the inference workers answer as in-process, and bad ones get 415/422 alone", async () => {
  const art = await writeTinyArtifacts({ alphas: [0.25] });
  const local = await ModelRegistry.open({ dir: art.dir });
  await local.load();
  const remote = await ModelRegistry.open({ dir: art.dir, inProcess: false });
  await remote.load();
  const scheduler = await startScheduler(remote, {
    env: { get: (k) => ({ WORKERS: "1", MAX_BATCH: "16" } as Record<string, string>)[k] },
    warmupRuns: 1,
  });
  const inProcess = createApp({ classify: { models: local } });
  const workers = createApp({
    classify: { models: remote, inference: scheduledInference(() => scheduler) },
  });
  try {
    const files = [
      ...(await labelledFixtures("png")).slice(0, 12),
      ...(await labelledFixtures("jpeg")).slice(0, 12),
    ].map((f) => f.file);
    const good = await Promise.all(files.map((f) => readFixture(f)));
    const png = good[0]!;
    const bad = [
      { bytes: new Uint8Array(300).map((_, i) => (i * 37) % 251), status: 415 },
      { bytes: png.slice(0, 60), status: 422 }, // a PNG cut inside its image data
    ];
    const post = async (app: typeof inProcess, bytes: Uint8Array, query = "beta=0.75&topk=3") => {
      const res = await app.request(`/v1/classify?${query}`, {
        method: "POST",
        body: new Blob([new Uint8Array(bytes)]),
      });
      const body = await res.json();
      if (res.status === 200) delete body.timing_ms;
      return { status: res.status, body };
    };
    // Every request at once, the bad ones among the good, so that they share batches.
    const all = [...good.map((b) => ({ bytes: b, status: 200 })), ...bad];
    const together = await Promise.all(all.map((r) => post(workers, r.bytes)));
    for (let i = 0; i < all.length; i++) {
      const expected = await post(inProcess, all[i]!.bytes);
      assert.equal(together[i]!.status, all[i]!.status, JSON.stringify(together[i]!.body));
      if (all[i]!.status !== 200) {
        assert.equal(together[i]!.body.status, all[i]!.status);
        assert.equal(together[i]!.body.detail, expected.body.detail);
        assert.equal(together[i]!.body.error, expected.body.error);
        continue;
      }
      assert.deepEqual(together[i]!.body.image, expected.body.image, files[i]);
      assert.deepEqual(together[i]!.body.model.id, expected.body.model.id);
      const [a, b] = [together[i]!.body.predictions, expected.body.predictions];
      assert.deepEqual(
        a.map((p: { index: number }) => p.index),
        b.map((p: { index: number }) => p.index),
      );
      for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k].score - b[k].score) < 1e-6);
    }
  } finally {
    await scheduler.close();
    await local.close();
    await remote.close();
    await Deno.remove(art.dir, { recursive: true });
  }
});
