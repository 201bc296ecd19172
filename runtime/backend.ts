/**
 * The backend contract: every way of running a model (onnxruntime-web WASM or WebGPU, the
 * project's own WASM SIMD or WGSL kernels) implements it, and every backend answers the same
 * conformance suite.
 */

export const BACKENDS = ["kernels-wasm", "ort-wasm", "ort-webgpu", "kernels-webgpu"] as const;
export type BackendName = typeof BACKENDS[number];

/** What a backend needs to load one model variant. */
export interface LoadedModel {
  /** Manifest id of the variant. */
  id: string;
  /** The ONNX file's bytes (int8 QDQ for shipped models). */
  onnx: Uint8Array;
  inputName: string;
  outputName: string;
  inputChannels: number;
  classes: number;
}

/** Batch, channels, height, width. */
export type NCHW = [n: number, c: number, h: number, w: number];

export interface InferenceBackend {
  readonly name: BackendName;
  load(model: LoadedModel): Promise<void>;
  /** Runs a batch in NCHW float32 (normalized) and returns logits, `n * classes` values. */
  run(input: Float32Array, shape: NCHW): Promise<Float32Array>;
  dispose(): Promise<void>;
}
