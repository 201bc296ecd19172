/**
 * The `kernels-wasm` backend: the backend contract (runtime/backend.ts) on the project's own int8
 * engine (WASM SIMD kernels). One backend holds one model variant; `run` is synchronous inside,
 * so concurrent calls on one backend cannot interleave.
 *
 * @example
 * const b = new KernelsWasmBackend({ maxBatch: 8 });
 * await b.load({ id: "v1_a025", onnx, inputName: "input", outputName: "logits",
 *   inputChannels: 1, classes: 10 });
 * const logits = await b.run(tensor, [1, 1, 28, 28]);
 */
import type { InferenceBackend, LoadedModel, NCHW } from "../backend.ts";
import { type EngineOptions, Int8Engine } from "./engine.ts";

export class KernelsWasmBackend implements InferenceBackend {
  readonly name = "kernels-wasm" as const;
  readonly #opts: EngineOptions;
  #engine: Int8Engine | null = null;
  #model: LoadedModel | null = null;

  constructor(opts: EngineOptions = {}) {
    this.#opts = opts;
  }

  /** Reads the QDQ graph, packs the weights and checks the graph against the model's description. */
  async load(model: LoadedModel): Promise<void> {
    if (this.#engine) {
      throw new TypeError(
        `Cannot load ${model.id} into kernels-wasm as this backend already holds ${this.#model?.id}: create one backend per model`,
      );
    }
    const engine = await Int8Engine.load(model.onnx, this.#opts);
    const g = engine.graph;
    if (g.inputName !== model.inputName || g.outputName !== model.outputName) {
      throw new TypeError(
        `Cannot load ${model.id} into kernels-wasm as the graph's input/output are ${g.inputName}/${g.outputName}: the manifest says ${model.inputName}/${model.outputName}`,
      );
    }
    if (g.inputChannels !== model.inputChannels || g.classes !== model.classes) {
      throw new TypeError(
        `Cannot load ${model.id} into kernels-wasm as the graph takes ${g.inputChannels} channels and gives ${g.classes} classes: the manifest says ${model.inputChannels} and ${model.classes}`,
      );
    }
    this.#engine = engine;
    this.#model = model;
  }

  run(input: Float32Array | Uint8Array, shape: NCHW): Promise<Float32Array> {
    if (!this.#engine) {
      return Promise.reject(
        new TypeError("Cannot run kernels-wasm as no model is loaded: call load() first"),
      );
    }
    if (!(input instanceof Float32Array)) {
      return Promise.reject(
        new TypeError("Cannot run kernels-wasm as the input must be float32 NCHW (normalized)"),
      );
    }
    try {
      return Promise.resolve(this.#engine.run(input, shape));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  dispose(): Promise<void> {
    // The engine's wasm memory is released with the instance once nothing refers to it.
    this.#engine = null;
    this.#model = null;
    return Promise.resolve();
  }
}

/** Worker factory (see runtime/backend_factory.ts): options are `EngineOptions` without `module`. */
export function createKernelsWasm(options: unknown): KernelsWasmBackend {
  const o = (options ?? {}) as { maxBatch?: number; maxResolutions?: number };
  return new KernelsWasmBackend({
    ...(o.maxBatch !== undefined ? { maxBatch: o.maxBatch } : {}),
    ...(o.maxResolutions !== undefined ? { maxResolutions: o.maxResolutions } : {}),
  });
}
