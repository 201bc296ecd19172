/**
 * The Workers entry's handler, run in Deno (no wrangler): it builds the app around the bundled
 * models on the first request and answers like the Deno app. Importing edge/worker.ts here also
 * makes `deno test` type-check its compile-time check against ModelRegistry's public members.
 */
import assert from "node:assert/strict";
import { createWorker } from "../../edge/worker.ts";
import { compileInt8Module } from "../../kernels/wasm/int8_wasm.ts";
import { ClassifyResponseSchema, CostResponseSchema } from "../../routes/schemas.ts";
import { readFixture } from "../fixtures/fixtures.ts";

const ARTIFACTS = new URL("../../model/artifacts/", import.meta.url);
const missing = await Deno.stat(new URL("manifest.json", ARTIFACTS)).then(
  () => null,
  () => "model/artifacts/ has no manifest",
);

Deno.test({
  name: `createWorker() serves classify, cost, the page and a 501 for /metrics${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== null,
  async fn() {
    const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS)));
    const files: Record<string, ArrayBuffer> = {};
    for (const m of manifest.models as { file: string }[]) {
      files[m.file] = (await Deno.readFile(new URL(m.file, ARTIFACTS))).slice().buffer;
    }
    const worker = createWorker({
      manifest,
      files,
      kernels: await compileInt8Module(),
      warmupRuns: 1,
    });
    const body = (await readFixture("fmnist/png/t10k_00000.png")).slice();
    const res = await worker.fetch(
      new Request("http://worker/v1/classify?topk=3", { method: "POST", body }),
    );
    const j = await res.json();
    assert.equal(res.status, 200, JSON.stringify(j));
    assert.equal(j.predictions.length, 3);
    assert.equal(j.model.backend, "kernels-wasm");
    // The answers have exactly the shape /openapi.json documents (no undocumented top-level field).
    ClassifyResponseSchema.strict().parse(j);
    const ready = await worker.fetch(new Request("http://worker/readyz"));
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    const cost = await worker.fetch(new Request(`http://worker/v1/cost?alpha=${j.model.alpha}`));
    const costBody = await cost.json();
    CostResponseSchema.strict().parse(costBody);
    assert.equal(costBody.totals.macs, j.cost.macs);
    const page = await worker.fetch(new Request("http://worker/"));
    assert.equal(page.status, 200);
    await page.body?.cancel();
    const metrics = await worker.fetch(new Request("http://worker/metrics"));
    assert.equal(metrics.status, 501);
    assert.match((await metrics.json()).detail, /not served on Cloudflare Workers/);
  },
});

Deno.test("the Workers entry's module graph imports no Node built-in (Workers run without nodejs_compat)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../../edge/worker.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const local = graph.modules.filter((m) => m.specifier.startsWith("file:")).length;
  assert.ok(local > 20, `the graph has only ${local} local modules`);
  const node = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("node:"));
  assert.deepEqual(node, []);
});
