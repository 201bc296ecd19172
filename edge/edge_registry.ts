/**
 * The model registry for platforms without a file system or worker threads (Cloudflare Workers):
 * the manifest and the ONNX files arrive as bytes bundled with the script, the project's own int8
 * engine (`kernels-wasm`) runs them from a precompiled `WebAssembly.Module` (Workers refuse to
 * compile wasm from bytes), in the request's isolate.
 *
 * It offers the same surface the routes use from `runtime/registry.ts`'s `ModelRegistry`
 * (variants, alphas, backends, readiness, `infer`) and follows the same rules, from the same
 * module (`runtime/variants.ts`): variants derived from the manifest, the default variant, each
 * file's size, sha256, graph input and output checked against the manifest, every variant warmed
 * at every beta it serves with its warm latency recorded, so `/v1/models` reports what this
 * isolate measured.
 *
 * @module
 */
import type { InferenceBackend, LoadedModel } from "../runtime/backend.ts";
import { KernelsWasmBackend } from "../runtime/engine/kernels_wasm_backend.ts";
import type { InferRequest, InferResult } from "../runtime/registry.ts";
import { type ManifestModel, parseManifest } from "../model/export/manifest.ts";
import {
  defaultVariantOf,
  type RegistryState,
  stateReason,
  type Variant,
  variantOf,
  verifyModel,
  warmVariant,
} from "../runtime/variants.ts";

export const EDGE_BACKEND = "kernels-wasm";

type Bytes = ArrayBuffer | Uint8Array;
/** One model file as a bundle hands it over: bytes, or a loader run when the models load. */
export type ModelBytes = Bytes | (() => Bytes | Promise<Bytes>);

export interface EdgeModelSource {
  /** `manifest.json`, parsed. */
  manifest: unknown;
  /**
   * The ONNX files by their manifest `file` name: the bytes, or a function that gives them when the
   * models load (on the first request), e.g. unpacking a compact copy (`edge/model_pack.ts`) or
   * reading a static asset. Either way the bytes are checked against the manifest.
   */
  files: Record<string, ModelBytes>;
  /** `kernels/wasm/kernels.wasm`, compiled by the platform (imported as a module). */
  kernels: WebAssembly.Module;
  /** Where the files came from, for messages (the manifest's directory in the bundle). */
  dir?: string;
  /** Serve only these widths (the bundle then carries only their files). Default: all. */
  alphas?: readonly number[];
  /** Warm-up runs per variant and beta; 0 skips warming. Default 3. */
  warmupRuns?: number;
}

export class EdgeRegistry {
  readonly dir: string;
  readonly backendNames: readonly string[] = [EDGE_BACKEND];
  readonly #source: EdgeModelSource;
  readonly #variants: Variant[];
  readonly #backends = new Map<string, InferenceBackend>();
  #loadedModels: LoadedModel[] = [];
  #state: RegistryState = { kind: "new" };
  #loading: Promise<void> | undefined;

  constructor(source: EdgeModelSource) {
    this.#source = source;
    this.dir = (source.dir ?? "model/artifacts/").replace(/\/?$/, "/");
    const manifest = parseManifest(source.manifest);
    const keep = source.alphas;
    const models = keep ? manifest.models.filter((m) => keep.includes(m.alpha)) : manifest.models;
    if (models.length === 0) {
      throw new RangeError(
        `Cannot serve from ${this.dir}manifest.json as it lists no models${
          keep ? ` with alpha in ${keep.join(", ")}` : ""
        }`,
      );
    }
    this.#variants = models.map(variantOf);
  }

  get variants(): readonly Variant[] {
    return this.#variants;
  }

  get defaultBackend(): string {
    return EDGE_BACKEND;
  }

  get alphas(): number[] {
    return [...new Set(this.#variants.map((v) => v.manifest.alpha))].sort((a, b) => a - b);
  }

  /** The variant served when a request names no alpha: the rule of `runtime/variants.ts`. */
  get defaultVariant(): Variant {
    return defaultVariantOf(this.#variants);
  }

  /** The models as the engine took them; valid after {@link load}. */
  get loadedModels(): readonly LoadedModel[] {
    return this.#loadedModels;
  }

  variantForAlpha(alpha: number): Variant | undefined {
    return this.#variants.find((v) => Math.abs(v.manifest.alpha - alpha) < 1e-9);
  }

  ready(): boolean {
    return this.#state.kind === "ready";
  }

  reason(): string {
    return stateReason(this.#state);
  }

  /** Verifies, loads and warms every variant, once; later calls wait for the first. */
  load(): Promise<void> {
    return this.#loading ??= this.#load();
  }

  async #load(): Promise<void> {
    try {
      for (const v of this.#variants) {
        const m = v.manifest;
        this.#state = { kind: "loading", step: `loading ${m.id} into ${EDGE_BACKEND}` };
        const model = await this.#verify(m);
        this.#loadedModels.push(model);
        const backend = new KernelsWasmBackend({ module: this.#source.kernels });
        await backend.load(model);
        this.#backends.set(m.id, backend);
        this.#state = { kind: "loading", step: `warming ${m.id} on ${EDGE_BACKEND}` };
        await warmVariant(
          v,
          EDGE_BACKEND,
          (input, shape) => backend.run(input, shape),
          this.#source.warmupRuns ?? 3,
        );
      }
      this.#state = { kind: "ready" };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.#state = { kind: "failed", error };
      throw error;
    }
  }

  /** Releases the engines; the registry answers not ready afterwards. */
  async close(): Promise<void> {
    this.#state = { kind: "closed" };
    const all = [...this.#backends.values()];
    this.#backends.clear();
    await Promise.all(all.map((b) => b.dispose()));
  }

  async infer(req: InferRequest): Promise<InferResult> {
    if (this.#state.kind !== "ready") {
      throw new RangeError(
        `Cannot run ${req.model} as the registry is not ready: ${this.reason()}`,
      );
    }
    const backend = req.backend === EDGE_BACKEND ? this.#backends.get(req.model) : undefined;
    if (!backend) {
      throw new RangeError(
        `Cannot run ${req.model} on ${req.backend} as that pair is not loaded: backends are ${EDGE_BACKEND}`,
      );
    }
    const t0 = performance.now();
    const logits = await backend.run(req.input, req.shape);
    return { logits, queueMs: 0, inferenceMs: performance.now() - t0 };
  }

  async #verify(m: ManifestModel): Promise<LoadedModel> {
    const file = this.#source.files[m.file];
    if (file === undefined) {
      throw new RangeError(
        `Cannot load model ${m.id} as ${m.file} is not in the bundle: bundled are ${
          Object.keys(this.#source.files).join(", ") || "none"
        }`,
      );
    }
    let raw: Bytes;
    try {
      raw = typeof file === "function" ? await file() : file;
    } catch (e) {
      throw new RangeError(
        `Cannot load model ${m.id} as ${m.file} cannot be read from the bundle: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
    return await verifyModel(m, raw instanceof Uint8Array ? raw : new Uint8Array(raw));
  }
}
