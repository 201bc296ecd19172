/**
 * Counters, gauges and histograms rendered in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). A few metric types with label
 * values given positionally: small enough that a client library would be the bigger dependency.
 */

/** Content type of the 0.0.4 text format, as Prometheus expects it in the scrape answer. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Buckets of `event_loop_lag_seconds`: 0.5 ms to 100 ms. */
export const LOOP_LAG_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];

/** Seconds: from a trivial route (sub-ms) to a batch stuck behind a slow model. */
export const LATENCY_BUCKETS_S = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.02,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
] as const;

export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128] as const;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

// Label values escape backslash, double quote and line feed; HELP text escapes backslash and line
// feed (format 0.0.4).
const escapeLabel = (v: string) =>
  v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
const escapeHelp = (v: string) => v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

abstract class Metric {
  abstract readonly type: "counter" | "gauge" | "histogram";
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) {
      throw new RangeError(
        `Cannot create metric as its name is not a valid metric name: "${name}"`,
      );
    }
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith("__") || l === "le") {
        throw new RangeError(`Cannot create metric ${name} as label "${l}" is not allowed`);
      }
    }
  }

  protected key(values: readonly string[]): string {
    if (values.length !== this.labelNames.length) {
      throw new RangeError(
        `Cannot update metric ${this.name} as it needs ${this.labelNames.length} label values (${
          this.labelNames.join(", ")
        }): got ${values.length}`,
      );
    }
    return values.join("\u0000");
  }

  protected labels(values: readonly string[], extra = ""): string {
    const parts = this.labelNames.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
    if (extra) parts.push(extra);
    return parts.length ? `{${parts.join(",")}}` : "";
  }

  header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }

  abstract render(): string;
}

export class Counter extends Metric {
  readonly type = "counter";
  readonly #series = new Map<string, { values: readonly string[]; v: number }>();

  inc(values: readonly string[] = [], by = 1): void {
    if (!(by >= 0)) {
      throw new RangeError(`Cannot increase counter ${this.name} by a negative amount: ${by}`);
    }
    const k = this.key(values);
    const s = this.#series.get(k);
    if (s) s.v += by;
    else this.#series.set(k, { values: [...values], v: by });
  }

  get(values: readonly string[] = []): number {
    return this.#series.get(this.key(values))?.v ?? 0;
  }

  render(): string {
    let out = this.header();
    for (const s of this.#series.values()) {
      out += `${this.name}${this.labels(s.values)} ${formatNumber(s.v)}\n`;
    }
    return out;
  }
}

export class Gauge extends Metric {
  readonly type = "gauge";
  readonly #series = new Map<string, { values: readonly string[]; v: number }>();
  #collect: (() => void) | undefined;

  /** `collect` runs before each render, for values read at scrape time (memory, uptime). */
  constructor(name: string, help: string, labelNames: readonly string[], collect?: () => void) {
    super(name, help, labelNames);
    this.#collect = collect;
  }

  set(values: readonly string[], v: number): void {
    const k = this.key(values);
    const s = this.#series.get(k);
    if (s) s.v = v;
    else this.#series.set(k, { values: [...values], v });
  }

  inc(values: readonly string[] = [], by = 1): void {
    this.set(values, this.get(values) + by);
  }

  get(values: readonly string[] = []): number {
    return this.#series.get(this.key(values))?.v ?? 0;
  }

  /** Sets (replaces) the callback run before each render. */
  onCollect(collect: () => void): void {
    this.#collect = collect;
  }

  render(): string {
    this.#collect?.();
    let out = this.header();
    for (const s of this.#series.values()) {
      out += `${this.name}${this.labels(s.values)} ${formatNumber(s.v)}\n`;
    }
    return out;
  }
}

interface HistogramSeries {
  values: readonly string[];
  /** Non-cumulative counts per bucket, the last one for +Inf; made cumulative when rendered. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) {
      throw new RangeError(
        `Cannot create histogram ${name} as buckets must be non-empty and increasing: [${buckets}]`,
      );
    }
    this.buckets = [...buckets];
  }

  observe(values: readonly string[], v: number): void {
    const k = this.key(values);
    let s = this.#series.get(k);
    if (!s) {
      s = {
        values: [...values],
        counts: new Float64Array(this.buckets.length + 1),
        sum: 0,
        count: 0,
      };
      this.#series.set(k, s);
    }
    let i = 0;
    while (i < this.buckets.length && v > this.buckets[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  /** Count and sum of one series (tests and the load tool read these). */
  get(values: readonly string[]): { count: number; sum: number; buckets: number[] } {
    const s = this.#series.get(this.key(values));
    if (!s) return { count: 0, sum: 0, buckets: this.buckets.map(() => 0) };
    let acc = 0;
    return {
      count: s.count,
      sum: s.sum,
      buckets: this.buckets.map((_, i) => (acc += s.counts[i]!)),
    };
  }

  render(): string {
    let out = this.header();
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!;
        out += `${this.name}_bucket${
          this.labels(s.values, `le="${formatNumber(this.buckets[i]!)}"`)
        } ${acc}\n`;
      }
      out += `${this.name}_bucket${this.labels(s.values, 'le="+Inf"')} ${s.count}\n`;
      out += `${this.name}_sum${this.labels(s.values)} ${formatNumber(s.sum)}\n`;
      out += `${this.name}_count${this.labels(s.values)} ${s.count}\n`;
    }
    return out;
  }
}

/** A set of metrics rendered together, in registration order. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric>();

  register<M extends Metric>(metric: M): M {
    if (this.#metrics.has(metric.name)) {
      throw new RangeError(`Cannot register metric ${metric.name} as the name is already taken`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  render(): string {
    let out = "";
    for (const m of this.#metrics.values()) out += m.render();
    return out;
  }
}

/** Reasons the scheduler refuses or drops a request; the `reason` label of `rejections_total`. */
export type RejectionReason =
  | "queue_full"
  | "deadline_unmeetable"
  | "deadline_expired"
  | "shutting_down"
  | "worker_failed";

/** The service's metrics: one instance per server, shared by the app and the scheduler. */
export interface ServiceMetrics {
  registry: MetricsRegistry;
  httpRequests: Counter;
  httpDuration: Histogram;
  queueDepth: Gauge;
  queueWait: Histogram;
  batchSize: Histogram;
  inferenceDuration: Histogram;
  rejections: Counter;
  deadlineMissed: Counter;
  batchLatency: Gauge;
  workers: Gauge;
  residentMemory: Gauge;
  loopLag: Histogram;
}

export function createServiceMetrics(): ServiceMetrics {
  const registry = new MetricsRegistry();
  const r = <M extends Metric>(m: M) => registry.register(m);
  const residentMemory: Gauge = new Gauge(
    "process_resident_memory_bytes",
    "Resident set size of the server process, read at scrape time.",
    [],
    () => residentMemory.set([], Deno.memoryUsage().rss),
  );
  return {
    registry,
    httpRequests: r(
      new Counter("http_requests_total", "HTTP requests answered, by route, method and status.", [
        "route",
        "method",
        "status",
      ]),
    ),
    httpDuration: r(
      new Histogram(
        "http_request_duration_seconds",
        "Time from request arrival to answer, by route, status, model variant and backend " +
          '(variant and backend are "" on routes that run no model).',
        ["route", "status", "variant", "backend"],
        LATENCY_BUCKETS_S,
      ),
    ),
    queueDepth: r(
      new Gauge("scheduler_queue_depth", "Requests waiting in the queue of each variant.", [
        "variant",
        "backend",
      ]),
    ),
    queueWait: r(
      new Histogram(
        "scheduler_queue_wait_seconds",
        "Time a request waited in its queue before its batch started.",
        ["variant", "backend"],
        LATENCY_BUCKETS_S,
      ),
    ),
    batchSize: r(
      new Histogram(
        "scheduler_batch_size",
        "Requests per batch sent to a worker.",
        ["variant", "backend"],
        BATCH_SIZE_BUCKETS,
      ),
    ),
    inferenceDuration: r(
      new Histogram(
        "inference_duration_seconds",
        "Time a worker spent running one batch through the backend.",
        ["variant", "backend"],
        LATENCY_BUCKETS_S,
      ),
    ),
    rejections: r(
      new Counter(
        "scheduler_rejections_total",
        "Requests refused or dropped by the scheduler, by reason.",
        ["reason", "variant"],
      ),
    ),
    deadlineMissed: r(
      new Counter(
        "scheduler_deadline_missed_total",
        "Requests whose inference finished after their deadline (they started in time, the batch " +
          "ran longer than its measured p95).",
        ["variant", "backend"],
      ),
    ),
    batchLatency: r(
      new Gauge(
        "scheduler_batch_latency_seconds",
        "Measured batch service time per variant, as deadline decisions read it: EWMA, p50 and " +
          "p95 over the rolling window.",
        ["variant", "backend", "stat"],
      ),
    ),
    workers: r(new Gauge("scheduler_workers", "Inference workers alive and initialized.", [])),
    residentMemory: r(residentMemory),
    loopLag: r(
      new Histogram(
        "event_loop_lag_seconds",
        "How late the HTTP thread's event loop ran, sampled by a 2 ms timer (runtime/loop_lag.ts): " +
          "every request waits about this long before the server sees it and again on the way out.",
        [],
        LOOP_LAG_BUCKETS_S,
      ),
    ),
  };
}
