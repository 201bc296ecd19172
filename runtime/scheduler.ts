/**
 * The scheduler: one bounded queue per model variant (model, backend, input shape), dynamic
 * micro-batching as Triton's dynamic batcher does it (a batch leaves when it holds `maxBatch`
 * requests or its oldest request has waited `maxWaitMs`), and inference in module Workers, one per
 * core by default, so that the HTTP event loop never waits for a batch.
 *
 * Load shedding, so that latency stays bounded instead of growing:
 * - a full queue refuses at once (`queue_full`, HTTP 429 with Retry-After);
 * - a request with a deadline that the queue and the measured latency say cannot be met is refused
 *   at once (`deadline_unmeetable`, 503 with Retry-After);
 * - a queued request whose deadline passes, or that could no longer finish in time when its batch
 *   starts, is dropped (`deadline_expired`, 504): a request never starts late.
 *
 * @example
 * ```ts
 * const scheduler = await Scheduler.create({ models, backends: [backendFactory("ort-wasm")] });
 * const { logits } = await scheduler.submit({
 *   model: "v1-0.25", backend: "ort-wasm", input, shape: [1, 1, 28, 28],
 *   deadlineAt: performance.now() + 50,
 * });
 * ```
 */
import type { LoadedModel, NCHW } from "./backend.ts";
import type { BackendFactorySpec } from "./backend_factory.ts";
import { type LatencySnapshot, LatencyStats } from "./latency.ts";
import type { RejectionReason, ServiceMetrics } from "./metrics.ts";
import { RemoteImageError } from "./preprocess_pool.ts";
import { DEFAULT_WORKER_NICE } from "./thread_priority.ts";
import { InferenceWorker, WorkerFailedError, type WorkerInit } from "./worker_pool.ts";
import type { ImageJob, ImageOutcome } from "./worker_protocol.ts";

export { WorkerFailedError };

export interface SchedulerOptions {
  /** Models every worker loads. */
  models: LoadedModel[];
  /** Backends every worker builds for every model. */
  backends: BackendFactorySpec[];
  /** Inference workers; default one per core (`navigator.hardwareConcurrency`). */
  workers?: number;
  /** Largest batch sent to a worker (Triton's max_batch_size); default 16. */
  maxBatch?: number;
  /**
   * Longest a request waits for a batch to fill while a worker is idle (Triton's
   * max_queue_delay); default 0, as Triton's: with one worker per core, batches form by themselves
   * while the workers are busy, and waiting with a worker idle only adds latency.
   */
  maxWaitMs?: number;
  /** Requests a variant's queue holds before refusing with `queue_full`; default 128. */
  maxQueue?: number;
  /**
   * Requests admitted by {@link Scheduler.admit} (decoding, queued or running) before new ones are
   * refused with `queue_full`; default `maxQueue + workers * maxBatch`.
   */
  maxInFlight?: number;
  /** A worker that does not answer a batch within this is replaced; default 30 s. */
  batchTimeoutMs?: number;
  /** Batches in the rolling window that p95 is taken over; default 256. */
  latencyWindow?: number;
  metrics?: ServiceMetrics;
  /**
   * Nice value of the worker threads (0..19, default 10; runtime/thread_priority.ts): lower
   * priority than the HTTP thread, so that under overload the cores the workers saturate are
   * still handed to the thread that reads requests, refuses them and writes answers.
   */
  workerNice?: number;
  /** Module URL of the worker entry point (default `runtime/worker.ts`). */
  workerUrl?: string;
  /**
   * How late the event loop of the thread that serves HTTP runs now, in ms
   * (runtime/loop_lag.ts). A request waited about that long before it reached the server and its
   * answer waits about as long on the way out, so deadline checks add it twice: under overload
   * the server then refuses what it could only answer late, instead of queueing it.
   */
  loopLagMs?: () => number;
  /**
   * Above this event-loop lag (ms) requests with a deadline are refused at the door whatever
   * their deadline: a loop that late answers even refusals late, and refusing is what lets it
   * catch up. Default 2; only with `loopLagMs`.
   */
  maxLoopLagMs?: number;
}

export interface InferenceRequest {
  /** Manifest id of a loaded model. */
  model: string;
  /** A backend the workers built. */
  backend: string;
  /** One image, normalized, `c * h * w` values in CHW order (or `image` instead). */
  input?: Float32Array;
  /**
   * The image's bytes and preprocessing options instead of `input`: the worker decodes it into
   * its slot of the batch (the result's `image` says what it found). An undecodable image
   * rejects with a RemoteImageError carrying its HTTP status (413, 415, 422).
   */
  image?: ImageJob;
  /** `[1, c, h, w]`: requests of the same shape share a queue and are batched together. */
  shape: NCHW;
  /** Absolute deadline on the `performance.now()` clock. */
  deadlineAt?: number;
  /** Aborting removes a request that is still queued (a client that went away). */
  signal?: AbortSignal;
  /**
   * The release that {@link Scheduler.tryAdmit} returned for this request: it tells the scheduler
   * that the admitted request has reached its queue, so that it stops counting it as on its way.
   */
  admission?: () => void;
}

export interface InferenceResult {
  /** The logits of this request's image. */
  logits: Float32Array;
  /** Variant label, as in the metrics: `<model>@<h>x<w>`. */
  variant: string;
  /** Time from submit to the start of its batch. */
  queueMs: number;
  /** Time the worker's backend spent on the whole batch. */
  inferenceMs: number;
  /** Requests in the batch it ran in. */
  batchSize: number;
  /** Index of the worker that ran it. */
  worker: number;
  /** For a request sent as `image`: what the worker's preprocessing found. */
  image?: Extract<ImageOutcome, { ok: true }>;
}

/** Why the scheduler did not run a request; routes map `reason` to 429, 503 or 504. */
export class SchedulerRejection extends RangeError {
  override name = "SchedulerRejection";
  constructor(
    readonly reason: Exclude<RejectionReason, "worker_failed"> | "no_workers",
    message: string,
    /** Seconds after which a retry has a fair chance (Retry-After). */
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

/**
 * A refusal at the door as plain data ({@link Scheduler.tryAdmit}): no exception, so refusing
 * under overload costs as little as possible.
 */
export interface Refusal {
  reason: SchedulerRejection["reason"];
  message: string;
  retryAfterS: number;
}

/** A variant a caller may choose from; `accuracy` comes from the manifest. */
export interface VariantCandidate {
  model: string;
  backend: string;
  shape: NCHW;
  accuracy: number;
}

export interface VariantStats {
  variant: string;
  backend: string;
  queued: number;
  /** Batch service time: from sending a batch to a worker to its answer. */
  batch: LatencySnapshot;
}

export interface Estimate {
  /** Expected wait before the request's batch starts. */
  waitMs: number;
  /** Measured p95 of the variant's batch service time; NaN when never measured. */
  serviceP95Ms: number;
  /** Expected time from now to the answer (wait + max wait + p95). */
  finishInMs: number;
  measured: boolean;
}

interface Pending {
  input: Float32Array | undefined;
  image: ImageJob | undefined;
  enqueuedAt: number;
  deadlineAt: number | undefined;
  resolve(r: InferenceResult): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Answered (resolved or rejected): a batch that ends after its deadline's 504 skips it. */
  done: boolean;
}

/** Batch-size class of a batch: 1, 2-3, 4-7, 8-15, ... (powers of two). */
const sizeClass = (n: number) => Math.floor(Math.log2(n));

class VariantQueue {
  readonly items: Pending[] = [];
  /** Every batch's service time: the EWMA feeds the queue-wait estimate. */
  stats: LatencyStats;
  /**
   * Service time by batch-size class: a lone request is judged by what single batches take, not
   * by the p95 of the 16-image batches that a burst left behind.
   */
  readonly bySize: LatencyStats[] = [];
  /** When the last batch finished (performance.now()). */
  lastSampleAt = 0;
  remeasuring = false;
  /**
   * Admitted at the door and not yet queued (their bodies are being read): a burst of requests
   * is admitted in one turn of the event loop before any of them joins the queue, so the wait
   * estimate counts them as already queued.
   */
  incoming = 0;
  readonly labels: [string, string];
  constructor(
    readonly key: string,
    readonly model: string,
    readonly backend: string,
    readonly variant: string,
    readonly chw: [number, number, number],
    readonly window: number,
  ) {
    this.stats = new LatencyStats(window);
    this.labels = [variant, backend];
  }

  record(n: number, ms: number): void {
    const now = performance.now();
    if (this.lastSampleAt > 0 && now - this.lastSampleAt > STALE_MS) {
      // Idle for a while: what was measured before says little about now; start afresh.
      this.stats = new LatencyStats(this.window);
      this.bySize.length = 0;
    }
    this.stats.record(ms);
    const k = sizeClass(n);
    (this.bySize[k] ??= new LatencyStats(Math.max(16, this.window >> 2))).record(ms);
    this.lastSampleAt = now;
  }

  /**
   * p95 service time of a batch of `n`: its size class's, or the nearest measured class's scaled
   * by the size ratio (batch time grows about linearly with the batch); NaN when nothing is
   * measured.
   */
  p95For(n: number): number {
    const k = sizeClass(n);
    const own = this.bySize[k];
    if (own) return own.quantile(0.95);
    let best = -1;
    for (let j = 0; j < this.bySize.length; j++) {
      if (this.bySize[j] && (best < 0 || Math.abs(j - k) < Math.abs(best - k))) best = j;
    }
    if (best < 0) return NaN;
    return this.bySize[best]!.quantile(0.95) * 2 ** (k - best);
  }
}

/** Largest batch by default: enough to amortize per-batch costs, small enough for low latency. */
export const DEFAULT_MAX_BATCH = 16;

/** Event-loop lag (ms) above which requests with a deadline are refused at the door. */
export const DEFAULT_MAX_LOOP_LAG_MS = 2;

/** Measurements older than this are refreshed when they make the variant refuse a deadline. */
export const STALE_MS = 2000;

const variantLabel = (model: string, shape: NCHW) => `${model}@${shape[2]}x${shape[3]}`;

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(
      `Cannot create the scheduler as ${name} must be a positive integer: current value is ${v}`,
    );
  }
  return v;
}

export class Scheduler {
  readonly workerCount: number;
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  readonly maxInFlight: number;
  #admitted = 0;
  readonly #batchTimeoutMs: number;
  readonly #window: number;
  readonly #metrics: ServiceMetrics | undefined;
  readonly #models: Set<string>;
  readonly #backends: Set<string>;
  readonly #init: WorkerInit;
  readonly #workerUrl: string | undefined;
  readonly #queues = new Map<string, VariantQueue>();
  readonly #loopLagMs: () => number;
  readonly #maxLoopLagMs: number;
  #workers: InferenceWorker[] = [];
  /** Releases of admitted requests not yet queued, with the queue that counts them incoming. */
  readonly #inTransit = new Map<() => void, VariantQueue>();
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  #pumpAt = Infinity;
  #pumping = false;
  #closing = false;
  #drained: (() => void) | null = null;

  private constructor(opts: SchedulerOptions) {
    this.workerCount = positiveInt("workers", opts.workers ?? navigator.hardwareConcurrency ?? 1);
    this.maxBatch = positiveInt("maxBatch", opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.maxQueue = positiveInt("maxQueue", opts.maxQueue ?? 128);
    this.maxInFlight = positiveInt(
      "maxInFlight",
      opts.maxInFlight ?? this.maxQueue + this.workerCount * this.maxBatch,
    );
    this.maxWaitMs = opts.maxWaitMs ?? 0;
    if (!(this.maxWaitMs >= 0)) {
      throw new RangeError(
        `Cannot create the scheduler as maxWaitMs must be >= 0: current value is ${this.maxWaitMs}`,
      );
    }
    this.#batchTimeoutMs = opts.batchTimeoutMs ?? 30_000;
    this.#window = opts.latencyWindow ?? 256;
    this.#metrics = opts.metrics;
    if (opts.models.length === 0 || opts.backends.length === 0) {
      throw new RangeError(
        `Cannot create the scheduler without models and backends: got ${opts.models.length} models and ${opts.backends.length} backends`,
      );
    }
    this.#models = new Set(opts.models.map((m) => m.id));
    this.#backends = new Set(opts.backends.map((b) => b.backend));
    this.#init = {
      models: opts.models,
      backends: opts.backends,
      nice: opts.workerNice ?? DEFAULT_WORKER_NICE,
    };
    this.#workerUrl = opts.workerUrl;
    this.#loopLagMs = opts.loopLagMs ?? (() => 0);
    this.#maxLoopLagMs = opts.maxLoopLagMs ?? DEFAULT_MAX_LOOP_LAG_MS;
    this.#metrics?.batchLatency.onCollect(() => {
      const g = this.#metrics!.batchLatency;
      for (const q of this.#queues.values()) {
        const snap = q.stats.snapshot();
        if (snap.count === 0) continue;
        g.set([q.variant, q.backend, "ewma"], snap.ewmaMs / 1000);
        g.set([q.variant, q.backend, "p50"], snap.p50Ms / 1000);
        g.set([q.variant, q.backend, "p95"], snap.p95Ms / 1000);
      }
    });
  }

  /** Starts the workers and resolves once every one has built and loaded its backends. */
  static async create(opts: SchedulerOptions): Promise<Scheduler> {
    const s = new Scheduler(opts);
    s.#workers = Array.from({ length: s.workerCount }, (_, i) => s.#spawn(i));
    try {
      await Promise.all(s.#workers.map((w) => w.ready));
    } catch (err) {
      for (const w of s.#workers) w.terminate();
      throw err;
    }
    s.#metrics?.workers.set([], s.#alive());
    return s;
  }

  /**
   * Queues one image and resolves with its logits, or rejects with a SchedulerRejection (refused
   * or dropped), a WorkerFailedError (its worker died) or the backend's own error.
   */
  submit(req: InferenceRequest): Promise<InferenceResult> {
    if (req.admission) this.#arrived(req.admission);
    let q: VariantQueue;
    try {
      if ((req.input === undefined) === (req.image === undefined)) {
        throw new RangeError(
          "Cannot schedule a request as it must carry exactly one of input (a tensor) and image (bytes to decode)",
        );
      }
      q = this.#queueFor(req);
    } catch (err) {
      return Promise.reject(err);
    }
    const now = performance.now();
    if (this.#closing) {
      return this.#refuse(q, "shutting_down", "The server is shutting down.", 1);
    }
    if (this.#alive() + this.#starting() === 0) {
      return this.#refuse(q, "no_workers", "No inference worker is running.", 1);
    }
    if (q.items.length >= this.maxQueue) {
      return this.#refuse(
        q,
        "queue_full",
        `The queue of ${q.variant} on ${q.backend} is full (${this.maxQueue} requests waiting).`,
        this.#retryAfter(this.#waitMs(now)),
      );
    }
    const deadlineAt = req.deadlineAt;
    if (deadlineAt !== undefined) {
      const est = this.#estimate(q, now);
      // The answer still passes the event loop on its way out: its lag counts once here.
      if (deadlineAt <= now || now + est.finishInMs + this.#loopLagMs() > deadlineAt) {
        this.#remeasure(q, now);
        return this.#refuse(
          q,
          "deadline_unmeetable",
          `The deadline cannot be met: ${Math.max(0, deadlineAt - now).toFixed(1)} ms left, ` +
            `the expected wait is ${
              est.waitMs.toFixed(1)
            } ms and the measured p95 of ${q.variant} is ` +
            `${est.serviceP95Ms.toFixed(1)} ms.`,
          this.#retryAfter(est.waitMs),
        );
      }
    }
    if (req.signal?.aborted) return Promise.reject(req.signal.reason);
    return new Promise<InferenceResult>((resolve, reject) => {
      const p: Pending = {
        input: req.input,
        image: req.image,
        enqueuedAt: now,
        deadlineAt,
        resolve,
        reject,
        timer: undefined,
        signal: req.signal,
        onAbort: undefined,
        done: false,
      };
      if (deadlineAt !== undefined) {
        // At the deadline the client gets its 504 whether the request is still queued or its
        // batch is running: an answer is never sent after the deadline (the batch's result is
        // then discarded).
        p.timer = setTimeout(() => {
          p.timer = undefined;
          if (this.#remove(q, p)) this.#drop(q, p, "deadline_expired", "before it could start");
          else if (!p.done) this.#drop(q, p, "deadline_expired", "while its batch ran");
        }, Math.max(0, deadlineAt - now));
      }
      if (req.signal) {
        const signal = req.signal;
        p.onAbort = () => {
          if (this.#remove(q, p)) {
            this.#settle(p);
            reject(signal.reason);
          }
        };
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      q.items.push(p);
      this.#metrics?.queueDepth.set(q.labels, q.items.length);
      this.#pump();
    });
  }

  /**
   * Admission at the door, before the server spends anything on a request (reading and decoding
   * the image): refuses at once, by throwing a SchedulerRejection, when `maxInFlight` requests are
   * already admitted (`queue_full`) or the deadline cannot be met by the queue and the variant's
   * measured p95 (`deadline_unmeetable`). Returns the release to call when the answer is sent.
   * Under overload this keeps refusals cheap: the work that overload would pile up never starts.
   */
  admit(req: { model: string; backend: string; shape: NCHW; deadlineAt?: number }): () => void {
    const r = this.tryAdmit(req);
    if (typeof r === "function") return r;
    throw new SchedulerRejection(r.reason, r.message, r.retryAfterS);
  }

  /**
   * {@link admit} without exceptions: the release function, or the {@link Refusal} as plain data
   * (counted in the metrics as `admit` counts it). The HTTP route uses this one.
   */
  tryAdmit(
    req: { model: string; backend: string; shape: NCHW; deadlineAt?: number },
  ): (() => void) | Refusal {
    const q = this.#queueFor(req);
    const now = performance.now();
    const refuse = (reason: Refusal["reason"], message: string, retryAfterS: number): Refusal => {
      this.#metrics?.rejections.inc([reason, q.variant]);
      return { reason, message, retryAfterS };
    };
    if (this.#closing) return refuse("shutting_down", "The server is shutting down.", 1);
    if (this.#admitted >= this.maxInFlight) {
      return refuse(
        "queue_full",
        `${this.#admitted} requests are already being served (limit ${this.maxInFlight}).`,
        this.#retryAfter(this.#waitMs(now)),
      );
    }
    if (req.deadlineAt !== undefined) {
      const est = this.#estimate(q, now);
      const lag = this.#loopLagMs();
      if (
        req.deadlineAt <= now || now + est.finishInMs + 2 * lag > req.deadlineAt ||
        lag > this.#maxLoopLagMs
      ) {
        this.#remeasure(q, now);
        return refuse(
          "deadline_unmeetable",
          `The deadline cannot be met: ${Math.max(0, req.deadlineAt - now).toFixed(1)} ms left, ` +
            `the expected wait is ${
              est.waitMs.toFixed(1)
            } ms and the measured p95 of ${q.variant} ` +
            `is ${est.serviceP95Ms.toFixed(1)} ms` +
            (lag > this.#maxLoopLagMs
              ? `, and the server is overloaded: its event loop runs ${lag.toFixed(1)} ms late.`
              : lag >= 0.5
              ? `, and the server's event loop runs ${lag.toFixed(1)} ms late.`
              : "."),
          this.#retryAfter(est.waitMs),
        );
      }
    }
    this.#admitted++;
    q.incoming++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#admitted--;
      this.#arrived(release);
    };
    this.#inTransit.set(release, q);
    return release;
  }

  /** An admitted request reached its queue or was released: it is no longer on its way. */
  #arrived(release: () => void): void {
    const q = this.#inTransit.get(release);
    if (q && this.#inTransit.delete(release)) q.incoming--;
  }

  /** Each live worker's thread nice value (null where it could not be set). */
  get workerNice(): (number | null)[] {
    return this.#workers.map((w) => w.nice);
  }

  /** Requests admitted and not yet released. */
  get admitted(): number {
    return this.#admitted;
  }

  /** The registry's `Inference` call (routes/classify.ts): the same as {@link submit}. */
  infer(req: InferenceRequest): Promise<InferenceResult> {
    return this.submit(req);
  }

  /** What a request for this variant would expect now: wait, service p95, finish. */
  estimate(model: string, backend: string, shape: NCHW): Estimate {
    return this.#estimate(this.#queueFor({ model, backend, shape }), performance.now());
  }

  /**
   * The most accurate candidate whose expected finish (current wait + measured p95) fits the
   * deadline; with no deadline, the most accurate. Candidates never measured do not fit a deadline
   * (warm them up first). Undefined when none fits.
   */
  choose<C extends VariantCandidate>(candidates: readonly C[], deadlineAt?: number): C | undefined {
    const sorted = [...candidates].sort((a, b) => b.accuracy - a.accuracy);
    if (deadlineAt === undefined) return sorted[0];
    const now = performance.now();
    for (const c of sorted) {
      const est = this.#estimate(this.#queueFor(c), now);
      if (est.measured && now + est.finishInMs <= deadlineAt) return c;
    }
    return undefined;
  }

  /** Batch latency of one variant. */
  latency(model: string, backend: string, shape: NCHW): LatencySnapshot {
    return this.#queueFor({ model, backend, shape }).stats.snapshot();
  }

  stats(): VariantStats[] {
    return [...this.#queues.values()].map((q) => ({
      variant: q.variant,
      backend: q.backend,
      queued: q.items.length,
      batch: q.stats.snapshot(),
    }));
  }

  /** Requests waiting in all queues. */
  get queued(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.items.length;
    return n;
  }

  /**
   * Runs one unrecorded and then `rounds` recorded single-image batches of zeros on every idle
   * worker, so that each worker's backend is compiled and the variant has measured latency before
   * traffic arrives.
   */
  async warmup(model: string, backend: string, shape: NCHW, rounds = 3): Promise<LatencySnapshot> {
    const q = this.#queueFor({ model, backend, shape });
    const size = q.chw[0] * q.chw[1] * q.chw[2];
    await Promise.all(
      this.#workers.filter((w) => w.state === "idle").map(async (w) => {
        // Round 0 is not recorded: it pays one-time costs (compiling, first allocations).
        for (let i = 0; i <= rounds && w.state === "idle"; i++) {
          const t0 = performance.now();
          await w.run(model, backend, new Float32Array(size), [1, ...q.chw], this.#batchTimeoutMs);
          if (i > 0) q.record(1, performance.now() - t0);
        }
      }),
    );
    this.#pump();
    return q.stats.snapshot();
  }

  /**
   * Stops accepting (new submits are refused with `shutting_down`), runs everything already
   * queued and in flight, then stops the workers.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
      this.#pump();
    });
    for (const w of this.#workers) w.terminate();
    this.#metrics?.workers.set([], 0);
  }

  #queueFor(
    req: { model: string; backend: string; shape: NCHW; input?: Float32Array; image?: ImageJob },
  ) {
    const { model, backend, shape } = req;
    if (!this.#models.has(model)) {
      throw new RangeError(
        `Cannot schedule model "${model}" as the workers did not load it: loaded are ${
          [...this.#models].join(", ")
        }`,
      );
    }
    if (!this.#backends.has(backend)) {
      throw new RangeError(
        `Cannot schedule on backend "${backend}" as the workers did not build it: built are ${
          [...this.#backends].join(", ")
        }`,
      );
    }
    if (shape.length !== 4 || shape[0] !== 1 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new RangeError(
        `Cannot schedule a request as its shape must be [1, c, h, w] with positive integers: current shape is [${shape}]`,
      );
    }
    const size = shape[1] * shape[2] * shape[3];
    if (req.input && req.input.length !== size) {
      throw new RangeError(
        `Cannot schedule a request as its input must hold c*h*w = ${size} values for shape [${shape}]: current length is ${req.input.length}`,
      );
    }
    const variant = variantLabel(model, shape);
    const key = `${variant}|${shape[1]}|${backend}`;
    let q = this.#queues.get(key);
    if (!q) {
      q = new VariantQueue(
        key,
        model,
        backend,
        variant,
        [shape[1], shape[2], shape[3]],
        this.#window,
      );
      this.#queues.set(key, q);
    }
    return q;
  }

  #alive(): number {
    return this.#workers.filter((w) => w.state === "idle" || w.state === "busy").length;
  }

  #starting(): number {
    return this.#workers.filter((w) => w.state === "starting").length;
  }

  /**
   * Expected wait before a new request's batch starts: the queued batches of every variant (with
   * the requests admitted and still on their way to the queue) and the rest of the batches in
   * flight, at each variant's EWMA, spread over the live workers.
   */
  #waitMs(now: number): number {
    let work = 0;
    for (const q of this.#queues.values()) {
      const n = q.items.length + q.incoming;
      if (n === 0) continue;
      const ewma = q.stats.ewmaMs;
      if (!Number.isNaN(ewma)) work += Math.ceil(n / this.maxBatch) * ewma;
    }
    let alive = 0;
    for (const w of this.#workers) {
      if (w.state === "idle") alive++;
      if (w.state !== "busy") continue;
      alive++;
      const ewma = this.#queues.get(w.busyWith)?.stats.ewmaMs ?? NaN;
      if (!Number.isNaN(ewma)) work += Math.max(0, w.busySince + ewma - now);
    }
    return work / Math.max(1, alive);
  }

  #estimate(q: VariantQueue, now: number): Estimate {
    const waitMs = this.#waitMs(now);
    // The batch this request will most likely ride in: those queued ahead of it, and itself.
    const p95 = q.p95For(Math.min(this.maxBatch, q.items.length + q.incoming + 1));
    const measured = !Number.isNaN(p95);
    return {
      waitMs,
      serviceP95Ms: p95,
      finishInMs: waitMs + this.maxWaitMs + (measured ? p95 : 0),
      measured,
    };
  }

  /**
   * A variant that refuses deadlines on old measurements would refuse forever, since nothing it
   * refuses runs and measures it again: when its last batch is older than STALE_MS and a worker
   * is idle, one batch of zeros runs to measure it afresh (at most one at a time per variant).
   */
  #remeasure(q: VariantQueue, now: number): void {
    if (q.remeasuring || now - q.lastSampleAt < STALE_MS || this.#closing) return;
    const w = this.#workers.find((w) => w.state === "idle");
    if (!w) return;
    q.remeasuring = true;
    w.busyWith = q.key;
    const size = q.chw[0] * q.chw[1] * q.chw[2];
    const t0 = performance.now();
    w.run(q.model, q.backend, new Float32Array(size), [1, ...q.chw], this.#batchTimeoutMs).then(
      () => q.record(1, performance.now() - t0),
      () => {},
    ).finally(() => {
      q.remeasuring = false;
      this.#pump();
    });
  }

  #retryAfter(waitMs: number): number {
    return Math.max(1, Math.ceil(waitMs / 1000));
  }

  #refuse(
    q: VariantQueue,
    reason: SchedulerRejection["reason"],
    message: string,
    retryAfterS: number,
  ): Promise<never> {
    this.#metrics?.rejections.inc([reason, q.variant]);
    return Promise.reject(new SchedulerRejection(reason, message, retryAfterS));
  }

  #remove(q: VariantQueue, p: Pending): boolean {
    const i = q.items.indexOf(p);
    if (i < 0) return false;
    q.items.splice(i, 1);
    this.#metrics?.queueDepth.set(q.labels, q.items.length);
    if (q.items.length === 0) this.#pump(); // a close() may be waiting for the last one
    return true;
  }

  /** The request is being answered: its timer and abort listener go, and it counts as done. */
  #settle(p: Pending): void {
    p.done = true;
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.timer = undefined;
    if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
  }

  /** Stops listening for the client going away (the request is leaving the queue for a batch). */
  #unlisten(p: Pending): void {
    if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
    p.onAbort = undefined;
  }

  #drop(q: VariantQueue, p: Pending, reason: "deadline_expired", when: string): void {
    this.#settle(p);
    this.#metrics?.rejections.inc([reason, q.variant]);
    p.reject(
      new SchedulerRejection(
        reason,
        `The deadline passed ${when}: the request arrived ${
          (performance.now() - p.enqueuedAt).toFixed(1)
        } ms ago in the queue of ${q.variant}.`,
        this.#retryAfter(this.#waitMs(performance.now())),
      ),
    );
  }

  /** Sends due batches to idle workers; arms a timer for the next batch that is not due yet. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        const worker = this.#workers.find((w) => w.state === "idle");
        const now = performance.now();
        let best: VariantQueue | undefined;
        let nextDue = Infinity;
        for (const q of this.#queues.values()) {
          const head = q.items[0];
          if (!head) continue;
          const due = this.#closing || q.items.length >= this.maxBatch
            ? -Infinity
            : head.enqueuedAt + this.maxWaitMs;
          if (due <= now) {
            // Oldest head first: no variant starves another.
            if (!best || head.enqueuedAt < best.items[0]!.enqueuedAt) best = q;
          } else nextDue = Math.min(nextDue, due);
        }
        if (!best) {
          this.#armPump(nextDue);
          break;
        }
        if (!worker) break; // a finishing batch pumps again
        this.#dispatch(worker, best, now);
      }
    } finally {
      this.#pumping = false;
    }
    if (
      this.#closing && this.#drained && this.queued === 0 &&
      !this.#workers.some((w) => w.state === "busy")
    ) {
      const done = this.#drained;
      this.#drained = null;
      done();
    }
  }

  #armPump(at: number): void {
    if (at === Infinity || at >= this.#pumpAt) return;
    if (this.#pumpTimer !== undefined) clearTimeout(this.#pumpTimer);
    this.#pumpAt = at;
    this.#pumpTimer = setTimeout(() => {
      this.#pumpTimer = undefined;
      this.#pumpAt = Infinity;
      this.#pump();
    }, Math.max(0, at - performance.now()));
  }

  #dispatch(worker: InferenceWorker, q: VariantQueue, now: number): void {
    const p95 = q.p95For(Math.min(this.maxBatch, q.items.length));
    // The answer still has to pass the event loop after the batch.
    const finish = now + (Number.isNaN(p95) ? 0 : p95) + this.#loopLagMs();
    const batch: Pending[] = [];
    while (batch.length < this.maxBatch && q.items.length > 0) {
      const p = q.items.shift()!;
      // Never start late: drop what could not finish by its deadline even if started now.
      if (p.deadlineAt !== undefined && finish > p.deadlineAt) {
        this.#drop(q, p, "deadline_expired", "while it was queued");
        continue;
      }
      this.#unlisten(p); // the deadline's timer stays: it answers 504 if the batch runs late
      batch.push(p);
    }
    this.#metrics?.queueDepth.set(q.labels, q.items.length);
    if (batch.length === 0) return;

    const n = batch.length;
    const size = q.chw[0] * q.chw[1] * q.chw[2];
    const input = new Float32Array(n * size);
    let images: (ImageJob | null)[] | undefined;
    for (let i = 0; i < n; i++) {
      const p = batch[i]!;
      if (p.input) input.set(p.input, i * size);
      else (images ??= new Array<ImageJob | null>(n).fill(null))[i] = p.image!;
    }
    if (this.#metrics) {
      this.#metrics.batchSize.observe(q.labels, n);
      for (const p of batch) this.#metrics.queueWait.observe(q.labels, (now - p.enqueuedAt) / 1000);
    }
    worker.busyWith = q.key;
    const t0 = performance.now();
    worker.run(q.model, q.backend, input, [n, ...q.chw], this.#batchTimeoutMs, images).then(
      (res) => {
        q.record(n, performance.now() - t0);
        this.#metrics?.inferenceDuration.observe(q.labels, res.runMs / 1000);
        const classes = res.logits.length / n;
        const done = performance.now();
        for (let i = 0; i < n; i++) {
          const p = batch[i]!;
          if (p.deadlineAt !== undefined && done > p.deadlineAt) {
            this.#metrics?.deadlineMissed.inc(q.labels);
            // Past the deadline: answered 504 (by its timer, or here if the timer has not run).
            if (!p.done) this.#drop(q, p, "deadline_expired", "while its batch ran");
            continue;
          }
          if (p.done) continue;
          this.#settle(p);
          if (!Number.isInteger(classes) || classes < 1) {
            p.reject(
              new RangeError(
                `Cannot split the logits of a batch of ${n} as their length is not a multiple of it: current length is ${res.logits.length}`,
              ),
            );
            continue;
          }
          const image = res.images?.[i];
          if (p.image && !image) {
            p.reject(
              new RangeError("Cannot read the image's result: the worker did not report it"),
            );
            continue;
          }
          if (image && !image.ok) {
            p.reject(new RemoteImageError(image.name, image.message, image.status));
            continue;
          }
          p.resolve({
            logits: res.logits.subarray(i * classes, (i + 1) * classes),
            variant: q.variant,
            queueMs: now - p.enqueuedAt,
            inferenceMs: res.runMs,
            batchSize: n,
            worker: worker.index,
            ...(image ? { image } : {}),
          });
        }
        this.#pump();
      },
      (err: Error) => {
        if (err instanceof WorkerFailedError) {
          this.#metrics?.rejections.inc(["worker_failed", q.variant], n);
        }
        for (const p of batch) {
          if (p.done) continue;
          this.#settle(p);
          p.reject(err);
        }
        this.#pump();
      },
    );
  }

  #spawn(index: number): InferenceWorker {
    return new InferenceWorker(index, this.#init, (dead) => this.#replace(dead), this.#workerUrl);
  }

  /** A worker died after it was ready: start another in its place (unless shutting down). */
  #replace(dead: InferenceWorker): void {
    this.#metrics?.workers.set([], this.#alive());
    if (this.#closing) {
      this.#pump();
      return;
    }
    const w = this.#spawn(dead.index);
    this.#workers[this.#workers.indexOf(dead)] = w;
    w.ready.then(
      () => {
        this.#metrics?.workers.set([], this.#alive());
        this.#pump();
      },
      (err: Error) => {
        console.error(
          JSON.stringify({ level: "error", msg: "worker restart failed", error: err.message }),
        );
        this.#pump();
      },
    );
  }
}
