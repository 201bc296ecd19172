/**
 * The app factory: mounts each resource's sub-app and the one error handler. `main.ts` wires it to
 * `Deno.serve`; tests call `createApp(deps).request(...)` in-process.
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { type CostDefaults, costRoutes } from "./routes/cost.ts";
import { healthRoutes, type Readiness } from "./routes/health.ts";
import { notFound, onError } from "./routes/problem.ts";

export interface AppDeps {
  readiness?: Readiness;
  costDefaults?: CostDefaults;
}

export function createApp(deps: AppDeps = {}): Hono {
  const app = new Hono();
  app.use(requestId());
  app.route("/", healthRoutes(deps.readiness ?? { ready: () => true, reason: () => "" }));
  app.route("/v1/cost", costRoutes(deps.costDefaults ? { defaults: deps.costDefaults } : {}));
  app.notFound(notFound);
  app.onError(onError);
  return app;
}
