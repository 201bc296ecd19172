/**
 * A real but tiny backend for scheduler tests: deterministic logits computed from every input
 * value, a busy CPU loop that stands in for inference cost, and switches that make one batch fail,
 * crash its worker or hang. Built inside a worker through `createFunctionBackend`.
 */
import type { LoadedModel, NCHW } from "../../runtime/backend.ts";
import type { WorkerBackend } from "../../runtime/backend_factory.ts";

export interface FunctionBackendOptions {
  name?: string;
  /** Busy time per batch and per image, in ms: batching pays off as on a real backend. */
  batchMs?: number;
  itemMs?: number;
  /** An image whose first value equals one of these makes the batch throw / crash / hang. */
  failWhen?: number;
  crashWhen?: number;
  hangWhen?: number;
  /** The first `slowRuns` batches of this backend take `slowMs` more (a machine busy, then not). */
  slowRuns?: number;
  slowMs?: number;
}

/** The logits the backend gives for one image: the reference tests compare against. */
export function referenceLogits(model: LoadedModel | string, image: Float32Array, classes: number) {
  const id = typeof model === "string" ? model : model.id;
  let seed = 0;
  for (let i = 0; i < id.length; i++) seed = (seed * 31 + id.charCodeAt(i)) % 1009;
  const out = new Float32Array(classes);
  for (let k = 0; k < classes; k++) {
    let acc = seed * (k + 1);
    for (let j = 0; j < image.length; j++) acc += image[j]! * (((j * 31 + k * 17) % 13) - 6);
    out[k] = acc;
  }
  return out;
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* stands in for compute */ }
}

export function createFunctionBackend(options: FunctionBackendOptions = {}): WorkerBackend {
  let model: LoadedModel | undefined;
  let runs = 0;
  return {
    name: options.name ?? "function",
    load(m: LoadedModel) {
      model = m;
      return Promise.resolve();
    },
    run(input: Float32Array, shape: NCHW): Promise<Float32Array> {
      if (!model) throw new TypeError("Cannot run the function backend as no model is loaded");
      const [n, c, h, w] = shape;
      const size = c * h * w;
      if (input.length !== n * size) {
        throw new RangeError(`Cannot run as input has ${input.length} values for shape [${shape}]`);
      }
      const slow = runs++ < (options.slowRuns ?? 0) ? options.slowMs ?? 0 : 0;
      busy(slow + (options.batchMs ?? 0) + n * (options.itemMs ?? 0));
      const out = new Float32Array(n * model.classes);
      for (let i = 0; i < n; i++) {
        const image = input.subarray(i * size, (i + 1) * size);
        const first = image[0];
        if (first === options.failWhen) {
          return Promise.reject(new Error(`poisoned input in image ${i}`));
        }
        if (first === options.crashWhen) {
          setTimeout(() => {
            throw new Error("the function backend crashed on purpose");
          });
          return new Promise(() => {});
        }
        if (first === options.hangWhen) return new Promise(() => {});
        out.set(referenceLogits(model, image, model.classes), i * model.classes);
      }
      return Promise.resolve(out);
    },
    dispose() {
      return Promise.resolve();
    },
  };
}
