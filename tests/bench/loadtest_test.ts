import assert from "node:assert/strict";
import { medianRun, overloadMet, overloadText, repeatsText } from "../../bench/loadtest.ts";

const row = (p99: number, rps: number, errors = 0) => ({
  client: "own",
  alpha: "0.25",
  beta: "1",
  concurrency: 32,
  sent: 100,
  ok: 100 - errors,
  errors,
  statuses: "200: 100",
  rps,
  p50: 1,
  p95: 2,
  p99,
  max: 50,
});

Deno.test("medianRun() shows the run with the median p99, lists every run and sums the errors", () => {
  const m = medianRun([row(34.5, 3283), row(15.8, 4100, 2), row(21.2, 4950)]);
  assert.equal(m.p99, 21.2);
  assert.equal(m.rps, 4950);
  assert.equal(m.errors, 2);
  assert.deepEqual(m.runs, [
    { p99: 34.5, rps: 3283 },
    { p99: 15.8, rps: 4100 },
    { p99: 21.2, rps: 4950 },
  ]);
  // Even count: the lower middle run.
  assert.equal(medianRun([row(30, 1), row(10, 2), row(20, 3), row(40, 4)]).p99, 20);
  // One run: the row as it was, without a list.
  assert.deepEqual(medianRun([row(12, 3000)]), row(12, 3000));
  assert.match(
    repeatsText([m]),
    /own, alpha 0\.25, c=32: p99 34\.5 \/ 15\.8 \/ 21\.2 ms, 3,283 \/ 4,100 \/ 4,950/,
  );
  assert.equal(repeatsText([row(12, 3000)]), "");
});

Deno.test("overloadText() writes one row per run and says met only when every run met the targets", () => {
  const run = {
    alpha: "0.25",
    sustainable: 4000,
    rate: 8000,
    sent: 40000,
    accepted: 9000,
    late: 0,
    serverLate: 12,
    acceptedP99: 18.2,
    acceptedP99Intended: 19,
    refused: 30000,
    refusedP99: 4.1,
    refusedMax: 9,
    refusedP99Intended: 4.5,
    dropped: 1000,
    serverRefusedWithinHalfMs: 0.999,
    serverRefusedWithin5Ms: 1,
    loopLag: { probes: 1500, over5Ms: 3, over20Ms: 0 },
    lost: 0,
    other: 0,
    durationS: 5,
  };
  const a = { beta: "1", deadlineMs: 20 };
  assert.ok(overloadMet(run));
  const met = overloadText(a, [run]);
  assert.match(
    met,
    /\| 1 \| 4,000 \| 8,000 \| 40000 \| 9000 \| 0 \/ 12 \| 18\.2 \| 30000 \| 4\.1 \(4\.5\) \|/,
  );
  assert.match(met, /\| 3 \/ 0 of 1500 \|$/m);
  assert.match(met, /\*\*met\*\* \(1 of 1 run met them\)/);
  const lateRun = { ...run, late: 2 };
  const slowRun = { ...run, refusedP99: 5.2 };
  assert.equal(overloadMet(lateRun), false);
  assert.equal(overloadMet(slowRun), false);
  assert.equal(overloadMet({ ...run, lost: 1 }), false);
  const mixed = overloadText(a, [run, lateRun, slowRun]);
  assert.equal(mixed.match(/^\| [123] \|/gm)?.length, 3);
  assert.match(mixed, /\*\*missed\*\* \(1 of 3 runs met them\)/);
});
