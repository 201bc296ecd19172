/**
 * The admission gate in front of the app (routes/admission.ts) must answer a refusal exactly as
 * the app would (status, problem+json body, Retry-After, X-Request-Id, metrics, log line), admit a
 * request once only, and leave everything it does not know to the app.
 */
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { admissionGate } from "../../routes/admission.ts";
import { createServiceMetrics } from "../../runtime/metrics.ts";
import { ModelRegistry } from "../../runtime/registry.ts";
import type { Refusal } from "../../runtime/scheduler.ts";
import type { NCHW } from "../../runtime/backend.ts";
import { DrainState } from "../../runtime/shutdown.ts";
import { labelledFixtures, readFixture } from "../fixtures/fixtures.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";

type AdmitReq = { model: string; backend: string; shape: NCHW; deadlineAt?: number };

Deno.test("The admission gate answers refusals as the app does and admits each request once", async () => {
  const art = await writeTinyArtifacts({ alphas: [0.25] });
  const models = await ModelRegistry.open({ dir: art.dir });
  await models.load();
  try {
    const metrics = createServiceMetrics();
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const state: { refusal?: Refusal } = {};
    const calls: AdmitReq[] = [];
    let released = 0;
    const tryAdmit = (req: AdmitReq): (() => void) | Refusal => {
      calls.push(req);
      if (state.refusal) return state.refusal;
      let done = false;
      return () => {
        if (!done) released++;
        done = true;
      };
    };
    const drain = new DrainState();
    const app = createApp({
      metrics,
      log,
      drain,
      classify: { models, inference: { infer: (r) => models.infer(r), tryAdmit } },
    });
    const gate = admissionGate(app.fetch, { models, tryAdmit, metrics, log, drain });
    const png = await readFixture((await labelledFixtures("png"))[0]!.file);
    const query = "alpha=0.25&topk=2";
    const post = (headers: Record<string, string> = {}, q = query) =>
      new Request(`http://127.0.0.1:8000/v1/classify?${q}`, {
        method: "POST",
        headers: { "content-type": "image/png", ...headers },
        body: new Uint8Array(png),
      });

    // A query never seen goes to the app (which validates it and remembers it): admitted once.
    const first = await gate(post());
    assert.equal(first.status, 200);
    await first.body?.cancel();
    assert.equal(calls.length, 1);
    assert.equal(released, 1);

    // Known query, admitted at the gate: the route does not admit it again; released once.
    const second = await gate(post({ "x-deadline-ms": "5000" }));
    assert.equal(second.status, 200);
    await second.body?.cancel();
    assert.equal(calls.length, 2);
    assert.equal(released, 2);
    assert.ok(calls[1]!.deadlineAt! > performance.now() + 4000);
    assert.deepEqual(calls[1]!.shape, [1, 1, 28, 28]);

    // The same refusal from the app and from the gate.
    state.refusal = {
      reason: "deadline_unmeetable",
      message: "The deadline cannot be met: 4.0 ms left.",
      retryAfterS: 2,
    };
    const viaApp = await app.fetch(post({ "x-deadline-ms": "5" }));
    const viaGate = await gate(post({ "x-deadline-ms": "5" }));
    assert.equal(calls.length, 4);
    assert.equal(viaGate.status, 503);
    assert.equal(viaGate.status, viaApp.status);
    for (const h of ["content-type", "retry-after"]) {
      assert.equal(viaGate.headers.get(h), viaApp.headers.get(h), h);
    }
    assert.match(viaGate.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await viaGate.json(), await viaApp.json());
    const [appLine, gateLine] = lines.slice(-2).map((l) => JSON.parse(l));
    for (const k of ["time", "request_id", "duration_ms"]) {
      assert.ok(gateLine[k] !== undefined, k);
      delete appLine[k];
      delete gateLine[k];
    }
    assert.deepEqual(gateLine, appLine);
    assert.equal(
      metrics.httpRequests.get(["/v1/classify", "POST", "503"]),
      2,
    );
    assert.equal(
      metrics.httpDuration.get([
        "/v1/classify",
        "503",
        "mobilenet_v1_a0.25@28x28",
        models.backendNames[0]!,
      ]).count,
      2,
    );

    // A client's own request id is kept, as hono/request-id keeps it; a malformed one is not.
    const own = await gate(post({ "x-request-id": "client-1" }));
    assert.equal(own.headers.get("x-request-id"), "client-1");
    await own.body?.cancel();
    const bad = await gate(post({ "x-request-id": "no spaces allowed" }));
    assert.notEqual(bad.headers.get("x-request-id"), "no spaces allowed");
    await bad.body?.cancel();

    // A malformed deadline goes to the app, which answers the 400 naming the header.
    const calledBefore = calls.length;
    const badDeadline = await gate(post({ "x-deadline-ms": "soon" }));
    assert.equal(badDeadline.status, 400);
    assert.equal((await badDeadline.json()).param, "X-Deadline-Ms");
    assert.equal(calls.length, calledBefore);

    // Other routes and methods pass through untouched.
    const health = await gate(new Request("http://127.0.0.1:8000/healthz"));
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.equal(calls.length, calledBefore);

    // While draining, the app's own 503 (Connection: close) answers, not the gate.
    void drain.drain();
    const draining = await gate(post());
    assert.equal(draining.status, 503);
    assert.equal(draining.headers.get("connection"), "close");
    await draining.body?.cancel();
    assert.equal(calls.length, calledBefore);
  } finally {
    await models.close();
    await Deno.remove(art.dir, { recursive: true });
  }
});
