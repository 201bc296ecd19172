/**
 * `GET /v1/models`: the shipped variants with their measured accuracy tables, copied from the
 * manifest (`deno task eval` wrote them; nothing here is typed in), the cost of each beta from the
 * spec, and the warm latency the registry measured on this machine at start-up.
 */
import { Hono } from "hono";
import { betaKey, BETAS } from "../model/export/manifest.ts";
import { resolutionFor } from "../model/spec.ts";
import type { ModelRegistry } from "../runtime/registry.ts";
import { variantCost } from "../runtime/variants.ts";
import type { CostDefaults } from "./cost.ts";

export function modelsRoutes(registry: ModelRegistry): Hono {
  const app = new Hono();
  app.get("/", (c) => {
    return c.json({
      default: {
        alpha: registry.defaultVariant.manifest.alpha,
        beta: 1,
        backend: registry.defaultBackend,
      },
      backends: registry.backendNames,
      ready: registry.ready(),
      models: registry.variants.map((v) => {
        const m = v.manifest;
        return {
          id: m.id,
          arch: m.arch,
          alpha: m.alpha,
          stridePlan: m.stridePlan,
          baseResolution: m.baseResolution,
          resolution: v.resolution,
          inputChannels: m.inputChannels,
          classes: m.classes,
          labels: m.labels,
          precision: m.precision,
          trained: m.trained,
          preprocessing: m.preprocessing,
          sha256: m.sha256,
          bytes: m.bytes,
          accuracy: m.accuracy,
          evaluated: m.evaluated,
          training: m.training,
          // One row per beta the manifest measures: what it costs and how fast it ran here.
          betas: BETAS.map((beta) => {
            const resolution = resolutionFor(beta, m.baseResolution);
            const key = betaKey(beta);
            const served = resolution >= v.resolution.min;
            return {
              beta,
              resolution,
              served,
              ...(served ? variantCost(v, resolution) : {}),
              accuracy: {
                float: m.accuracy.float[key] ?? null,
                int8: m.accuracy.int8[key] ?? null,
              },
              warmLatencyMs: Object.fromEntries(
                Object.entries(v.latencyMs).map(([b, t]) => [b, t[key] ?? null]),
              ),
            };
          }),
        };
      }),
    });
  });
  return app;
}

/** What `/v1/cost` describes by default once models are served: the served family. */
export function servedCostDefaults(registry: ModelRegistry): CostDefaults | undefined {
  const v = registry.variants[0];
  if (!v) return undefined;
  const m = v.manifest;
  const plans = registry.variants.map((x) => ({
    alpha: x.manifest.alpha,
    stridePlan: x.stridePlan,
  }));
  const mixed = new Set(registry.variants.map((x) => x.manifest.stridePlan)).size > 1;
  return {
    arch: v.arch,
    stridePlan: v.stridePlan,
    baseResolution: m.baseResolution,
    inputChannels: m.inputChannels,
    classes: m.classes,
    source: `served models (manifest.json): ${m.arch}, ${m.baseResolution}x${m.baseResolution}, ` +
      `${m.inputChannels} channel(s), ${m.classes} classes, stride plan ` +
      (mixed
        ? registry.variants.map((x) => `${x.manifest.stridePlan} (alpha ${x.manifest.alpha})`)
          .join(", ")
        : m.stridePlan),
    ...(mixed ? { plans } : {}),
  };
}
