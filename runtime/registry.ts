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
import { type ManifestModel, parseManifest } from "../model/export/manifest.ts";
import type { InferenceBackend, LoadedModel, NCHW } from "./backend.ts";
import { backendFactory, buildBackend, registeredBackends } from "./backend_factory.ts";
import { OrtBackend, type RunTiming } from "./ort.ts";
import {
  defaultVariantOf,
  type RegistryState,
  stateReason,
  type Variant,
  variantOf,
  verifyModel,
  warmVariant,
} from "./variants.ts";

// The rules shared with the edge registry live in ./variants.ts; re-exported for existing callers.
export { type Variant, variantCost } from "./variants.ts";

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
  /** The scheduler's release from the admission at the door (see `InferenceRequest`). */
  admission?: () => void;
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

type Backend = Omit<InferenceBackend, "name"> & {
  readonly name: string;
  runTimed?: (input: Float32Array, shape: NCHW) => Promise<RunTiming>;
};

/** Backends built in this process; any other name goes through `backend_factory.ts`. */
const IN_PROCESS: Record<string, (o: { numThreads: number }) => Backend> = {
  "ort-wasm": (o) => new OrtBackend("ort-wasm", { numThreads: o.numThreads }),
  "ort-webgpu": () => new OrtBackend("ort-webgpu"),
};

function knownBackends(): string[] {
  return [...new Set([...Object.keys(IN_PROCESS), ...registeredBackends()])];
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
  #state: RegistryState = { kind: "new" };

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
    return defaultVariantOf(this.#variants);
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
    return stateReason(this.#state);
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
    return await verifyModel(m, onnx);
  }

  async #warm(v: Variant, backendName: string, backend: Backend): Promise<void> {
    await warmVariant(
      v,
      backendName,
      (input, shape) => backend.run(input, shape),
      this.#warmupRuns,
    );
  }
}
