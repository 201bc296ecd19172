/**
 * hono's `bodyLimit`, without touching `Request.body` when `Content-Length` declares the size.
 *
 * In Deno, reading `req.body` turns the request's body into a `ReadableStream`, and a later
 * `req.arrayBuffer()` then reads it through that stream instead of taking the whole body at once.
 * hono's `bodyLimit` reads `c.req.raw.body` on every request (to see whether there is one) even
 * when it then only compares `Content-Length` with the limit. On a bare `Deno.serve` answering
 * 7,500 requests/s with 28x28 PNG bodies (`bench/overload_probe.ts --only null,null-body --rate
 * 7500 --duration 4 --trace-gc`, two runs), reading `req.body` first raised the server thread's CPU
 * from 21-24% to 29-31% of a core, V8's GC helper threads from 2% to 5-6%, and the scavenge
 * pauses from 11-17 ms to 39-41 ms in all over the 4 s (docs/scheduler.md, Limits).
 *
 * A declared size is checked here from the header; a chunked or undeclared body goes through
 * hono's `bodyLimit`, which counts the bytes as they stream.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";

export interface SizedBodyLimitOptions {
  maxSize: number;
  onError: (c: Context) => Response | Promise<Response>;
}

export function sizedBodyLimit(opts: SizedBodyLimitOptions): MiddlewareHandler {
  const streamed = bodyLimit(opts);
  return async function sizedBodyLimit(c, next) {
    const headers = c.req.raw.headers;
    const length = headers.get("content-length");
    if (length !== null && !headers.has("transfer-encoding")) {
      // As hono's bodyLimit reads the header.
      if (parseInt(length, 10) > opts.maxSize) return await opts.onError(c);
      await next();
      return;
    }
    return await streamed(c, next);
  };
}
