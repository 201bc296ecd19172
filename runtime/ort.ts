/**
 * The one module that imports onnxruntime-web (STYLE 5, transformers.js `backends/onnx.js`):
 * backends `ort-wasm` and `ort-webgpu`. Routes and the registry talk to {@link OrtBackend} through
 * the {@link InferenceBackend} contract and never see an ORT type.
 *
 * - `ort-wasm` uses the package's Node build (`import "onnxruntime-web"` resolves there in Deno):
 *   it loads its .wasm from node_modules and runs `numThreads` worker threads. The thread count is
 *   a property of the one WASM instance, fixed when the first session is created.
 * - `ort-webgpu` uses the browser bundle `onnxruntime-web/webgpu`, imported only when asked for; it
 *   takes the model as bytes and must run with one WASM thread (it would load its worker from a
 *   `blob:` URL). On CPU-only machines `mesa-vulkan-drivers` gives a software adapter (llvmpipe).
 *
 * Concurrency: one session never runs two calls at once. ORT-web's WebGPU EP hangs when `run()`
 * overlaps on one session (measured here with ORT 1.30 on llvmpipe), and the WASM EP shares one
 * heap, so each backend serializes its own `run()` calls in a FIFO chain. Callers may call `run()`
 * concurrently; they wait in line, and {@link OrtBackend.runTimed} says how long.
 *
 * @module
 */
import * as ortWasm from "onnxruntime-web";
import type { InferenceBackend, LoadedModel, NCHW } from "./backend.ts";

export type OrtBackendName = "ort-wasm" | "ort-webgpu";
export const ORT_BACKENDS: readonly OrtBackendName[] = ["ort-wasm", "ort-webgpu"];

type Ort = typeof ortWasm;

/** Options of the `ort-wasm` backend. */
export interface OrtWasmOptions {
  /** WASM worker threads (1 = run on the calling thread). Fixed for the process once set. */
  numThreads?: number;
}

let wasmThreads: number | null = null;

/**
 * The Web Worker constructor as Deno provides it. ORT's Node build (Emscripten) replaces
 * `globalThis.Worker` with Node's `worker_threads` Worker when its WASM initializes; every later
 * `new Worker(url, { type: "module" })` in the process would then start a Node thread without
 * `self` (found when a scheduler started its inference workers after an in-process model load).
 * ORT keeps its own reference for its threads, so the global is put back after each session start.
 */
const WEB_WORKER = globalThis.Worker;

/**
 * Sets the thread count of the `ort-wasm` WASM instance. Calling it again with another count after
 * a session exists is refused, because ORT reads the count only when it initializes.
 */
export function configureOrtWasm(opts: OrtWasmOptions = {}): number {
  const want = opts.numThreads ?? wasmThreads ?? 1;
  if (!Number.isInteger(want) || want < 1 || want > 64) {
    throw new RangeError(
      `Cannot configure ort-wasm as numThreads must be an integer in [1, 64]: current value is ${want}`,
    );
  }
  if (wasmThreads !== null && wasmThreads !== want) {
    throw new RangeError(
      `Cannot set ort-wasm numThreads to ${want} as the WASM instance already runs with ${wasmThreads} ` +
        `threads: set it once, before the first model loads`,
    );
  }
  wasmThreads = want;
  ortWasm.env.wasm.numThreads = want;
  return want;
}

let webgpuModule: Promise<Ort> | null = null;

async function loadWebgpuOrt(): Promise<Ort> {
  const adapter = await webgpuAdapterInfo();
  if (adapter === null) {
    throw new RangeError(
      "Cannot load backend ort-webgpu as navigator.gpu gives no adapter: install a WebGPU driver " +
        "(mesa-vulkan-drivers gives a software one) or choose backend ort-wasm",
    );
  }
  webgpuModule ??= withoutOpaqueLocation(() => import("onnxruntime-web/webgpu")).then((m) => {
    const ort = m as unknown as Ort;
    // The browser bundle loads its worker from a blob: URL, which Deno refuses: one thread.
    ort.env.wasm.numThreads = 1;
    return ort;
  });
  return await webgpuModule;
}

/**
 * Runs `load` with `location` hidden when it has an opaque origin. ORT's browser bundle resolves its
 * own URL against `location.origin` when it initializes; in a Deno Worker started from a file: URL
 * that origin is the string "null", which `new URL` rejects ("Invalid URL ... with base 'null'").
 * In the main thread Deno has no `location`, which the bundle handles.
 */
async function withoutOpaqueLocation<T>(load: () => Promise<T>): Promise<T> {
  const desc = Object.getOwnPropertyDescriptor(globalThis, "location");
  const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
  if (!desc?.configurable || origin !== "null") return await load();
  Object.defineProperty(globalThis, "location", {
    value: undefined,
    configurable: true,
    writable: true,
  });
  try {
    return await load();
  } finally {
    Object.defineProperty(globalThis, "location", desc);
  }
}

/** The WebGPU adapter's description, or null where there is none (tests skip on null). */
export async function webgpuAdapterInfo(): Promise<string | null> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return null;
  try {
    const adapter = await gpu.requestAdapter() as
      | { info?: { description?: string; vendor?: string }; isFallbackAdapter?: boolean }
      | null;
    if (!adapter) return null;
    return adapter.info?.description || adapter.info?.vendor || "unnamed adapter";
  } catch {
    return null;
  }
}

/** What one `run()` spent waiting for the session and computing, in milliseconds. */
export interface RunTiming {
  output: Float32Array;
  waitMs: number;
  runMs: number;
}

/**
 * One ORT session for one model variant.
 *
 * @example
 * const b = new OrtBackend("ort-wasm", { numThreads: 1 });
 * await b.load({ id: "v1_a025", onnx, inputName: "input", outputName: "logits",
 *   inputChannels: 1, classes: 10 });
 * const logits = await b.run(tensor, [1, 1, 28, 28]);
 */
export class OrtBackend implements InferenceBackend {
  readonly name: OrtBackendName;
  readonly #opts: OrtWasmOptions;
  #ort: Ort | null = null;
  #session: ortWasm.InferenceSession | null = null;
  #model: LoadedModel | null = null;
  /** Tail of the FIFO chain: the next `run()` starts when this settles. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(name: OrtBackendName, opts: OrtWasmOptions = {}) {
    if (!ORT_BACKENDS.includes(name)) {
      throw new RangeError(
        `Cannot create an ORT backend named ${name}: name must be one of ${
          ORT_BACKENDS.join(", ")
        }`,
      );
    }
    this.name = name;
    this.#opts = opts;
  }

  async load(model: LoadedModel): Promise<void> {
    if (this.#session) {
      throw new TypeError(
        `Cannot load ${model.id} into ${this.name} as this backend already holds ${this.#model?.id}: create one backend per model`,
      );
    }
    let ort: Ort;
    if (this.name === "ort-wasm") {
      configureOrtWasm(this.#opts);
      ort = ortWasm;
    } else {
      ort = await loadWebgpuOrt();
    }
    let session: ortWasm.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model.onnx, {
        executionProviders: [this.name === "ort-wasm" ? "wasm" : "webgpu"],
        graphOptimizationLevel: "all",
      });
    } finally {
      if (WEB_WORKER && globalThis.Worker !== WEB_WORKER) globalThis.Worker = WEB_WORKER;
    }
    if (!session.inputNames.includes(model.inputName)) {
      await session.release();
      throw new TypeError(
        `Cannot load ${model.id} as its ONNX graph has no input ${model.inputName}: inputs are ${
          session.inputNames.join(", ")
        }`,
      );
    }
    if (!session.outputNames.includes(model.outputName)) {
      await session.release();
      throw new TypeError(
        `Cannot load ${model.id} as its ONNX graph has no output ${model.outputName}: outputs are ${
          session.outputNames.join(", ")
        }`,
      );
    }
    this.#ort = ort;
    this.#session = session;
    this.#model = model;
  }

  async run(input: Float32Array, shape: NCHW): Promise<Float32Array> {
    return (await this.runTimed(input, shape)).output;
  }

  /** Like `run()`, and says how long the call waited for the session and how long it ran. */
  runTimed(input: Float32Array, shape: NCHW): Promise<RunTiming> {
    const session = this.#session;
    const model = this.#model;
    const ort = this.#ort;
    if (!session || !model || !ort) {
      return Promise.reject(
        new TypeError(`Cannot run on ${this.name} as no model is loaded: call load() first`),
      );
    }
    const [n, c, h, w] = shape;
    if (c !== model.inputChannels) {
      return Promise.reject(
        new TypeError(
          `Cannot run ${model.id} as the input must have ${model.inputChannels} channels: current shape is [${shape}]`,
        ),
      );
    }
    if (input.length !== n * c * h * w) {
      return Promise.reject(
        new RangeError(
          `Cannot run ${model.id} as shape [${shape}] holds ${
            n * c * h * w
          } values: input has ${input.length}`,
        ),
      );
    }
    const queued = performance.now();
    const job = this.#tail.then(async (): Promise<RunTiming> => {
      const start = performance.now();
      const feeds = { [model.inputName]: new ort.Tensor("float32", input, [n, c, h, w]) };
      const results = await session.run(feeds);
      const out = results[model.outputName];
      if (!out) {
        throw new TypeError(`Cannot read output ${model.outputName} of ${model.id}: ORT gave none`);
      }
      // Copy out: the tensor may be backed by memory ORT reuses for the next call.
      const output = Float32Array.from(out.data as Float32Array);
      out.dispose();
      if (output.length !== n * model.classes) {
        throw new RangeError(
          `Cannot use the output of ${model.id} as ${n} images x ${model.classes} classes were expected: ORT gave ${output.length} values`,
        );
      }
      return { output, waitMs: start - queued, runMs: performance.now() - start };
    });
    // A failed call must not block the ones behind it.
    this.#tail = job.catch(() => {});
    return job;
  }

  async dispose(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    this.#model = null;
    this.#ort = null;
    if (session) {
      await this.#tail;
      await session.release();
    }
  }
}
