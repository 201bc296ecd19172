/** Wiring only: read config, build the app, serve. */
import { createApp } from "./app.ts";
import { admissionGate } from "./routes/admission.ts";
import { DEFAULT_MAX_BODY_BYTES } from "./routes/classify.ts";
import { servedCostDefaults } from "./routes/models.ts";
import { createServiceMetrics } from "./runtime/metrics.ts";
import { PreprocessPool } from "./runtime/preprocess_pool.ts";
import { ModelRegistry, registryOptionsFromEnv } from "./runtime/registry.ts";
import type { Scheduler } from "./runtime/scheduler.ts";
import {
  chooseAuto,
  scheduledInference,
  startScheduler,
  workersEnabled,
} from "./runtime/scheduler_setup.ts";
import { LogSink } from "./runtime/log_sink.ts";
import { LoopLag } from "./runtime/loop_lag.ts";
import { workerNiceFromEnv } from "./runtime/thread_priority.ts";
import { DrainState, shutdownOnSignals } from "./runtime/shutdown.ts";

export interface Config {
  host: string;
  port: number;
  /** MAX_BODY_BYTES: largest accepted upload (413 above). */
  maxBodyBytes: number;
  /** MAX_PIXELS: largest width x height decoded (413 above, read from the header). */
  maxPixels: number | undefined;
}

export function readConfig(env: { get(key: string): string | undefined } = Deno.env): Config {
  const maxPixels = env.get("MAX_PIXELS");
  return {
    host: env.get("HOST") ?? "127.0.0.1",
    port: Number(env.get("PORT") ?? 8000),
    maxBodyBytes: positiveInt(
      "MAX_BODY_BYTES",
      env.get("MAX_BODY_BYTES") ?? String(DEFAULT_MAX_BODY_BYTES),
    ),
    maxPixels: maxPixels === undefined ? undefined : positiveInt("MAX_PIXELS", maxPixels),
  };
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(
      `Cannot start as ${name} must be a positive integer: current value is ${raw}`,
    );
  }
  return n;
}

if (import.meta.main) {
  const config = readConfig();
  // One JSON line per request: buffered and written asynchronously (console.log would block the
  // event loop on every line); flushed before every exit below.
  const sink = new LogSink();
  const log = sink.log;
  const exit = (code: number) => void sink.close().finally(() => Deno.exit(code));
  // Inference runs in module workers behind the scheduler (WORKERS=0: in this thread); then the
  // registry only verifies the files and hands their bytes to the workers.
  const useWorkers = workersEnabled();
  // Fails fast (before listening) when the manifest is missing or malformed.
  const registry = await ModelRegistry.open({
    ...registryOptionsFromEnv(),
    inProcess: !useWorkers,
  });
  const costDefaults = servedCostDefaults(registry);
  const metrics = createServiceMetrics();
  let scheduler: Scheduler | undefined;
  const drain = new DrainState();
  // Large images are decoded in their own worker(s) (PREPROCESS_WORKERS, default 1; 0: inline).
  const preprocessWorkers = Deno.env.get("PREPROCESS_WORKERS") ?? "1";
  const preprocessPool = preprocessWorkers === "0" ? undefined : new PreprocessPool({
    workers: positiveInt("PREPROCESS_WORKERS", preprocessWorkers),
    nice: workerNiceFromEnv(),
  });
  const inference = useWorkers ? scheduledInference(() => scheduler) : undefined;
  const app = createApp({
    log,
    metrics,
    drain,
    readiness: {
      ready: () => registry.ready() && (!useWorkers || scheduler !== undefined),
      reason: () => registry.ready() ? "Inference workers are starting." : registry.reason(),
    },
    ...(costDefaults ? { costDefaults } : {}),
    classify: {
      models: registry,
      ...(inference
        ? {
          inference,
          auto: (want) => scheduler && chooseAuto(scheduler, registry, want),
        }
        : {}),
      ...(preprocessPool ? { preprocess: preprocessPool.preprocess } : {}),
      maxBodyBytes: config.maxBodyBytes,
      ...(config.maxPixels === undefined ? {} : { maxPixels: config.maxPixels }),
    },
  });
  shutdownOnSignals(() => server, {
    log,
    exit,
    drain,
    closers: [
      async () => await scheduler?.close(),
      () => Promise.resolve(preprocessPool?.close()),
      () => registry.close(),
    ],
  });
  // Overload refusals of POST /v1/classify are answered in front of the app (routes/admission.ts).
  const server = Deno.serve(
    {
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) =>
        log(
          JSON.stringify({
            time: new Date().toISOString(),
            level: "info",
            msg: "listening",
            hostname,
            port,
          }),
        ),
    },
    inference
      ? admissionGate(app.fetch, {
        models: registry,
        tryAdmit: inference.tryAdmit,
        metrics,
        log,
        drain,
      })
      : app.fetch,
  );
  // /readyz answers 503 until every variant is verified, loaded and warmed; a bad file stops the
  // process with the reason.
  const loadStart = performance.now();
  registry.load().then(async () => {
    if (useWorkers) {
      // Deadline checks count how late this thread's event loop runs (overload).
      const lag = new LoopLag({ onSample: (ms) => metrics.loopLag.observe([], ms / 1000) });
      scheduler = await startScheduler(registry, { metrics, loopLagMs: () => lag.ms });
    }
  }).then(
    () =>
      log(JSON.stringify({
        time: new Date().toISOString(),
        level: "info",
        msg: "models ready",
        models: registry.variants.map((v) => v.manifest.id),
        backends: registry.backendNames,
        workers: scheduler?.workerCount ?? 0,
        ms: Math.round(performance.now() - loadStart),
      })),
    (err: unknown) => {
      log(JSON.stringify({
        time: new Date().toISOString(),
        level: "error",
        msg: "models failed to load",
        error: err instanceof Error ? err.message : String(err),
      }));
      exit(1);
    },
  );
}
