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
import { type Context, Hono } from "hono";
import { preprocessImage, type PreprocessOptions } from "../kernels/image/preprocess.ts";
import { isPreprocessError, isSmallImage, type Preprocess } from "../runtime/preprocess_pool.ts";
import type { Inference, ModelRegistry } from "../runtime/registry.ts";
import { type Variant, variantCost } from "../runtime/variants.ts";
import type { Admission, ImageInference } from "../runtime/scheduler_setup.ts";
import type { NCHW } from "../runtime/backend.ts";
import { sizedBodyLimit } from "./body_limit.ts";
import { labelRequest, noteProblem, requestArrival } from "./metrics.ts";
import { badParameter, ProblemError, problemResponse } from "./problem.ts";
import {
  CLASSIFY_PARAMS,
  classifyQuerySchema,
  problemFromIssues,
  resolveClassifyQuery,
} from "./schemas.ts";
import {
  type AutoChooser,
  deadlineFrom,
  discardSmallBody,
  refusalProblem,
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
  inference?: Inference & Partial<Admission> & Partial<ImageInference>;
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

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

/** Softmax over the logits, then the `k` highest, best first (ties keep the lower index). */
export function topK(logits: Float32Array, labels: readonly string[], k: number): Prediction[] {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const n = logits.length;
  const exp = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += exp[i] = Math.exp(logits[i]! - max);
  // Insertion into the k best so far (k and n are small): no object per class, no full sort.
  const best: number[] = [];
  const before = (i: number, j: number) => exp[i]! > exp[j]! || (exp[i] === exp[j] && i < j);
  for (let i = 0; i < n; i++) {
    if (best.length === k && !before(i, best[k - 1]!)) continue;
    let at = best.length < k ? best.length : k - 1;
    while (at > 0 && before(i, best[at - 1]!)) {
      if (at < k) best[at] = best[at - 1]!;
      at--;
    }
    best[at] = i;
  }
  return best.map((index) => ({
    label: labels[index] ?? String(index),
    index,
    score: exp[index]! / sum,
  }));
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
    // The query is checked before the body is read: a bad request costs no upload.
    async function classifyParams(c, next) {
      const arrival = requestArrival(c);
      c.set("arrival", arrival);
      const params = classifyParamsOf(c, arrival, registry, opts.auto);
      c.set("params", params);
      const { variant, resolution, backend } = params;
      labelRequest(c, `${variant.manifest.id}@${resolution}x${resolution}`, backend);
      if (!registry.ready()) {
        throw new ProblemError(503, registry.reason(), {}, { "retry-after": "1" });
      }
      // Overload and deadline refusals before the upload is read or decoded: they stay cheap.
      // `tryAdmit` refuses without an exception and the answer is built here, so that under
      // overload a refusal costs the event loop as little as possible.
      const req = {
        model: variant.manifest.id,
        backend,
        shape: [1, variant.manifest.inputChannels, resolution, resolution] as NCHW,
        ...(params.deadlineAt === undefined ? {} : { deadlineAt: params.deadlineAt }),
      };
      let release: (() => void) | undefined = ADMITTED.get(c.req.raw);
      const admission = opts.inference?.tryAdmit;
      if (release) {
        // Already admitted in front of the app (routes/admission.ts).
        ADMITTED.delete(c.req.raw);
      } else if (admission) {
        const r = admission(req);
        if (typeof r !== "function") {
          await discardSmallBody(c.req.raw);
          const { problem, headers } = refusalProblem(r);
          noteProblem(c, problem.detail);
          // The request id goes in now: adding it to the built answer later costs more.
          const id = c.get("requestId");
          return problemResponse(c, problem, id ? { ...headers, "x-request-id": id } : headers);
        }
        release = r;
      } else {
        try {
          release = opts.inference?.admit?.(req);
        } catch (e) {
          await discardSmallBody(c.req.raw);
          throw schedulerProblem(e) ?? e;
        }
      }
      // The scheduler counts an admitted request as on its way until it reaches the queue.
      c.set("admission", release);
      try {
        await next();
      } finally {
        release?.();
      }
    },
    sizedBodyLimit({
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
      const options: PreprocessOptions = {
        resolution,
        channels: m.inputChannels as 1 | 3,
        mean: m.preprocessing.mean,
        std: m.preprocessing.std,
        invert,
        ...(opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels }),
      };
      // What the answer reports of the image and its preprocessing.
      let pre: {
        source: { type: string; width: number; height: number };
        inverted: boolean;
        timing: { decode: number; preprocess: number };
      };
      let result;
      // No `signal: c.req.raw.signal` below: with Deno.serve's (legacy) behaviour, a request
      // whose signal was read has it aborted after every successful answer, which builds a
      // DOMException per request (~15 us of the event loop). A request's deadline, not its
      // connection, bounds how long it may wait in the queue.
      const admission = c.get("admission");
      const when = {
        ...(deadlineAt === undefined ? {} : { deadlineAt }),
        ...(admission ? { admission } : {}),
      };
      const imageInference = opts.inference?.inferImage;
      if (imageInference && isSmallImage(bytes)) {
        // Small images are decoded by the inference workers, in the batch they run in: the event
        // loop only reads the body (one serial thread; the workers are one per core).
        try {
          result = await imageInference({
            model: m.id,
            backend,
            image: { bytes, options },
            shape: [1, m.inputChannels, resolution, resolution],
            ...when,
          });
        } catch (e) {
          throw imageProblem(e) ?? schedulerProblem(e) ?? e;
        }
        pre = result.image!;
      } else {
        let tensor;
        try {
          tensor = await preprocess(bytes, options);
        } catch (e) {
          throw imageProblem(e) ?? e;
        }
        pre = tensor;
        try {
          result = await inference.infer({
            model: m.id,
            backend,
            input: tensor.tensor,
            shape: tensor.shape,
            ...when,
          });
        } catch (e) {
          throw schedulerProblem(e) ?? e;
        }
      }

      const predictions = topK(result.logits, m.labels, topk);
      const timings = {
        decode: round3(pre.timing.decode),
        preprocess: round3(pre.timing.preprocess),
        queue: round3(result.queueMs),
        inference: round3(result.inferenceMs),
        total: round3(performance.now() - c.get("arrival")),
      };
      // Server-Timing (W3C), set before the answer is built: headers added to a built Response
      // cost more (hono/timing appends them afterwards, to error answers too).
      c.header(
        "Server-Timing",
        `decode;dur=${timings.decode.toFixed(1)},preprocess;dur=${
          timings.preprocess.toFixed(1)
        },queue;dur=${timings.queue.toFixed(1)},inference;dur=${
          timings.inference.toFixed(1)
        },total;dur=${timings.total.toFixed(1)}`,
      );
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

/** The answer to an image that cannot be preprocessed (413, 415, 422), or undefined. */
function imageProblem(e: unknown): ProblemError | undefined {
  if (!isPreprocessError(e)) return undefined;
  return new ProblemError(e.status as 413 | 415 | 422, `${e.message}.`, { error: e.name });
}

type ClassifyEnv = {
  Variables: { params: ClassifyParams; arrival: number; admission: (() => void) | undefined };
};

interface ClassifyParams {
  variant: Variant;
  resolution: number;
  beta: number;
  topk: number;
  backend: string;
  invert: "auto" | boolean;
  deadlineAt: number | undefined;
}

/**
 * Validates the query with the schema `/openapi.json` documents (routes/schemas.ts); every refusal
 * is a 400 naming the parameter and its valid values.
 */
function parseParams(registry: ModelRegistry, q: Record<string, string>): ClassifyParams {
  const parsed = classifySchema(registry).safeParse(q);
  if (!parsed.success) throw problemFromIssues(parsed.error.issues, CLASSIFY_PARAMS);
  const r = resolveClassifyQuery(parsed.data, registry);
  if ("failure" in r) throw badParameter(r.failure.param, r.failure.detail, r.failure.valid);
  const { resolution, beta, topk, backend } = r.plan;
  const variant = registry.variants[r.plan.variant]!;
  let invert = r.plan.invert;
  // The auto rule turns a light background into the dark one Fashion-MNIST has; a model trained
  // on natural-polarity images never wants that.
  if (invert === "auto" && variant.manifest.preprocessing.polarity === "natural") invert = false;
  return { variant, resolution, beta, topk, backend, invert, deadlineAt: undefined };
}

/**
 * The request's parameters: the query validated (400s name the parameter), the deadline, and for
 * `alpha=auto` / `beta=auto` the variant the chooser picks. Valid queries are remembered per query
 * string (clients send the same few again and again, and validating one costs ~15 us of the event
 * loop); `auto` queries are not, since their variant depends on the live queue. The object
 * returned is the caller's own.
 */
function classifyParamsOf(
  c: Context<ClassifyEnv>,
  arrival: number,
  registry: ModelRegistry,
  auto: AutoChooser | undefined,
): ClassifyParams {
  const url = c.req.url;
  const qi = url.indexOf("?");
  const search = qi < 0 ? "" : url.slice(qi + 1);
  let cache = PARAMS.get(registry);
  if (!cache) PARAMS.set(registry, cache = new Map());
  const hit = cache.get(search);
  if (hit) {
    return {
      ...hit.params,
      deadlineAt: deadlineFrom(arrival, hit.deadlineMs, c.req.header("x-deadline-ms")),
    };
  }
  const q = c.req.query();
  const params = parseParams(registry, withoutAuto(q));
  params.deadlineAt = deadlineFrom(arrival, q.deadline_ms, c.req.header("x-deadline-ms"));
  if (q.alpha === "auto" || q.beta === "auto") {
    Object.assign(params, resolveAuto(auto, q, params));
    return params;
  }
  if (cache.size >= PARAMS_CACHE_SIZE) cache.clear();
  cache.set(search, { params: { ...params, deadlineAt: undefined }, deadlineMs: q.deadline_ms });
  return params;
}

/**
 * The parameters of a query string that an earlier request validated, without validating again
 * (undefined when it was never seen, or is an `auto` query): what the admission gate in front of
 * the app (routes/admission.ts) needs to refuse without the app. `search` is the URL after `?`.
 */
export function cachedClassifyParams(
  registry: ModelRegistry,
  search: string,
):
  | { variant: Variant; resolution: number; backend: string; deadlineMs: string | undefined }
  | undefined {
  const hit = PARAMS.get(registry)?.get(search);
  if (!hit) return undefined;
  const { variant, resolution, backend } = hit.params;
  return { variant, resolution, backend, deadlineMs: hit.deadlineMs };
}

/** Requests admitted in front of the app: the route takes the release instead of admitting. */
const ADMITTED = new WeakMap<Request, () => void>();

/**
 * Hands a request admitted in front of the app (routes/admission.ts) to the classify route, which
 * then does not admit it again; the caller still releases it once the answer is built.
 */
export function passAdmission(req: Request, release: () => void): void {
  ADMITTED.set(req, release);
}

const PARAMS_CACHE_SIZE = 256;
const PARAMS = new WeakMap<
  ModelRegistry,
  Map<string, { params: ClassifyParams; deadlineMs: string | undefined }>
>();

/** One schema per registry: building it costs ~1 ms, parsing with it ~10 us. */
const SCHEMAS = new WeakMap<ModelRegistry, ReturnType<typeof classifyQuerySchema>>();
function classifySchema(registry: ModelRegistry) {
  let s = SCHEMAS.get(registry);
  if (!s) SCHEMAS.set(registry, s = classifyQuerySchema(registry));
  return s;
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
