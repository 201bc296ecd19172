import assert from "node:assert/strict";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { createApp } from "../../app.ts";
import { labelRequest, requestMetrics } from "../../routes/metrics.ts";
import { createServiceMetrics } from "../../runtime/metrics.ts";

/** Checks every line of a 0.0.4 exposition and returns the samples by series. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const t = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/);
    if (t) {
      typed.add(t[1]!);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const m = line.match(
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$/,
    );
    assert.ok(m, `not a valid sample line: ${line}`);
    const base = m[1]!.replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(m[1]!) || typed.has(base), `sample before its TYPE line: ${line}`);
    samples.set(m[1]! + (m[2] ?? ""), Number(m[3]));
  }
  return samples;
}

Deno.test("GET /metrics answers the Prometheus 0.0.4 text format and counts requests by route and status", async () => {
  const app = createApp();
  await app.request("/v1/cost?alpha=0.5");
  await app.request("/v1/cost?alpha=7");
  await app.request("/no/such/path");
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const samples = parseExposition(await res.text());
  assert.equal(samples.get('http_requests_total{route="/v1/cost",method="GET",status="200"}'), 1);
  assert.equal(samples.get('http_requests_total{route="/v1/cost",method="GET",status="400"}'), 1);
  assert.equal(samples.get('http_requests_total{route="unmatched",method="GET",status="404"}'), 1);
  assert.equal(
    samples.get(
      'http_request_duration_seconds_count{route="/v1/cost",status="200",variant="",backend=""}',
    ),
    1,
  );
  assert.ok(samples.has("process_resident_memory_bytes"));
  assert.equal(samples.get("scheduler_workers"), undefined, "no scheduler: no worker series");
});

Deno.test("Every answer, error answers included, carries X-Request-Id, and its log line the same id", async () => {
  const lines: string[] = [];
  const app = createApp({ log: (l) => lines.push(l) });
  const answers = [
    await app.request("/healthz"),
    await app.request("/v1/cost?alpha=banana"),
    await app.request("/nowhere"),
    await app.request("/healthz", { headers: { "x-request-id": "client-chosen-1" } }),
  ];
  const ids = answers.map((r) => r.headers.get("x-request-id"));
  assert.ok(ids.every((id) => id && id.length > 0), `ids: ${ids}`);
  assert.equal(new Set(ids).size, 4);
  assert.equal(ids[3], "client-chosen-1");
  assert.equal(lines.length, 4);
  const logs = lines.map((l) => JSON.parse(l));
  assert.deepEqual(logs.map((l) => l.request_id), ids);
  assert.deepEqual(logs.map((l) => l.status), [200, 400, 404, 200]);
  assert.deepEqual(logs.map((l) => l.level), ["info", "warn", "warn", "info"]);
  for (const l of logs) {
    assert.equal(l.msg, "request");
    assert.equal(typeof l.duration_ms, "number");
    assert.ok(!Number.isNaN(Date.parse(l.time)));
  }
});

Deno.test("labelRequest() puts the variant and backend on the latency histogram and the log line", async () => {
  const metrics = createServiceMetrics();
  const lines: string[] = [];
  const app = new Hono();
  app.use(requestId());
  app.use(requestMetrics({ metrics, log: (l) => lines.push(l) }));
  app.post("/v1/classify", (c) => {
    labelRequest(c, "v1-0.25@28x28", "ort-wasm");
    return c.json({ ok: true });
  });
  await app.request("/v1/classify", { method: "POST" });
  const h = metrics.httpDuration.get(["/v1/classify", "200", "v1-0.25@28x28", "ort-wasm"]);
  assert.equal(h.count, 1);
  const log = JSON.parse(lines[0]!);
  assert.equal(log.variant, "v1-0.25@28x28");
  assert.equal(log.backend, "ort-wasm");
  assert.equal(log.route, "/v1/classify");
});
