/**
 * Cloudflare Workers: the same Hono app as `main.ts` (`app.ts`'s `createApp`), serving the
 * shipped models on the project's own int8 engine. The entry that wrangler runs,
 * `edge/workers/entry.js`, is written by `deno task build:workers`: it imports the kernels
 * `.wasm` as a module, the manifest as JSON and every ONNX file as bytes (Data modules), and calls
 * {@link createWorker}. No file system, no compilation from bytes, no threads.
 *
 * The models load on the first request an isolate receives (Workers have no start-up phase);
 * that request waits for them.
 *
 * @module
 */
import { createApp } from "../app.ts";
import { servedCostDefaults } from "../routes/models.ts";
import { problemResponse } from "../routes/problem.ts";
import type { ModelRegistry } from "../runtime/registry.ts";
import { type EdgeModelSource, EdgeRegistry } from "./edge_registry.ts";
import { Hono } from "hono";

/** A class type's public members only (`keyof` omits private fields), as a structural type. */
type PublicMembers<T> = { [K in keyof T]: T[K] };

export interface WorkerHandler {
  fetch(request: Request): Promise<Response>;
}

export function createWorker(source: EdgeModelSource): WorkerHandler {
  let app: Hono | undefined;
  let registry: EdgeRegistry | undefined;
  return {
    async fetch(request: Request): Promise<Response> {
      if (!app || !registry) {
        registry = new EdgeRegistry(source);
        // EdgeRegistry has every public member of ModelRegistry (checked here at compile time, so
        // a member added there fails `deno check` until added here); the class itself is not
        // assignable only because ModelRegistry's private fields make its type nominal.
        const models =
          (registry satisfies PublicMembers<ModelRegistry>) as unknown as ModelRegistry;
        const costDefaults = servedCostDefaults(models);
        const inner = createApp({
          readiness: registry,
          ...(costDefaults ? { costDefaults } : {}),
          classify: { models },
        });
        // Prometheus metrics describe one long-lived process; a Workers isolate is neither, and
        // has no process memory to read. The platform's analytics take that role.
        app = new Hono();
        app.get(
          "/metrics",
          (c) =>
            problemResponse(c, {
              type: "about:blank",
              title: "Not Implemented",
              status: 501,
              detail:
                "GET /metrics is not served on Cloudflare Workers: isolates are short-lived and " +
                "per-request; use Workers analytics, or run the Deno server for Prometheus metrics.",
            }),
        );
        app.route("/", inner);
      }
      // A failed load leaves the registry not ready with the reason: /readyz and classify say it.
      await registry.load().catch(() => {});
      return app.fetch(request);
    },
  };
}
