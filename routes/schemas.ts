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
  /**
   * The stride plan of each served width, where widths differ: a request for one of these alphas
   * that names no stride_plan describes that served model.
   */
  plans?: ReadonlyArray<{ alpha: number; stridePlan: StridePlan }>;
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
  const alpha = q.alpha ?? 1;
  if (d === served) {
    const own = served.plans?.find((p) => Math.abs(p.alpha - alpha) < 1e-9);
    if (own) stridePlan = own.stridePlan;
  }
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
      alpha,
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

// --- POST /v1/classify -------------------------------------------------------------------------

/** What the classify schema needs to know about the served variants (a `ModelRegistry` fits). */
export interface ServedVariants {
  readonly alphas: readonly number[];
  readonly backendNames: readonly string[];
  readonly defaultBackend: string;
  readonly variants: readonly ServedVariant[];
  /** Served when a request names no alpha; default: the widest. */
  readonly defaultVariant?: ServedVariant;
}

export interface ServedVariant {
  readonly manifest: { readonly id: string; readonly alpha: number; readonly classes: number };
  readonly resolution: { readonly min: number; readonly max: number; readonly base: number };
}

/** The query parameters of `POST /v1/classify`, in the order they are checked and listed. */
export const CLASSIFY_PARAMS = [
  "alpha",
  "beta",
  "resolution",
  "topk",
  "backend",
  "invert",
  "deadline_ms",
] as const;

/** The longest deadline accepted (the same bound `routes/scheduling.ts` enforces). */
export const MAX_DEADLINE_MS = 60_000;
export const DEFAULT_TOPK = 5;

/** The classify query as parsed field by field, before the rules that depend on the variant. */
export interface ClassifyFields {
  alpha?: number | "auto" | undefined;
  beta?: string | undefined;
  resolution?: string | undefined;
  topk?: string | undefined;
  backend?: string | undefined;
  invert?: string | undefined;
  deadline_ms?: string | undefined;
}

/** A valid classify query, resolved against the served variants. */
export interface ClassifyPlan {
  /**
   * Index into `models.variants`. With `auto.alpha` (or `auto.beta`) the checks ran on the default
   * width (or beta); the scheduler's chooser picks the variant that fits the deadline.
   */
  variant: number;
  auto: { alpha: boolean; beta: boolean };
  resolution: number;
  beta: number;
  topk: number;
  backend: string;
  invert: "auto" | boolean;
  deadlineMs: number | undefined;
}

/**
 * The rules that need the chosen variant: its resolution range bounds beta and resolution, its
 * class count bounds topk. Pure: the schema's refinement and the handler share it.
 */
export function resolveClassifyQuery(
  q: ClassifyFields,
  models: ServedVariants,
): { plan: ClassifyPlan } | { failure: ParamFailure } {
  const alphas = models.alphas;
  const auto = { alpha: q.alpha === "auto", beta: q.beta === "auto" };
  if (auto.beta && q.resolution !== undefined) {
    return { failure: { param: "beta", detail: "Give beta=auto or resolution, not both." } };
  }
  if (auto.beta) q = { ...q, beta: undefined };
  const fallback = models.defaultVariant?.manifest.alpha ?? alphas[alphas.length - 1];
  const alpha = q.alpha === undefined || q.alpha === "auto" ? fallback : q.alpha;
  const index = models.variants.findIndex((v) => v.manifest.alpha === alpha);
  const v = models.variants[index];
  if (v === undefined) {
    return {
      failure: {
        param: "alpha",
        detail: `alpha must be one of the shipped widths ${alphas.join(", ")}: got "${q.alpha}".`,
        valid: alphas,
      },
    };
  }
  const { min, max, base } = v.resolution;
  let resolution = base;
  let beta = 1;
  if (q.beta !== undefined && q.resolution !== undefined) {
    return { failure: { param: "beta", detail: "Give beta or resolution, not both." } };
  }
  const minBeta = Math.ceil((min - 0.5) / base * 1000) / 1000;
  if (q.resolution !== undefined) {
    const r = strictNumber(q.resolution);
    const interval = `[${min}, ${max}]`;
    if (!Number.isInteger(r) || r < min || r > max) {
      return {
        failure: {
          param: "resolution",
          detail: `resolution must be an integer in ${interval}: got "${q.resolution}".`,
          valid: Number.isFinite(r) ? { min, max } : `an integer in ${interval}`,
        },
      };
    }
    resolution = r;
    beta = r / base;
  } else if (q.beta !== undefined) {
    const expectation = `a number in [${minBeta}, 1]`;
    const b = strictNumber(q.beta);
    if (!Number.isFinite(b)) {
      return {
        failure: {
          param: "beta",
          detail: `beta must be ${expectation}: got "${q.beta}".`,
          valid: expectation,
        },
      };
    }
    if (!(b > 0 && b <= 1)) {
      return {
        failure: {
          param: "beta",
          detail: `beta must be in (0, 1]: got "${q.beta}".`,
          valid: { min: minBeta, max: 1 },
        },
      };
    }
    resolution = resolutionFor(b, base);
    beta = b;
    if (resolution < min) {
      return {
        failure: {
          param: "beta",
          detail:
            `beta=${b} gives ${resolution}x${resolution} pixels, below the ${min} pixels ${v.manifest.id} ` +
            `needs: use beta in [${minBeta}, 1] (or resolution in [${min}, ${max}]).`,
          valid: { min: minBeta, max: 1 },
        },
      };
    }
  }
  const classes = v.manifest.classes;
  let topk = Math.min(DEFAULT_TOPK, classes);
  if (q.topk !== undefined) {
    const k = strictNumber(q.topk);
    if (!Number.isInteger(k) || k < 1 || k > classes) {
      return {
        failure: {
          param: "topk",
          detail: `topk must be an integer in [1, ${classes}]: got "${q.topk}".`,
          valid: Number.isFinite(k) ? { min: 1, max: classes } : `an integer in [1, ${classes}]`,
        },
      };
    }
    topk = k;
  }
  const backend = q.backend ?? models.defaultBackend;
  if (!models.backendNames.includes(backend)) {
    return {
      failure: {
        param: "backend",
        detail: `backend must be one of ${models.backendNames.join(", ")}: got "${backend}".`,
        valid: models.backendNames,
      },
    };
  }
  const polarities = ["auto", "true", "false"];
  if (q.invert !== undefined && !polarities.includes(q.invert)) {
    return {
      failure: {
        param: "invert",
        detail: `invert must be one of auto, true, false: got "${q.invert}".`,
        valid: polarities,
      },
    };
  }
  const invert = q.invert === undefined || q.invert === "auto" ? "auto" : q.invert === "true";
  let deadlineMs: number | undefined;
  if (q.deadline_ms !== undefined) {
    const expectation = `a number of milliseconds in (0, ${MAX_DEADLINE_MS}]`;
    const ms = strictNumber(q.deadline_ms);
    if (!(ms > 0 && ms <= MAX_DEADLINE_MS)) {
      return {
        failure: {
          param: "deadline_ms",
          detail: `deadline_ms must be ${expectation}: got "${q.deadline_ms}".`,
          valid: Number.isFinite(ms) ? { min: 0, max: MAX_DEADLINE_MS } : expectation,
        },
      };
    }
    deadlineMs = ms;
  }
  return { plan: { variant: index, auto, resolution, beta, topk, backend, invert, deadlineMs } };
}

/** The `POST /v1/classify` query schema for the served variants. */
export function classifyQuerySchema(models: ServedVariants) {
  const alphas = models.alphas;
  const list = alphas.join(", ");
  const defaultAlpha = models.defaultVariant?.manifest.alpha ?? alphas[alphas.length - 1];
  const bases = models.variants.map((v) => v.resolution.base);
  const mins = models.variants.map((v) => v.resolution.min);
  const classes = Math.max(1, ...models.variants.map((v) => v.manifest.classes));
  const fields = {
    alpha: z.string().transform((raw, ctx): number | "auto" => {
      if (raw === "auto") return "auto";
      const a = strictNumber(raw);
      if (!Number.isFinite(a)) {
        addFailure(ctx, {
          param: "alpha",
          detail: `alpha must be one of ${list}: got "${raw}".`,
          valid: `one of ${list}`,
        });
        return z.NEVER;
      }
      return a;
    }).optional().openapi({
      param: { name: "alpha", in: "query" },
      anyOf: [{ type: "number", enum: [...alphas] }, { type: "string", enum: ["auto"] }],
      description:
        "Width multiplier: one of the shipped widths, or `auto`: the most accurate width whose measured p95 latency fits the deadline. Default: the most accurate width at beta 1 (measured by deno task eval).",
      example: alphas[0] ?? 0.5,
      ...(defaultAlpha === undefined ? {} : { default: defaultAlpha }),
    }),
    beta: z.string().optional().openapi({
      param: { name: "beta", in: "query" },
      anyOf: [
        { type: "number", exclusiveMinimum: 0, maximum: 1 },
        { type: "string", enum: ["auto"] },
      ],
      description: `Resolution multiplier, or \`auto\` (as for alpha): resolution = round(beta x ${
        [...new Set(bases)].join(" or ")
      }); below ${
        [...new Set(mins)].join(" or ")
      } pixels is refused. Not with \`resolution\`. Default 1.`,
      example: 0.75,
      default: 1,
    }),
    resolution: z.string().optional().openapi({
      param: { name: "resolution", in: "query" },
      type: "integer",
      minimum: Math.min(...mins),
      maximum: Math.max(...bases),
      description: "Input side in pixels, instead of `beta`.",
      example: Math.max(...bases),
    }),
    topk: z.string().optional().openapi({
      param: { name: "topk", in: "query" },
      type: "integer",
      minimum: 1,
      maximum: classes,
      description: "How many predictions to return, best first.",
      example: 3,
      default: Math.min(DEFAULT_TOPK, classes),
    }),
    backend: z.string().optional().openapi({
      param: { name: "backend", in: "query" },
      type: "string",
      enum: [...models.backendNames],
      description: "Which backend runs the model.",
      example: models.defaultBackend,
      default: models.defaultBackend,
    }),
    invert: z.string().optional().openapi({
      param: { name: "invert", in: "query" },
      type: "string",
      enum: ["auto", "true", "false"],
      description:
        "Polarity: Fashion-MNIST items are light on dark; `auto` inverts an image whose border is light (a product photo on white).",
      example: "auto",
      default: "auto",
    }),
    deadline_ms: z.string().optional().openapi({
      param: { name: "deadline_ms", in: "query" },
      type: "number",
      exclusiveMinimum: 0,
      maximum: MAX_DEADLINE_MS,
      description:
        "Answer within this many milliseconds or be refused at once (503 with Retry-After); also accepted as header X-Deadline-Ms.",
      example: 50,
    }),
  };
  return z.object(fields).strict().superRefine((q, ctx) => {
    const r = resolveClassifyQuery(q, models);
    if ("failure" in r) addFailure(ctx, r.failure);
  });
}

const PredictionSchema = z.object({
  label: z.string().openapi({ example: "Ankle boot" }),
  index: z.number().int().openapi({ example: 9 }),
  score: z.number().openapi({ example: 0.97, description: "Softmax probability." }),
}).openapi("Prediction");

export const ClassifyResponseSchema = z.object({
  predictions: z.array(PredictionSchema),
  model: z.object({
    id: z.string(),
    arch: z.string(),
    alpha: z.number(),
    beta: z.number(),
    resolution: z.number().int(),
    precision: z.string(),
    backend: z.string(),
    trained: z.boolean().optional(),
  }),
  cost: Totals.openapi({ description: "MACs and parameters of exactly what ran." }),
  image: z.object({
    type: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    inverted: z.boolean(),
  }).optional(),
  timing_ms: z.object({
    decode: z.number(),
    preprocess: z.number(),
    queue: z.number(),
    inference: z.number(),
    total: z.number(),
  }).openapi({ description: "Also sent as the Server-Timing header." }),
}).openapi("Classification");

const binary = z.string().openapi({ type: "string", format: "binary" });

/** The `POST /v1/classify` operation; `path` is relative to where the sub-app is mounted. */
export function classifyRoute(models: ServedVariants) {
  return createRoute({
    method: "post",
    path: "/",
    tags: ["classify"],
    summary: "Classify an image",
    description:
      "The body is the image (JPEG, PNG, GIF, WebP or BMP, sniffed from its bytes whatever the Content-Type says) or multipart/form-data with the file in field `image`. Pick the accuracy/latency trade-off with `alpha` and `beta`.",
    request: {
      query: classifyQuerySchema(models),
      headers: z.object({
        "x-deadline-ms": z.string().optional().openapi({
          param: { name: "x-deadline-ms", in: "header" },
          type: "number",
          description: "Same as `deadline_ms`.",
        }),
      }),
      body: {
        required: true,
        content: {
          "multipart/form-data": { schema: z.object({ image: binary }) },
          "application/octet-stream": { schema: binary },
          "image/*": { schema: binary },
        },
      },
    },
    responses: {
      200: {
        description: "The top-k predictions, the model that ran, its cost and timings.",
        headers: z.object({
          "Server-Timing": z.string().openapi({ example: "decode;dur=0.4, inference;dur=0.6" }),
        }),
        content: { "application/json": { schema: ClassifyResponseSchema } },
      },
      400: problemResponse("A parameter is invalid, or the body is empty."),
      413: problemResponse("The body or the image's pixel count is over the limit."),
      415: problemResponse("The bytes are not a supported image type."),
      422: problemResponse("The image cannot be decoded."),
      429: problemResponse("The queue is full; see Retry-After."),
      503: problemResponse("Not ready, or the deadline cannot be met; see Retry-After."),
      504: problemResponse("The deadline passed before the model ran."),
    },
  });
}
