/**
 * A line chart as a standalone SVG string: a few series over shared x values, one panel per
 * measure. Written out here because a plotting library would be larger than the chart.
 */

export interface Series {
  name: string;
  /** [x, y] points; NaN y values are skipped. */
  points: [number, number][];
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** A horizontal reference line (an SLA budget), drawn dashed. */
  reference?: { y: number; label: string };
}

export interface ChartOptions {
  xLabel: string;
  /** Plot x on a log2 scale (concurrencies 1, 2, 4, ...). */
  logX?: boolean;
  panelWidth?: number;
  panelHeight?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

const esc = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll(
    '"',
    "&quot;",
  );

/** Round tick values: 1, 2, 5 x 10^k spanning [0, max]. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.5; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Most x labels a panel shows: every distinct x up to this many, else round ticks. */
const MAX_X_LABELS = 12;

/**
 * The x values to label: every distinct x when there are few (concurrencies 1, 8, 32), else round
 * ticks inside [xMin, xMax] (a soak's 50 one-second samples), so that labels never overlap.
 */
function xTicks(xs: number[], xMin: number, xMax: number, logX?: boolean): number[] {
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  if (distinct.length <= MAX_X_LABELS || logX) return distinct;
  return ticks(xMax).filter((v) => v >= xMin && v <= xMax);
}

const fmt = (v: number) =>
  v >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(3)));

export function lineChart(panels: Panel[], opts: ChartOptions): string {
  const W = opts.panelWidth ?? 420;
  const H = opts.panelHeight ?? 300;
  const m = { l: 56, r: 16, t: 30, b: 44 };
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const legendH = 22;
  const width = W * panels.length;
  const height = H + legendH;
  let out =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">\n`;
  out += `<rect width="${width}" height="${height}" fill="white"/>\n`;
  panels.forEach((p, pi) => {
    const x0 = pi * W;
    const xs = p.series.flatMap((s) => s.points.map(([x]) => x));
    const ys = p.series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite);
    if (p.reference) ys.push(p.reference.y);
    const xMin = Math.min(...xs);
    const xMax = Math.max(...xs);
    const tx = (x: number) => {
      const f = opts.logX
        ? (Math.log2(x) - Math.log2(xMin)) / (Math.log2(xMax) - Math.log2(xMin) || 1)
        : (x - xMin) / (xMax - xMin || 1);
      return x0 + m.l + f * (W - m.l - m.r);
    };
    const yt = ticks(Math.max(...ys, 0) * 1.05);
    const yMax = yt[yt.length - 1]!;
    const ty = (y: number) => m.t + (1 - y / yMax) * (H - m.t - m.b);
    out += `<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="13">${
      esc(p.title)
    }</text>\n`;
    for (const v of yt) {
      out += `<line x1="${x0 + m.l}" x2="${x0 + W - m.r}" y1="${ty(v)}" y2="${
        ty(v)
      }" stroke="#e5e5e5"/>`;
      out += `<text x="${x0 + m.l - 6}" y="${ty(v) + 4}" text-anchor="end">${fmt(v)}</text>\n`;
    }
    for (const x of xTicks(xs, xMin, xMax, opts.logX)) {
      out += `<text x="${tx(x)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(x)}</text>\n`;
    }
    out += `<line x1="${x0 + m.l}" x2="${x0 + W - m.r}" y1="${H - m.b}" y2="${
      H - m.b
    }" stroke="#333"/>`;
    out += `<line x1="${x0 + m.l}" x2="${x0 + m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>\n`;
    out += `<text x="${x0 + (W + m.l - m.r) / 2}" y="${H - 8}" text-anchor="middle">${
      esc(opts.xLabel)
    }</text>\n`;
    out += `<text transform="translate(${x0 + 14},${
      (H - m.b + m.t) / 2
    }) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>\n`;
    if (p.reference) {
      const y = ty(p.reference.y);
      out += `<line x1="${x0 + m.l}" x2="${
        x0 + W - m.r
      }" y1="${y}" y2="${y}" stroke="#555" stroke-dasharray="5,4"/>`;
      out += `<text x="${x0 + W - m.r - 4}" y="${y - 4}" text-anchor="end" fill="#555">${
        esc(p.reference.label)
      }</text>\n`;
    }
    for (const s of p.series) {
      const color = COLORS[names.indexOf(s.name) % COLORS.length]!;
      const pts = s.points.filter(([, y]) => Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
      if (pts.length === 0) continue;
      out += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${
        pts.map(([x, y]) => `${tx(x).toFixed(1)},${ty(y).toFixed(1)}`).join(" ")
      }"/>\n`;
      for (const [x, y] of pts) {
        out += `<circle cx="${tx(x).toFixed(1)}" cy="${ty(y).toFixed(1)}" r="3" fill="${color}"/>`;
      }
      out += "\n";
    }
  });
  names.forEach((n, i) => {
    const x = 12 + i * 130;
    const y = H + 8;
    out += `<rect x="${x}" y="${y}" width="14" height="4" fill="${COLORS[i % COLORS.length]}"/>`;
    out += `<text x="${x + 20}" y="${y + 6}">${esc(n)}</text>\n`;
  });
  return out + "</svg>\n";
}
