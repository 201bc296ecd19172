/**
 * The `kernels-webgpu` backend: the backend contract (runtime/backend.ts) on the int8 engine's
 * WGSL kernels (webgpu_engine.ts). One backend holds one model variant and, unless given one, its
 * own device, destroyed by `dispose()`. Concurrent `run` calls are serialized by the engine.
 *
 * @example
 * const b = new KernelsWebgpuBackend({ maxBatch: 8 });
 * await b.load({ id: "v1_a025", onnx, inputName: "input", outputName: "logits",
 *   inputChannels: 1, classes: 10 }); // rejects when the runtime has no WebGPU adapter
 * const logits = await b.run(tensor, [1, 1, 28, 28]);
 * await b.dispose();
 */
import type { InferenceBackend, LoadedModel, NCHW } from "../backend.ts";
import { type WebGpuEngineOptions, WebGpuInt8Engine } from "./webgpu_engine.ts";

export class KernelsWebgpuBackend implements InferenceBackend {
  readonly name = "kernels-webgpu" as const;
  readonly #opts: WebGpuEngineOptions;
  #engine: WebGpuInt8Engine | null = null;
  #model: LoadedModel | null = null;

  constructor(opts: WebGpuEngineOptions = {}) {
    this.#opts = opts;
  }

  /** Reads the QDQ graph, uploads the weights and checks the graph against the model's description. */
  async load(model: LoadedModel): Promise<void> {
    if (this.#engine) {
      throw new TypeError(
        `Cannot load ${model.id} into kernels-webgpu as this backend already holds ${this.#model?.id}: create one backend per model`,
      );
    }
    const engine = await WebGpuInt8Engine.load(model.onnx, this.#opts);
    const g = engine.graph;
    let problem = "";
    if (g.inputName !== model.inputName || g.outputName !== model.outputName) {
      problem =
        `the graph's input/output are ${g.inputName}/${g.outputName}: the manifest says ${model.inputName}/${model.outputName}`;
    } else if (g.inputChannels !== model.inputChannels || g.classes !== model.classes) {
      problem =
        `the graph takes ${g.inputChannels} channels and gives ${g.classes} classes: the manifest says ${model.inputChannels} and ${model.classes}`;
    }
    if (problem) {
      await engine.destroy();
      throw new TypeError(`Cannot load ${model.id} into kernels-webgpu as ${problem}`);
    }
    this.#engine = engine;
    this.#model = model;
  }

  run(input: Float32Array | Uint8Array, shape: NCHW): Promise<Float32Array> {
    if (!this.#engine) {
      return Promise.reject(
        new TypeError("Cannot run kernels-webgpu as no model is loaded: call load() first"),
      );
    }
    if (!(input instanceof Float32Array)) {
      return Promise.reject(
        new TypeError("Cannot run kernels-webgpu as the input must be float32 NCHW (normalized)"),
      );
    }
    return this.#engine.run(input, shape);
  }

  async dispose(): Promise<void> {
    const engine = this.#engine;
    this.#engine = null;
    this.#model = null;
    await engine?.destroy();
  }
}

/** Worker factory (see runtime/backend_factory.ts): options are `{ maxBatch?, maxSizes? }`. */
export function createKernelsWebgpu(options: unknown): KernelsWebgpuBackend {
  const o = (options ?? {}) as { maxBatch?: number; maxSizes?: number };
  return new KernelsWebgpuBackend({
    ...(o.maxBatch !== undefined ? { maxBatch: o.maxBatch } : {}),
    ...(o.maxSizes !== undefined ? { maxSizes: o.maxSizes } : {}),
  });
}
