/**
 * Admission during graceful shutdown (runtime/shutdown.ts): counts the requests in flight, and
 * once the drain has begun answers new ones 503 with `Retry-After` and `Connection: close`, so that
 * the client retries elsewhere while the requests already admitted finish.
 */
import type { MiddlewareHandler } from "hono";
import type { DrainState } from "../runtime/shutdown.ts";
import { ProblemError } from "./problem.ts";

export const drainGuard = (state: DrainState): MiddlewareHandler =>
  async function drainGuard(_c, next) {
    if (state.draining) {
      throw new ProblemError(
        503,
        "The server is shutting down and takes no new requests: retry, another instance will answer.",
        { reason: "shutting_down" },
        { "retry-after": "1", connection: "close" },
      );
    }
    state.enter();
    try {
      await next();
    } finally {
      state.leave();
    }
  };
