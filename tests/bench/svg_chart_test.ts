import assert from "node:assert/strict";
import { lineChart } from "../../bench/svg_chart.ts";

Deno.test("lineChart() draws one polyline per series per panel, a legend entry per name, and the reference line", () => {
  const svg = lineChart([
    {
      title: "Throughput",
      yLabel: "req/s",
      series: [
        { name: "alpha 0.25", points: [[1, 100], [8, 800], [32, 3000]] },
        { name: "alpha 1", points: [[1, 50], [8, 300], [32, NaN]] },
      ],
    },
    {
      title: "p99 <ms>",
      yLabel: "ms",
      series: [{ name: "alpha 0.25", points: [[1, 2], [8, 5], [32, 18]] }],
      reference: { y: 20, label: "SLA 20 ms" },
    },
  ], { xLabel: "concurrency", logX: true });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<polyline /g)?.length, 3);
  assert.equal(svg.match(/<circle /g)?.length, 3 + 2 + 3, "NaN points are skipped");
  assert.match(svg, /p99 &lt;ms&gt;/, "text is escaped");
  assert.match(svg, /stroke-dasharray="5,4"/);
  assert.match(svg, />SLA 20 ms</);
  assert.equal(svg.match(/>alpha 0.25</g)?.length, 1, "one legend entry per name");
  assert.ok(!svg.includes("NaN"), "no NaN coordinates");
});

/** The x-axis labels of a one-panel chart (default panel height: their baseline is y=272). */
const xLabels = (svg: string) =>
  [...svg.matchAll(/y="272" text-anchor="middle">([^<]*)</g)].map((m) => m[1]);

Deno.test("lineChart() labels many x values with round ticks, not one label each", () => {
  // A soak: one sample per second for 49.4 s, the first at 0.0000508 s.
  const points: [number, number][] = Array.from({ length: 51 }, (_, i) => [
    i === 0 ? 0.0000508 : i === 50 ? 49.4 : i + 0.01,
    400,
  ]);
  const svg = lineChart([{ title: "RSS", yLabel: "MiB", series: [{ name: "a", points }] }], {
    xLabel: "seconds",
  });
  assert.deepEqual(xLabels(svg), ["10", "20", "30", "40"]);
  // Few x values (concurrencies) keep a label each.
  const few = lineChart([{
    title: "p99",
    yLabel: "ms",
    series: [{ name: "a", points: [[1, 2], [8, 5], [32, 18]] }],
  }], { xLabel: "concurrency", logX: true });
  assert.deepEqual(xLabels(few), ["1", "8", "32"]);
});
