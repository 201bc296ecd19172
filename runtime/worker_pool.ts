/**
 * The main-thread side of the inference workers: start one, hand it a batch, notice when it dies
 * or hangs. The scheduler owns the policy (what to run where, restarts); this module only speaks
 * the worker protocol.
 */
import type { LoadedModel, NCHW } from "./backend.ts";
import type { BackendFactorySpec } from "./backend_factory.ts";
import type { FromWorker, ImageJob, ImageOutcome, ToWorker } from "./worker_protocol.ts";

/** A worker failed while running a batch (uncaught error, hang, or termination). */
export class WorkerFailedError extends Error {
  override name = "WorkerFailedError";
}

export interface WorkerInit {
  models: LoadedModel[];
  backends: BackendFactorySpec[];
  /** Nice value for the worker's thread (runtime/thread_priority.ts); none: unchanged. */
  nice?: number;
}

export interface BatchResult {
  logits: Float32Array;
  /** Time the backend spent on the batch inside the worker. */
  runMs: number;
  /** Per item sent as an image: what preprocessing it gave. */
  images?: (ImageOutcome | null)[];
}

const WORKER_URL = new URL("./worker.ts", import.meta.url).href;

/**
 * Deno's web Worker, captured when this module loads: onnxruntime-web's Node build (emscripten)
 * overwrites `globalThis.Worker` with node:worker_threads' Worker when its WASM starts, and that
 * one cannot start a module worker from a URL.
 */
const WebWorker: typeof Worker = globalThis.Worker;

export type WorkerState = "starting" | "idle" | "busy" | "dead";

export class InferenceWorker {
  state: WorkerState = "starting";
  /** When the current batch was sent (performance.now()), for in-flight estimates. */
  busySince = 0;
  /** Key of the variant the current batch belongs to. */
  busyWith = "";
  readonly #worker: Worker;
  #nextId = 1;
  #pending: {
    id: number;
    resolve(r: BatchResult): void;
    reject(e: Error): void;
    timer: ReturnType<typeof setTimeout>;
  } | null = null;
  #onReady: { resolve(): void; reject(e: Error): void } | null = null;
  readonly #onDeath: (w: InferenceWorker, reason: string) => void;

  /**
   * Starts the worker; `ready` settles when every backend is built and loaded. `onDeath` is called
   * once if the worker dies after that (the scheduler replaces it).
   */
  constructor(
    readonly index: number,
    init: WorkerInit,
    onDeath: (w: InferenceWorker, reason: string) => void,
    workerUrl = WORKER_URL,
  ) {
    this.#onDeath = onDeath;
    this.#worker = new WebWorker(workerUrl, { type: "module", name: `inference-${index}` });
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => this.#receive(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      // Without preventDefault an uncaught error in a worker takes the whole server down.
      e.preventDefault();
      this.#die(`worker ${index} crashed: ${e.message}`);
    };
    this.#worker.onmessageerror = () =>
      this.#die(`worker ${index} sent a message that could not be read`);
    this.ready = new Promise<void>((resolve, reject) => (this.#onReady = { resolve, reject }));
    this.#post({
      type: "init",
      models: init.models,
      backends: init.backends,
      ...(init.nice === undefined ? {} : { nice: init.nice }),
    });
  }

  readonly ready: Promise<void>;
  /** The worker thread's nice value once ready (null: unchanged or not settable here). */
  nice: number | null = null;

  /**
   * Runs one batch. The input buffer is transferred (the caller must not reuse it). Rejects with
   * WorkerFailedError if the worker dies or does not answer within `timeoutMs`.
   */
  run(
    model: string,
    backend: string,
    input: Float32Array,
    shape: NCHW,
    timeoutMs: number,
    images?: (ImageJob | null)[],
  ): Promise<BatchResult> {
    if (this.state !== "idle") {
      throw new RangeError(
        `Cannot run a batch on worker ${this.index} as it is not idle: current state is ${this.state}`,
      );
    }
    this.state = "busy";
    this.busySince = performance.now();
    const id = this.#nextId++;
    return new Promise<BatchResult>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#die(`worker ${this.index} did not answer a batch within ${timeoutMs} ms`),
        timeoutMs,
      );
      this.#pending = { id, resolve, reject, timer };
      this.#post(
        { type: "run", id, model, backend, input, shape, ...(images ? { images } : {}) },
        [input.buffer as ArrayBuffer],
      );
    });
  }

  terminate(): void {
    if (this.state === "dead") return;
    this.state = "dead";
    this.#worker.terminate();
    this.#failPending("worker was terminated");
  }

  #post(msg: ToWorker, transfer: Transferable[] = []): void {
    this.#worker.postMessage(msg, transfer);
  }

  #receive(msg: FromWorker): void {
    switch (msg.type) {
      case "ready":
        this.nice = msg.nice ?? null;
        this.state = "idle";
        this.#onReady?.resolve();
        this.#onReady = null;
        return;
      case "init-error":
        this.#onReady?.reject(
          new TypeError(`Cannot start inference worker ${this.index}: ${msg.message}`),
        );
        this.#onReady = null;
        this.state = "dead";
        this.#worker.terminate();
        return;
      case "result":
      case "run-error": {
        const p = this.#pending;
        if (!p || p.id !== msg.id) return;
        clearTimeout(p.timer);
        this.#pending = null;
        this.state = "idle";
        if (msg.type === "result") {
          p.resolve({
            logits: msg.logits,
            runMs: msg.runMs,
            ...(msg.images ? { images: msg.images } : {}),
          });
        } else p.reject(new Error(msg.message));
        return;
      }
    }
  }

  #failPending(reason: string): void {
    const p = this.#pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.#pending = null;
    p.reject(new WorkerFailedError(reason));
  }

  #die(reason: string): void {
    if (this.state === "dead") return;
    const wasStarting = this.state === "starting";
    this.state = "dead";
    this.#worker.terminate();
    this.#failPending(reason);
    if (wasStarting) {
      this.#onReady?.reject(
        new TypeError(`Cannot start inference worker ${this.index}: ${reason}`),
      );
      this.#onReady = null;
      return;
    }
    this.#onDeath(this, reason);
  }
}
