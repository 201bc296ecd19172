/**
 * `GET /`: drop an image, pick alpha and beta, see the top-k with bars; and a chart of accuracy
 * against MACs and against measured latency for every shipped variant (the project's own version
 * of the seed's tables 15.7.3 and 15.7.4, as a picture).
 *
 * Plain HTML and browser JavaScript with no build step, inlined as a string so that every platform
 * serves it without a file system. Every number on the page comes from `GET /v1/models`
 * (accuracy measured by `deno task eval`, latency measured by this server at start-up, MACs from
 * the spec) and `GET /v1/cost`; none is typed here. The script avoids template literals so that
 * it can live inside this one.
 */
export const INDEX_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MobileNet edge classifier</title>
<style>
  :root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --accent: #2457c5; --bg: #f6f7fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 16px 28px; background: #fff; border-bottom: 1px solid var(--line); display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 20px; }
  header nav a { margin-right: 12px; color: var(--accent); }
  main { max-width: 1100px; margin: 0 auto; padding: 18px 28px 48px; display: grid; grid-template-columns: 360px 1fr; gap: 22px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
  h2 { font-size: 16px; margin: 0 0 10px; }
  #drop { border: 2px dashed #9aa6bd; border-radius: 8px; height: 190px; display: flex; align-items: center; justify-content: center; text-align: center; color: var(--muted); cursor: pointer; overflow: hidden; position: relative; }
  #drop.over { border-color: var(--accent); background: #eef3ff; }
  #drop img { max-width: 100%; max-height: 100%; image-rendering: pixelated; }
  label.field { display: block; margin: 10px 0 4px; font-weight: 600; font-size: 13px; }
  select { width: 100%; padding: 5px; font: inherit; }
  .bar { display: grid; grid-template-columns: 110px 1fr 52px; gap: 8px; align-items: center; margin: 5px 0; font-size: 14px; }
  .bar .track { background: #edf0f5; border-radius: 4px; height: 16px; overflow: hidden; }
  .bar .fill { background: var(--accent); height: 100%; }
  .bar:first-child .label { font-weight: 700; }
  .meta { color: var(--muted); font-size: 13px; margin-top: 8px; }
  .error { color: #a11d1d; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 10px; }
  th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
  .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
  .note { color: var(--muted); font-size: 12.5px; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } .charts { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>MobileNet edge classifier</h1>
  <nav><a href="/docs">API docs</a><a href="/openapi.json">openapi.json</a><a href="/v1/models">/v1/models</a></nav>
</header>
<main>
  <div>
    <section>
      <h2>Classify an image</h2>
      <div id="drop" tabindex="0">Drop an image here<br>or click to choose one</div>
      <input id="file" type="file" accept="image/*" hidden>
      <label class="field" for="alpha">Width multiplier alpha</label>
      <select id="alpha"></select>
      <label class="field" for="beta">Resolution multiplier beta</label>
      <select id="beta"></select>
      <label class="field" for="backend">Backend</label>
      <select id="backend"></select>
    </section>
    <section style="margin-top:14px">
      <h2>Top-k</h2>
      <div id="result" aria-live="polite"><span class="note">No image yet.</span></div>
      <div id="resultMeta" class="meta"></div>
    </section>
  </div>
  <section>
    <h2>Accuracy against cost, every shipped variant</h2>
    <div class="charts"><div id="chartMacs"></div><div id="chartLatency"></div></div>
    <p class="note" id="chartNote"></p>
    <div id="table"></div>
  </section>
</main>
<script>
"use strict";
var state = { models: null, file: null, seq: 0 };
var COLORS = ["#2457c5", "#d9822b", "#2e9e5b", "#b33f8c", "#6b5bd6", "#8a6d3b"];
function $(id) { return document.getElementById(id); }
function el(tag, attrs, children) {
  var e = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
  });
  (children || []).forEach(function (c) { if (c) e.appendChild(c); });
  return e;
}
var SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  var e = document.createElementNS(SVG, tag);
  Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmtMacs(m) { return m >= 1e9 ? (m / 1e9).toFixed(2) + " G" : m >= 1e6 ? (m / 1e6).toFixed(2) + " M" : (m / 1e3).toFixed(1) + " k"; }
function pct(x) { return (100 * x).toFixed(1) + "%"; }
function problemText(body, status) {
  return body && body.detail ? body.detail : "HTTP " + status;
}

function currentModel() {
  var a = Number($("alpha").value);
  return state.models.models.filter(function (m) { return m.alpha === a; })[0];
}
function fillBetas() {
  var m = currentModel();
  var sel = $("beta");
  var previous = sel.value;
  sel.innerHTML = "";
  m.betas.filter(function (b) { return b.served; }).forEach(function (b) {
    sel.appendChild(el("option", { value: String(b.beta), text: b.beta + "  (" + b.resolution + "x" + b.resolution + ")" }));
  });
  if (previous && sel.querySelector("option[value='" + previous + "']")) sel.value = previous;
}

function showPredictions(body) {
  var box = $("result");
  box.innerHTML = "";
  body.predictions.forEach(function (p) {
    var row = el("div", { class: "bar", "data-label": p.label }, [
      el("span", { class: "label", text: p.label }),
      el("div", { class: "track" }, [el("div", { class: "fill", style: "width:" + (100 * p.score).toFixed(1) + "%" })]),
      el("span", { class: "score", text: pct(p.score) }),
    ]);
    box.appendChild(row);
  });
  var m = body.model;
  $("resultMeta").textContent = m.id + " at " + m.resolution + "x" + m.resolution + " on " + m.backend +
    ": " + fmtMacs(body.cost.macs) + "MACs, " + (body.cost.params / 1e6).toFixed(2) + " M params; " +
    "inference " + body.timing_ms.inference.toFixed(2) + " ms, total " + body.timing_ms.total.toFixed(2) + " ms" +
    (m.trained === false ? " (this model is an untrained stand-in)" : "");
  box.setAttribute("data-top", body.predictions[0] ? body.predictions[0].label : "");
}

function classify() {
  if (!state.file || !state.models) return;
  var seq = ++state.seq;
  var q = new URLSearchParams({ alpha: $("alpha").value, beta: $("beta").value, backend: $("backend").value });
  var fd = new FormData();
  fd.append("image", state.file);
  $("result").innerHTML = "<span class='note'>Classifying...</span>";
  $("result").removeAttribute("data-top");
  fetch("/v1/classify?" + q.toString(), { method: "POST", body: fd }).then(function (res) {
    return res.json().then(function (body) { return { res: res, body: body }; });
  }).then(function (r) {
    if (seq !== state.seq) return;
    if (!r.res.ok) {
      $("result").innerHTML = "";
      $("result").appendChild(el("span", { class: "error", text: problemText(r.body, r.res.status) }));
      return;
    }
    showPredictions(r.body);
    showCostShare();
  }).catch(function (err) {
    $("result").textContent = "Request failed: " + err;
  });
}

function showCostShare() {
  var m = currentModel();
  fetch("/v1/cost?alpha=" + m.alpha + "&beta=" + $("beta").value).then(function (r) { return r.json(); }).then(function (c) {
    if (!c.separable) return;
    var t = c.separable.total;
    $("resultMeta").appendChild(el("div", { text: "Depthwise-separable layers: " + fmtMacs(t.separableMacs) + "MACs instead of " +
      fmtMacs(t.standardMacs) + "MACs as standard convolutions (" + (1 / t.ratio).toFixed(1) + "x fewer), from /v1/cost." }));
  });
}

function pickFile(f) {
  if (!f) return;
  state.file = f;
  var drop = $("drop");
  drop.innerHTML = "";
  var img = el("img", { alt: f.name });
  img.src = URL.createObjectURL(f);
  drop.appendChild(img);
  classify();
}

// --- chart: accuracy against MACs (log axis) and against measured latency -------------------
function points(backend) {
  var out = [];
  state.models.models.forEach(function (m, i) {
    m.betas.forEach(function (b) {
      var acc = b.accuracy.int8 !== null ? b.accuracy.int8 : b.accuracy.float;
      if (!b.served || b.macs === undefined) return;
      var lat = b.warmLatencyMs ? b.warmLatencyMs[backend] : null;
      out.push({ alpha: m.alpha, beta: b.beta, resolution: b.resolution, macs: b.macs, params: b.params, acc: acc,
        accPct: acc === null ? null : 100 * acc, accFloat: b.accuracy.float, accInt8: b.accuracy.int8, latency: lat === undefined ? null : lat, color: COLORS[i % COLORS.length] });
    });
  });
  return out;
}
function niceTicks(lo, hi, n) {
  var span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log10(span / n)));
  [1, 2, 5, 10].some(function (m) { if (span / (step * m) <= n) { step *= m; return true; } return false; });
  var ticks = [];
  for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) ticks.push(Number(v.toPrecision(6)));
  return ticks;
}
function chart(target, pts, xKey, xLabel, logX, fmtX, yKey, yLabel, fmtY) {
  var W = 340, H = 262, L = 58, R = 12, T = 10, B = 54;
  var box = $(target);
  box.innerHTML = "";
  var usable = pts.filter(function (p) { return p[xKey] !== null && p[xKey] > 0 && p[yKey] !== null; });
  if (!usable.length) { box.appendChild(el("p", { class: "note", text: "Nothing measured to plot yet: " + yLabel + " against " + xLabel + "." })); return; }
  var xs = usable.map(function (p) { return logX ? Math.log10(p[xKey]) : p[xKey]; });
  var ys = usable.map(function (p) { return p[yKey]; });
  var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
  var px = (x1 - x0) * 0.08 || 0.5, py = (y1 - y0) * 0.1 || 1;
  x0 -= px; x1 += px; y0 = Math.max(0, y0 - py); y1 = yKey === "accPct" ? Math.min(100, y1 + py) : y1 + py;
  if (!logX) x0 = Math.max(0, x0);
  function sx(v) { return L + (v - x0) / (x1 - x0) * (W - L - R); }
  function sy(v) { return T + (1 - (v - y0) / (y1 - y0)) * (H - T - B); }
  var s = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": "accuracy against " + xLabel });
  s.appendChild(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fbfcfe", stroke: "#d9dee7" }));
  niceTicks(y0, y1, 5).forEach(function (v) {
    s.appendChild(svg("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#edf0f5" }));
    s.appendChild(svg("text", { x: L - 5, y: sy(v) + 4, "text-anchor": "end" }, fmtY(v)));
  });
  var xt = logX ? niceTicks(x0, x1, 4).filter(function (v) { return Math.abs(v - Math.round(v * 2) / 2) < 1e-9; }) : niceTicks(x0, x1, 5);
  if (logX && xt.length < 2) xt = niceTicks(x0, x1, 4);
  xt.forEach(function (v) {
    s.appendChild(svg("line", { x1: sx(v), x2: sx(v), y1: T, y2: H - B, stroke: "#edf0f5" }));
    s.appendChild(svg("text", { x: sx(v), y: H - B + 14, "text-anchor": "middle" }, fmtX(logX ? Math.pow(10, v) : v)));
  });
  s.appendChild(svg("text", { x: (L + W - R) / 2, y: H - B + 28, "text-anchor": "middle" }, xLabel));
  s.appendChild(svg("text", { x: 12, y: (T + H - B) / 2, transform: "rotate(-90 12 " + (T + H - B) / 2 + ")", "text-anchor": "middle" }, yLabel));
  var byAlpha = {}, order = [];
  usable.forEach(function (p) {
    if (!byAlpha[p.alpha]) { byAlpha[p.alpha] = []; order.push(p.alpha); }
    byAlpha[p.alpha].push(p);
  });
  order.forEach(function (a) {
    var line = byAlpha[a].slice().sort(function (p, q) { return p[xKey] - q[xKey]; });
    var d = line.map(function (p, i) { return (i ? "L" : "M") + sx(logX ? Math.log10(p[xKey]) : p[xKey]).toFixed(1) + " " + sy(p[yKey]).toFixed(1); }).join(" ");
    s.appendChild(svg("path", { d: d, fill: "none", stroke: line[0].color, "stroke-width": 1.5, "stroke-opacity": 0.6 }));
  });
  usable.forEach(function (p) {
    var c = svg("circle", { cx: sx(logX ? Math.log10(p[xKey]) : p[xKey]), cy: sy(p[yKey]), r: 4.5, fill: p.color, "data-alpha": p.alpha, "data-beta": p.beta });
    c.appendChild(svg("title", {}, "alpha " + p.alpha + ", beta " + p.beta + " (" + p.resolution + "px): " + (p.acc === null ? "accuracy not measured" : pct(p.acc)) + ", " + fmtMacs(p.macs) + "MACs" + (p.latency !== null ? ", " + p.latency.toFixed(2) + " ms" : "")));
    s.appendChild(c);
  });
  var lx = L + 8;
  order.forEach(function (a) {
    s.appendChild(svg("circle", { cx: lx, cy: H - 8, r: 4, fill: byAlpha[a][0].color }));
    s.appendChild(svg("text", { x: lx + 7, y: H - 4 }, "\u03b1 " + a));
    lx += 52;
  });
  box.appendChild(s);
}
function table(pts, backend) {
  var rows = pts.map(function (p) {
    return el("tr", {}, [
      el("td", { text: String(p.alpha) }), el("td", { text: String(p.beta) }), el("td", { text: p.resolution + "x" + p.resolution }),
      el("td", { text: fmtMacs(p.macs) }), el("td", { text: (p.params / 1e6).toFixed(3) + " M" }),
      el("td", { text: p.accFloat === null ? "-" : pct(p.accFloat) }), el("td", { text: p.accInt8 === null ? "-" : pct(p.accInt8) }),
      el("td", { text: p.latency === null ? "-" : p.latency.toFixed(2) + " ms" }),
    ]);
  });
  var head = el("tr", {}, ["alpha", "beta", "input", "MACs", "params", "float acc.", "int8 acc.", "latency (" + backend + ")"].map(function (h) { return el("th", { text: h }); }));
  $("table").innerHTML = "";
  $("table").appendChild(el("table", { id: "variants" }, [head].concat(rows)));
}
function drawCharts() {
  var backend = $("backend").value;
  var pts = points(backend);
  var fmtMs = function (v) { return v.toFixed(v < 1 ? 2 : 1); };
  var fmtPct = function (v) { return v + "%"; };
  var measured = pts.some(function (p) { return p.acc !== null; });
  chart("chartMacs", pts, "macs", "multiply-adds per image (log)", true, fmtMacs, "accPct", "top-1 accuracy", fmtPct);
  if (measured) chart("chartLatency", pts, "latency", "warm latency, ms (" + backend + ")", false, fmtMs, "accPct", "top-1 accuracy", fmtPct);
  else chart("chartLatency", pts, "macs", "multiply-adds per image (log)", true, fmtMacs, "latency", "warm latency, ms (" + backend + ")", fmtMs);
  var untrained = state.models.models.some(function (m) { return m.trained === false; });
  $("chartNote").textContent = "Accuracy: int8 (float where int8 is missing) on the test set, measured by deno task eval; " +
    "MACs from the architecture spec; latency: one image, measured by this server when it warmed each variant." +
    (untrained ? " Some models are untrained stand-ins: their accuracy is chance." : "") +
    (measured ? "" : " No accuracy is measured yet (deno task eval writes it to the manifest): the right-hand chart shows latency against MACs instead.");
  table(pts, backend);
}

function init() {
  fetch("/v1/models").then(function (res) {
    return res.json().then(function (body) { return { res: res, body: body }; });
  }).then(function (r) {
    if (!r.res.ok) throw new Error(problemText(r.body, r.res.status));
    state.models = r.body;
    var a = $("alpha");
    r.body.models.forEach(function (m) { a.appendChild(el("option", { value: String(m.alpha), text: m.alpha + "  (" + m.id + ")" })); });
    a.value = String(r.body.default.alpha);
    var b = $("backend");
    r.body.backends.forEach(function (n) { b.appendChild(el("option", { value: n, text: n })); });
    b.value = r.body.default.backend;
    fillBetas();
    $("beta").value = String(r.body.default.beta);
    drawCharts();
    document.body.setAttribute("data-ready", "true");
  }).catch(function (err) {
    $("result").innerHTML = "";
    $("result").appendChild(el("span", { class: "error", text: "Cannot load the models: " + err.message }));
  });
  var drop = $("drop"), file = $("file");
  drop.addEventListener("click", function () { file.click(); });
  drop.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") file.click(); });
  file.addEventListener("change", function () { pickFile(file.files[0]); });
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) { e.preventDefault(); drop.classList.remove("over"); pickFile(e.dataTransfer.files[0]); });
  $("alpha").addEventListener("change", function () { fillBetas(); classify(); });
  $("beta").addEventListener("change", classify);
  $("backend").addEventListener("change", function () { drawCharts(); classify(); });
}
init();
</script>
</body>
</html>
`;
