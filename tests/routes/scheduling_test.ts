import assert from "node:assert/strict";
import { Hono } from "hono";
import { requestMetrics } from "../../routes/metrics.ts";
import { onError } from "../../routes/problem.ts";
import {
  DISCARD_LIMIT_BYTES,
  discardSmallBody,
  MAX_DEADLINE_MS,
  readDeadline,
  schedulerProblem,
} from "../../routes/scheduling.ts";
import { createServiceMetrics } from "../../runtime/metrics.ts";
import { SchedulerRejection, WorkerFailedError } from "../../runtime/scheduler.ts";

function deadlineApp() {
  const app = new Hono();
  app.use(requestMetrics({ metrics: createServiceMetrics() }));
  app.get("/d", (c) => {
    const before = performance.now();
    const d = readDeadline(c);
    return c.json({ left: d === undefined ? null : d - before });
  });
  app.onError(onError);
  return app;
}

Deno.test("readDeadline() reads deadline_ms or X-Deadline-Ms, counted from the request's arrival", async () => {
  const app = deadlineApp();
  const q = await (await app.request("/d?deadline_ms=250")).json();
  assert.ok(q.left > 0 && q.left <= 250, `left ${q.left}`);
  const h = await (await app.request("/d", { headers: { "x-deadline-ms": "40" } })).json();
  assert.ok(h.left > 0 && h.left <= 40);
  const none = await (await app.request("/d")).json();
  assert.equal(none.left, null);
});

Deno.test("readDeadline() answers 400 naming the parameter and its range for a bad value", async () => {
  const app = deadlineApp();
  for (
    const [path, headers, param] of [
      ["/d?deadline_ms=0", {}, "deadline_ms"],
      ["/d?deadline_ms=abc", {}, "deadline_ms"],
      [`/d?deadline_ms=${MAX_DEADLINE_MS + 1}`, {}, "deadline_ms"],
      ["/d", { "x-deadline-ms": "-5" }, "X-Deadline-Ms"],
    ] as const
  ) {
    const res = await app.request(path, { headers });
    assert.equal(res.status, 400, path);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    const body = await res.json();
    assert.equal(body.param, param);
    assert.match(
      body.detail,
      new RegExp(`${param} must be a number of milliseconds in \\(0, 60000\\]`),
    );
  }
});

Deno.test("schedulerProblem() maps refusals to 429, 503 and 504 with Retry-After", () => {
  const cases = [
    ["queue_full", 429],
    ["deadline_unmeetable", 503],
    ["deadline_expired", 504],
    ["shutting_down", 503],
    ["no_workers", 503],
  ] as const;
  for (const [reason, status] of cases) {
    const p = schedulerProblem(new SchedulerRejection(reason, "Busy.", 3));
    assert.ok(p, reason);
    assert.equal(p.status, status, reason);
    assert.equal(p.headers["retry-after"], "3");
    assert.equal(p.problem.reason, reason);
  }
  const w = schedulerProblem(new WorkerFailedError("crashed"));
  assert.equal(w?.status, 503);
  assert.equal(schedulerProblem(new Error("other")), undefined);
});

Deno.test("discardSmallBody() reads a small upload before a refusal and leaves a large one unread", async () => {
  // Content-Length as a client sends it (a Request built here has none of its own).
  const small = new Request("http://x/", {
    method: "POST",
    body: new Uint8Array(300),
    headers: { "content-length": "300" },
  });
  await discardSmallBody(small);
  assert.equal(small.bodyUsed, true);
  const large = new Request("http://x/", {
    method: "POST",
    body: new Uint8Array(DISCARD_LIMIT_BYTES + 1),
    headers: { "content-length": String(DISCARD_LIMIT_BYTES + 1) },
  });
  await discardSmallBody(large);
  assert.equal(large.bodyUsed, false);
});
