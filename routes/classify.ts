/**
 * `POST /v1/classify`: image bytes in, top-k labels out, with the model that ran, its cost and the
 * time each stage took (JSON `timing_ms` and the `Server-Timing` header, W3C Server Timing).
 *
 * Body: the raw image (any Content-Type: the type is sniffed from magic bytes), or
 * `multipart/form-data` with the file in field `image` (what `curl -F image=@shoe.jpg` sends).
 * Query: `alpha` (a shipped width), `beta` in (0, 1] or `resolution` (pixels), `topk`, `backend`,
 * `invert` (auto|true|false), `deadline_ms`. Inference goes through one call, `inference.infer()`,
 * so a scheduler can stand between this route and the backends.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { setMetric, timing } from "hono/timing";
import { preprocessImage } from "../kernels/image/preprocess.ts";
import { isPreprocessError, type Preprocess } from "../runtime/preprocess_pool.ts";
import { resolutionFor } from "../model/spec.ts";
import {
  type Inference,
  type ModelRegistry,
  type Variant,
  variantCost,
} from "../runtime/registry.ts";
import type { Admission } from "../runtime/scheduler_setup.ts";
import { labelRequest, requestArrival } from "./metrics.ts";
import { parseInteger, parseNumber } from "./params.ts";
import { badParameter, ProblemError } from "./problem.ts";
import {
  type AutoChooser,
  discardSmallBody,
  readDeadline,
  resolveAuto,
  schedulerProblem,
  withoutAuto,
} from "./scheduling.ts";

/** Default body limit: 10 MB, far above any sensible upload of a product photo. */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
export const DEFAULT_TOPK = 5;

export interface ClassifyOptions {
  /** The shipped variants (and, unless `inference` is given, the runner). */
  models: ModelRegistry;
  /**
   * Where inference runs; default `models` itself (in-process backends). With `admit` (the
   * scheduler's), overload and deadline refusals happen before the body is read.
   */
  inference?: Inference & Partial<Admission>;
  /** Largest accepted body in bytes (413 above); default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Pixel limit checked from the image header before decoding (413 above); default 40 MP. */
  maxPixels?: number;
  /** `alpha=auto` / `beta=auto`: picks the variant (runtime/scheduler_setup.ts `chooseAuto`). */
  auto?: AutoChooser;
  /**
   * Decode + resize + normalize; default inline `preprocessImage`. The server passes
   * `PreprocessPool.preprocess`, which moves large images off the event loop.
   */
  preprocess?: Preprocess;
}

const KNOWN = [
  "alpha",
  "beta",
  "resolution",
  "topk",
  "backend",
  "invert",
  "deadline_ms",
] as const;

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

/** Softmax over the logits, then the `k` highest, best first (ties keep the lower index). */
export function topK(logits: Float32Array, labels: readonly string[], k: number): Prediction[] {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const exp = Array.from(logits, (x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp
    .map((e, index) => ({ label: labels[index] ?? String(index), index, score: e / sum }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k);
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

export function classifyRoutes(opts: ClassifyOptions): Hono<ClassifyEnv> {
  const registry = opts.models;
  const inference = opts.inference ?? registry;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const preprocess = opts.preprocess ?? preprocessImage;
  const app = new Hono<ClassifyEnv>();

  app.post(
    "/",
    timing({ total: false }),
    // The query is checked before the body is read: a bad request costs no upload.
    async function classifyParams(c, next) {
      c.set("arrival", requestArrival(c));
      const q = c.req.query();
      const params = parseParams(registry, withoutAuto(q));
      params.deadlineAt = readDeadline(c);
      if (q.alpha === "auto" || q.beta === "auto") {
        Object.assign(params, resolveAuto(opts.auto, q, params));
      }
      c.set("params", params);
      const { variant, resolution, backend } = params;
      labelRequest(c, `${variant.manifest.id}@${resolution}x${resolution}`, backend);
      if (!registry.ready()) {
        throw new ProblemError(503, registry.reason(), {}, { "retry-after": "1" });
      }
      // Overload and deadline refusals before the upload is read or decoded: they stay cheap.
      let release: (() => void) | undefined;
      try {
        release = opts.inference?.admit?.({
          model: variant.manifest.id,
          backend,
          shape: [1, variant.manifest.inputChannels, resolution, resolution],
          ...(params.deadlineAt === undefined ? {} : { deadlineAt: params.deadlineAt }),
        });
      } catch (e) {
        await discardSmallBody(c.req.raw);
        throw schedulerProblem(e) ?? e;
      }
      try {
        await next();
      } finally {
        release?.();
      }
    },
    bodyLimit({
      maxSize: maxBody,
      onError: () => {
        throw new ProblemError(
          413,
          `The request body is larger than the limit of ${maxBody} bytes: send a smaller image ` +
            `(the model sees at most ${
              Math.max(...registry.variants.map((v) => v.resolution.base))
            } pixels a side, so a downscaled photo classifies the same).`,
          { maxBytes: maxBody },
        );
      },
    }),
    async (c) => {
      const { variant, resolution, beta, topk, backend, invert, deadlineAt } = c.get("params");
      const m = variant.manifest;
      const bytes = await readImageBody(c.req.raw);
      let pre;
      try {
        pre = await preprocess(bytes, {
          resolution,
          channels: m.inputChannels as 1 | 3,
          mean: m.preprocessing.mean,
          std: m.preprocessing.std,
          invert,
          ...(opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels }),
        });
      } catch (e) {
        if (isPreprocessError(e)) {
          throw new ProblemError(e.status as 413 | 415 | 422, `${e.message}.`, { error: e.name });
        }
        throw e;
      }

      let result;
      try {
        result = await inference.infer({
          model: m.id,
          backend,
          input: pre.tensor,
          shape: pre.shape,
          ...(deadlineAt === undefined ? {} : { deadlineAt }),
          signal: c.req.raw.signal,
        });
      } catch (e) {
        throw schedulerProblem(e) ?? e;
      }

      const predictions = topK(result.logits, m.labels, topk);
      const timings = {
        decode: round3(pre.timing.decode),
        preprocess: round3(pre.timing.preprocess),
        queue: round3(result.queueMs),
        inference: round3(result.inferenceMs),
        total: round3(performance.now() - c.get("arrival")),
      };
      for (const [name, ms] of Object.entries(timings)) setMetric(c, name, ms);
      return c.json({
        predictions,
        model: {
          id: m.id,
          arch: m.arch,
          alpha: m.alpha,
          beta,
          resolution,
          precision: m.precision,
          backend,
          trained: m.trained,
        },
        cost: variantCost(variant, resolution),
        image: {
          type: pre.source.type,
          width: pre.source.width,
          height: pre.source.height,
          inverted: pre.inverted,
        },
        timing_ms: timings,
      });
    },
  );
  return app;
}

type ClassifyEnv = { Variables: { params: ClassifyParams; arrival: number } };

interface ClassifyParams {
  variant: Variant;
  resolution: number;
  beta: number;
  topk: number;
  backend: string;
  invert: "auto" | boolean;
  deadlineAt: number | undefined;
}

/** Validates the query; every refusal is a 400 naming the parameter and its valid values. */
function parseParams(registry: ModelRegistry, q: Record<string, string>): ClassifyParams {
  for (const key of Object.keys(q)) {
    if (!(KNOWN as readonly string[]).includes(key)) {
      throw badParameter(key, `Unknown query parameter "${key}": use ${KNOWN.join(", ")}.`, KNOWN);
    }
  }
  const variant = pickVariant(registry, q.alpha);
  const m = variant.manifest;
  const { resolution, beta } = pickResolution(variant, q.beta, q.resolution);
  const topk = q.topk === undefined
    ? Math.min(DEFAULT_TOPK, m.classes)
    : parseInteger("topk", q.topk, 1, m.classes);
  const backend = q.backend ?? registry.defaultBackend;
  if (!registry.backendNames.includes(backend)) {
    throw badParameter(
      "backend",
      `backend must be one of ${registry.backendNames.join(", ")}: got "${backend}".`,
      registry.backendNames,
    );
  }
  let invert: "auto" | boolean = "auto";
  if (q.invert !== undefined) {
    if (!["auto", "true", "false"].includes(q.invert)) {
      throw badParameter(
        "invert",
        `invert must be one of auto, true, false: got "${q.invert}".`,
        ["auto", "true", "false"],
      );
    }
    invert = q.invert === "auto" ? "auto" : q.invert === "true";
  }
  // The auto rule turns a light background into the dark one Fashion-MNIST has; a model trained
  // on natural-polarity images never wants that.
  if (invert === "auto" && m.preprocessing.polarity === "natural") invert = false;
  return { variant, resolution, beta, topk, backend, invert, deadlineAt: undefined };
}

function pickVariant(registry: ModelRegistry, raw: string | undefined): Variant {
  const alphas = registry.alphas;
  const list = alphas.join(", ");
  if (raw === undefined) return registry.defaultVariant;
  const alpha = parseNumber("alpha", raw, `one of ${list}`);
  const v = registry.variantForAlpha(alpha);
  if (!v) {
    throw badParameter(
      "alpha",
      `alpha must be one of the shipped widths ${list}: got "${raw}".`,
      alphas,
    );
  }
  return v;
}

function pickResolution(
  v: Variant,
  rawBeta: string | undefined,
  rawRes: string | undefined,
): { resolution: number; beta: number } {
  const { min, max, base } = v.resolution;
  if (rawBeta !== undefined && rawRes !== undefined) {
    throw badParameter("beta", "Give beta or resolution, not both.");
  }
  if (rawRes !== undefined) {
    const resolution = parseInteger("resolution", rawRes, min, max);
    return { resolution, beta: resolution / base };
  }
  if (rawBeta === undefined) return { resolution: base, beta: 1 };
  const minBeta = Math.ceil((min - 0.5) / base * 1000) / 1000;
  const beta = parseNumber("beta", rawBeta, `a number in [${minBeta}, 1]`);
  if (!(beta > 0 && beta <= 1)) {
    throw badParameter("beta", `beta must be in (0, 1]: got "${rawBeta}".`, {
      min: minBeta,
      max: 1,
    });
  }
  const resolution = resolutionFor(beta, base);
  if (resolution < min) {
    throw badParameter(
      "beta",
      `beta=${beta} gives ${resolution}x${resolution} pixels, below the ${min} pixels ${v.manifest.id} ` +
        `needs: use beta in [${minBeta}, 1] (or resolution in [${min}, ${max}]).`,
      { min: minBeta, max: 1 },
    );
  }
  return { resolution, beta };
}

/** The image bytes of a raw or multipart body; 400 when there are none. */
async function readImageBody(req: Request): Promise<Uint8Array> {
  const type = req.headers.get("content-type") ?? "";
  let bytes: Uint8Array;
  if (/^multipart\/form-data\b/i.test(type)) {
    let form: FormData;
    try {
      form = await req.formData();
    } catch (e) {
      if ((e as { status?: number }).status === 413 || e instanceof ProblemError) throw e;
      throw new ProblemError(
        400,
        "The multipart/form-data body cannot be parsed: send the file as field image " +
          "(curl -F image=@photo.jpg), or send the image bytes as the raw body.",
      );
    }
    const field = form.get("image");
    if (!(field instanceof File)) {
      const names = [...new Set([...form.keys()])];
      throw new ProblemError(
        400,
        `The multipart/form-data body has no file in field image${
          names.length ? ` (fields: ${names.join(", ")})` : ""
        }: send it as curl -F image=@photo.jpg.`,
        { fields: names },
      );
    }
    bytes = new Uint8Array(await field.arrayBuffer());
  } else {
    bytes = new Uint8Array(await req.arrayBuffer());
  }
  if (bytes.length === 0) {
    throw new ProblemError(
      400,
      "The request body is empty: send the image bytes as the body (curl --data-binary @photo.jpg) " +
        "or as multipart/form-data field image (curl -F image=@photo.jpg).",
    );
  }
  return bytes;
}
