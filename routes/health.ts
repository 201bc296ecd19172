/** `GET /healthz` (the process answers) and `GET /readyz` (models loaded and warmed). */
import { Hono } from "hono";

export interface Readiness {
  /** True once every model variant is loaded and has answered a warm-up inference. */
  ready(): boolean;
  /** A sentence for the 503 answer while not ready. */
  reason(): string;
}

export function healthRoutes(readiness: Readiness): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    if (readiness.ready()) return c.json({ status: "ready" });
    return c.body(
      JSON.stringify({
        type: "about:blank",
        title: "Service Unavailable",
        status: 503,
        detail: readiness.reason(),
      }),
      503,
      { "content-type": "application/problem+json", "retry-after": "1" },
    );
  });
  return app;
}
