import assert from "node:assert/strict";
import { loopLagSentence, medianRun, repeatsText } from "../../bench/loadtest.ts";

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

Deno.test("loopLagSentence() states the probes and stalls, and nothing for a server without the metric", () => {
  assert.equal(loopLagSentence({ probes: NaN, over5Ms: NaN, over20Ms: NaN }), "");
  assert.equal(loopLagSentence({ probes: 0, over5Ms: 0, over20Ms: 0 }), "");
  const s = loopLagSentence({ probes: 1800, over5Ms: 40, over20Ms: 3 });
  assert.match(s, /fired 1800 times: 40 of them more than 5 ms late and 3 more than 20 ms late/);
});
