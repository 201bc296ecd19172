/**
 * Image preprocessing off the HTTP event loop. Small images (a 28x28 PNG takes well under a
 * millisecond) are preprocessed inline, where a worker round trip would cost more than the work;
 * images whose header says they exceed `inlineMaxPixels` go to a pool of module workers, so a
 * 12 MP photo being decoded never blocks the answers to other clients.
 */
import { isImageError } from "../kernels/image/errors.ts";
import { probeImageSize } from "../kernels/image/probe.ts";
import { DEFAULT_WORKER_NICE } from "./thread_priority.ts";
import {
  preprocessImage,
  type PreprocessOptions,
  type PreprocessResult,
} from "../kernels/image/preprocess.ts";

export interface PreprocessRequest {
  id: number;
  bytes: Uint8Array;
  options: PreprocessOptions;
}

/** The first message to a worker when the pool has a nice value for it (no answer). */
export interface PreprocessNice {
  nice: number;
}

export type PreprocessReply =
  | { id: number; ok: true; result: PreprocessResult }
  | { id: number; ok: false; name: string; message: string; status: number };

/** An image error raised inside a worker, carried back with its HTTP status. */
export class RemoteImageError extends Error {
  readonly status: number;
  constructor(name: string, message: string, status: number) {
    super(message);
    this.name = name;
    this.status = status;
  }
}

export type Preprocess = (
  bytes: Uint8Array,
  options: PreprocessOptions,
) => Promise<PreprocessResult>;

/** Images up to this many pixels are preprocessed inline (256x256: about a millisecond). */
export const DEFAULT_INLINE_MAX_PIXELS = 256 * 256;

// Captured at load: onnxruntime-web's Node build replaces globalThis.Worker once its WASM starts
// (see runtime/worker_pool.ts).
const WebWorker: typeof Worker = globalThis.Worker;

export interface PreprocessPoolOptions {
  /** Worker count; default 1 (inference workers hold the other core). */
  workers?: number;
  inlineMaxPixels?: number;
  /** Nice value of the worker threads (runtime/thread_priority.ts); default 10. */
  nice?: number;
}

export class PreprocessPool {
  readonly #workers: Worker[] = [];
  readonly #busy: number[] = [];
  readonly #pending = new Map<
    number,
    { resolve: (r: PreprocessResult) => void; reject: (e: Error) => void; worker: number }
  >();
  readonly #inlineMaxPixels: number;
  #nextId = 1;
  #closed = false;

  constructor(opts: PreprocessPoolOptions = {}) {
    const n = opts.workers ?? 1;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `Cannot start the preprocessing pool as workers must be >= 1: current value is ${n}`,
      );
    }
    this.#inlineMaxPixels = opts.inlineMaxPixels ?? DEFAULT_INLINE_MAX_PIXELS;
    const url = new URL("./preprocess_worker.ts", import.meta.url).href;
    for (let i = 0; i < n; i++) {
      const w = new WebWorker(url, { type: "module", name: `preprocess-${i}` });
      w.onmessage = (e: MessageEvent<PreprocessReply>) => this.#receive(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        this.#failWorker(i, `preprocessing worker ${i} failed: ${e.message}`);
      };
      const nice: PreprocessNice = { nice: opts.nice ?? DEFAULT_WORKER_NICE };
      w.postMessage(nice);
      this.#workers.push(w);
      this.#busy.push(0);
    }
  }

  /** Preprocesses inline or in a worker, by the pixel count the header declares. */
  readonly preprocess: Preprocess = (bytes, options) => {
    if (isSmallImage(bytes, this.#inlineMaxPixels) || this.#closed) {
      return preprocessImage(bytes, options);
    }
    return this.#inWorker(bytes, options);
  };

  #inWorker(bytes: Uint8Array, options: PreprocessOptions): Promise<PreprocessResult> {
    let w = 0;
    for (let i = 1; i < this.#busy.length; i++) if (this.#busy[i]! < this.#busy[w]!) w = i;
    const id = this.#nextId++;
    // The body buffer is moved, not copied; the route does not read it again.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes
      : bytes.slice();
    return new Promise<PreprocessResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: w });
      this.#busy[w]!++;
      const msg: PreprocessRequest = { id, bytes: own, options };
      this.#workers[w]!.postMessage(msg, [own.buffer as ArrayBuffer]);
    });
  }

  #receive(reply: PreprocessReply): void {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    this.#busy[p.worker]!--;
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new RemoteImageError(reply.name, reply.message, reply.status));
  }

  #failWorker(index: number, reason: string): void {
    for (const [id, p] of this.#pending) {
      if (p.worker !== index) continue;
      this.#pending.delete(id);
      p.reject(new Error(reason));
    }
    this.#busy[index] = 0;
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    for (const p of this.#pending.values()) {
      p.reject(new Error("the preprocessing pool was closed"));
    }
    this.#pending.clear();
  }
}

/**
 * True when the header declares at most `maxPixels` pixels (preprocessing takes about a
 * millisecond or less), or cannot be read: then preprocessing fails fast with the proper image
 * error wherever it runs.
 */
export function isSmallImage(bytes: Uint8Array, maxPixels = DEFAULT_INLINE_MAX_PIXELS): boolean {
  try {
    const { width, height } = probeImageSize(bytes);
    return width * height <= maxPixels;
  } catch {
    return true;
  }
}

/** True for image errors raised inline or in a worker: both carry an HTTP status. */
export function isPreprocessError(e: unknown): e is Error & { status: number } {
  return isImageError(e) || (e instanceof RemoteImageError && e.status < 500);
}
