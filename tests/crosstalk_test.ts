/**
 * No cross-talk: 1,000 requests in flight at once, each a different (image, width, resolution),
 * batched together by the scheduler and run in two workers; every answer must equal the answer the
 * same request gets when sent alone.
 */
import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import { BETAS } from "../model/export/manifest.ts";
import { createServiceMetrics } from "../runtime/metrics.ts";
import { ModelRegistry } from "../runtime/registry.ts";
import { scheduledInference, startScheduler } from "../runtime/scheduler_setup.ts";
import { labelledFixtures, readFixture } from "./fixtures/fixtures.ts";
import { writeTinyArtifacts } from "./runtime/tiny_artifacts.ts";

const ALPHAS = [0.25, 0.5, 0.75, 1];

Deno.test("1,000 concurrent classifications with different images, widths and resolutions each get the answer they get alone", async () => {
  const art = await writeTinyArtifacts({ alphas: ALPHAS });
  const registry = await ModelRegistry.open({ dir: art.dir, inProcess: false });
  await registry.load();
  const metrics = createServiceMetrics();
  const scheduler = await startScheduler(registry, {
    metrics,
    env: {
      get: (k) =>
        ({ WORKERS: "2", MAX_BATCH: "16", MAX_QUEUE: "1000" } as Record<string, string>)[k],
    },
    warmupRuns: 1,
  });
  const app = createApp({
    metrics,
    classify: { models: registry, inference: scheduledInference(() => scheduler) },
  });
  try {
    const files = [
      ...(await labelledFixtures("png")),
      ...(await labelledFixtures("jpeg")),
      ...(await labelledFixtures("photo")).slice(0, 10),
    ].map((f) => f.file);
    const images = await Promise.all(files.map((f) => readFixture(f)));
    // 1,000 different requests: image i, with the width and resolution cycling independently.
    const requests = Array.from({ length: 1000 }, (_, i) => ({
      image: images[i % images.length]!,
      query: `alpha=${ALPHAS[i % 4]}&beta=${BETAS[Math.floor(i / 4) % 4]}&topk=10`,
    }));
    const classify = async (r: (typeof requests)[number]) => {
      const res = await app.request(`/v1/classify?${r.query}`, {
        method: "POST",
        body: new Blob([new Uint8Array(r.image)]),
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return { predictions: body.predictions, model: body.model };
    };

    const alone = [];
    for (const r of requests) alone.push(await classify(r));
    const batchesBefore = totalBatches(metrics);

    const together = await Promise.all(requests.map(classify));

    const batches = totalBatches(metrics);
    const ran = batches.images - batchesBefore.images;
    const count = batches.count - batchesBefore.count;
    assert.equal(ran, 1000, "every request ran exactly once");
    assert.ok(count < 1000, `requests shared batches: ${count} batches for 1,000 requests`);
    for (let i = 0; i < requests.length; i++) {
      assert.deepEqual(together[i], alone[i], `request ${i} (${requests[i]!.query})`);
    }
    // The answers differ between requests: equal answers would not show a swap.
    assert.ok(new Set(alone.map((a) => JSON.stringify(a))).size > 900);
  } finally {
    await scheduler.close();
    await Deno.remove(art.dir, { recursive: true });
  }
});

/** Images run and batches sent so far, over every variant. */
function totalBatches(m: ReturnType<typeof createServiceMetrics>) {
  let images = 0;
  let count = 0;
  for (const line of m.registry.render().split("\n")) {
    const s = line.match(/^scheduler_batch_size_sum\{.*\} (\d+)/);
    if (s) images += Number(s[1]);
    const c = line.match(/^scheduler_batch_size_count\{.*\} (\d+)/);
    if (c) count += Number(c[1]);
  }
  return { images, count };
}
