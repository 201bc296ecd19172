import assert from "node:assert/strict";
import { EWMA_ALPHA, LatencyStats } from "../../runtime/latency.ts";

Deno.test("LatencyStats gives nearest-rank p50/p95 over the rolling window only", () => {
  const s = new LatencyStats(100);
  for (let i = 1; i <= 100; i++) s.record(i);
  assert.equal(s.quantile(0.5), 50);
  assert.equal(s.quantile(0.95), 95);
  for (let i = 0; i < 100; i++) s.record(1000); // the old samples leave the window
  assert.equal(s.quantile(0.95), 1000);
  assert.equal(s.quantile(0), 1000);
  assert.equal(s.count, 200);
});

Deno.test("LatencyStats EWMA starts at the first sample and moves by EWMA_ALPHA", () => {
  const s = new LatencyStats();
  assert.ok(Number.isNaN(s.ewmaMs));
  assert.ok(Number.isNaN(s.snapshot().p95Ms));
  s.record(10);
  assert.equal(s.ewmaMs, 10);
  s.record(20);
  assert.equal(s.ewmaMs, 10 + EWMA_ALPHA * 10);
  assert.throws(() => s.record(-1), RangeError);
  assert.throws(() => new LatencyStats(0), RangeError);
});
