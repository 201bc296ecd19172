/**
 * The classify query schema (routes/schemas.ts, which documents POST /v1/classify in
 * /openapi.json) refuses exactly what the route refuses, with the same param, valid values and
 * sentence, checked against the route itself on the shipped manifest.
 */
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { CLASSIFY_PARAMS, classifyQuerySchema, problemFromIssues } from "../../routes/schemas.ts";
import { ModelRegistry } from "../../runtime/registry.ts";

const manifest = new URL("../../model/artifacts/manifest.json", import.meta.url);
const missing = await Deno.stat(manifest).then(
  () => null,
  () => "model/artifacts/ has no manifest",
);

Deno.test({
  name: `the classify query schema gives the route's own 400 answers${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== null,
  async fn() {
    // Opened, not loaded: the query is checked before readiness, so no model needs to run.
    const registry = await ModelRegistry.open();
    const app = createApp({ readiness: registry, classify: { models: registry } });
    const schema = classifyQuerySchema(registry);
    const queries = [
      "alpha=0.3",
      "alpha=wide",
      "alpha=0x1",
      "beta=0",
      "beta=1.5",
      "beta=abc",
      "beta=0.1",
      "beta=0.5&resolution=14",
      "beta=auto&resolution=14",
      "resolution=8",
      "resolution=29",
      "resolution=14.5",
      "resolution=x",
      "topk=0",
      "topk=11",
      "topk=two",
      "backend=cuda",
      "invert=yes",
      "deadline_ms=0",
      "deadline_ms=70000",
      "deadline_ms=soon",
      "colour=red",
    ];
    let compared = 0;
    for (const query of queries) {
      const res = await app.request(`/v1/classify?${query}`, { method: "POST", body: "x" });
      const route = await res.json();
      const parsed = schema.safeParse(Object.fromEntries(new URLSearchParams(query)));
      assert.equal(res.status, 400, `${query}: ${JSON.stringify(route)}`);
      assert.equal(parsed.success, false, `${query}: the schema accepts it`);
      const p = problemFromIssues(parsed.error!.issues, CLASSIFY_PARAMS).problem;
      assert.deepEqual(
        { param: p.param, valid: p.valid, detail: p.detail },
        { param: route.param, valid: route.valid, detail: route.detail },
        query,
      );
      compared++;
    }
    assert.equal(compared, queries.length);
    // And what the route accepts, the schema accepts.
    for (const query of ["alpha=0.5&beta=0.75&topk=3", "resolution=20&invert=false", ""]) {
      assert.ok(schema.safeParse(Object.fromEntries(new URLSearchParams(query))).success, query);
    }
  },
});
