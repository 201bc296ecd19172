import assert from "node:assert/strict";
import { LoopLag } from "../../runtime/loop_lag.ts";

Deno.test("LoopLag keeps the largest recent lag, fading with its half-life", () => {
  const steady = new LoopLag({ intervalMs: 60_000, halfLifeMs: 1e12 });
  try {
    steady.observe(8);
    steady.observe(3);
    assert.ok(steady.ms > 7.99 && steady.ms <= 8, `${steady.ms}`);
  } finally {
    steady.stop();
  }
  const fading = new LoopLag({ intervalMs: 60_000, halfLifeMs: 10_000 });
  try {
    const t = performance.now();
    fading.observe(8, t - 20_000); // two half-lives ago
    fading.observe(0, t);
    // 8 ms two half-lives ago is 2 ms now, and less a moment later.
    assert.ok(fading.ms > 0 && fading.ms <= 2, `${fading.ms}`);
  } finally {
    fading.stop();
  }
  assert.throws(() => new LoopLag({ intervalMs: 0 }), /intervalMs 0/);
});

Deno.test("LoopLag sees a blocked event loop and reports each probe's lag to onSample", async () => {
  const samples: number[] = [];
  const lag = new LoopLag({ intervalMs: 1, halfLifeMs: 1e12, onSample: (ms) => samples.push(ms) });
  try {
    await new Promise((r) => setTimeout(r, 5));
    const until = performance.now() + 50;
    while (performance.now() < until) { /* block the loop */ }
    const seen = samples.length;
    // The next probe runs after the block: wait for it.
    for (let i = 0; i < 100 && samples.length === seen; i++) {
      await new Promise((r) => setTimeout(r, 2));
    }
    // That probe waited behind the 50 ms block and saw most of it (its due time was at most
    // 1 ms after the block began, and 1 ms of lateness is forgiven).
    assert.ok(samples[seen]! >= 45, `the probe after the block saw ${samples[seen]} ms`);
    const largest = Math.max(...samples);
    assert.ok(Math.abs(lag.ms - largest) < 1e-6, `reading ${lag.ms}, largest sample ${largest}`);
  } finally {
    lag.stop();
  }
});

Deno.test("LoopLag reads a stall in progress before its probe has run", () => {
  const lag = new LoopLag({ intervalMs: 2, halfLifeMs: 1e12 });
  try {
    // Synchronously blocked: the probe, due 2 ms after construction, cannot have run.
    const until = performance.now() + 30;
    while (performance.now() < until) { /* a stall */ }
    assert.ok(lag.ms >= 25, `lag read during the stall: ${lag.ms} ms`);
  } finally {
    lag.stop();
  }
  assert.equal(lag.ms, 0, "a stopped probe is never overdue");
});
