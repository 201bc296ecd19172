/**
 * `GET /v1/cost`: MACs and parameters for any MobileNet the spec can build, per layer, with the
 * share by layer type and the depthwise-separable vs standard-convolution comparison (seed 15.7.1).
 */
import { Hono } from "hono";
import { costReport } from "../model/cost.ts";
import {
  ALPHA_RANGE,
  type Arch,
  ARCHS,
  buildSpec,
  DEFAULT_BASE_RESOLUTION,
  resolutionFor,
  resolutionLimits,
  resolveStridePlan,
  STRIDE_PLANS,
  type StridePlan,
} from "../model/spec.ts";
import { parseInteger, parseNumber } from "./params.ts";
import { badParameter } from "./problem.ts";

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

/** Until models ship: the paper's MobileNet V1 at 224 with 1000 classes. */
export const PAPER_DEFAULTS: CostDefaults = {
  arch: "mobilenet_v1",
  stridePlan: "imagenet",
  baseResolution: DEFAULT_BASE_RESOLUTION,
  inputChannels: 3,
  classes: 1000,
  source: "paper (arXiv 1704.04861): ImageNet, 224x224, 1000 classes",
};

export interface CostRouteOptions {
  defaults?: CostDefaults;
}

const KNOWN = new Set([
  "arch",
  "alpha",
  "beta",
  "resolution",
  "classes",
  "channels",
  "stride_plan",
]);

export function costRoutes(opts: CostRouteOptions = {}): Hono {
  const served = opts.defaults ?? PAPER_DEFAULTS;
  const app = new Hono();
  app.get("/", (c) => {
    const q = c.req.query();
    for (const key of Object.keys(q)) {
      if (!KNOWN.has(key)) {
        throw badParameter(key, `Unknown query parameter "${key}": use ${[...KNOWN].join(", ")}.`, [
          ...KNOWN,
        ]);
      }
    }
    let d = served;
    if (q.arch !== undefined) {
      if (!(ARCHS as readonly string[]).includes(q.arch)) {
        throw badParameter(
          "arch",
          `arch must be one of ${ARCHS.join(", ")}: got "${q.arch}".`,
          ARCHS,
        );
      }
      const arch = q.arch as Arch;
      d = arch === served.arch
        ? served
        : { ...PAPER_DEFAULTS, arch, source: `paper: ${arch}, 224x224, 1000 classes` };
    }
    const alpha = q.alpha === undefined
      ? 1
      : parseNumber("alpha", q.alpha, `a number in (0, ${ALPHA_RANGE.max}]`);
    if (!(alpha > ALPHA_RANGE.min && alpha <= ALPHA_RANGE.max)) {
      throw badParameter("alpha", `alpha must be in (0, ${ALPHA_RANGE.max}]: got "${q.alpha}".`, {
        exclusiveMin: 0,
        max: ALPHA_RANGE.max,
      });
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
      throw badParameter(
        "stride_plan",
        `stride_plan must be one of ${STRIDE_PLANS.join(", ")} or a comma-separated list of ` +
          `${
            resolveStridePlan(d.arch, "imagenet").length
          } strides (1 or 2) for ${d.arch}: got "${q.stride_plan}". ` +
          (e instanceof Error ? e.message : ""),
        STRIDE_PLANS,
      );
    }
    const limits = resolutionLimits(strides);
    if (q.beta !== undefined && q.resolution !== undefined) {
      throw badParameter("beta", "Give beta or resolution, not both.");
    }
    let beta: number | null = null;
    let resolution = d.baseResolution;
    if (q.beta !== undefined) {
      beta = parseNumber("beta", q.beta, "a number in (0, 1]");
      if (!(beta > 0 && beta <= 1)) {
        throw badParameter("beta", `beta must be in (0, 1]: got "${q.beta}".`, {
          exclusiveMin: 0,
          max: 1,
        });
      }
      resolution = resolutionFor(beta, d.baseResolution);
      if (resolution < limits.min) {
        const minBeta = Math.ceil((limits.min - 0.5) / d.baseResolution * 1000) / 1000;
        throw badParameter(
          "beta",
          `beta=${beta} gives ${resolution}x${resolution} pixels, below the ${limits.min} pixels this stride plan ` +
            `needs (every stride-2 stage needs at least 2 pixels): use beta >= ${minBeta}.`,
          { min: minBeta, max: 1 },
        );
      }
    } else if (q.resolution !== undefined) {
      resolution = parseInteger("resolution", q.resolution, limits.min, limits.max);
    }
    const inputChannels = q.channels === undefined
      ? d.inputChannels
      : parseInteger("channels", q.channels, 1, 4);
    const classes = q.classes === undefined
      ? d.classes
      : parseInteger("classes", q.classes, 1, 100000);
    const spec = buildSpec({ arch: d.arch, alpha, resolution, inputChannels, classes, stridePlan });
    const report = costReport(spec);
    return c.json({
      model: {
        arch: spec.arch,
        alpha,
        beta: beta ?? resolution / d.baseResolution,
        resolution,
        baseResolution: d.baseResolution,
        stridePlan: spec.stridePlan,
        strides: spec.strides,
        inputChannels,
        classes,
        defaultsFrom: q.arch === undefined || d === served ? served.source : d.source,
      },
      ...report,
    });
  });
  return app;
}
