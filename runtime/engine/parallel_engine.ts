/**
 * Both cores for batches larger than one: an `Int8Engine` on the calling thread plus one in a
 * worker; a batch of n >= 2 is split, the worker's half posted first, the local half run while
 * the worker runs its own, and the logits joined in order. Batch 1 runs locally only (posting a
 * message costs more than half an image at these sizes).
 *
 * Use it where the engine runs on the main thread. Where the service already runs one inference
 * worker per core (runtime/scheduler.ts), use one single-threaded engine per worker instead.
 */
import { type EngineOptions, Int8Engine } from "./engine.ts";

/**
 * The web Worker of this runtime, captured when this module loads: onnxruntime-web's Node build
 * replaces `globalThis.Worker` with a worker_threads polyfill once it creates a session, and such
 * a worker has no `self`.
 */
const WebWorker: typeof Worker = globalThis.Worker;

interface Pending {
  resolve: (v: Float32Array) => void;
  reject: (e: Error) => void;
}

export class ParallelInt8Engine {
  readonly #local: Int8Engine;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;

  private constructor(local: Int8Engine, worker: Worker) {
    this.#local = local;
    this.#worker = worker;
    worker.onmessage = (e: MessageEvent) => {
      const m = e.data as { type: string; id?: number; logits?: Float32Array; message?: string };
      const p = m.id === undefined ? undefined : this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id!);
      if (m.type === "result") p.resolve(m.logits!);
      else p.reject(new RangeError(`Cannot run the batch half in the engine worker: ${m.message}`));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      for (const p of this.#pending.values()) {
        p.reject(new RangeError(`The engine worker failed: ${e.message}`));
      }
      this.#pending.clear();
    };
  }

  /** Loads the model in this thread and in one worker. */
  static async load(
    onnx: Uint8Array,
    opts: Omit<EngineOptions, "module"> = {},
  ): Promise<ParallelInt8Engine> {
    const local = await Int8Engine.load(onnx, opts);
    const worker = new WebWorker(new URL("./engine_worker.ts", import.meta.url), {
      type: "module",
    });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent) => {
          const m = e.data as { type: string; message?: string };
          if (m.type === "loaded") resolve();
          else reject(new TypeError(`Cannot load the model in the engine worker: ${m.message}`));
        };
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new TypeError(`Cannot start the engine worker: ${e.message}`));
        };
        worker.postMessage({ type: "load", onnx, maxBatch: local.maxBatch });
      });
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return new ParallelInt8Engine(local, worker);
  }

  get classes(): number {
    return this.#local.classes;
  }

  get inputChannels(): number {
    return this.#local.inputChannels;
  }

  /** Same contract as `Int8Engine.run`, with the batch split over two threads. */
  async run(
    input: Float32Array,
    shape: readonly [number, number, number, number],
  ): Promise<Float32Array> {
    if (this.#closed) throw new TypeError("Cannot run the parallel engine as it was closed");
    const [n, c, h, w] = shape;
    if (n < 2) return this.#local.run(input, shape);
    const per = c * h * w;
    if (input.length !== n * per) {
      throw new TypeError(
        `Cannot run the engine as the input must hold ${n * per} values for shape [${
          shape.join(",")
        }]: current length is ${input.length}`,
      );
    }
    const nw = Math.floor(n / 2);
    const nl = n - nw;
    const id = this.#nextId++;
    const remote = new Promise<Float32Array>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    const part = input.slice(nl * per);
    this.#worker.postMessage({ type: "run", id, input: part, shape: [nw, c, h, w] }, [
      part.buffer as ArrayBuffer,
    ]);
    const out = new Float32Array(n * this.classes);
    try {
      this.#local.run(
        input.subarray(0, nl * per),
        [nl, c, h, w],
        out.subarray(0, nl * this.classes),
      );
    } finally {
      out.set(await remote, nl * this.classes);
    }
    return out;
  }

  /** Stops the worker; pending runs are rejected. */
  close(): void {
    this.#closed = true;
    this.#worker.terminate();
    for (const p of this.#pending.values()) {
      p.reject(new TypeError("Cannot finish the run as the engine was closed"));
    }
    this.#pending.clear();
  }
}
