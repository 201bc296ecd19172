/**
 * Training-mode batch norm fused with its activation, as one tfjs op with a custom gradient: the
 * forward and backward passes each run as one WASM SIMD kernel (grad.wasm) instead of the ~20
 * small tfjs ops that moments + batchNorm + relu and their gradients issue.
 *
 * Reads tensors from the wasm backend's heap without copying (`typedArrayFromHeap`); other
 * backends go through `dataSync`.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ACT, bnBackwardWasm, bnForwardWasm } from "./grad_wasm.ts";

type Act = keyof typeof ACT;

interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

function read(t: tf.Tensor): Float32Array {
  const b = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof b.typedArrayFromHeap === "function"
    ? b.typedArrayFromHeap(t)
    : (t.dataSync() as Float32Array);
}

/**
 * The wasm backend copies a typed array into its heap when a tensor is made; the cpu backend keeps
 * the array itself, so views into grad.wasm's memory (reused by the next call) must be copied.
 */
function owned(v: Float32Array): Float32Array {
  const b = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof b.typedArrayFromHeap === "function" ? v : v.slice();
}

const ops = new Map<string, (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor>();

/**
 * `act((x - mean) / sqrt(var + eps) * gamma + beta)` with the batch's own statistics over all
 * axes but the last.
 */
export function bnActTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  act: Act,
  eps: number,
): tf.Tensor {
  const key = `${act}/${eps}`;
  let op = ops.get(key);
  if (!op) {
    const code = ACT[act];
    op = tf.customGrad(
      ((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [xt, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
        const c = xt.shape[xt.rank - 1]!;
        const r = bnForwardWasm(read(xt), read(g), read(b), c, eps, code);
        const y = tf.tensor(owned(r.y), xt.shape);
        const mean = tf.tensor1d(owned(r.mean));
        const invStd = tf.tensor1d(owned(r.invStd));
        save([xt, y, mean, invStd, g]);
        return {
          value: y,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [sx, sy, sm, si, sg] = saved as [
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
            ];
            const d = bnBackwardWasm(
              read(dy),
              read(sx),
              read(sy),
              read(sm),
              read(si),
              read(sg),
              c,
              code,
            );
            return [
              tf.tensor(owned(d.dx), sx.shape),
              tf.tensor1d(owned(d.dgamma)),
              tf.tensor1d(owned(d.dbeta)),
            ];
          },
        };
      }) as Parameters<typeof tf.customGrad>[0],
    ) as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
    ops.set(key, op);
  }
  return op(x, gamma, beta);
}
