/**
 * Data parallelism over Deno module Workers: each step splits the batch into one shard per worker,
 * every worker computes the gradients of its shard with the same weights, and the main thread
 * averages them (weighted by shard size) for one optimizer step. `workers: 0` runs in-process
 * (tests, debugging).
 */
import type { SpecOptions } from "../spec.ts";
import { buildSpec } from "../spec.ts";
import type { NamedTensors } from "../weights.ts";
import { type GradKernels, setupBackend } from "./backend.ts";
import { type BnSums, type DistillTargets, TfMobileNet } from "./mobilenet.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";

type Omit<T, K extends string> = T extends unknown ? Pick<T, Exclude<keyof T, K>> : never;
type Req = Omit<WorkerRequest, "id">;

class WorkerHandle {
  #w: Worker;
  #next = 0;
  #pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();

  constructor() {
    this.#w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    this.#w.onmessage = (e: MessageEvent<WorkerReply>) => {
      const p = this.#pending.get(e.data.id);
      if (!p) return;
      this.#pending.delete(e.data.id);
      if (e.data.type === "error") p.reject(new Error(`Training worker failed: ${e.data.message}`));
      else p.resolve(e.data);
    };
    this.#w.onerror = (e) => {
      e.preventDefault();
      for (const p of this.#pending.values()) {
        p.reject(new Error(`Training worker crashed: ${e.message}`));
      }
      this.#pending.clear();
    };
  }

  call(req: Req, transfer: Transferable[] = []): Promise<WorkerReply> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#w.postMessage({ ...req, id }, transfer);
    });
  }

  terminate(): void {
    this.#w.terminate();
  }
}

export interface GradResult {
  loss: number;
  correct: number;
  grads: Float32Array;
}

/** Splits n items into `parts` contiguous shards as evenly as possible. */
export function shards(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const len = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    if (len > 0) out.push([start, start + len]);
    start += len;
  }
  return out;
}

export class TrainPool {
  readonly workers: number;
  #handles: WorkerHandle[] = [];
  #local?: TfMobileNet;
  /** The spec's input side (the default resolution of every call). */
  readonly resolution: number;
  readonly channels: number;

  private constructor(workers: number, resolution: number, channels: number) {
    this.workers = workers;
    this.resolution = resolution;
    this.channels = channels;
  }

  #px(resolution: number): number {
    if (!Number.isInteger(resolution) || resolution < 1) {
      throw new RangeError(
        `Cannot run a batch as the resolution must be a positive integer: current value is ${resolution}`,
      );
    }
    return resolution * resolution * this.channels;
  }

  static async create(
    spec: SpecOptions,
    workers: number,
    kernels: GradKernels,
    weightQmax?: number,
  ): Promise<TrainPool> {
    const s = buildSpec(spec);
    const pool = new TrainPool(workers, s.resolution, s.inputChannels);
    if (workers === 0) {
      await setupBackend(kernels);
      pool.#local = new TfMobileNet(s, { fusedBn: kernels === "own", weightQmax });
    } else {
      for (let i = 0; i < workers; i++) pool.#handles.push(new WorkerHandle());
      await Promise.all(
        pool.#handles.map((h) => h.call({ type: "init", spec, kernels, weightQmax })),
      );
    }
    return pool;
  }

  /**
   * Mean loss and averaged gradients of a batch of n images of side `resolution` (default the
   * spec's: the same weights run at any input size). With `frozenStats`, BN runs in inference
   * mode with those moving statistics (frozen-BN training).
   */
  async gradients(
    flat: Float32Array,
    x: Float32Array,
    labels: Int32Array,
    n: number,
    resolution: number = this.resolution,
    frozenStats?: NamedTensors,
    distill?: DistillTargets,
  ): Promise<GradResult> {
    const px = this.#px(resolution);
    if (this.#local) {
      this.#local.setTrainableFlat(flat);
      if (frozenStats) this.#local.setStats(frozenStats);
      return this.#local.gradients(x, labels, n, resolution, frozenStats !== undefined, distill);
    }
    const classes = distill ? distill.soft.length / n : 0;
    if (!Number.isInteger(classes)) {
      throw new RangeError(
        `Cannot split soft targets as they must hold a whole number of rows for ${n} images: got ${
          distill!.soft.length
        } values`,
      );
    }
    const st: [string, number[], Float32Array][] | undefined = frozenStats
      ? [...frozenStats].map(([k, t]) => [k, t.shape, t.data])
      : undefined;
    const parts = shards(n, this.#handles.length);
    const replies = await Promise.all(parts.map(([a, b], i) => {
      // The shard copies move to the worker (transfer); the weights, shared by every worker, are
      // cloned; the gradients come back by transfer.
      const xs = x.slice(a * px, b * px);
      const ls = labels.slice(a, b);
      const soft = distill?.soft.slice(a * classes, b * classes);
      return this.#handles[i]!.call({
        type: "grad",
        flat,
        x: xs,
        labels: ls,
        n: b - a,
        resolution,
        ...(st ? { stats: st } : {}),
        ...(distill ? { distill: { ...distill, soft: soft! } } : {}),
      }, soft ? [xs.buffer, ls.buffer, soft.buffer] : [xs.buffer, ls.buffer]);
    }));
    let loss = 0;
    let correct = 0;
    let grads: Float32Array | undefined;
    replies.forEach((r, i) => {
      if (r.type !== "grad") {
        throw new TypeError(`Cannot average gradients: worker answered ${r.type}`);
      }
      const [a, b] = parts[i]!;
      const wgt = (b - a) / n;
      loss += wgt * r.loss;
      correct += r.correct;
      if (!grads) {
        grads = r.grads;
        for (let k = 0; k < grads.length; k++) grads[k]! *= wgt;
      } else {
        const g = r.grads;
        for (let k = 0; k < grads.length; k++) grads[k]! += wgt * g[k]!;
      }
    });
    return { loss, correct, grads: grads! };
  }

  /** BN batch statistics of a batch (each shard counts as one batch). */
  async collectBn(
    flat: Float32Array,
    x: Float32Array,
    n: number,
    sums: BnSums,
    resolution: number = this.resolution,
  ): Promise<void> {
    const px = this.#px(resolution);
    if (this.#local) {
      this.#local.setTrainableFlat(flat);
      this.#local.collectBn(x, n, sums, resolution);
      return;
    }
    const parts = shards(n, this.#handles.length);
    const replies = await Promise.all(
      parts.map(([a, b], i) =>
        this.#handles[i]!.call({
          type: "collect",
          flat,
          x: x.slice(a * px, b * px),
          n: b - a,
          resolution,
        })
      ),
    );
    for (const r of replies) {
      if (r.type !== "collect") {
        throw new TypeError(`Cannot collect BN statistics: worker answered ${r.type}`);
      }
      sums.batches += r.batches;
      for (const [name, m, sq] of r.sums) {
        const s = sums.sums.get(name);
        if (!s) sums.sums.set(name, [m, sq]);
        else {
          for (let i = 0; i < m.length; i++) {
            s[0][i]! += m[i]!;
            s[1][i]! += sq[i]!;
          }
        }
      }
    }
  }

  /** Predicted classes with the given trainable weights and BN statistics. */
  async predict(
    flat: Float32Array,
    stats: NamedTensors,
    x: Float32Array,
    n: number,
    resolution: number = this.resolution,
  ): Promise<Int32Array> {
    const px = this.#px(resolution);
    if (this.#local) {
      this.#local.setTrainableFlat(flat);
      this.#local.setStats(stats);
      return this.#local.predict(x, n, resolution);
    }
    const st: [string, number[], Float32Array][] = [...stats].map(([k, t]) => [k, t.shape, t.data]);
    const parts = shards(n, this.#handles.length);
    const replies = await Promise.all(
      parts.map(([a, b], i) =>
        this.#handles[i]!.call({
          type: "predict",
          flat,
          stats: st,
          x: x.slice(a * px, b * px),
          n: b - a,
          resolution,
        })
      ),
    );
    const out = new Int32Array(n);
    replies.forEach((r, i) => {
      if (r.type !== "predict") throw new TypeError(`Cannot predict: worker answered ${r.type}`);
      out.set(r.pred, parts[i]![0]);
    });
    return out;
  }

  close(): void {
    for (const h of this.#handles) h.terminate();
    this.#handles = [];
    this.#local?.dispose();
  }
}
