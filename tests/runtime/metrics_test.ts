import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, MetricsRegistry } from "../../runtime/metrics.ts";

Deno.test("Histogram renders cumulative buckets, +Inf equal to _count, and _sum", () => {
  const h = new Histogram("t_seconds", "test", ["route"], [0.1, 1]);
  for (const v of [0.05, 0.1, 0.5, 3]) h.observe(["/a"], v);
  assert.equal(
    h.render(),
    [
      "# HELP t_seconds test",
      "# TYPE t_seconds histogram",
      't_seconds_bucket{route="/a",le="0.1"} 2',
      't_seconds_bucket{route="/a",le="1"} 3',
      't_seconds_bucket{route="/a",le="+Inf"} 4',
      't_seconds_sum{route="/a"} 3.65',
      't_seconds_count{route="/a"} 4',
      "",
    ].join("\n"),
  );
});

Deno.test("Counter escapes backslash, quote and newline in label values", () => {
  const c = new Counter("t_total", "a help\nline", ["v"]);
  c.inc(['a"b\\c\nd'], 2);
  assert.equal(
    c.render(),
    '# HELP t_total a help\\nline\n# TYPE t_total counter\nt_total{v="a\\"b\\\\c\\nd"} 2\n',
  );
});

Deno.test("Metrics refuse wrong label counts, negative counter steps, bad names and duplicates", () => {
  const c = new Counter("t_total", "x", ["a", "b"]);
  assert.throws(() => c.inc(["only-one"]), /needs 2 label values \(a, b\): got 1/);
  assert.throws(() => c.inc(["x", "y"], -1), RangeError);
  assert.throws(() => new Gauge("bad-name", "x", []), /not a valid metric name/);
  assert.throws(() => new Histogram("h", "x", ["le"], [1]), /label "le" is not allowed/);
  assert.throws(() => new Histogram("h", "x", [], [1, 1]), /increasing/);
  const r = new MetricsRegistry();
  r.register(c);
  assert.throws(() => r.register(new Counter("t_total", "y", [])), /already taken/);
});

Deno.test("Gauge runs its collect callback at render time", () => {
  let n = 0;
  const g: Gauge = new Gauge("t_gauge", "x", [], () => g.set([], ++n));
  assert.match(g.render(), /^t_gauge 1$/m);
  assert.match(g.render(), /^t_gauge 2$/m);
});
