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
import { unpackModel } from "./model_pack.ts";
import { Hono } from "hono";

/** A class type's public members only (`keyof` omits private fields), as a structural type. */
type PublicMembers<T> = { [K in keyof T]: T[K] };

/**
 * A model bundled in its compact form (`edge/model_pack.ts`, a Data module): unpacked when the
 * models load, so an isolate that never serves a request never pays for it.
 */
export function packed(bytes: ArrayBuffer): () => Uint8Array {
  return () => unpackModel(new Uint8Array(bytes));
}

/** The part of a Workers static-assets binding (`[assets] binding`) the models need. */
export interface AssetsBinding {
  fetch(request: Request | string): Promise<Response>;
}

/**
 * A model kept outside the script, as a static asset in its compact form (`build:workers
 * --models=assets`): read through the assets binding and unpacked when the models load.
 * `assets()` gives the binding of the request that loads them.
 */
export function packedAsset(
  assets: () => AssetsBinding | undefined,
  path: string,
): () => Promise<Uint8Array> {
  return async () => {
    const binding = assets();
    if (!binding) {
      throw new TypeError(
        `the Worker has no ASSETS binding to read ${path} from: wrangler.toml must declare [assets]`,
      );
    }
    // The host is never contacted: the binding serves the uploaded assets by path.
    const res = await binding.fetch(new Request(new URL(path, "https://assets.invalid/")));
    if (!res.ok) {
      await res.body?.cancel();
      throw new RangeError(`the static asset ${path} answered ${res.status}`);
    }
    return unpackModel(new Uint8Array(await res.arrayBuffer()));
  };
}

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
