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

Deno.test("LoopLag sees a blocked event loop", async () => {
  const lag = new LoopLag({ intervalMs: 1, halfLifeMs: 1e12 });
  try {
    await new Promise((r) => setTimeout(r, 5));
    const until = performance.now() + 50;
    while (performance.now() < until) { /* block the loop */ }
    for (let i = 0; i < 100 && lag.ms === 0; i++) await new Promise((r) => setTimeout(r, 2));
    assert.ok(lag.ms > 0);
  } finally {
    lag.stop();
  }
});
