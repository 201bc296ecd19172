import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Hono } from "hono";
import { openApiDocument, openApiRoutes } from "../../routes/openapi.ts";
import { onError } from "../../routes/problem.ts";
import { costRoutes } from "../../routes/cost.ts";
import {
  CLASSIFY_PARAMS,
  classifyQuerySchema,
  problemFromIssues,
  resolveClassifyQuery,
  type ServedVariants,
} from "../../routes/schemas.ts";

/** Two variants shaped as the registry shapes them (28x28 base, 10 classes). */
const served: ServedVariants = {
  alphas: [0.25, 0.5],
  backendNames: ["kernels-wasm", "ort-wasm"],
  defaultBackend: "kernels-wasm",
  variants: [0.25, 0.5].map((alpha) => ({
    manifest: { id: `mobilenet_v1_${alpha}`, alpha, classes: 10 },
    resolution: { min: 9, max: 28, base: 28 },
  })),
};

type Json = Record<string, unknown>;
type Param = { name: string; in: string; schema: Json };

function app(): Hono {
  const a = new Hono();
  a.route("/", openApiRoutes({ models: served }));
  a.route("/v1/cost", costRoutes());
  a.onError(onError);
  return a;
}

/** Every `$ref` in the document points at a component that exists. */
function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refs(n, out));
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

function resolvePointer(doc: Json, ref: string): unknown {
  return ref.replace(/^#\//, "").split("/").reduce<unknown>(
    (n, key) => (n && typeof n === "object" ? (n as Json)[key] : undefined),
    doc,
  );
}

Deno.test("GET /openapi.json answers an OpenAPI 3.1 document with every route and resolvable refs", async () => {
  const res = await app().request("/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json() as Json;
  assert.equal(doc.openapi, "3.1.0");
  const paths = doc.paths as Record<string, Record<string, Json>>;
  for (const p of ["/v1/classify", "/v1/cost", "/v1/models", "/healthz", "/readyz", "/metrics"]) {
    assert.ok(paths[p], `missing ${p}`);
  }
  assert.ok(paths["/v1/classify"]!.post!.requestBody);
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      assert.ok(Object.keys(op.responses as Json).length > 0, `${method} ${path} has no responses`);
      for (const p of (op.parameters ?? []) as Param[]) {
        assert.ok(p.name && p.in && p.schema, `${method} ${path}: incomplete parameter`);
      }
    }
  }
  const all = refs(doc);
  assert.ok(all.length > 0);
  for (const r of all) assert.ok(resolvePointer(doc, r), `unresolved ${r}`);
});

Deno.test("the document is valid against the official OpenAPI 3.1 schema", async () => {
  const doc = openApiDocument({ models: served });
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.equal(validator.version, "3.1");
  assert.ok(result.valid, JSON.stringify(result.errors));
  // The validator does reject a broken document (so the check above can fail).
  const { info: _info, ...broken } = doc;
  assert.equal((await new Validator().validate(broken)).valid, false);
});

Deno.test("the documented /v1/cost ranges are exactly the ones the validator enforces", async () => {
  const a = app();
  const doc = openApiDocument();
  const params = (doc.paths as Record<string, Record<string, Json>>)["/v1/cost"]!.get!
    .parameters as Param[];
  const numeric = params.filter((p) => typeof p.schema.maximum === "number");
  assert.deepEqual(numeric.map((p) => p.name).sort(), [
    "alpha",
    "beta",
    "channels",
    "classes",
    "resolution",
  ]);
  for (const p of numeric) {
    const s = p.schema as { maximum: number; minimum?: number; exclusiveMinimum?: number };
    if (p.name === "resolution") continue; // its minimum depends on the stride plan: checked below
    const lo = s.exclusiveMinimum ?? s.minimum!;
    const step = s.exclusiveMinimum === undefined ? 1 : 0;
    const inside = [s.maximum, s.exclusiveMinimum === undefined ? lo : lo + 0.5];
    const outside = [s.maximum + 1, lo - step];
    for (const v of inside) {
      const res = await a.request(`/v1/cost?${p.name}=${v}`);
      assert.equal(res.status, 200, `${p.name}=${v} documented as valid`);
    }
    for (const v of outside) {
      const res = await a.request(`/v1/cost?${p.name}=${v}`);
      assert.equal(res.status, 400, `${p.name}=${v} documented as invalid`);
      assert.equal((await res.json()).param, p.name);
    }
  }
  // The paper's V1 has 5 stride-2 stages: 2^4 + 1 = 17 pixels is the least; 1024 the most.
  assert.equal((await a.request("/v1/cost?resolution=17")).status, 200);
  assert.equal((await a.request("/v1/cost?resolution=1024")).status, 200);
  assert.equal((await a.request("/v1/cost?resolution=1025")).status, 400);
  const arch = params.find((p) => p.name === "arch")!;
  for (const name of arch.schema.enum as string[]) {
    assert.equal((await a.request(`/v1/cost?arch=${name}`)).status, 200, name);
  }
});

Deno.test("the /v1/classify parameters are documented from the served variants", () => {
  const doc = openApiDocument({ models: served });
  const op = (doc.paths as Record<string, Record<string, Json>>)["/v1/classify"]!.post!;
  const params = op.parameters as Param[];
  const byName = Object.fromEntries(params.map((p) => [p.name, p]));
  const alpha = byName.alpha!.schema.anyOf as Json[];
  assert.deepEqual(alpha.map((s) => s.enum), [[0.25, 0.5], ["auto"]]);
  assert.deepEqual(byName.backend!.schema.enum, ["kernels-wasm", "ort-wasm"]);
  assert.equal(byName.resolution!.schema.minimum, 9);
  assert.equal(byName.resolution!.schema.maximum, 28);
  assert.equal(byName.topk!.schema.maximum, 10);
  assert.deepEqual(
    params.filter((p) => p.in === "query").map((p) => p.name),
    [...CLASSIFY_PARAMS],
  );
  const content = (op.requestBody as { content: Json }).content;
  assert.ok(content["multipart/form-data"] && content["image/*"]);
});

function classifyProblem(query: Record<string, string>) {
  const r = classifyQuerySchema(served).safeParse(query);
  assert.equal(r.success, false, JSON.stringify(query));
  return problemFromIssues(r.error!.issues, CLASSIFY_PARAMS).problem;
}

Deno.test("the classify query schema refuses bad values with the param, valid values and a sentence", () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ alpha: "0.3" }, "alpha", /shipped widths 0.25, 0.5: got "0.3"/],
    [{ alpha: "wide" }, "alpha", /one of 0.25, 0.5/],
    [{ beta: "0" }, "beta", /\(0, 1\]/],
    [{ beta: "0.1" }, "beta", /below the 9 pixels .* beta in \[0.304, 1\]/],
    [{ beta: "0.5", resolution: "14" }, "beta", /not both/],
    [{ resolution: "29" }, "resolution", /\[9, 28\]/],
    [{ topk: "11" }, "topk", /\[1, 10\]/],
    [{ backend: "cuda" }, "backend", /kernels-wasm, ort-wasm/],
    [{ invert: "yes" }, "invert", /auto, true, false/],
    [{ deadline_ms: "0" }, "deadline_ms", /\(0, 60000\]/],
    [{ colour: "red" }, "colour", /Unknown query parameter/],
    [{ beta: "auto", resolution: "14" }, "beta", /beta=auto or resolution, not both/],
    [{ alpha: "auto", topk: "11" }, "topk", /\[1, 10\]/],
  ];
  for (const [query, param, detail] of cases) {
    const p = classifyProblem(query);
    assert.equal(p.status, 400);
    assert.equal(p.param, param, JSON.stringify(query));
    assert.match(p.detail, detail);
  }
  assert.deepEqual(classifyProblem({ alpha: "0.3" }).valid, [0.25, 0.5]);
});

Deno.test("the classify query schema resolves a valid query to variant, resolution and options", () => {
  const q = classifyQuerySchema(served).parse({ alpha: "0.25", beta: "0.5", topk: "3" });
  const r = resolveClassifyQuery(q, served);
  assert.ok("plan" in r);
  assert.deepEqual(r.plan, {
    variant: 0,
    auto: { alpha: false, beta: false },
    resolution: 14,
    beta: 0.5,
    topk: 3,
    backend: "kernels-wasm",
    invert: "auto",
    deadlineMs: undefined,
  });
  const d = resolveClassifyQuery(classifyQuerySchema(served).parse({}), served);
  assert.ok("plan" in d);
  assert.equal(d.plan.variant, 1, "default is the widest");
  assert.equal(d.plan.resolution, 28);
  const auto = resolveClassifyQuery(
    classifyQuerySchema(served).parse({ alpha: "auto", beta: "auto", deadline_ms: "20" }),
    served,
  );
  assert.ok("plan" in auto);
  assert.deepEqual(auto.plan.auto, { alpha: true, beta: true });
  assert.equal(auto.plan.deadlineMs, 20);
});

Deno.test("GET /docs answers an HTML page that reads /openapi.json", async () => {
  const res = await app().request("/docs");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  assert.match(html, /fetch\("\/openapi\.json"\)/);
  assert.doesNotMatch(html, /https?:\/\//, "no CDN or remote asset");
});
