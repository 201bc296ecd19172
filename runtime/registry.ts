/**
 * The model registry: reads `manifest.json` and the ONNX files beside it, checks each file against
 * the manifest (sha256, size, input and output names and shapes), loads every variant into every
 * configured backend, warms each at every beta the manifest measures, and only then says ready.
 * Anything off fails fast with a message naming the model, the tensor and both shapes.
 *
 * Inference goes through ONE function, {@link ModelRegistry.infer}, whose request and result
 * match the scheduler's `submit()`; the route takes any {@link Inference}, so a scheduler slots in
 * between the route and the backends without touching either.
 *
 * Configuration (see {@link registryOptionsFromEnv}): `MODELS_DIR` (default `model/artifacts/`),
 * `BACKEND` (comma-separated; the first is the default; unset: `kernels-wasm,ort-wasm`),
 * `ORT_THREADS` (ort-wasm threads, default 1).
 *
 * @module
 */
import {
  type AccuracyByBeta,
  betaKey,
  BETAS,
  type ManifestModel,
  parseManifest,
  sha256Hex,
} from "../model/export/manifest.ts";
import { decodeModel, type ValueInfo } from "../model/export/onnx_writer.ts";
import { costReport } from "../model/cost.ts";
import {
  type Arch,
  ARCHS,
  buildSpec,
  resolutionFor,
  resolutionLimits,
  resolveStridePlan,
  STRIDE_PLANS,
  type StridePlan,
} from "../model/spec.ts";
import type { InferenceBackend, LoadedModel, NCHW } from "./backend.ts";
import { backendFactory, buildBackend, registeredBackends } from "./backend_factory.ts";
import { OrtBackend, type RunTiming } from "./ort.ts";

/** What {@link Inference.infer} runs: field names match the scheduler's `InferenceRequest`. */
export interface InferRequest {
  /** Manifest id of the variant. */
  model: string;
  backend: string;
  /** One image, normalized NCHW. */
  input: Float32Array;
  shape: NCHW;
  /** Absolute deadline on the `performance.now()` clock (honoured by a scheduler). */
  deadlineAt?: number;
  signal?: AbortSignal;
}

/** Field names match the scheduler's `InferenceResult`. */
export interface InferResult {
  logits: Float32Array;
  /** Time waiting before the model started on this request. */
  queueMs: number;
  /** Time the backend computed. */
  inferenceMs: number;
}

/** The one call from routes into inference. */
export interface Inference {
  infer(req: InferRequest): Promise<InferResult>;
}

export interface RegistryOptions {
  /** Directory holding `manifest.json` and the ONNX files. */
  dir?: string;
  /** Backends to load every variant into; the first is the default. Default `["ort-wasm"]`. */
  backends?: readonly string[];
  /** ort-wasm WASM threads. Default 1. */
  numThreads?: number;
  /** Warm-up runs per variant, backend and beta; 0 skips warming. Default 3. */
  warmupRuns?: number;
  /**
   * Load the models into backends in this process (default true). False when inference runs
   * elsewhere (a scheduler's workers take {@link ModelRegistry.loadedModels}): `load()` then only
   * verifies the files, and `infer()` refuses.
   */
  inProcess?: boolean;
}

export const DEFAULT_MODELS_DIR = decodeURIComponent(
  new URL("../model/artifacts/", import.meta.url).pathname,
);
export const DEFAULT_BACKEND = "ort-wasm";

/**
 * What the server loads when `BACKEND` is unset: the project's own int8 engine answers by default
 * (its logits equal onnxruntime's on every shipped model, tests/runtime/engine/), and
 * onnxruntime-web stays loaded and selectable (`?backend=ort-wasm`) as the reference. Library
 * callers that pass no backends get {@link DEFAULT_BACKEND}, which runs any ONNX graph.
 */
export const SERVER_BACKENDS: readonly string[] = ["kernels-wasm", "ort-wasm"];

/** Registry options from the environment: `MODELS_DIR`, `BACKEND`, `ORT_THREADS`. */
export function registryOptionsFromEnv(
  env: { get(key: string): string | undefined } = Deno.env,
): RegistryOptions {
  const opts: RegistryOptions = {};
  const dir = env.get("MODELS_DIR");
  if (dir) opts.dir = dir;
  const backend = env.get("BACKEND");
  opts.backends = backend
    ? backend.split(",").map((s) => s.trim()).filter(Boolean)
    : [...SERVER_BACKENDS];
  const threads = env.get("ORT_THREADS");
  if (threads) {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `Cannot read ORT_THREADS as it must be a positive integer: current value is ${threads}`,
      );
    }
    opts.numThreads = n;
  }
  return opts;
}

/** One served model variant (one manifest entry), with what the server derives from it. */
export interface Variant {
  readonly manifest: ManifestModel;
  readonly arch: Arch;
  readonly stridePlan: StridePlan;
  /** Input sides the stride plan supports, capped at the base resolution (beta <= 1). */
  readonly resolution: { min: number; max: number; base: number };
  /** Warm latency medians in ms, per backend, keyed by beta as in the manifest. */
  readonly latencyMs: Record<string, AccuracyByBeta>;
}

type Backend = Omit<InferenceBackend, "name"> & {
  readonly name: string;
  runTimed?: (input: Float32Array, shape: NCHW) => Promise<RunTiming>;
};

type State =
  | { kind: "new" }
  | { kind: "loading"; step: string }
  | { kind: "ready" }
  | { kind: "failed"; error: Error }
  | { kind: "closed" };

/** Backends built in this process; any other name goes through `backend_factory.ts`. */
const IN_PROCESS: Record<string, (o: { numThreads: number }) => Backend> = {
  "ort-wasm": (o) => new OrtBackend("ort-wasm", { numThreads: o.numThreads }),
  "ort-webgpu": () => new OrtBackend("ort-webgpu"),
};

function knownBackends(): string[] {
  return [...new Set([...Object.keys(IN_PROCESS), ...registeredBackends()])];
}

function shapeText(s: readonly (number | string)[] | undefined): string {
  return s ? `[${s.join(",")}]` : "(no shape)";
}

function sameShape(a: readonly (number | string)[] | undefined, b: readonly (number | string)[]) {
  return !!a && a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Loads and serves the shipped models.
 *
 * @example
 * const registry = await ModelRegistry.open(registryOptionsFromEnv());
 * const app = createApp({ models: registry, readiness: registry });
 * await registry.load(); // /readyz turns 200 here
 */
export class ModelRegistry implements Inference {
  readonly dir: string;
  readonly backendNames: readonly string[];
  readonly #numThreads: number;
  readonly #warmupRuns: number;
  readonly #inProcess: boolean;
  #variants: Variant[] = [];
  #loadedModels: LoadedModel[] = [];
  readonly #backends = new Map<string, Backend>();
  #state: State = { kind: "new" };

  private constructor(opts: RegistryOptions) {
    this.dir = (opts.dir ?? DEFAULT_MODELS_DIR).replace(/\/?$/, "/");
    const names = opts.backends ?? [DEFAULT_BACKEND];
    if (names.length === 0) {
      throw new RangeError("Cannot create the registry without a backend: BACKEND is empty");
    }
    const known = knownBackends();
    for (const n of names) {
      if (!known.includes(n)) {
        throw new RangeError(
          `Cannot use backend ${n} as no implementation is registered for it: BACKEND must list ` +
            `names from ${known.join(", ")}`,
        );
      }
    }
    this.backendNames = [...new Set(names)];
    this.#numThreads = opts.numThreads ?? 1;
    this.#warmupRuns = opts.warmupRuns ?? 3;
    this.#inProcess = opts.inProcess ?? true;
  }

  /**
   * Reads and validates the manifest (fast: no ONNX file is read). Throws when the manifest is
   * missing, malformed, lists no model, or names an architecture or stride plan the spec lacks.
   */
  static async open(opts: RegistryOptions = {}): Promise<ModelRegistry> {
    const r = new ModelRegistry(opts);
    const path = `${r.dir}manifest.json`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new RangeError(
        `Cannot open the model registry as ${path} cannot be read: ${
          e instanceof Error ? e.message : e
        }. Set MODELS_DIR to a directory with manifest.json, or run deno task export`,
      );
    }
    const manifest = parseManifest(JSON.parse(text));
    if (manifest.models.length === 0) {
      throw new RangeError(`Cannot serve from ${path} as it lists no models: run deno task export`);
    }
    r.#variants = manifest.models.map((m) => variantOf(m));
    return r;
  }

  /** Every variant of the manifest, in manifest order. */
  get variants(): readonly Variant[] {
    return this.#variants;
  }

  get defaultBackend(): string {
    return this.backendNames[0]!;
  }

  /** The shipped widths, ascending. */
  get alphas(): number[] {
    return [...new Set(this.#variants.map((v) => v.manifest.alpha))].sort((a, b) => a - b);
  }

  /**
   * The variant served when a request names no alpha: a trained one before an untrained stand-in,
   * then the highest measured int8 accuracy at beta 1 in the manifest (`deno task eval`), then the
   * widest.
   */
  get defaultVariant(): Variant {
    const rank = (v: Variant) => [
      v.manifest.trained ? 1 : 0,
      v.manifest.accuracy.int8[betaKey(1)] ?? -1,
      v.manifest.alpha,
    ];
    return this.#variants.reduce((best, v) => {
      const [a, b] = [rank(v), rank(best)];
      const i = a.findIndex((x, k) => x !== b[k]);
      return i >= 0 && a[i]! > b[i]! ? v : best;
    });
  }

  /** The variant for a width, or undefined when none is shipped. */
  variantForAlpha(alpha: number): Variant | undefined {
    return this.#variants.find((v) => Math.abs(v.manifest.alpha - alpha) < 1e-9);
  }

  /** The models as backends take them; valid after {@link load}. For a scheduler's workers. */
  get loadedModels(): readonly LoadedModel[] {
    return this.#loadedModels;
  }

  /**
   * Verifies every ONNX file against the manifest, loads each into every backend and warms it.
   * Rejects (and stays not ready, with the reason) on the first problem.
   */
  async load(): Promise<void> {
    if (this.#state.kind !== "new") {
      throw new TypeError(`Cannot load the registry twice: it is ${this.#state.kind}`);
    }
    try {
      this.#state = { kind: "loading", step: "verifying model files" };
      const loaded: LoadedModel[] = [];
      for (const v of this.#variants) loaded.push(await this.#verify(v.manifest));
      this.#loadedModels = loaded;
      for (const name of this.#inProcess ? this.backendNames : []) {
        for (const [i, model] of loaded.entries()) {
          this.#state = { kind: "loading", step: `loading ${model.id} into ${name}` };
          const backend = await this.#createBackend(name);
          await backend.load(model);
          this.#backends.set(`${model.id}|${name}`, backend);
          this.#state = { kind: "loading", step: `warming ${model.id} on ${name}` };
          await this.#warm(this.#variants[i]!, name, backend);
        }
      }
      this.#state = { kind: "ready" };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.#state = { kind: "failed", error };
      throw error;
    }
  }

  /** Readiness for `/readyz`: true once every variant is loaded and warmed. */
  ready(): boolean {
    return this.#state.kind === "ready";
  }

  reason(): string {
    const s = this.#state;
    switch (s.kind) {
      case "new":
        return "Models are not loaded yet. Retry in a few seconds.";
      case "loading":
        return `Models are loading (${s.step}). Retry in a few seconds.`;
      case "failed":
        return `Models failed to load: ${s.error.message}`;
      case "closed":
        return "The model registry is closed: the server is shutting down.";
      case "ready":
        return "";
    }
  }

  /** Runs one request on its variant and backend, in this process. */
  async infer(req: InferRequest): Promise<InferResult> {
    if (this.#state.kind !== "ready") {
      throw new RangeError(
        `Cannot run ${req.model} as the registry is not ready: ${this.reason()}`,
      );
    }
    const backend = this.#backends.get(`${req.model}|${req.backend}`);
    if (!this.#inProcess) {
      throw new TypeError(
        `Cannot run ${req.model} in this process as the registry was opened with inProcess: false: ` +
          "pass the scheduler as the route's inference",
      );
    }
    if (!backend) {
      throw new RangeError(
        `Cannot run ${req.model} on ${req.backend} as that pair is not loaded: models are ${
          this.#variants.map((v) => v.manifest.id).join(", ")
        }, backends ${this.backendNames.join(", ")}`,
      );
    }
    if (backend.runTimed) {
      const r = await backend.runTimed(req.input, req.shape);
      return { logits: r.output, queueMs: r.waitMs, inferenceMs: r.runMs };
    }
    const t0 = performance.now();
    const logits = await backend.run(req.input, req.shape);
    return { logits, queueMs: 0, inferenceMs: performance.now() - t0 };
  }

  /** Releases every backend; the registry answers not ready afterwards. */
  async close(): Promise<void> {
    this.#state = { kind: "closed" };
    const all = [...this.#backends.values()];
    this.#backends.clear();
    await Promise.all(all.map((b) => b.dispose()));
  }

  async #createBackend(name: string): Promise<Backend> {
    const local = IN_PROCESS[name];
    if (local) return local({ numThreads: this.#numThreads });
    return await buildBackend(backendFactory(name, { numThreads: this.#numThreads }));
  }

  async #verify(m: ManifestModel): Promise<LoadedModel> {
    const path = `${this.dir}${m.file}`;
    let onnx: Uint8Array;
    try {
      onnx = await Deno.readFile(path);
    } catch (e) {
      throw new RangeError(
        `Cannot load model ${m.id} as ${path} cannot be read: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
    if (onnx.length !== m.bytes) {
      throw new RangeError(
        `Cannot load model ${m.id} as ${m.file} has ${onnx.length} bytes: the manifest says ${m.bytes}`,
      );
    }
    const sha = await sha256Hex(onnx);
    if (sha !== m.sha256) {
      throw new RangeError(
        `Cannot load model ${m.id} as the sha256 of ${m.file} is ${sha}: the manifest says ${m.sha256}`,
      );
    }
    let graph;
    try {
      graph = decodeModel(onnx).graph;
    } catch (e) {
      throw new TypeError(
        `Cannot load model ${m.id} as ${m.file} is not a readable ONNX model: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
    checkTensor(m, "input", m.input, graph.inputs);
    checkTensor(m, "output", m.output, graph.outputs);
    // The manifest's own shapes must say what the rest of the manifest says.
    if (m.input.shape[1] !== m.inputChannels) {
      throw new TypeError(
        `Cannot load model ${m.id} as input ${m.input.name} has shape ${
          shapeText(m.input.shape)
        }: the manifest's inputChannels is ${m.inputChannels}`,
      );
    }
    if (m.output.shape[1] !== m.classes) {
      throw new TypeError(
        `Cannot load model ${m.id} as output ${m.output.name} has shape ${
          shapeText(m.output.shape)
        }: the manifest's classes is ${m.classes}`,
      );
    }
    return {
      id: m.id,
      onnx,
      inputName: m.input.name,
      outputName: m.output.name,
      inputChannels: m.inputChannels,
      classes: m.classes,
    };
  }

  async #warm(v: Variant, backendName: string, backend: Backend): Promise<void> {
    if (this.#warmupRuns <= 0) return;
    const m = v.manifest;
    const table: AccuracyByBeta = {};
    for (const beta of BETAS) {
      const res = resolutionFor(beta, m.baseResolution);
      if (res < v.resolution.min) continue;
      const shape: NCHW = [1, m.inputChannels, res, res];
      const input = new Float32Array(m.inputChannels * res * res);
      const times: number[] = [];
      for (let i = 0; i < this.#warmupRuns; i++) {
        const t0 = performance.now();
        const out = await backend.run(input, shape);
        times.push(performance.now() - t0);
        if (out.length !== m.classes || out.some((x) => !Number.isFinite(x))) {
          throw new RangeError(
            `Cannot serve model ${m.id} on ${backendName} as its warm-up run at ${res}x${res} gave ` +
              `${out.length} logits (${m.classes} expected) or non-finite values`,
          );
        }
      }
      times.sort((a, b) => a - b);
      // The first run at a new shape plans memory: the median of the rest is the warm latency.
      table[betaKey(beta)] = times[Math.floor(times.length / 2)]!;
    }
    v.latencyMs[backendName] = table;
  }
}

function variantOf(m: ManifestModel): Variant {
  if (!(ARCHS as readonly string[]).includes(m.arch)) {
    throw new RangeError(
      `Cannot serve model ${m.id} as arch ${m.arch} is unknown: arch must be one of ${
        ARCHS.join(", ")
      }`,
    );
  }
  const arch = m.arch as Arch;
  const stridePlan: StridePlan = (STRIDE_PLANS as readonly string[]).includes(m.stridePlan)
    ? m.stridePlan as StridePlan
    : m.stridePlan.split(",").map((s) => Number(s.trim()));
  const strides = resolveStridePlan(arch, stridePlan);
  const limits = resolutionLimits(strides);
  if (m.baseResolution < limits.min) {
    throw new RangeError(
      `Cannot serve model ${m.id} as its base resolution ${m.baseResolution} is below the ` +
        `${limits.min} pixels its stride plan needs`,
    );
  }
  if (m.inputChannels !== 1 && m.inputChannels !== 3) {
    throw new RangeError(
      `Cannot serve model ${m.id} as inputChannels must be 1 or 3: current value is ${m.inputChannels}`,
    );
  }
  // The spec must build what the manifest describes, so /v1/cost and answers can cite it.
  buildSpec({
    arch,
    alpha: m.alpha,
    resolution: m.baseResolution,
    inputChannels: m.inputChannels,
    classes: m.classes,
    stridePlan,
  });
  return {
    manifest: m,
    arch,
    stridePlan,
    resolution: { min: limits.min, max: m.baseResolution, base: m.baseResolution },
    latencyMs: {},
  };
}

function checkTensor(
  m: ManifestModel,
  kind: "input" | "output",
  want: { name: string; shape: (number | string)[] },
  graph: ValueInfo[],
): void {
  const found = graph.find((t) => t.name === want.name);
  if (!found) {
    throw new TypeError(
      `Cannot load model ${m.id} as ${m.file} has no ${kind} named ${want.name}: its ${kind}s are ${
        graph.map((t) => `${t.name} ${shapeText(t.shape)}`).join(", ") || "none"
      }`,
    );
  }
  if (!sameShape(found.shape, want.shape)) {
    throw new TypeError(
      `Cannot load model ${m.id} as ${kind} ${want.name} has shape ${
        shapeText(found.shape)
      } in ${m.file}: the manifest says ${shapeText(want.shape)}`,
    );
  }
}

/** MACs and parameters of exactly what ran: the variant's spec at `resolution`. Cached. */
export function variantCost(v: Variant, resolution: number): { macs: number; params: number } {
  const key = `${v.manifest.id}@${resolution}`;
  let c = COST_CACHE.get(key);
  if (!c) {
    const m = v.manifest;
    c = costReport(buildSpec({
      arch: v.arch,
      alpha: m.alpha,
      resolution,
      inputChannels: m.inputChannels,
      classes: m.classes,
      stridePlan: v.stridePlan,
    })).totals;
    COST_CACHE.set(key, c);
  }
  return c;
}
const COST_CACHE = new Map<string, { macs: number; params: number }>();
