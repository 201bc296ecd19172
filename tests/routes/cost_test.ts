import assert from "node:assert/strict";
import { createApp } from "../../app.ts";

const app = createApp();

async function get(path: string) {
  const res = await app.request(path);
  return { res, body: await res.json() };
}

Deno.test("GET /v1/cost with no parameters describes the paper's V1 1.0/224 exactly", async () => {
  const { res, body } = await get("/v1/cost");
  assert.equal(res.status, 200);
  assert.equal(body.totals.macs, 568_740_352);
  assert.equal(body.totals.params, 4_210_088);
  assert.equal(body.layers.length, 1 + 26 + 2);
  assert.deepEqual(body.layers[0].outputShape, [32, 112, 112]);
  assert.match(body.convention, /batch norm is folded/);
});

Deno.test("GET /v1/cost?alpha=0.5&beta=0.75 scales channels and resolution", async () => {
  const { body } = await get("/v1/cost?alpha=0.5&beta=0.75");
  assert.equal(body.model.resolution, 168);
  assert.equal(body.model.alpha, 0.5);
  assert.deepEqual(body.layers[0].outputShape, [16, 84, 84]);
  // Per-layer MACs add up to the total.
  assert.equal(
    body.layers.reduce((a: number, l: { macs: number }) => a + l.macs, 0),
    body.totals.macs,
  );
});

Deno.test("GET /v1/cost reports the separable vs standard comparison per layer and in total", async () => {
  const { body } = await get("/v1/cost?arch=mobilenet_v1&resolution=224");
  assert.equal(body.separable.layers.length, 13);
  const p = body.separable.layers[0];
  assert.equal(
    p.separableMacs,
    p.cIn * 9 * p.height * p.width + p.cIn * p.height * p.width * p.cOut,
  );
  assert.equal(p.standardMacs, p.cIn * 9 * p.height * p.width * p.cOut);
  assert.ok(Math.abs(body.separable.standardNetwork.macs / 4866e6 - 1) < 1e-3);
});

Deno.test("GET /v1/cost supports the cifar stride plan, channels and classes", async () => {
  const { body } = await get("/v1/cost?stride_plan=cifar&resolution=32&channels=1&classes=10");
  assert.deepEqual(body.layers.at(-3).outputShape, [1024, 4, 4]);
  assert.deepEqual(body.layers.at(-1).outputShape, [10, 1, 1]);
  const explicit = await get(
    "/v1/cost?stride_plan=1,1,1,1,2,1,2,1,1,1,1,1,2,1&resolution=32&channels=1&classes=10",
  );
  assert.equal(explicit.body.totals.macs, body.totals.macs);
});

Deno.test("GET /v1/cost?arch=mobilenet_v3_small answers with SE layers counted", async () => {
  const { res, body } = await get("/v1/cost?arch=mobilenet_v3_small");
  assert.equal(res.status, 200);
  assert.ok(body.shares.se.macs > 0);
});

const bad: [string, string, RegExp][] = [
  [
    "/v1/cost?arch=resnet50",
    "arch",
    /mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small/,
  ],
  ["/v1/cost?alpha=0", "alpha", /\(0, 1.5\]/],
  ["/v1/cost?alpha=2", "alpha", /\(0, 1.5\]/],
  ["/v1/cost?alpha=abc", "alpha", /a number/],
  ["/v1/cost?alpha=0x10", "alpha", /a number/],
  ["/v1/cost?beta=1.5", "beta", /\(0, 1\]/],
  ["/v1/cost?beta=0", "beta", /\(0, 1\]/],
  ["/v1/cost?beta=0.05", "beta", /beta >= 0.074/],
  ["/v1/cost?resolution=16", "resolution", /\[17, 1024\]/],
  ["/v1/cost?resolution=2000", "resolution", /\[17, 1024\]/],
  ["/v1/cost?resolution=100.5", "resolution", /integer/],
  ["/v1/cost?stride_plan=fast", "stride_plan", /imagenet, cifar, imagenet_stem1/],
  ["/v1/cost?stride_plan=2,2", "stride_plan", /14 strides/],
  ["/v1/cost?classes=0", "classes", /\[1, 100000\]/],
  ["/v1/cost?channels=7", "channels", /\[1, 4\]/],
  ["/v1/cost?beta=0.5&resolution=112", "beta", /not both/],
  ["/v1/cost?colour=red", "colour", /Unknown query parameter/],
];
for (const [path, param, detail] of bad) {
  Deno.test(`GET ${path} answers 400 problem+json naming ${param}`, async () => {
    const res = await app.request(path);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    const body = await res.json();
    assert.equal(body.status, 400);
    assert.equal(body.param, param);
    assert.match(body.detail, detail);
  });
}

Deno.test("an unknown route answers 404 problem+json", async () => {
  const res = await app.request("/v2/nothing");
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
});

Deno.test("GET /healthz and /readyz answer 200 and carry a request id", async () => {
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.ok(res.headers.get("x-request-id"));
  assert.equal((await app.request("/readyz")).status, 200);
});
