/**
 * An inference worker: a Deno module Worker that holds the backends of every model variant and
 * runs one batch at a time, so that a batch never stalls the HTTP event loop. Started by
 * `runtime/worker_pool.ts`; the backends are built here from their factory specs and the model
 * bytes, because a backend object cannot cross isolates.
 */
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { isImageError } from "../kernels/image/errors.ts";
import { preprocessImage } from "../kernels/image/preprocess.ts";
import { buildBackend, type WorkerBackend } from "./backend_factory.ts";
import { setThisThreadNice } from "./set_thread_nice.ts";
import type { FromWorker, ImageOutcome, ToWorker } from "./worker_protocol.ts";

const backends = new Map<string, WorkerBackend>();
const keyOf = (model: string, backend: string) => `${model}\u0000${backend}`;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

async function init(msg: Extract<ToWorker, { type: "init" }>): Promise<void> {
  const nice = msg.nice === undefined ? null : setThisThreadNice(msg.nice) ?? null;
  try {
    for (const spec of msg.backends) {
      for (const model of msg.models) {
        const backend = await buildBackend(spec);
        await backend.load(model);
        backends.set(keyOf(model.id, spec.backend), backend);
      }
    }
    post({ type: "ready", nice });
  } catch (err) {
    post({ type: "init-error", message: message(err) });
  }
}

async function run(msg: Extract<ToWorker, { type: "run" }>): Promise<void> {
  const backend = backends.get(keyOf(msg.model, msg.backend));
  if (!backend) {
    post({
      type: "run-error",
      id: msg.id,
      message:
        `Cannot run model "${msg.model}" on backend "${msg.backend}" as this worker does not hold it`,
    });
    return;
  }
  try {
    const images = msg.images && (await preprocessInto(msg));
    const t0 = performance.now();
    const out = await backend.run(msg.input, msg.shape);
    const runMs = performance.now() - t0;
    // A copy: the backend may hand out a view into its own (wasm) memory, which cannot be moved.
    const logits = out.slice();
    post({ type: "result", id: msg.id, logits, runMs, ...(images ? { images } : {}) }, [
      logits.buffer,
    ]);
  } catch (err) {
    post({ type: "run-error", id: msg.id, message: message(err) });
  }
}

/**
 * Decodes and preprocesses the batch's image items into their slots of `msg.input` (small images:
 * the main thread only reads the body, the workers, one per core, do the rest). An image that
 * fails leaves its slot at zero and reports its error; the others run.
 */
async function preprocessInto(
  msg: Extract<ToWorker, { type: "run" }>,
): Promise<(ImageOutcome | null)[]> {
  const [, c, h, w] = msg.shape;
  const size = c * h * w;
  const outcomes: (ImageOutcome | null)[] = [];
  for (let i = 0; i < msg.images!.length; i++) {
    const job = msg.images![i];
    if (!job) {
      outcomes.push(null);
      continue;
    }
    try {
      const pre = await preprocessImage(job.bytes, job.options);
      if (pre.tensor.length !== size) {
        throw new RangeError(
          `Cannot place a preprocessed image of ${pre.tensor.length} values in a batch of [${msg.shape}]`,
        );
      }
      msg.input.set(pre.tensor, i * size);
      outcomes.push({
        ok: true,
        source: { type: pre.source.type, width: pre.source.width, height: pre.source.height },
        inverted: pre.inverted,
        timing: pre.timing,
      });
    } catch (err) {
      outcomes.push({
        ok: false,
        name: err instanceof Error ? err.name : "Error",
        message: message(err),
        status: isImageError(err) ? err.status : 500,
      });
    }
  }
  return outcomes;
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "init") void init(msg);
  else if (msg.type === "run") void run(msg);
};
