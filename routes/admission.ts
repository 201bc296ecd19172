/**
 * The admission gate in front of the app: the `Deno.serve` handler asks the scheduler whether a
 * `POST /v1/classify` can be admitted before the request reaches Hono, and answers a refusal
 * itself. Under overload most requests are refused, and answering them through the app (context,
 * middleware chain, router) cost the event loop several times what the refusal itself costs; the
 * gate answers the same problem+json (status, `Retry-After`, `X-Request-Id`, `instance`), counts
 * it in the same metrics and writes the same log line as the app would.
 *
 * Only requests whose query string the classify route has already validated go through the gate
 * (routes/classify.ts keeps the parameters of recent queries): a new, malformed or `auto` query,
 * a bad deadline, a registry still loading or a draining server all go to the app, which answers
 * them as before. An admitted request goes on to the app with its admission (the route does not
 * admit it twice) and is released once the app's answer is built.
 */
import type { ModelRegistry } from "../runtime/registry.ts";
import type { Refusal } from "../runtime/scheduler.ts";
import type { NCHW } from "../runtime/backend.ts";
import type { DrainState } from "../runtime/shutdown.ts";
import { cachedClassifyParams, passAdmission } from "./classify.ts";
import { markArrival, recordAnswer, type RequestMetricsOptions } from "./metrics.ts";
import { deadlineFrom, discardSmallBody, refusalProblem } from "./scheduling.ts";

export type ServeHandler = (
  req: Request,
  info?: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

export interface AdmissionGateOptions extends RequestMetricsOptions {
  models: ModelRegistry;
  /** The scheduler's admission (`Scheduler.tryAdmit` through `scheduledInference`). */
  tryAdmit(
    req: { model: string; backend: string; shape: NCHW; deadlineAt?: number },
  ): (() => void) | Refusal;
  drain?: DrainState;
}

const CLASSIFY = "/v1/classify";
/** What hono/request-id accepts as a client's own request id. */
const CLIENT_ID = /^[\w\-=]{1,255}$/;

/** Wraps the app's handler (`app.fetch`) with the admission gate. */
export function admissionGate(app: ServeHandler, opts: AdmissionGateOptions): ServeHandler {
  const { models, drain } = opts;
  return function gate(req, info) {
    if (req.method !== "POST" || (drain && drain.draining) || !models.ready()) {
      return app(req, info);
    }
    const arrival = performance.now();
    const url = req.url;
    const p = url.indexOf("/", url.indexOf("//") + 2);
    const q = url.indexOf("?", p);
    if (p < 0 || url.slice(p, q < 0 ? undefined : q) !== CLASSIFY) return app(req, info);
    const params = cachedClassifyParams(models, q < 0 ? "" : url.slice(q + 1));
    if (!params) return app(req, info);
    let deadlineAt: number | undefined;
    try {
      deadlineAt = deadlineFrom(
        arrival,
        params.deadlineMs,
        req.headers.get("x-deadline-ms") ?? undefined,
      );
    } catch {
      return app(req, info); // the app answers the 400
    }
    const { variant, resolution, backend } = params;
    const m = variant.manifest;
    const shape: NCHW = [1, m.inputChannels, resolution, resolution];
    const r = opts.tryAdmit(
      deadlineAt === undefined
        ? { model: m.id, backend, shape }
        : { model: m.id, backend, shape, deadlineAt },
    );
    if (typeof r === "function") {
      markArrival(req, arrival);
      passAdmission(req, r);
      return admitted(app, req, info, r);
    }
    return refuse(req, r, arrival, `${m.id}@${resolution}x${resolution}`, backend, opts);
  };
}

async function admitted(
  app: ServeHandler,
  req: Request,
  info: Deno.ServeHandlerInfo | undefined,
  release: () => void,
): Promise<Response> {
  try {
    return await app(req, info);
  } finally {
    release(); // idempotent: the route has usually released it already
  }
}

async function refuse(
  req: Request,
  r: Refusal,
  arrival: number,
  variant: string,
  backend: string,
  opts: AdmissionGateOptions,
): Promise<Response> {
  opts.drain?.enter();
  try {
    const given = req.headers.get("x-request-id");
    const id = given !== null && CLIENT_ID.test(given) ? given : crypto.randomUUID();
    // The upload is read so that the connection stays usable (routes/scheduling.ts).
    await discardSmallBody(req);
    const { status, problem, headers } = refusalProblem(r);
    const res = new Response(JSON.stringify({ ...problem, instance: CLASSIFY }), {
      status,
      headers: {
        "content-type": "application/problem+json",
        ...headers,
        "x-request-id": id,
      },
    });
    recordAnswer(opts, {
      route: CLASSIFY,
      method: "POST",
      path: CLASSIFY,
      status,
      ms: performance.now() - arrival,
      variant,
      backend,
      requestId: id,
      error: status >= 500 ? problem.detail : undefined,
    });
    return res;
  } finally {
    opts.drain?.leave();
  }
}
