import assert from "node:assert/strict";
import { getPriority } from "node:os";
import type { LoadedModel, NCHW } from "../../runtime/backend.ts";
import type { BackendFactorySpec } from "../../runtime/backend_factory.ts";
import { createServiceMetrics } from "../../runtime/metrics.ts";
import {
  Scheduler,
  type SchedulerOptions,
  SchedulerRejection,
  STALE_MS,
  WorkerFailedError,
} from "../../runtime/scheduler.ts";
import { type FunctionBackendOptions, referenceLogits } from "./function_backend.ts";

const CLASSES = 10;
const model = (id: string): LoadedModel => ({
  id,
  onnx: new Uint8Array(0),
  inputName: "input",
  outputName: "logits",
  inputChannels: 1,
  classes: CLASSES,
});
const fn = (backend: string, options: FunctionBackendOptions = {}): BackendFactorySpec => ({
  backend,
  module: new URL("./function_backend.ts", import.meta.url).href,
  exportName: "createFunctionBackend",
  options: { name: backend, ...options },
});

/** A seeded image: different seeds give different images. */
function image(seed: number, size: number): Float32Array {
  const out = new Float32Array(size);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < size; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = (s >>> 8) / 16777216 - 0.5;
  }
  out[0] = seed + 0.25; // first value: never equal to the backends' integer trigger values
  return out;
}

const shape = (r: number): NCHW => [1, 1, r, r];

async function withScheduler(
  opts: Partial<SchedulerOptions>,
  body: (s: Scheduler, m: ReturnType<typeof createServiceMetrics>) => Promise<void>,
) {
  const metrics = createServiceMetrics();
  const s = await Scheduler.create({
    models: [model("m-a"), model("m-b")],
    backends: [fn("fn")],
    workers: 1,
    metrics,
    ...opts,
  });
  try {
    await body(s, metrics);
  } finally {
    await s.close();
  }
}

/** Submits image `seed` (4x4) to m-a on "fn", with a deadline `deadlineMs` from now if given. */
function submitA(s: Scheduler, seed: number, deadlineMs?: number) {
  return s.submit({
    model: "m-a",
    backend: "fn",
    input: image(seed, 16),
    shape: shape(4),
    ...(deadlineMs === undefined ? {} : { deadlineAt: performance.now() + deadlineMs }),
  });
}

/** Submits image `seed` to m-a on "fn" and checks that its own logits come back. */
async function assertServes(s: Scheduler, seed: number): Promise<void> {
  const r = await s.submit({
    model: "m-a",
    backend: "fn",
    input: image(seed, 16),
    shape: shape(4),
  });
  assert.deepEqual(r.logits, referenceLogits("m-a", image(seed, 16), CLASSES));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

Deno.test("Scheduler answers 300 concurrent requests over 2 workers, 2 models and 2 resolutions, each with its own image's logits", async () => {
  await withScheduler({ workers: 2, maxBatch: 8, maxWaitMs: 1 }, async (s) => {
    const reqs = Array.from({ length: 300 }, (_, i) => {
      const m = i % 2 ? "m-a" : "m-b";
      const r = i % 3 ? 8 : 12;
      return { m, r, img: image(i, r * r) };
    });
    const results = await Promise.all(
      reqs.map((q) =>
        s.submit({ model: q.m, backend: "fn", input: q.img.slice(), shape: shape(q.r) })
      ),
    );
    const workers = new Set<number>();
    results.forEach((res, i) => {
      const q = reqs[i]!;
      assert.deepEqual(res.logits, referenceLogits(q.m, q.img, CLASSES), `request ${i}`);
      assert.equal(res.variant, `${q.m}@${q.r}x${q.r}`);
      workers.add(res.worker);
    });
    assert.deepEqual([...workers].sort(), [0, 1], "both workers ran batches");
  });
});

Deno.test("Scheduler batches concurrent requests, never above maxBatch", async () => {
  await withScheduler(
    { maxBatch: 4, maxWaitMs: 5, backends: [fn("fn", { batchMs: 20 })] },
    async (s, metrics) => {
      const results = await Promise.all(
        Array.from(
          { length: 12 },
          (_, i) => s.submit({ model: "m-a", backend: "fn", input: image(i, 64), shape: shape(8) }),
        ),
      );
      const sizes = results.map((r) => r.batchSize);
      assert.ok(sizes.every((n) => n >= 1 && n <= 4), `batch sizes ${sizes}`);
      assert.ok(sizes.some((n) => n > 1), `some batch held more than one request: ${sizes}`);
      const h = metrics.batchSize.get(["m-a@8x8", "fn"]);
      assert.equal(h.sum, 12, "the batch-size histogram counts every request once");
      assert.ok(h.count < 12, "fewer batches than requests");
    },
  );
});

Deno.test("Scheduler runs the requests of one variant in arrival order", async () => {
  await withScheduler({ maxBatch: 1, maxWaitMs: 0 }, async (s) => {
    const order: number[] = [];
    await Promise.all(
      Array.from(
        { length: 10 },
        (_, i) =>
          s.submit({ model: "m-a", backend: "fn", input: image(i, 16), shape: shape(4) })
            .then(() => order.push(i)),
      ),
    );
    assert.deepEqual(order, [...Array(10).keys()]);
  });
});

Deno.test("Scheduler refuses with queue_full and a Retry-After once a variant's queue is full", async () => {
  await withScheduler(
    { maxBatch: 1, maxWaitMs: 0, maxQueue: 3, backends: [fn("fn", { batchMs: 100 })] },
    async (s, metrics) => {
      const submit = (i: number) =>
        s.submit({ model: "m-a", backend: "fn", input: image(i, 16), shape: shape(4) });
      const first = submit(0); // dispatched at once: leaves the queue
      const queued = [submit(1), submit(2), submit(3)];
      const err = await rejection(submit(4));
      assert.ok(err instanceof SchedulerRejection);
      assert.equal(err.reason, "queue_full");
      assert.ok(err.retryAfterS >= 1);
      assert.equal(metrics.rejections.get(["queue_full", "m-a@4x4"]), 1);
      // Another variant has its own queue.
      await s.submit({ model: "m-b", backend: "fn", input: image(9, 16), shape: shape(4) });
      const done = await Promise.all([first, ...queued]);
      assert.equal(done.length, 4);
    },
  );
});

Deno.test("Scheduler refuses at once a deadline that the measured p95 cannot meet, and accepts a generous one", async () => {
  await withScheduler({ backends: [fn("fn", { batchMs: 80 })] }, async (s, metrics) => {
    const warm = await s.warmup("m-a", "fn", shape(4), 2);
    assert.ok(warm.p95Ms >= 80, `measured p95 ${warm.p95Ms}`);
    const err = await rejection(
      s.submit({
        model: "m-a",
        backend: "fn",
        input: image(1, 16),
        shape: shape(4),
        deadlineAt: performance.now() + 10,
      }),
    );
    assert.ok(err instanceof SchedulerRejection);
    assert.equal(err.reason, "deadline_unmeetable");
    assert.equal(metrics.rejections.get(["deadline_unmeetable", "m-a@4x4"]), 1);
    assert.equal(metrics.batchSize.get(["m-a@4x4", "fn"]).count, 0, "it never ran");
    const ok = await s.submit({
      model: "m-a",
      backend: "fn",
      input: image(2, 16),
      shape: shape(4),
      deadlineAt: performance.now() + 60_000,
    });
    assert.deepEqual(ok.logits, referenceLogits("m-a", image(2, 16), CLASSES));
  });
});

Deno.test("Scheduler drops a queued request with deadline_expired when its deadline passes, and never runs it", async () => {
  // Not warmed up: admission has no measurement and accepts; the queue must still never run late.
  await withScheduler(
    { maxBatch: 1, maxWaitMs: 0, backends: [fn("fn", { batchMs: 300 })] },
    async (s, metrics) => {
      const blocker = submitA(s, 0);
      const late = submitA(s, 1, 30);
      const err = await rejection(late);
      assert.ok(err instanceof SchedulerRejection);
      assert.equal(err.reason, "deadline_expired");
      await blocker;
      assert.equal(metrics.batchSize.get(["m-a@4x4", "fn"]).count, 1, "only the blocker ran");
      assert.equal(metrics.rejections.get(["deadline_expired", "m-a@4x4"]), 1);
      assert.equal(s.queued, 0);
    },
  );
});

Deno.test("Scheduler answers 504 at the deadline of a request whose batch is still running, never a late answer", async () => {
  // Not warmed up: the request is admitted and starts at once; its batch takes 300 ms, its
  // deadline is 60 ms away.
  await withScheduler(
    { maxBatch: 1, maxWaitMs: 0, backends: [fn("fn", { batchMs: 300 })] },
    async (s, metrics) => {
      const labels = ["m-a@4x4", "fn"];
      const late = submitA(s, 1, 60);
      const next = submitA(s, 2);
      const err = await rejection(late);
      assert.ok(err instanceof SchedulerRejection);
      assert.equal(err.reason, "deadline_expired");
      assert.match(err.message, /while its batch ran/);
      assert.equal(metrics.batchSize.get(labels).count, 1, "its batch had started");
      assert.equal(metrics.inferenceDuration.get(labels).count, 0, "answered before it finished");
      const ok = await next;
      assert.deepEqual(ok.logits, referenceLogits("m-a", image(2, 16), CLASSES));
      assert.equal(metrics.deadlineMissed.get(labels), 1, "the late batch is still counted");
      assert.equal(metrics.rejections.get(["deadline_expired", "m-a@4x4"]), 1, "answered once");
    },
  );
});

Deno.test("Scheduler.choose() picks the most accurate variant whose measured p95 fits the deadline", async () => {
  await withScheduler(
    { backends: [fn("slow", { batchMs: 300 }), fn("fast")] },
    async (s) => {
      const accurate = { model: "m-a", backend: "slow", shape: shape(4), accuracy: 0.93 };
      const quick = { model: "m-a", backend: "fast", shape: shape(4), accuracy: 0.88 };
      // Unmeasured variants never fit a deadline.
      assert.equal(s.choose([accurate, quick], performance.now() + 60_000), undefined);
      await s.warmup("m-a", "slow", shape(4), 1);
      await s.warmup("m-a", "fast", shape(4), 2);
      assert.equal(s.choose([quick, accurate]), accurate, "no deadline: the most accurate");
      assert.equal(s.choose([quick, accurate], performance.now() + 60_000), accurate);
      assert.equal(s.choose([quick, accurate], performance.now() + 150), quick);
      assert.equal(s.choose([quick, accurate], performance.now() - 1), undefined);
    },
  );
});

Deno.test("Scheduler keeps the main event loop free while a worker runs a batch", async () => {
  await withScheduler({ backends: [fn("fn", { batchMs: 300 })] }, async (s) => {
    let ticks = 0;
    let running = true;
    const tick = () => {
      ticks++;
      if (running) setTimeout(tick, 0);
    };
    tick();
    await s.submit({ model: "m-a", backend: "fn", input: image(0, 16), shape: shape(4) });
    running = false;
    assert.ok(ticks > 10, `the main thread kept running timers during the batch: ${ticks} ticks`);
  });
});

Deno.test("Scheduler fails only the batch whose backend threw; the worker keeps serving", async () => {
  await withScheduler(
    { maxBatch: 1, maxWaitMs: 0, backends: [fn("fn", { failWhen: 7 })] },
    async (s) => {
      const bad = image(0, 16);
      bad[0] = 7;
      const err = await rejection(
        s.submit({ model: "m-a", backend: "fn", input: bad, shape: shape(4) }),
      );
      assert.ok(err instanceof Error);
      assert.match(err.message, /poisoned input/);
      await assertServes(s, 3);
    },
  );
});

Deno.test("Scheduler replaces a worker that crashed, failing only its batch with WorkerFailedError", async () => {
  await withScheduler(
    { workers: 2, maxBatch: 1, maxWaitMs: 0, backends: [fn("fn", { crashWhen: 13 })] },
    async (s, metrics) => {
      const bad = image(0, 16);
      bad[0] = 13;
      const err = await rejection(
        s.submit({ model: "m-a", backend: "fn", input: bad, shape: shape(4) }),
      );
      assert.ok(err instanceof WorkerFailedError, String(err));
      assert.equal(metrics.rejections.get(["worker_failed", "m-a@4x4"]), 1);
      const results = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) =>
            s.submit({ model: "m-a", backend: "fn", input: image(i + 1, 16), shape: shape(4) }),
        ),
      );
      results.forEach((r, i) =>
        assert.deepEqual(r.logits, referenceLogits("m-a", image(i + 1, 16), CLASSES))
      );
      for (let i = 0; i < 200 && metrics.workers.get() < 2; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(metrics.workers.get(), 2, "the replacement worker is up");
    },
  );
});

Deno.test("Scheduler replaces a worker that does not answer within batchTimeoutMs", async () => {
  await withScheduler(
    { maxBatch: 1, maxWaitMs: 0, batchTimeoutMs: 300, backends: [fn("fn", { hangWhen: 5 })] },
    async (s) => {
      const bad = image(0, 16);
      bad[0] = 5;
      const err = await rejection(
        s.submit({ model: "m-a", backend: "fn", input: bad, shape: shape(4) }),
      );
      assert.ok(err instanceof WorkerFailedError);
      assert.match(err.message, /did not answer/);
      await assertServes(s, 4);
    },
  );
});

Deno.test("Scheduler.close() finishes queued and in-flight requests, then refuses with shutting_down", async () => {
  const s = await Scheduler.create({
    models: [model("m-a")],
    backends: [fn("fn", { batchMs: 30 })],
    workers: 1,
    maxBatch: 2,
    maxWaitMs: 50,
  });
  const pending = Array.from(
    { length: 7 },
    (_, i) => s.submit({ model: "m-a", backend: "fn", input: image(i, 16), shape: shape(4) }),
  );
  const closed = s.close();
  const err = await rejection(
    s.submit({ model: "m-a", backend: "fn", input: image(99, 16), shape: shape(4) }),
  );
  assert.ok(err instanceof SchedulerRejection);
  assert.equal(err.reason, "shutting_down");
  const results = await Promise.all(pending);
  results.forEach((r, i) =>
    assert.deepEqual(r.logits, referenceLogits("m-a", image(i, 16), CLASSES))
  );
  await closed;
});

Deno.test("Scheduler removes an aborted request from its queue", async () => {
  await withScheduler(
    { maxBatch: 1, maxWaitMs: 0, backends: [fn("fn", { batchMs: 100 })] },
    async (s, metrics) => {
      const blocker = s.submit({
        model: "m-a",
        backend: "fn",
        input: image(0, 16),
        shape: shape(4),
      });
      const ac = new AbortController();
      const aborted = s.submit({
        model: "m-a",
        backend: "fn",
        input: image(1, 16),
        shape: shape(4),
        signal: ac.signal,
      });
      ac.abort(new Error("client went away"));
      const err = await rejection(aborted);
      assert.ok(err instanceof Error && /client went away/.test(err.message));
      await blocker;
      assert.equal(metrics.batchSize.get(["m-a@4x4", "fn"]).count, 1);
    },
  );
});

Deno.test("Scheduler rejects unknown models, unknown backends and wrong input sizes, naming the valid ones", async () => {
  await withScheduler({}, async (s) => {
    const input = image(0, 16);
    await assert.rejects(
      s.submit({ model: "nope", backend: "fn", input, shape: shape(4) }),
      /loaded are m-a, m-b/,
    );
    await assert.rejects(
      s.submit({ model: "m-a", backend: "ort-wasm", input, shape: shape(4) }),
      /built are fn/,
    );
    await assert.rejects(
      s.submit({ model: "m-a", backend: "fn", input, shape: shape(5) }),
      /must hold c\*h\*w = 25 values/,
    );
    await assert.rejects(
      s.submit({ model: "m-a", backend: "fn", input, shape: [2, 1, 4, 2] }),
      /\[1, c, h, w\]/,
    );
  });
});

Deno.test("Scheduler.create() fails with the factory's error when a backend cannot be built", async () => {
  await assert.rejects(
    Scheduler.create({
      models: [model("m-a")],
      backends: [{
        backend: "x",
        module: new URL("./function_backend.ts", import.meta.url).href,
        exportName: "missing",
      }],
      workers: 1,
    }),
    /does not export a function named missing/,
  );
});

Deno.test("Scheduler.admit() refuses at the door beyond maxInFlight and for an unmeetable deadline; release frees the slot", async () => {
  await withScheduler(
    { maxInFlight: 2, backends: [fn("fn", { batchMs: 80 })] },
    async (s, metrics) => {
      const req = { model: "m-a", backend: "fn", shape: shape(4) };
      const a = s.admit(req);
      const b = s.admit(req);
      assert.equal(s.admitted, 2);
      assert.throws(
        () => s.admit(req),
        (e) => e instanceof SchedulerRejection && e.reason === "queue_full" && e.retryAfterS >= 1,
      );
      a();
      a(); // releasing twice frees one slot only
      assert.equal(s.admitted, 1);
      const c = s.admit(req);
      b();
      c();
      assert.equal(s.admitted, 0);
      await s.warmup("m-a", "fn", shape(4), 1);
      assert.throws(
        () => s.admit({ ...req, deadlineAt: performance.now() + 5 }),
        (e) => e instanceof SchedulerRejection && e.reason === "deadline_unmeetable",
      );
      s.admit({ ...req, deadlineAt: performance.now() + 60_000 })();
      assert.equal(metrics.rejections.get(["queue_full", "m-a@4x4"]), 1);
      assert.equal(metrics.rejections.get(["deadline_unmeetable", "m-a@4x4"]), 1);
    },
  );
});

Deno.test("Scheduler.tryAdmit() returns refusals as data, and counts the event loop's lag twice against a deadline", async () => {
  let lag = 0;
  await withScheduler(
    { maxInFlight: 1, backends: [fn("fn", { batchMs: 20 })], loopLagMs: () => lag },
    async (s, metrics) => {
      const req = { model: "m-a", backend: "fn", shape: shape(4) };
      const a = s.tryAdmit(req);
      assert.equal(typeof a, "function");
      const full = s.tryAdmit(req);
      assert.ok(
        typeof full !== "function" && full.reason === "queue_full" && full.retryAfterS >= 1,
      );
      (a as () => void)();
      await s.warmup("m-a", "fn", shape(4), 1);
      const p95 = s.estimate("m-a", "fn", shape(4)).serviceP95Ms;
      // Fits without lag: a minute is far beyond any estimate.
      const ok = s.tryAdmit({ ...req, deadlineAt: performance.now() + 60_000 });
      assert.equal(typeof ok, "function");
      (ok as () => void)();
      // The same deadline is unmeetable once the loop runs half a minute late (in and out).
      lag = 30_000 + p95;
      const late = s.tryAdmit({ ...req, deadlineAt: performance.now() + 60_000 });
      assert.ok(typeof late !== "function");
      assert.equal(late.reason, "deadline_unmeetable");
      assert.match(late.message, /event loop runs \d+\.\d ms late/);
      // A loop past maxLoopLagMs (default 2 ms) refuses any deadline, however long.
      lag = 2.5;
      const lagging = s.tryAdmit({ ...req, deadlineAt: performance.now() + 60_000 });
      assert.ok(typeof lagging !== "function");
      assert.match(lagging.message, /overloaded: its event loop runs 2\.5 ms late/);
      // Requests without a deadline are not judged by the lag.
      const plain = s.tryAdmit(req);
      assert.equal(typeof plain, "function");
      (plain as () => void)();
      assert.equal(s.admitted, 0);
      assert.equal(metrics.rejections.get(["queue_full", "m-a@4x4"]), 1);
      assert.equal(metrics.rejections.get(["deadline_unmeetable", "m-a@4x4"]), 2);
    },
  );
});

Deno.test("Scheduler re-measures a variant whose old measurements make it refuse every deadline", async () => {
  await withScheduler({ backends: [fn("fn", { slowRuns: 2, slowMs: 300 })] }, async (s) => {
    await s.warmup("m-a", "fn", shape(4), 1); // both warm-up batches are slow
    const req = () => ({
      model: "m-a",
      backend: "fn",
      input: image(1, 16),
      shape: shape(4),
      deadlineAt: performance.now() + 100,
    });
    const first = await rejection(s.submit(req()));
    assert.ok(first instanceof SchedulerRejection && first.reason === "deadline_unmeetable");
    // Once the measurement is older than STALE_MS, a refusal starts a fresh measurement.
    await new Promise((r) => setTimeout(r, STALE_MS + 100));
    await rejection(s.submit(req()));
    for (let i = 0; i < 200 && !(s.estimate("m-a", "fn", shape(4)).serviceP95Ms < 100); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const ok = await s.submit(req());
    assert.deepEqual(ok.logits, referenceLogits("m-a", image(1, 16), CLASSES));
  });
});

Deno.test("Scheduler exposes each variant's measured EWMA, p50 and p95 on /metrics", async () => {
  await withScheduler({}, async (s, metrics) => {
    await s.warmup("m-a", "fn", shape(4), 2);
    const text = metrics.registry.render();
    for (const stat of ["ewma", "p50", "p95"]) {
      assert.match(
        text,
        new RegExp(
          `^scheduler_batch_latency_seconds\\{variant="m-a@4x4",backend="fn",stat="${stat}"\\} \\d`,
          "m",
        ),
      );
    }
    assert.equal(
      metrics.batchLatency.get(["m-a@4x4", "fn", "p95"]),
      s.latency("m-a", "fn", shape(4)).p95Ms / 1000,
    );
  });
});

Deno.test({
  name: "Scheduler lowers its worker threads' priority (nice) and leaves the HTTP thread's alone",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const before = getPriority(0);
    await withScheduler({ workers: 2, workerNice: 7 }, async (s) => {
      assert.deepEqual(s.workerNice, [7, 7]);
      // setpriority(0) acts on the calling thread only (Linux): this thread keeps its value.
      assert.equal(getPriority(0), before);
      // The kernel agrees: two threads of this process now run at nice 7.
      const nices: number[] = [];
      for (const t of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
        const stat = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${t.name}/stat`);
        nices.push(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
      }
      assert.equal(nices.filter((n) => n === 7).length, 2);
      await assertServes(s, 1);
    });
  },
});

Deno.test("Scheduler counts admitted requests on their way to the queue in the wait, once", async () => {
  await withScheduler(
    { workers: 1, maxBatch: 4, backends: [fn("fn", { batchMs: 20 })] },
    async (s) => {
      await s.warmup("m-a", "fn", shape(4), 2);
      const est = () => s.estimate("m-a", "fn", shape(4));
      assert.equal(est().waitMs, 0);
      const req = { model: "m-a", backend: "fn", shape: shape(4) };
      // A burst admitted in one turn of the event loop, before any of it is queued: 8 requests
      // are two batches of 4 ahead of the next one, on the one worker.
      const releases = Array.from({ length: 8 }, () => s.tryAdmit(req) as () => void);
      const ewma = s.latency("m-a", "fn", shape(4)).ewmaMs;
      assert.ok(ewma >= 20, `ewma ${ewma}`);
      assert.equal(est().waitMs, 2 * ewma);
      // Releasing one that never reached the queue (a bad upload) takes it out of the wait.
      releases.pop()!();
      assert.equal(est().waitMs, 2 * ewma);
      for (let i = 0; i < 3; i++) releases.pop()!();
      assert.equal(est().waitMs, ewma);
      // Queued with its admission, a request counts once (queued), and its release after the
      // answer does not take it out twice.
      const answers = releases.map((release, i) =>
        s.submit({ ...req, input: image(10 + i, 16), admission: release }).then((r) => {
          release();
          return r;
        })
      );
      await Promise.all(answers);
      for (const release of releases) release(); // idempotent
      assert.equal(s.admitted, 0);
      assert.equal(est().waitMs, 0);
    },
  );
});
