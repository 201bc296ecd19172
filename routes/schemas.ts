/**
 * The request and response schemas of the HTTP API, written once with zod: the routes validate
 * requests with them and `GET /openapi.json` is generated from them (`@hono/zod-openapi`), so the
 * documentation cannot drift from what the server accepts.
 *
 * Query values arrive as strings. Numbers are parsed strictly (plain decimal literals only, as
 * `routes/params.ts` does: `0x10` or `1e` are refused), and every failure becomes the same
 * problem+json 400 the hand-written checks gave: `param`, `valid` and a sentence that says what to
 * change ({@link problemHook}).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { COUNTING_CONVENTION } from "../model/cost.ts";
import {
  ALPHA_RANGE,
  type Arch,
  ARCHS,
  MAX_RESOLUTION,
  resolutionFor,
  resolutionLimits,
  resolveStridePlan,
  STRIDE_PLANS,
  type StridePlan,
} from "../model/spec.ts";
import { badParameter, ProblemError } from "./problem.ts";

// --- strict query parsing ----------------------------------------------------------------------

const NUMBER = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A finite decimal number, or NaN for anything else (hex, `Infinity`, empty, trailing junk). */
export function strictNumber(raw: string): number {
  return NUMBER.test(raw.trim()) ? Number(raw) : NaN;
}

/** What a failed check reports: the sentence and, when there is one, the valid values or range. */
export interface ParamFailure {
  param: string;
  detail: string;
  valid?: unknown;
}

/** Zod issue params carry the problem's `valid` member through to {@link problemHook}. */
interface IssueParams {
  valid?: unknown;
}

type RefineCtx = z.core.$RefinementCtx<unknown>;

function addFailure(ctx: RefineCtx, f: ParamFailure, path: string[] = [f.param]): void {
  const params: IssueParams = f.valid === undefined ? {} : { valid: f.valid };
  ctx.addIssue({ code: "custom", message: f.detail, path, params });
}

/**
 * A query parameter holding a number in (min, max] or [min, max]: parsed strictly, with the
 * project's sentences. `openapi` documents it as a number although it travels as a string.
 */
export function numberParam(
  name: string,
  range: { min: number; max: number; exclusiveMin?: boolean; integer?: boolean },
  doc: { description: string; example: number; default?: number },
) {
  const lo = range.exclusiveMin ? "(" : "[";
  const interval = `${lo}${range.min}, ${range.max}]`;
  const expectation = range.integer ? `an integer in ${interval}` : `a number in ${interval}`;
  return z.string().transform((raw, ctx) => {
    const v = strictNumber(raw);
    if (!Number.isFinite(v)) {
      addFailure(ctx, {
        param: name,
        detail: `${name} must be ${expectation}: got "${raw}".`,
        valid: expectation,
      });
      return z.NEVER;
    }
    const inRange = (range.exclusiveMin ? v > range.min : v >= range.min) && v <= range.max;
    if (range.integer && (!Number.isInteger(v) || !inRange)) {
      addFailure(ctx, {
        param: name,
        detail: `${name} must be an integer in ${interval}: got "${raw}".`,
        valid: { min: range.min, max: range.max },
      });
      return z.NEVER;
    }
    if (!inRange) {
      addFailure(ctx, {
        param: name,
        detail: `${name} must be in ${interval}: got "${raw}".`,
        valid: range.exclusiveMin
          ? { exclusiveMin: range.min, max: range.max }
          : { min: range.min, max: range.max },
      });
      return z.NEVER;
    }
    return v;
  }).optional().openapi({
    param: { name, in: "query" },
    type: range.integer ? "integer" : "number",
    ...(range.exclusiveMin ? { exclusiveMinimum: range.min } : { minimum: range.min }),
    maximum: range.max,
    description: doc.description,
    example: doc.example,
    ...(doc.default === undefined ? {} : { default: doc.default }),
  });
}

/** A query parameter that must be one of a fixed list of strings. */
export function enumParam<T extends string>(
  name: string,
  values: readonly T[],
  doc: { description: string; example: T; default?: T },
) {
  return z.string().transform((raw, ctx) => {
    if (!(values as readonly string[]).includes(raw)) {
      addFailure(ctx, {
        param: name,
        detail: `${name} must be one of ${values.join(", ")}: got "${raw}".`,
        valid: values,
      });
      return z.NEVER;
    }
    return raw as T;
  }).optional().openapi({
    param: { name, in: "query" },
    type: "string",
    enum: [...values],
    description: doc.description,
    example: doc.example,
    ...(doc.default === undefined ? {} : { default: doc.default }),
  });
}

// --- problem+json ------------------------------------------------------------------------------

export const ProblemSchema = z.object({
  type: z.string().openapi({ example: "about:blank" }),
  title: z.string().openapi({ example: "Bad Request" }),
  status: z.number().int().openapi({ example: 400 }),
  detail: z.string().openapi({ example: 'alpha must be in (0, 1.5]: got "2".' }),
  instance: z.string().optional().openapi({ example: "/v1/cost" }),
  param: z.string().optional().openapi({ description: "The query parameter at fault." }),
  valid: z.unknown().optional().openapi({
    description: "The values or the range the parameter accepts.",
  }),
}).openapi("Problem", {
  description: "RFC 9457 problem details; `detail` says what to change.",
});

/** The problem+json response entry for an OpenAPI route definition. */
export function problemResponse(description: string) {
  return {
    description,
    content: { "application/problem+json": { schema: ProblemSchema } },
  };
}

/** The issue to report when several failed: unknown parameters first, then `order`. */
function firstIssue(issues: readonly z.core.$ZodIssue[], order: readonly string[]) {
  const rank = (i: z.core.$ZodIssue) => {
    if (i.code === "unrecognized_keys") return -1;
    const k = order.indexOf(String(i.path[0] ?? ""));
    return k < 0 ? order.length : k;
  };
  return [...issues].sort((a, b) => rank(a) - rank(b))[0];
}

/** The 400 a failed validation answers, in the same words as the hand-written checks. */
export function problemFromIssues(
  issues: readonly z.core.$ZodIssue[],
  order: readonly string[],
  target = "query parameter",
): ProblemError {
  const issue = firstIssue(issues, order);
  if (issue === undefined) return new ProblemError(400, "The request is invalid.");
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    return badParameter(
      key,
      `Unknown ${target} "${key}": use ${order.join(", ")}.`,
      [...order],
    );
  }
  const param = String(issue.path[0] ?? "");
  const valid = issue.code === "custom"
    ? (issue.params as IssueParams | undefined)?.valid
    : undefined;
  return badParameter(param, issue.message, valid);
}

/**
 * The validation hook every OpenAPI route uses: a failed query becomes problem+json 400 through
 * the app's one error handler.
 */
export function problemHook(order: readonly string[]) {
  return (
    result: { success: true } | { success: false; error: z.ZodError },
    _c: Context,
  ): void => {
    if (!result.success) throw problemFromIssues(result.error.issues, order);
  };
}

// --- GET /v1/cost ------------------------------------------------------------------------------

/** What `/v1/cost` describes when the request names no `arch`. */
export interface CostDefaults {
  arch: Arch;
  stridePlan: StridePlan;
  baseResolution: number;
  inputChannels: number;
  classes: number;
  /** Where the defaults come from, echoed in the answer. */
  source: string;
}

/** The query parameters of `GET /v1/cost`, in the order they are checked and listed. */
export const COST_PARAMS = [
  "arch",
  "alpha",
  "beta",
  "resolution",
  "classes",
  "channels",
  "stride_plan",
] as const;

/** The fields that can be checked alone; the cross-field rules are in {@link resolveCostQuery}. */
const costFields = {
  arch: enumParam("arch", ARCHS, {
    description: "Architecture. Absent: the served model family (or the paper's V1).",
    example: "mobilenet_v1",
  }),
  alpha: numberParam("alpha", { min: ALPHA_RANGE.min, max: ALPHA_RANGE.max, exclusiveMin: true }, {
    description: "Width multiplier (the paper's alpha).",
    example: 0.5,
    default: 1,
  }),
  beta: numberParam("beta", { min: 0, max: 1, exclusiveMin: true }, {
    description:
      "Resolution multiplier (the paper's beta): resolution = round(beta x base). Not with `resolution`.",
    example: 0.75,
  }),
  resolution: z.string().optional().openapi({
    param: { name: "resolution", in: "query" },
    type: "integer",
    minimum: 1,
    maximum: MAX_RESOLUTION,
    description:
      "Input side in pixels; every stride-2 stage needs at least 2 pixels, so the minimum depends on the stride plan (17 for the paper's V1). Not with `beta`.",
    example: 160,
  }),
  classes: numberParam("classes", { min: 1, max: 100000, integer: true }, {
    description: "Classes of the final FC layer.",
    example: 10,
  }),
  channels: numberParam("channels", { min: 1, max: 4, integer: true }, {
    description: "Input channels (1 gray, 3 RGB).",
    example: 3,
  }),
  stride_plan: z.string().optional().openapi({
    param: { name: "stride_plan", in: "query" },
    type: "string",
    description: `One of ${
      STRIDE_PLANS.join(", ")
    }, or a comma-separated list of strides (1 or 2), one per stride-bearing stage.`,
    example: "cifar",
  }),
};

/** The fields as parsed, before the cross-field rules. */
export type CostFields = {
  [K in keyof typeof costFields]?: z.output<(typeof costFields)[K]>;
};

/** Everything `/v1/cost` needs to build the spec, derived from a valid query. */
export interface CostPlan {
  defaults: CostDefaults;
  arch: Arch;
  alpha: number;
  beta: number | null;
  resolution: number;
  stridePlan: StridePlan;
  inputChannels: number;
  classes: number;
}

/**
 * Applies the defaults and the rules that involve several parameters (a stride plan bounds the
 * resolution; beta and resolution exclude each other). Pure: the schema's refinement and the
 * handler call it with the same values.
 */
export function resolveCostQuery(
  q: CostFields,
  served: CostDefaults,
  paper: CostDefaults,
): { plan: CostPlan } | { failure: ParamFailure } {
  let d = served;
  if (q.arch !== undefined && q.arch !== served.arch) {
    d = { ...paper, arch: q.arch, source: `paper: ${q.arch}, 224x224, 1000 classes` };
  }
  let stridePlan: StridePlan = d.stridePlan;
  if (q.stride_plan !== undefined) {
    stridePlan = (STRIDE_PLANS as readonly string[]).includes(q.stride_plan)
      ? q.stride_plan as StridePlan
      : q.stride_plan.split(",").map((s) => Number(s.trim()));
  }
  let strides: number[];
  try {
    strides = resolveStridePlan(d.arch, stridePlan);
  } catch (e) {
    return {
      failure: {
        param: "stride_plan",
        detail:
          `stride_plan must be one of ${STRIDE_PLANS.join(", ")} or a comma-separated list of ` +
          `${
            resolveStridePlan(d.arch, "imagenet").length
          } strides (1 or 2) for ${d.arch}: got "${q.stride_plan}". ` +
          (e instanceof Error ? e.message : ""),
        valid: STRIDE_PLANS,
      },
    };
  }
  const limits = resolutionLimits(strides);
  if (q.beta !== undefined && q.resolution !== undefined) {
    return { failure: { param: "beta", detail: "Give beta or resolution, not both." } };
  }
  let resolution = d.baseResolution;
  const beta = q.beta ?? null;
  if (beta !== null) {
    resolution = resolutionFor(beta, d.baseResolution);
    if (resolution < limits.min) {
      const minBeta = Math.ceil((limits.min - 0.5) / d.baseResolution * 1000) / 1000;
      return {
        failure: {
          param: "beta",
          detail:
            `beta=${beta} gives ${resolution}x${resolution} pixels, below the ${limits.min} pixels this stride plan ` +
            `needs (every stride-2 stage needs at least 2 pixels): use beta >= ${minBeta}.`,
          valid: { min: minBeta, max: 1 },
        },
      };
    }
  } else if (q.resolution !== undefined) {
    const raw = q.resolution;
    const v = strictNumber(raw);
    const interval = `[${limits.min}, ${limits.max}]`;
    if (!Number.isInteger(v) || v < limits.min || v > limits.max) {
      return {
        failure: {
          param: "resolution",
          detail: `resolution must be an integer in ${interval}: got "${raw}".`,
          valid: Number.isFinite(v)
            ? { min: limits.min, max: limits.max }
            : `an integer in ${interval}`,
        },
      };
    }
    resolution = v;
  }
  return {
    plan: {
      defaults: d,
      arch: d.arch,
      alpha: q.alpha ?? 1,
      beta,
      resolution,
      stridePlan,
      inputChannels: q.channels ?? d.inputChannels,
      classes: q.classes ?? d.classes,
    },
  };
}

/** The `/v1/cost` query schema for a service whose unqualified requests describe `served`. */
export function costQuerySchema(served: CostDefaults, paper: CostDefaults) {
  return z.object(costFields).strict().superRefine((q, ctx) => {
    const r = resolveCostQuery(q, served, paper);
    if ("failure" in r) addFailure(ctx, r.failure);
  });
}

const Shape = z.tuple([z.number().int(), z.number().int(), z.number().int()]).openapi({
  description: "[channels, height, width]",
});

const LayerCostSchema = z.object({
  name: z.string(),
  type: z.string().openapi({
    description: "first_conv, depthwise, pointwise, expand, project, ...",
  }),
  inputShape: Shape,
  outputShape: Shape,
  kernel: z.number().int().nullable(),
  stride: z.number().int().nullable(),
  groups: z.number().int().nullable(),
  macs: z.number().int(),
  params: z.number().int(),
}).openapi("LayerCost");

const Totals = z.object({ macs: z.number().int(), params: z.number().int() });

export const CostResponseSchema = z.object({
  model: z.object({
    arch: z.enum(ARCHS),
    alpha: z.number(),
    beta: z.number(),
    resolution: z.number().int(),
    baseResolution: z.number().int(),
    stridePlan: z.union([z.string(), z.array(z.number().int())]),
    strides: z.array(z.number().int()),
    inputChannels: z.number().int(),
    classes: z.number().int(),
    defaultsFrom: z.string(),
  }),
  totals: Totals,
  layers: z.array(LayerCostSchema),
  shares: z.record(
    z.string(),
    z.object({
      macs: z.number().int(),
      params: z.number().int(),
      macsShare: z.number(),
      paramsShare: z.number(),
    }),
  ).openapi({ description: "Share of MACs and parameters by layer type (fractions sum to 1)." }),
  separable: z.object({
    layers: z.array(z.object({
      depthwise: z.string(),
      pointwise: z.string(),
      cIn: z.number().int(),
      cOut: z.number().int(),
      kernel: z.number().int(),
      height: z.number().int(),
      width: z.number().int(),
      separableMacs: z.number().int(),
      standardMacs: z.number().int(),
      separableParams: z.number().int(),
      standardParams: z.number().int(),
      ratio: z.number().openapi({ description: "1/C_out + 1/K^2 (seed formula 15.7.1)" }),
    })),
    total: z.object({
      separableMacs: z.number().int(),
      standardMacs: z.number().int(),
      separableParams: z.number().int(),
      standardParams: z.number().int(),
      ratio: z.number(),
    }),
    standardNetwork: Totals.openapi({
      description: "The network with every depthwise-separable pair replaced by a standard conv.",
    }),
  }),
  convention: z.string().openapi({ example: COUNTING_CONVENTION }),
}).openapi("CostReport");

/** The `/v1/cost` operation; `path` is relative to where the sub-app is mounted. */
export function costRoute(served: CostDefaults, paper: CostDefaults) {
  return createRoute({
    method: "get",
    path: "/",
    tags: ["cost"],
    summary: "MACs and parameters of a MobileNet, per layer",
    description:
      "Totals, a per-layer table, the share by layer type, and the depthwise-separable vs standard-convolution comparison. With no `arch`, describes the served model family.",
    request: { query: costQuerySchema(served, paper) },
    responses: {
      200: {
        description: "The cost report.",
        content: { "application/json": { schema: CostResponseSchema } },
      },
      400: problemResponse("A parameter is invalid; `param` names it and `valid` what it accepts."),
    },
  });
}
