/**
 * The app factory: mounts each resource's sub-app and the one error handler. `main.ts` wires it to
 * `Deno.serve`; tests call `createApp(deps).request(...)` in-process.
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { type ClassifyOptions, classifyRoutes } from "./routes/classify.ts";
import { type CostDefaults, costRoutes } from "./routes/cost.ts";
import { healthRoutes, type Readiness } from "./routes/health.ts";
import { drainGuard } from "./routes/drain.ts";
import { metricsRoutes, requestMetrics } from "./routes/metrics.ts";
import { modelsRoutes } from "./routes/models.ts";
import { openApiRoutes } from "./routes/openapi.ts";
import { pageRoutes } from "./routes/page.ts";
import { notFound, onError } from "./routes/problem.ts";
import { createServiceMetrics, type ServiceMetrics } from "./runtime/metrics.ts";
import type { DrainState } from "./runtime/shutdown.ts";

export interface AppDeps {
  readiness?: Readiness;
  costDefaults?: CostDefaults;
  /** The service's metrics, shared with the scheduler; a fresh set when absent. */
  metrics?: ServiceMetrics;
  /** Sink for one JSON log line per request; no logging when absent. */
  log?: ((line: string) => void) | null;
  /** Graceful shutdown's request count; new requests get 503 once it drains. */
  drain?: DrainState;
  /** The served models (registry) and classify options; without them no /v1/classify, /v1/models. */
  classify?: ClassifyOptions;
}

export function createApp(deps: AppDeps = {}): Hono {
  const app = new Hono();
  const metrics = deps.metrics ?? createServiceMetrics();
  app.use(requestId());
  app.use(requestMetrics({ metrics, log: deps.log ?? null }));
  if (deps.drain) app.use(drainGuard(deps.drain));
  app.route("/", metricsRoutes(metrics));
  app.route("/", healthRoutes(deps.readiness ?? { ready: () => true, reason: () => "" }));
  app.route("/v1/cost", costRoutes(deps.costDefaults ? { defaults: deps.costDefaults } : {}));
  if (deps.classify) {
    app.route("/v1/classify", classifyRoutes(deps.classify));
    app.route("/v1/models", modelsRoutes(deps.classify.models));
  }
  app.route(
    "/",
    openApiRoutes({
      ...(deps.costDefaults ? { defaults: deps.costDefaults } : {}),
      ...(deps.classify ? { models: deps.classify.models } : {}),
    }),
  );
  app.route("/", pageRoutes());
  app.notFound(notFound);
  app.onError(onError);
  return app;
}
