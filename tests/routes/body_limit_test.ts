import assert from "node:assert/strict";
import { Hono } from "hono";
import { sizedBodyLimit } from "../../routes/body_limit.ts";

function app() {
  const a = new Hono();
  a.post(
    "/",
    sizedBodyLimit({ maxSize: 8, onError: (c) => c.text("too large", 413) }),
    async (c) => c.text(`read ${(await c.req.raw.arrayBuffer()).byteLength}`),
  );
  return a;
}

/** A request whose `body` getter records that it was read (the getter is what streams it). */
function watched(init: RequestInit & { headers?: Record<string, string> }) {
  const req = new Request("http://x/", { method: "POST", ...init });
  const proto = Object.getPrototypeOf(req);
  const getter = Object.getOwnPropertyDescriptor(proto, "body")!.get!;
  const seen = { body: false };
  Object.defineProperty(req, "body", {
    get() {
      seen.body = true;
      return getter.call(req);
    },
  });
  return { req, seen };
}

Deno.test("sizedBodyLimit() decides a declared size from Content-Length without reading req.body", async () => {
  // As a server receives them: the client declared the size.
  const small = watched({ body: new Uint8Array(8), headers: { "content-length": "8" } });
  assert.equal(small.req.headers.get("content-length"), "8");
  const ok = await app().fetch(small.req);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "read 8");
  assert.equal(small.seen.body, false, "req.body was not touched");

  const big = watched({ body: new Uint8Array(9), headers: { "content-length": "9" } });
  const refused = await app().fetch(big.req);
  assert.equal(refused.status, 413);
  assert.equal(big.seen.body, false, "req.body was not touched");
});

Deno.test("sizedBodyLimit() counts a streamed body without Content-Length (hono's bodyLimit)", async () => {
  const stream = (n: number) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < n; i++) c.enqueue(new Uint8Array(1));
        c.close();
      },
    });
  const over = new Request("http://x/", { method: "POST", body: stream(9) });
  assert.equal(over.headers.get("content-length"), null);
  assert.equal((await app().fetch(over)).status, 413);
  const under = new Request("http://x/", { method: "POST", body: stream(5) });
  const res = await app().fetch(under);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "read 5");
});
