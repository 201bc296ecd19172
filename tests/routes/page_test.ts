import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { DOCS_HTML } from "../../public/docs_html.ts";
import { INDEX_HTML } from "../../public/index_html.ts";

const app = createApp();

/** The inline scripts of a page. */
function scripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
}

Deno.test("GET / answers the HTML page with no remote assets", async () => {
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  const html = await res.text();
  assert.match(html, /<input id="file" type="file"/);
  assert.match(html, /id="alpha"/);
  assert.match(html, /id="beta"/);
  assert.doesNotMatch(html.replace('"http://www.w3.org/2000/svg"', ""), /https?:\/\//);
});

Deno.test("the page takes its numbers from /v1/models, /v1/classify and /v1/cost", () => {
  const js = scripts(INDEX_HTML).join("\n");
  for (const url of ['fetch("/v1/models")', 'fetch("/v1/classify?', 'fetch("/v1/cost?']) {
    assert.ok(js.includes(url), url);
  }
  // No digits typed into the chart data: accuracy, MACs and latency are read from the answer.
  assert.match(js, /b\.accuracy\.int8/);
  assert.match(js, /b\.macs/);
  assert.match(js, /warmLatencyMs/);
});

Deno.test("the inline scripts of / and /docs are valid JavaScript", () => {
  for (const html of [INDEX_HTML, DOCS_HTML]) {
    const found = scripts(html);
    assert.equal(found.length, 1);
    // Compiles without running: a syntax error throws here.
    new Function(found[0]!);
  }
});

Deno.test("GET /docs and GET /openapi.json are served by the app", async () => {
  assert.equal((await app.request("/docs")).status, 200);
  const doc = await (await app.request("/openapi.json")).json();
  assert.equal(doc.openapi, "3.1.0");
  assert.ok(doc.paths["/v1/cost"]);
});
