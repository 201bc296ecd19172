/**
 * Training-mode batch norm fused with its activation, as one tfjs op with a custom gradient: the
 * forward and backward passes each run as one WASM SIMD kernel (grad.wasm) instead of the ~20
 * small tfjs ops that moments + batchNorm + relu and their gradients issue.
 *
 * Both passes are registered tfjs kernels (`OwnBnActForward`, `OwnBnActBackward`). On the wasm
 * backend they run grad.wasm on tfjs's own heap (register.ts `onHeap`): inputs are read and outputs
 * written in place, no copies. Other backends copy through grad.wasm's standalone instance.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ACT, bnBackwardWasm, bnForwardWasm } from "./grad_wasm.ts";
import { onHeap } from "./register.ts";

type Act = keyof typeof ACT;

export const BN_ACT_FORWARD = "OwnBnActForward";
export const BN_ACT_BACKWARD = "OwnBnActBackward";

interface ValueBackend {
  readSync(dataId: tf.DataId): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function values(backend: unknown, t: tf.TensorInfo): Float32Array {
  return (backend as ValueBackend).readSync(t.dataId) as Float32Array;
}

function info(backend: unknown, shape: number[], v: Float32Array): tf.TensorInfo {
  // grad.wasm's views are reused by the next call: the tensor gets its own copy.
  return (backend as ValueBackend).makeTensorInfo(shape, "float32", v.slice());
}

const forwardKernel: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
  const { act, eps } = attrs as unknown as { act: number; eps: number };
  const c = x!.shape[x!.shape.length - 1]!;
  const size = x!.shape.reduce((a, b) => a * b, 1);
  const h = onHeap(backend);
  if (h) {
    if (gamma!.shape[0] !== c || beta!.shape[0] !== c || size % c !== 0) {
      throw new RangeError(
        `Cannot run batch norm as [${x!.shape}] does not match ${gamma!.shape[0]} channels`,
      );
    }
    const y = h.out(x!.shape);
    const mean = h.out([c]);
    const invStd = h.out([c]);
    const [acc, tmp] = h.g.regions([c * 16, c * 8]);
    h.g.k.bnForward(
      h.ptr(x!),
      h.ptr(gamma!),
      h.ptr(beta!),
      h.ptr(y),
      h.ptr(mean),
      h.ptr(invStd),
      acc!,
      tmp!,
      size / c,
      c,
      eps,
      act,
    );
    return [y, mean, invStd];
  }
  const r = bnForwardWasm(
    values(backend, x!),
    values(backend, gamma!),
    values(backend, beta!),
    c,
    eps,
    act,
  );
  return [info(backend, x!.shape, r.y), info(backend, [c], r.mean), info(backend, [c], r.invStd)];
};

const backwardKernel: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, x, mean, invStd, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
  const { act } = attrs as unknown as { act: number };
  const c = x!.shape[x!.shape.length - 1]!;
  const size = x!.shape.reduce((a, b) => a * b, 1);
  const h = onHeap(backend);
  if (h) {
    const dx = h.out(x!.shape);
    const dgamma = h.out([c]);
    const dbeta = h.out([c]);
    const [acc, tmp] = h.g.regions([c * 16, c * 20]);
    h.g.k.bnBackward(
      h.ptr(dy!),
      h.ptr(x!),
      h.ptr(mean!),
      h.ptr(invStd!),
      h.ptr(gamma!),
      h.ptr(beta!),
      h.ptr(dx),
      h.ptr(dgamma),
      h.ptr(dbeta),
      acc!,
      tmp!,
      size / c,
      c,
      act,
    );
    return [dx, dgamma, dbeta];
  }
  const d = bnBackwardWasm(
    values(backend, dy!),
    values(backend, x!),
    values(backend, mean!),
    values(backend, invStd!),
    values(backend, gamma!),
    values(backend, beta!),
    c,
    act,
  );
  return [info(backend, x!.shape, d.dx), info(backend, [c], d.dgamma), info(backend, [c], d.dbeta)];
};

/** Registers the two kernels on a backend (once). */
function ensureKernels(backendName: string): void {
  if (!tf.getKernel(BN_ACT_FORWARD, backendName)) {
    tf.registerKernel({ kernelName: BN_ACT_FORWARD, backendName, kernelFunc: forwardKernel });
  }
  if (!tf.getKernel(BN_ACT_BACKWARD, backendName)) {
    tf.registerKernel({ kernelName: BN_ACT_BACKWARD, backendName, kernelFunc: backwardKernel });
  }
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
  ensureKernels(tf.getBackend());
  const key = `${act}/${eps}`;
  let op = ops.get(key);
  if (!op) {
    const code = ACT[act];
    op = tf.customGrad(
      ((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [xt, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
        const [y, mean, invStd] = tf.engine().runKernel(
          BN_ACT_FORWARD,
          { x: xt, gamma: g, beta: b },
          { act: code, eps } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
        // y is not saved: the backward recomputes the activation's mask from x.
        save([xt, mean!, invStd!, g, b]);
        return {
          value: y!,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [sx, sm, si, sg, sb] = saved as [
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
              tf.Tensor,
            ];
            return tf.engine().runKernel(
              BN_ACT_BACKWARD,
              { dy, x: sx, mean: sm, invStd: si, gamma: sg, beta: sb },
              { act: code } as unknown as tf.NamedAttrMap,
            ) as tf.Tensor[];
          },
        };
      }) as Parameters<typeof tf.customGrad>[0],
    ) as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
    ops.set(key, op);
  }
  return op(x, gamma, beta);
}
