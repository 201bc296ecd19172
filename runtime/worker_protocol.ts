/** Messages between the scheduler (main thread) and an inference worker (`runtime/worker.ts`). */
import type { ImageType } from "../kernels/image/errors.ts";
import type { PreprocessOptions } from "../kernels/image/preprocess.ts";
import type { LoadedModel, NCHW } from "./backend.ts";
import type { BackendFactorySpec } from "./backend_factory.ts";

/** An image the worker decodes and preprocesses into its slot of the batch. */
export interface ImageJob {
  bytes: Uint8Array;
  options: PreprocessOptions;
}

/** What preprocessing an {@link ImageJob} gave (the tensor went into the batch), or its error. */
export type ImageOutcome =
  | {
    ok: true;
    source: { type: ImageType; width: number; height: number };
    inverted: boolean;
    /** Milliseconds, as `preprocessImage` reports them. */
    timing: { decode: number; preprocess: number };
  }
  | { ok: false; name: string; message: string; status: number };

export type ToWorker =
  /** Build every backend for every model; answered by "ready" or "init-error". */
  | {
    type: "init";
    models: LoadedModel[];
    backends: BackendFactorySpec[];
    /** Nice value the worker gives its own thread (runtime/thread_priority.ts); none: unchanged. */
    nice?: number;
  }
  /**
   * Run one batch; `input` arrives transferred. Where `images[i]` is given, item i of `input` is
   * left for the worker to fill from that image. Answered by "result" or "run-error".
   */
  | {
    type: "run";
    id: number;
    model: string;
    backend: string;
    input: Float32Array;
    shape: NCHW;
    images?: (ImageJob | null)[];
  };

export type FromWorker =
  /** `nice`: the worker thread's nice value now, null where it could not be set. */
  | { type: "ready"; nice?: number | null }
  | { type: "init-error"; message: string }
  /** `logits` is `n * classes` values, transferred; `runMs` is the backend's run time alone. */
  | {
    type: "result";
    id: number;
    logits: Float32Array;
    runMs: number;
    /** Per item given as an image: its outcome (a failed item's logits mean nothing). */
    images?: (ImageOutcome | null)[];
  }
  | { type: "run-error"; id: number; message: string };
