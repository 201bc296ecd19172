/**
 * Deno Deploy entry: the same app as `main.ts`, with nothing Deploy forbids. It reads no
 * environment and writes no file; the models are read relative to this module
 * (`model/artifacts/`, resolved from `import.meta.url` by the registry); inference runs in this
 * isolate on the project's own int8 engine, `kernels-wasm` (no worker threads, no subprocess, no
 * FFI).
 *
 * `deno task check:deploy` runs it with exactly `--allow-net --allow-read=<repo>` and classifies
 * a fixture. Locally, the first argument is the port (0: any free one) and it binds 127.0.0.1;
 * on Deploy there are no arguments and the platform picks the address.
 *
 * @module
 */
import { createApp } from "../app.ts";
import { servedCostDefaults } from "../routes/models.ts";
import { ModelRegistry } from "../runtime/registry.ts";

/** Opens the shipped models (failing fast on a bad manifest) and builds the app around them. */
export async function deployApp(): Promise<
  { app: ReturnType<typeof createApp>; registry: ModelRegistry }
> {
  // The project's own engine: ~0.1 s to first answer where onnxruntime-web needs ~2 s to compile
  // its 14 MB wasm, and a cold start is paid on every new isolate.
  const registry = await ModelRegistry.open({ backends: ["kernels-wasm"] });
  const costDefaults = servedCostDefaults(registry);
  const app = createApp({
    readiness: registry,
    ...(costDefaults ? { costDefaults } : {}),
    classify: { models: registry },
  });
  return { app, registry };
}

if (import.meta.main) {
  const { app, registry } = await deployApp();
  const port = Deno.args[0];
  const where = port === undefined ? {} : { hostname: "127.0.0.1", port: Number(port) };
  Deno.serve({
    ...where,
    onListen: ({ hostname, port }) =>
      console.log(JSON.stringify({ level: "info", msg: "listening", hostname, port })),
  }, app.fetch);
  // /readyz answers 503 until every variant is loaded and warmed.
  registry.load().then(
    () => console.log(JSON.stringify({ level: "info", msg: "models ready" })),
    (err: unknown) => {
      console.error(
        JSON.stringify({ level: "error", msg: "models failed to load", error: String(err) }),
      );
      Deno.exit(1);
    },
  );
}
