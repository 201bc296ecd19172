/**
 * A data-parallel training worker (Deno module Worker): holds one copy of the tfjs model on the
 * wasm backend and answers gradient, BN-statistics and prediction requests for its shard.
 */
/// <reference lib="deno.worker" />
import { buildSpec, type SpecOptions } from "../spec.ts";
import { type GradKernels, setupBackend } from "./backend.ts";
import { type BnSums, type DistillTargets, TfMobileNet } from "./mobilenet.ts";
import type { NamedTensors } from "../weights.ts";

export type WorkerRequest =
  | {
    type: "init";
    id: number;
    spec: SpecOptions;
    kernels: GradKernels;
    weightQmax?: number | undefined;
  }
  | {
    type: "grad";
    id: number;
    flat: Float32Array;
    x: Float32Array;
    labels: Int32Array;
    n: number;
    /** Side of the images in `x` (multi-resolution training; the spec's by default). */
    resolution: number;
    /** BN moving statistics to train with, frozen (absent: batch statistics). */
    stats?: [string, number[], Float32Array][];
    /** Knowledge distillation's soft targets for this shard (absent: labels only). */
    distill?: DistillTargets;
  }
  | {
    type: "collect";
    id: number;
    flat: Float32Array;
    x: Float32Array;
    n: number;
    resolution: number;
  }
  | {
    type: "predict";
    id: number;
    flat: Float32Array;
    stats: [string, number[], Float32Array][];
    x: Float32Array;
    n: number;
    resolution: number;
  };

export type WorkerReply =
  | { id: number; type: "ok" }
  | { id: number; type: "grad"; loss: number; correct: number; grads: Float32Array }
  | { id: number; type: "collect"; batches: number; sums: [string, Float32Array, Float32Array][] }
  | { id: number; type: "predict"; pred: Int32Array }
  | { id: number; type: "error"; message: string };

let model: TfMobileNet | undefined;

function need(): TfMobileNet {
  if (!model) {
    throw new TypeError("Cannot run worker request as the worker has no model: send init first");
  }
  return model;
}

self.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const m = e.data;
  try {
    switch (m.type) {
      case "init": {
        await setupBackend(m.kernels);
        model = new TfMobileNet(buildSpec(m.spec), {
          fusedBn: m.kernels === "own",
          weightQmax: m.weightQmax,
        });
        self.postMessage({ id: m.id, type: "ok" } satisfies WorkerReply);
        break;
      }
      case "grad": {
        const md = need();
        md.setTrainableFlat(m.flat);
        if (m.stats) {
          md.setStats(new Map(m.stats.map(([name, shape, data]) => [name, { shape, data }])));
        }
        const r = md.gradients(m.x, m.labels, m.n, m.resolution, m.stats !== undefined, m.distill);
        self.postMessage(
          { id: m.id, type: "grad", ...r } satisfies WorkerReply,
          [r.grads.buffer as ArrayBuffer],
        );
        break;
      }
      case "collect": {
        const md = need();
        md.setTrainableFlat(m.flat);
        const sums: BnSums = { batches: 0, sums: new Map() };
        md.collectBn(m.x, m.n, sums, m.resolution);
        self.postMessage(
          {
            id: m.id,
            type: "collect",
            batches: sums.batches,
            sums: [...sums.sums].map(([k, [a, b]]) => [k, a, b]),
          } satisfies WorkerReply,
        );
        break;
      }
      case "predict": {
        const md = need();
        md.setTrainableFlat(m.flat);
        const stats: NamedTensors = new Map(
          m.stats.map(([name, shape, data]) => [name, { shape, data }]),
        );
        md.setStats(stats);
        const pred = md.predict(m.x, m.n, m.resolution);
        self.postMessage({ id: m.id, type: "predict", pred } satisfies WorkerReply);
        break;
      }
    }
  } catch (err) {
    self.postMessage(
      {
        id: m.id,
        type: "error",
        message: err instanceof Error ? `${err.message}\n${err.stack}` : String(err),
      } satisfies WorkerReply,
    );
  }
};
