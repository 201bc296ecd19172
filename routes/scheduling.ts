/**
 * The HTTP side of the scheduler: reading a request's deadline (`deadline_ms` query or
 * `X-Deadline-Ms` header) and turning scheduler refusals into problem+json answers with
 * `Retry-After` (RFC 9110 section 10.2.3).
 */
import type { Context } from "hono";
import { type Refusal, SchedulerRejection, WorkerFailedError } from "../runtime/scheduler.ts";
import type { AutoChoice } from "../runtime/scheduler_setup.ts";
import { requestArrival } from "./metrics.ts";
import { parseNumber } from "./params.ts";
import { badParameter, type Problem, ProblemError } from "./problem.ts";

/** The longest deadline accepted: a minute is far beyond any useful classification budget. */
export const MAX_DEADLINE_MS = 60_000;

/**
 * The request's deadline on the `performance.now()` clock, counted from its arrival, or undefined
 * when it has none. Throws a 400 naming the parameter for a malformed value.
 */
export function readDeadline(c: Context): number | undefined {
  return deadlineFrom(requestArrival(c), c.req.query("deadline_ms"), c.req.header("x-deadline-ms"));
}

/**
 * {@link readDeadline} from the raw values: `deadline_ms` from the query (first) or the
 * `X-Deadline-Ms` header, counted from `arrival`. Throws the same 400s.
 */
export function deadlineFrom(
  arrival: number,
  fromQuery: string | undefined,
  fromHeader: string | undefined,
): number | undefined {
  const raw = fromQuery ?? fromHeader;
  if (raw === undefined) return undefined;
  const name = fromQuery !== undefined ? "deadline_ms" : "X-Deadline-Ms";
  const expectation = `a number of milliseconds in (0, ${MAX_DEADLINE_MS}]`;
  const ms = parseNumber(name, raw, expectation);
  if (!(ms > 0 && ms <= MAX_DEADLINE_MS)) {
    throw badParameter(name, `${name} must be ${expectation}: got "${raw}".`, {
      min: 0,
      max: MAX_DEADLINE_MS,
    });
  }
  return arrival + ms;
}

/** What a scheduler refusal answers: status, problem body and headers (Retry-After). */
export function refusalProblem(r: Refusal): {
  status: 429 | 503 | 504;
  problem: Problem;
  headers: Record<string, string>;
} {
  const headers = { "retry-after": String(r.retryAfterS) };
  const [status, detail]: [429 | 503 | 504, string] = r.reason === "queue_full"
    ? [429, `${r.message} Retry after ${r.retryAfterS} s, or send fewer requests at once.`]
    : r.reason === "deadline_unmeetable"
    ? [
      503,
      `${r.message} Retry after ${r.retryAfterS} s, allow a longer deadline_ms, or pick a smaller alpha or beta.`,
    ]
    : r.reason === "deadline_expired"
    ? [
      504,
      `${r.message} It was not run. Allow a longer deadline_ms or retry when the load is lower.`,
    ]
    : [503, `${r.message} Retry after ${r.retryAfterS} s.`];
  return {
    status,
    problem: {
      type: "about:blank",
      title: PROBLEM_TITLES[status],
      status,
      detail,
      reason: r.reason,
    },
    headers,
  };
}

const PROBLEM_TITLES = {
  429: "Too Many Requests",
  503: "Service Unavailable",
  504: "Gateway Timeout",
} as const;

/** The problem answer for a scheduler error, or undefined for errors that are not the scheduler's. */
export function schedulerProblem(err: unknown): ProblemError | undefined {
  if (err instanceof SchedulerRejection) {
    const { status, problem, headers } = refusalProblem(err);
    return new ProblemError(status, problem.detail, { reason: err.reason }, headers);
  }
  if (err instanceof WorkerFailedError) {
    return new ProblemError(
      503,
      "The inference worker running this request failed and is being replaced. Retry the request.",
      { reason: "worker_failed" },
      { "retry-after": "1" },
    );
  }
  return undefined;
}

/** What `alpha=auto` / `beta=auto` asks for: a fixed value stays fixed. */
export interface AutoWant {
  alpha: number | "auto";
  beta: number | "auto";
  backend: string;
  deadlineAt?: number;
}

export type AutoChooser = (want: AutoWant) => AutoChoice | undefined;

/** The query with `alpha=auto` / `beta=auto` removed, so the ordinary parsing checks the rest. */
export function withoutAuto(q: Record<string, string>): Record<string, string> {
  const out = { ...q };
  if (out.alpha === "auto") delete out.alpha;
  if (out.beta === "auto") {
    if (out.resolution !== undefined) {
      throw badParameter("beta", "Give beta=auto or resolution, not both.");
    }
    delete out.beta;
  }
  return out;
}

/**
 * The variant `alpha=auto` / `beta=auto` runs: the most accurate (manifest int8 accuracy) whose
 * measured p95 plus the current queue fits the deadline. 400 without a chooser (no scheduler),
 * 503 with Retry-After when none fits.
 */
export function resolveAuto(
  chooser: AutoChooser | undefined,
  q: Record<string, string>,
  fixed: {
    variant: { manifest: { alpha: number } };
    beta: number;
    backend: string;
    deadlineAt?: number | undefined;
  },
): AutoChoice {
  const param = q.alpha === "auto" ? "alpha" : "beta";
  if (!chooser) {
    throw badParameter(
      param,
      `${param}=auto needs measured latencies, which only the inference workers keep: give a number ` +
        "or run the server with WORKERS above 0.",
    );
  }
  const want: AutoWant = {
    alpha: q.alpha === "auto" ? "auto" : fixed.variant.manifest.alpha,
    beta: q.beta === "auto" ? "auto" : fixed.beta,
    backend: fixed.backend,
    ...(fixed.deadlineAt === undefined ? {} : { deadlineAt: fixed.deadlineAt }),
  };
  const pick = chooser(want);
  if (!pick) {
    throw new ProblemError(
      503,
      `No served variant's measured p95 latency, with the current queue, fits the deadline: allow a ` +
        `longer deadline_ms, or retry after 1 s.`,
      { reason: "deadline_unmeetable" },
      { "retry-after": "1" },
    );
  }
  return pick;
}

/** Uploads up to this size are read before a refusal, so the connection stays usable. */
export const DISCARD_LIMIT_BYTES = 64 * 1024;

/**
 * Reads and drops a small request body before a refusal that did not need it: with the body
 * unread the server must close the connection, and under overload a client would then pay a new
 * TCP handshake for every retry. Larger (or unsized) bodies are left unread.
 */
export async function discardSmallBody(req: Request): Promise<void> {
  // The header alone decides: reading `req.body` would turn the body into a stream, which costs
  // the event loop far more than the refusal itself (routes/body_limit.ts).
  const length = Number(req.headers.get("content-length"));
  if (!(length > 0 && length <= DISCARD_LIMIT_BYTES)) return;
  try {
    await req.arrayBuffer();
  } catch {
    // The client went away: nothing to keep open.
  }
}
