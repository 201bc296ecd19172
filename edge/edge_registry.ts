/**
 * The model registry for platforms without a file system or worker threads (Cloudflare Workers):
 * the manifest and the ONNX files arrive as bytes bundled with the script, the project's own int8
 * engine (`kernels-wasm`) runs them from a precompiled `WebAssembly.Module` (Workers refuse to
 * compile wasm from bytes), in the request's isolate.
 *
 * It offers the same surface the routes use from `runtime/registry.ts`'s `ModelRegistry`
 * (variants, alphas, backends, readiness, `infer`) and checks the same things before serving:
 * each file's size and sha256 against the manifest and, through the engine, the graph's input,
 * output, channels and classes. It warms every variant at every beta it serves and records the
 * warm latency, as the Deno registry does, so `/v1/models` reports what this isolate measured.
 *
 * @module
 */
import type { InferenceBackend, LoadedModel, NCHW } from "../runtime/backend.ts";
import { KernelsWasmBackend } from "../runtime/engine/kernels_wasm_backend.ts";
import type { InferRequest, InferResult, Variant } from "../runtime/registry.ts";
import {
  type AccuracyByBeta,
  betaKey,
  BETAS,
  type ManifestModel,
  parseManifest,
  sha256Hex,
} from "../model/export/manifest.ts";
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

export const EDGE_BACKEND = "kernels-wasm";

export interface EdgeModelSource {
  /** `manifest.json`, parsed. */
  manifest: unknown;
  /** The ONNX files by their manifest `file` name. */
  files: Record<string, ArrayBuffer | Uint8Array>;
  /** `kernels/wasm/kernels.wasm`, compiled by the platform (imported as a module). */
  kernels: WebAssembly.Module;
  /** Where the files came from, for messages (the manifest's directory in the bundle). */
  dir?: string;
  /** Serve only these widths (the bundle then carries only their files). Default: all. */
  alphas?: readonly number[];
  /** Warm-up runs per variant and beta; 0 skips warming. Default 3. */
  warmupRuns?: number;
}

type State =
  | { kind: "new" }
  | { kind: "loading"; step: string }
  | { kind: "ready" }
  | { kind: "failed"; error: Error };

/** One served variant, derived from its manifest entry the way `runtime/registry.ts` does. */
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
  const limits = resolutionLimits(resolveStridePlan(arch, stridePlan));
  if (m.baseResolution < limits.min) {
    throw new RangeError(
      `Cannot serve model ${m.id} as its base resolution ${m.baseResolution} is below the ` +
        `${limits.min} pixels its stride plan needs`,
    );
  }
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

export class EdgeRegistry {
  readonly dir: string;
  readonly backendNames: readonly string[] = [EDGE_BACKEND];
  readonly #source: EdgeModelSource;
  readonly #variants: Variant[];
  readonly #backends = new Map<string, InferenceBackend>();
  #loadedModels: LoadedModel[] = [];
  #state: State = { kind: "new" };
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

  /**
   * The variant served when a request names no alpha, by the rule of `runtime/registry.ts` (a test
   * compares the two): a trained one before an untrained stand-in, then the highest measured int8
   * accuracy at beta 1 in the manifest, then the widest.
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
    const s = this.#state;
    switch (s.kind) {
      case "new":
        return "Models are not loaded yet. Retry in a few seconds.";
      case "loading":
        return `Models are loading (${s.step}). Retry in a few seconds.`;
      case "failed":
        return `Models failed to load: ${s.error.message}`;
      case "ready":
        return "";
    }
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
        await this.#warm(v, backend);
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
    this.#state = { kind: "failed", error: new Error("the registry is closed") };
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
    const raw = this.#source.files[m.file];
    if (raw === undefined) {
      throw new RangeError(
        `Cannot load model ${m.id} as ${m.file} is not in the bundle: bundled are ${
          Object.keys(this.#source.files).join(", ") || "none"
        }`,
      );
    }
    const onnx = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
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
    return {
      id: m.id,
      onnx,
      inputName: m.input.name,
      outputName: m.output.name,
      inputChannels: m.inputChannels,
      classes: m.classes,
    };
  }

  async #warm(v: Variant, backend: InferenceBackend): Promise<void> {
    const runs = this.#source.warmupRuns ?? 3;
    if (runs <= 0) return;
    const m = v.manifest;
    const table: AccuracyByBeta = {};
    for (const beta of BETAS) {
      const res = resolutionFor(beta, m.baseResolution);
      if (res < v.resolution.min) continue;
      const shape: NCHW = [1, m.inputChannels, res, res];
      const input = new Float32Array(m.inputChannels * res * res);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const out = await backend.run(input, shape);
        times.push(performance.now() - t0);
        if (out.length !== m.classes || out.some((x) => !Number.isFinite(x))) {
          throw new RangeError(
            `Cannot serve model ${m.id} on ${EDGE_BACKEND} as its warm-up run at ${res}x${res} gave ` +
              `${out.length} logits (${m.classes} expected) or non-finite values`,
          );
        }
      }
      times.sort((a, b) => a - b);
      table[betaKey(beta)] = times[Math.floor(times.length / 2)]!;
    }
    v.latencyMs[EDGE_BACKEND] = table;
  }
}
