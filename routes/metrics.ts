/**
 * `GET /metrics` (Prometheus text format 0.0.4) and the middleware that measures and logs every
 * request: one structured JSON line per answer, carrying the request id that `hono/request-id`
 * puts on the answer's `X-Request-Id` header.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import "hono/request-id"; // declares c.get("requestId")
import { PROMETHEUS_CONTENT_TYPE, type ServiceMetrics } from "../runtime/metrics.ts";

export function metricsRoutes(metrics: ServiceMetrics): Hono {
  const app = new Hono();
  app.get(
    "/metrics",
    (c) => c.body(metrics.registry.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }),
  );
  return app;
}

interface RequestInfo {
  /** `performance.now()` when the request reached the app: deadlines count from here. */
  arrivedAt: number;
  variant: string;
  backend: string;
  /** The detail of a problem answer built without an exception (logged as `error`). */
  problem?: string;
}

const info = new WeakMap<Request, RequestInfo>();

/**
 * Arrival times recorded before the app saw the request (routes/admission.ts, in front of Hono):
 * deadlines then count from the moment the server's handler was called, not from when the
 * middleware ran.
 */
const earlyArrivals = new WeakMap<Request, number>();

/** Records when `req` reached the server, for {@link requestMetrics} (and so for deadlines). */
export function markArrival(req: Request, at: number): void {
  earlyArrivals.set(req, at);
}

/** When the request arrived (`performance.now()` clock); now if the middleware is not mounted. */
export function requestArrival(c: Context): number {
  return info.get(c.req.raw)?.arrivedAt ?? performance.now();
}

/** Names the model variant and backend that served the request, for its metrics and log line. */
export function labelRequest(c: Context, variant: string, backend: string): void {
  const i = info.get(c.req.raw);
  if (i) {
    i.variant = variant;
    i.backend = backend;
  }
}

/**
 * Records the detail of a problem answer that a route returned instead of throwing (cheap
 * refusals), so that its log line carries it as `error` like a thrown one's.
 */
export function noteProblem(c: Context, detail: string): void {
  const i = info.get(c.req.raw);
  if (i) i.problem = detail;
}

/** The route pattern that answered ("/v1/cost"), not the raw path: bounded label cardinality. */
function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i]!;
    if (r.method !== "ALL") return r.path;
  }
  return "unmatched";
}

export interface RequestMetricsOptions {
  metrics: ServiceMetrics;
  /** Where JSON log lines go (one per request); null for none. */
  log?: ((line: string) => void) | null;
}

export const requestMetrics = (opts: RequestMetricsOptions): MiddlewareHandler =>
  async function requestMetrics(c, next) {
    const i: RequestInfo = {
      arrivedAt: earlyArrivals.get(c.req.raw) ?? performance.now(),
      variant: "",
      backend: "",
    };
    info.set(c.req.raw, i);
    await next();
    // hono/request-id sets the header through the context, which answers built as a plain
    // Response (problem+json errors, 404) do not carry: put it on every answer here.
    const id = c.get("requestId");
    if (id && !c.res.headers.has("x-request-id")) {
      try {
        c.res.headers.set("x-request-id", id);
      } catch {
        // Immutable headers (a proxied fetch answer): copy the answer to set it.
        const res = new Response(c.res.body, c.res);
        res.headers.set("x-request-id", id);
        c.res = res;
      }
    }
    const status = c.res.status;
    recordAnswer(opts, {
      route: routeOf(c),
      method: c.req.method,
      path: c.req.path,
      status,
      ms: performance.now() - i.arrivedAt,
      variant: i.variant,
      backend: i.backend,
      requestId: id,
      error: status >= 500 ? c.error?.message ?? i.problem : undefined,
    });
  };

/** One answered request, as the metrics and the log line record it. */
export interface AnswerRecord {
  route: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  variant: string;
  backend: string;
  requestId: string | undefined;
  /** For 5xx answers: the problem's detail (logged as `error`). */
  error: string | undefined;
}

/**
 * Counts an answer in `http_requests_total` and `http_request_duration_seconds` and writes its
 * JSON log line: what {@link requestMetrics} does after every answer, also called by the
 * admission gate in front of the app (routes/admission.ts) for the refusals it answers itself.
 */
export function recordAnswer(opts: RequestMetricsOptions, a: AnswerRecord): void {
  const s = String(a.status);
  opts.metrics.httpRequests.inc([a.route, a.method, s]);
  opts.metrics.httpDuration.observe([a.route, s, a.variant, a.backend], a.ms / 1000);
  if (!opts.log) return;
  const line: Record<string, unknown> = {
    time: new Date().toISOString(),
    level: a.status >= 500 ? "error" : a.status >= 400 ? "warn" : "info",
    msg: "request",
    request_id: a.requestId,
    method: a.method,
    path: a.path,
    route: a.route,
    status: a.status,
    duration_ms: Math.round(a.ms * 1000) / 1000,
  };
  if (a.variant) line.variant = a.variant;
  if (a.backend) line.backend = a.backend;
  if (a.error) line.error = a.error;
  opts.log(JSON.stringify(line));
}
