/**
 * Problem details for HTTP APIs (RFC 9457): every error answer is `application/problem+json`
 * with a sentence in `detail` that says what to change.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** Extension members (RFC 9457 section 3.2), e.g. the parameter at fault and its valid values. */
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** An HTTP error carrying a problem+json body; throw it from routes, `app.onError` renders it. */
export class ProblemError extends HTTPException {
  readonly problem: Problem;
  readonly headers: Record<string, string>;
  constructor(
    status: ContentfulStatusCode,
    detail: string,
    extensions: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(status, { message: detail });
    this.problem = {
      type: "about:blank",
      title: TITLES[status] ?? "Error",
      status,
      detail,
      ...extensions,
    };
    this.headers = headers;
  }
}

/** 400 for a query parameter, naming it and what it accepts. */
export function badParameter(param: string, detail: string, valid?: unknown): ProblemError {
  return new ProblemError(400, detail, valid === undefined ? { param } : { param, valid });
}

export function problemResponse(
  c: Context,
  problem: Problem,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ ...problem, instance: c.req.path }), {
    status: problem.status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

/** The one `app.onError`: known errors keep their status, anything else is a 500 without internals. */
export function onError(err: Error, c: Context): Response {
  if (err instanceof ProblemError) return problemResponse(c, err.problem, err.headers);
  const status = (err as { status?: unknown }).status;
  if (typeof status === "number" && status >= 400 && status < 600) {
    return problemResponse(c, {
      type: "about:blank",
      title: TITLES[status] ?? "Error",
      status,
      detail: err.message || (TITLES[status] ?? "Error"),
    });
  }
  console.error(
    JSON.stringify({
      level: "error",
      msg: "unhandled error",
      path: c.req.path,
      error: String(err?.stack ?? err),
    }),
  );
  return problemResponse(c, {
    type: "about:blank",
    title: TITLES[500]!,
    status: 500,
    detail:
      "The server failed to answer this request; it has been logged. Retry, or report it with the request id.",
  });
}

export function notFound(c: Context): Response {
  return problemResponse(c, {
    type: "about:blank",
    title: TITLES[404]!,
    status: 404,
    detail:
      `No route for ${c.req.method} ${c.req.path}. See GET /v1/models, GET /v1/cost, POST /v1/classify.`,
  });
}
