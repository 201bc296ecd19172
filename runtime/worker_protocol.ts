/** Messages between the scheduler (main thread) and an inference worker (`runtime/worker.ts`). */
import type { LoadedModel, NCHW } from "./backend.ts";
import type { BackendFactorySpec } from "./backend_factory.ts";

export type ToWorker =
  /** Build every backend for every model; answered by "ready" or "init-error". */
  | { type: "init"; models: LoadedModel[]; backends: BackendFactorySpec[] }
  /** Run one batch; `input` arrives transferred. Answered by "result" or "run-error". */
  | { type: "run"; id: number; model: string; backend: string; input: Float32Array; shape: NCHW };

export type FromWorker =
  | { type: "ready" }
  | { type: "init-error"; message: string }
  /** `logits` is `n * classes` values, transferred; `runMs` is the backend's run time alone. */
  | { type: "result"; id: number; logits: Float32Array; runMs: number }
  | { type: "run-error"; id: number; message: string };
