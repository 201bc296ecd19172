/**
 * `GET /docs`: a small interactive reader of `/openapi.json`. Plain HTML and browser JavaScript,
 * inlined as a string so that every platform (Deno, Deno Deploy, Cloudflare Workers) serves it
 * without a file system or a bundler step. The script avoids template literals so that it can
 * live inside this one.
 */
export const DOCS_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API docs: MobileNet edge classifier</title>
<style>
  :root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --accent: #2457c5; --bg: #f6f7fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 18px 28px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0 0 4px; font-size: 20px; }
  header p { margin: 0; color: var(--muted); }
  main { max-width: 980px; margin: 0 auto; padding: 18px 28px 60px; }
  details.op { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; }
  details.op > summary { cursor: pointer; padding: 10px 14px; list-style: none; display: flex; gap: 12px; align-items: baseline; }
  .method { font: 600 12px ui-monospace, monospace; text-transform: uppercase; padding: 2px 8px; border-radius: 4px; color: #fff; background: #3b7d3b; }
  .method.post { background: var(--accent); }
  .path { font: 600 14px ui-monospace, monospace; }
  .summary { color: var(--muted); }
  .body { padding: 0 14px 14px; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; }
  code, pre { font-family: ui-monospace, monospace; font-size: 12.5px; }
  input[type=text] { width: 100%; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
  button { padding: 6px 16px; border: 0; border-radius: 5px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
  pre.out { background: #101522; color: #d7e0f2; padding: 10px; border-radius: 6px; overflow: auto; max-height: 420px; }
  .status { font-weight: 600; margin: 8px 0 4px; }
  a { color: var(--accent); }
</style>
</head>
<body>
<header>
  <h1 id="title">API docs</h1>
  <p id="description">Loading <a href="/openapi.json">/openapi.json</a>...</p>
</header>
<main id="ops"></main>
<script>
"use strict";
function el(tag, attrs, children) {
  var e = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
  });
  (children || []).forEach(function (c) { if (c) e.appendChild(c); });
  return e;
}
function describeSchema(s) {
  if (!s) return "";
  if (s.anyOf) {
    return s.anyOf.map(describeSchema).join(", or ") + (s.default !== undefined ? "; default " + s.default : "");
  }
  var parts = [s.type || ""];
  if (s.enum) parts.push("one of " + s.enum.join(", "));
  var lo = s.exclusiveMinimum !== undefined ? "(" + s.exclusiveMinimum : s.minimum !== undefined ? "[" + s.minimum : null;
  if (lo !== null || s.maximum !== undefined) parts.push((lo === null ? "(.." : lo) + ", " + (s.maximum === undefined ? "..)" : s.maximum + "]"));
  if (s.default !== undefined) parts.push("default " + s.default);
  return parts.join("; ");
}
function operation(path, method, op) {
  var params = op.parameters || [];
  var rows = params.map(function (p) {
    var input = el("input", { type: "text", name: p.name, "data-in": p.in, placeholder: p.schema && p.schema.example !== undefined ? String(p.schema.example) : "" });
    return el("tr", {}, [
      el("td", {}, [el("code", { text: p.name }), el("div", { text: p.in, style: "color:#5b6475;font-size:12px" })]),
      el("td", { text: describeSchema(p.schema) }),
      el("td", { text: p.description || (p.schema && p.schema.description) || "" }),
      el("td", { style: "width:180px" }, [input]),
    ]);
  });
  var table = params.length ? el("table", {}, [el("tr", {}, ["name", "accepts", "meaning", "value"].map(function (h) { return el("th", { text: h }); }))].concat(rows)) : null;
  var file = op.requestBody ? el("input", { type: "file", name: "image", accept: "image/*" }) : null;
  var out = el("pre", { class: "out", hidden: "" });
  var status = el("div", { class: "status" });
  var send = el("button", { type: "submit", text: "Send" });
  var form = el("form", {}, [table, file ? el("p", {}, [el("label", { text: "Image file (sent as multipart field image): " }), file]) : null, send, status, out]);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var query = new URLSearchParams();
    var headers = {};
    form.querySelectorAll("input[type=text]").forEach(function (i) {
      if (i.value === "") return;
      if (i.dataset.in === "header") headers[i.name] = i.value; else query.set(i.name, i.value);
    });
    var init = { method: method.toUpperCase(), headers: headers };
    if (file && file.files[0]) { var fd = new FormData(); fd.append("image", file.files[0]); init.body = fd; }
    var url = path + (query.toString() ? "?" + query.toString() : "");
    status.textContent = init.method + " " + url + " ...";
    var t0 = performance.now();
    fetch(url, init).then(function (res) {
      var ms = (performance.now() - t0).toFixed(1);
      status.textContent = res.status + " " + res.statusText + " (" + ms + " ms)" + (res.headers.get("server-timing") ? "  Server-Timing: " + res.headers.get("server-timing") : "");
      return res.text();
    }).then(function (text) {
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      out.hidden = false;
      out.textContent = text;
    }).catch(function (err) { status.textContent = "Request failed: " + err; });
  });
  var responses = Object.keys(op.responses || {}).map(function (code) {
    return el("tr", {}, [el("td", {}, [el("code", { text: code })]), el("td", { text: op.responses[code].description || "" })]);
  });
  return el("details", { class: "op", id: method + "-" + path.replace(/\W+/g, "-") }, [
    el("summary", {}, [el("span", { class: "method " + method, text: method }), el("span", { class: "path", text: path }), el("span", { class: "summary", text: op.summary || "" })]),
    el("div", { class: "body" }, [
      op.description ? el("p", { text: op.description }) : null,
      form,
      el("h4", { text: "Responses" }),
      el("table", {}, responses),
    ]),
  ]);
}
fetch("/openapi.json").then(function (r) { return r.json(); }).then(function (spec) {
  document.getElementById("title").textContent = spec.info.title + " (OpenAPI " + spec.openapi + ")";
  var d = document.getElementById("description");
  d.textContent = spec.info.description + " ";
  d.appendChild(el("a", { href: "/openapi.json", text: "openapi.json" }));
  d.appendChild(document.createTextNode(" - "));
  d.appendChild(el("a", { href: "/", text: "try it on a picture" }));
  var ops = document.getElementById("ops");
  Object.keys(spec.paths).forEach(function (path) {
    Object.keys(spec.paths[path]).forEach(function (method) {
      ops.appendChild(operation(path, method, spec.paths[path][method]));
    });
  });
}).catch(function (err) {
  document.getElementById("description").textContent = "Could not load /openapi.json: " + err;
});
</script>
</body>
</html>
`;
