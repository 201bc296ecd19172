/**
 * `GET /v1/cost`: MACs and parameters for any MobileNet the spec can build, per layer, with the
 * share by layer type and the depthwise-separable vs standard-convolution comparison (seed 15.7.1).
 * The query is validated by the schema in `routes/schemas.ts`, which also documents it in
 * `GET /openapi.json`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { costReport } from "../model/cost.ts";
import { buildSpec, DEFAULT_BASE_RESOLUTION } from "../model/spec.ts";
import {
  COST_PARAMS,
  type CostDefaults,
  costRoute,
  problemHook,
  resolveCostQuery,
} from "./schemas.ts";

export type { CostDefaults } from "./schemas.ts";

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

/** The `/v1/cost` operation as documented, for the OpenAPI document. */
export function costOperation(opts: CostRouteOptions = {}) {
  return costRoute(opts.defaults ?? PAPER_DEFAULTS, PAPER_DEFAULTS);
}

export function costRoutes(opts: CostRouteOptions = {}): OpenAPIHono {
  const served = opts.defaults ?? PAPER_DEFAULTS;
  const app = new OpenAPIHono({ defaultHook: problemHook(COST_PARAMS) });
  app.openapi(costOperation(opts), (c) => {
    const q = c.req.valid("query");
    const resolved = resolveCostQuery(q, served, PAPER_DEFAULTS);
    // The schema's refinement already ran the same rules; a failure here is a bug.
    if ("failure" in resolved) throw new Error(resolved.failure.detail);
    const p = resolved.plan;
    const spec = buildSpec({
      arch: p.arch,
      alpha: p.alpha,
      resolution: p.resolution,
      inputChannels: p.inputChannels,
      classes: p.classes,
      stridePlan: p.stridePlan,
    });
    return c.json({
      model: {
        arch: spec.arch,
        alpha: p.alpha,
        beta: p.beta ?? p.resolution / p.defaults.baseResolution,
        resolution: p.resolution,
        baseResolution: p.defaults.baseResolution,
        stridePlan: typeof spec.stridePlan === "string" ? spec.stridePlan : [...spec.stridePlan],
        strides: [...spec.strides],
        inputChannels: p.inputChannels,
        classes: p.classes,
        defaultsFrom: p.defaults.source,
      },
      ...costReport(spec),
    }, 200);
  });
  return app;
}
