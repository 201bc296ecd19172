/**
 * Puts the scheduler in front of the model registry: scheduler settings from the environment,
 * workers started with the registry's models and backends, every variant warmed at every beta the
 * manifest measures (so each has a measured p95 before traffic), and the `alpha=auto` /
 * `beta=auto` choice over the manifest's accuracy table.
 *
 * Environment: `WORKERS` (default: one per core; 0 runs inference in the server thread through the
 * registry, no scheduler), `MAX_BATCH` (16), `MAX_WAIT_MS` (0),
 * `MAX_QUEUE` (128 per variant), `MAX_IN_FLIGHT` (requests admitted at once, default
 * MAX_QUEUE + WORKERS * MAX_BATCH), `ORT_THREADS` (per worker, default 1).
 */
import { betaKey, BETAS } from "../model/export/manifest.ts";
import { resolutionFor } from "../model/spec.ts";
import { backendFactory } from "./backend_factory.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { NCHW } from "./backend.ts";
import type { Inference, ModelRegistry, Variant } from "./registry.ts";
import type { ImageJob } from "./worker_protocol.ts";
import { workerNiceFromEnv } from "./thread_priority.ts";
import {
  DEFAULT_MAX_BATCH,
  type InferenceRequest,
  type InferenceResult,
  type Refusal,
  Scheduler,
  type SchedulerOptions,
  SchedulerRejection,
  type VariantCandidate,
} from "./scheduler.ts";

type Env = { get(key: string): string | undefined };

/** Inference from image bytes that the workers decode (the scheduler's `submit` with `image`). */
export interface ImageInference {
  inferImage(req: InferenceRequest & { image: ImageJob }): Promise<InferenceResult>;
}

/** Admission before a request's body is read (the scheduler's `admit`). */
export interface Admission {
  admit(req: { model: string; backend: string; shape: NCHW; deadlineAt?: number }): () => void;
  /** The same decision without an exception (the scheduler's `tryAdmit`): cheaper to refuse. */
  tryAdmit?(
    req: { model: string; backend: string; shape: NCHW; deadlineAt?: number },
  ): (() => void) | Refusal;
}

function envNumber(env: Env, key: string, integer: boolean, min: number): number | undefined {
  const raw = env.get(key);
  if (raw === undefined || raw === "") return undefined;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new RangeError(
      `Cannot read ${key} as it must be ${integer ? "an integer" : "a number"} >= ${min}: ` +
        `current value is ${raw}`,
    );
  }
  return v;
}

/**
 * False when `WORKERS=0`: inference then runs in the server's own thread through the registry
 * (for platforms without module workers).
 */
export function workersEnabled(env: Env = Deno.env): boolean {
  return env.get("WORKERS") !== "0";
}

/**
 * The registry's `Inference` that goes through the scheduler once it runs; until then a request
 * is refused with 503 and Retry-After (`/readyz` says not ready meanwhile). `admit` is the
 * scheduler's admission at the door (routes/classify.ts calls it before reading the body).
 */
export function scheduledInference(
  current: () => Scheduler | undefined,
): Inference & Required<Admission> & ImageInference {
  return {
    admit(req) {
      const s = current();
      if (s) return s.admit(req);
      throw new SchedulerRejection("no_workers", "The inference workers are still starting.", 1);
    },
    tryAdmit(req) {
      const s = current();
      if (s) return s.tryAdmit(req);
      return {
        reason: "no_workers",
        message: "The inference workers are still starting.",
        retryAfterS: 1,
      };
    },
    infer(req) {
      const s = current();
      if (s) return s.infer(req);
      return Promise.reject(
        new SchedulerRejection("no_workers", "The inference workers are still starting.", 1),
      );
    },
    inferImage(req) {
      const s = current();
      if (s) return s.submit(req);
      return Promise.reject(
        new SchedulerRejection("no_workers", "The inference workers are still starting.", 1),
      );
    },
  };
}

type EnvSettings = Pick<
  SchedulerOptions,
  "workers" | "maxBatch" | "maxWaitMs" | "maxQueue" | "maxInFlight" | "workerNice" | "maxLoopLagMs"
>;

/**
 * Scheduler settings from `WORKERS`, `MAX_BATCH`, `MAX_WAIT_MS`, `MAX_QUEUE`, `MAX_IN_FLIGHT`,
 * `WORKER_NICE`, `MAX_LOOP_LAG_MS`.
 */
export function schedulerOptionsFromEnv(env: Env = Deno.env): EnvSettings {
  const o: EnvSettings = { workerNice: workerNiceFromEnv(env) };
  const workers = envNumber(env, "WORKERS", true, 1);
  if (workers !== undefined) o.workers = workers;
  const maxBatch = envNumber(env, "MAX_BATCH", true, 1);
  if (maxBatch !== undefined) o.maxBatch = maxBatch;
  const maxWaitMs = envNumber(env, "MAX_WAIT_MS", false, 0);
  if (maxWaitMs !== undefined) o.maxWaitMs = maxWaitMs;
  const maxQueue = envNumber(env, "MAX_QUEUE", true, 1);
  if (maxQueue !== undefined) o.maxQueue = maxQueue;
  const maxInFlight = envNumber(env, "MAX_IN_FLIGHT", true, 1);
  if (maxInFlight !== undefined) o.maxInFlight = maxInFlight;
  const maxLoopLagMs = envNumber(env, "MAX_LOOP_LAG_MS", false, 0);
  if (maxLoopLagMs !== undefined) o.maxLoopLagMs = maxLoopLagMs;
  return o;
}

export interface StartOptions {
  metrics?: ServiceMetrics;
  env?: Env;
  /** Warm-up batches per worker, variant, backend and beta. Default 3. */
  warmupRuns?: number;
  /** The HTTP thread's event-loop lag (runtime/loop_lag.ts), for the deadline checks. */
  loopLagMs?: () => number;
}

/**
 * Starts the workers with the registry's (loaded) models and backends and warms every variant at
 * every manifest beta on every worker.
 */
export async function startScheduler(
  registry: ModelRegistry,
  opts: StartOptions = {},
): Promise<Scheduler> {
  const env = opts.env ?? Deno.env;
  const threads = envNumber(env, "ORT_THREADS", true, 1) ?? 1;
  const settings = schedulerOptionsFromEnv(env);
  // Backends that preallocate per batch (kernels-wasm) size for the scheduler's largest batch.
  const maxBatch = settings.maxBatch ?? DEFAULT_MAX_BATCH;
  const scheduler = await Scheduler.create({
    models: [...registry.loadedModels],
    backends: registry.backendNames.map((b) =>
      backendFactory(b, { numThreads: threads, maxBatch })
    ),
    ...settings,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.loopLagMs ? { loopLagMs: opts.loopLagMs } : {}),
  });
  for (const v of registry.variants) {
    for (const backend of registry.backendNames) {
      // The registry measured nothing when it loaded no backend itself (inProcess: false): the
      // warm-up medians from the workers fill GET /v1/models' latency table instead.
      const table = (v.latencyMs[backend] ??= {});
      for (const r of resolutionsOf(v)) {
        const warm = await scheduler.warmup(
          v.manifest.id,
          backend,
          [1, v.manifest.inputChannels, r.resolution, r.resolution],
          opts.warmupRuns ?? 3,
        );
        table[betaKey(r.beta)] ??= Math.round(warm.p50Ms * 1000) / 1000;
      }
    }
  }
  return scheduler;
}

/** The manifest's betas that the variant's stride plan can run, with their resolutions. */
function resolutionsOf(v: Variant): { beta: number; resolution: number }[] {
  return BETAS.map((beta) => ({ beta, resolution: resolutionFor(beta, v.resolution.base) }))
    .filter((r) => r.resolution >= v.resolution.min && r.resolution <= v.resolution.max);
}

export interface AutoChoice {
  variant: Variant;
  beta: number;
  resolution: number;
}

/**
 * `alpha=auto` and/or `beta=auto`: among the shipped variants (all widths when alpha is auto, else
 * the given one) at the manifest's betas (all when beta is auto, else the given one), the one with
 * the highest int8 accuracy in the manifest whose measured p95 plus the current queue wait fits
 * the deadline (the most accurate one without a deadline). Undefined when none fits.
 */
export function chooseAuto(
  scheduler: Scheduler,
  registry: ModelRegistry,
  want: { alpha: number | "auto"; beta: number | "auto"; backend: string; deadlineAt?: number },
): AutoChoice | undefined {
  const candidates: (VariantCandidate & AutoChoice)[] = [];
  for (const v of registry.variants) {
    if (want.alpha !== "auto" && Math.abs(v.manifest.alpha - want.alpha) > 1e-9) continue;
    const options = want.beta === "auto"
      ? resolutionsOf(v)
      : [{ beta: want.beta, resolution: resolutionFor(want.beta, v.resolution.base) }];
    for (const { beta, resolution } of options) {
      const accuracy = v.manifest.accuracy.int8[betaKey(beta)];
      if (accuracy === undefined) continue;
      candidates.push({
        model: v.manifest.id,
        backend: want.backend,
        shape: [1, v.manifest.inputChannels, resolution, resolution],
        accuracy,
        variant: v,
        beta,
        resolution,
      });
    }
  }
  const c = scheduler.choose(candidates, want.deadlineAt);
  return c && { variant: c.variant, beta: c.beta, resolution: c.resolution };
}
