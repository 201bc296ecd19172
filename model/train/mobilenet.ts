/**
 * A MobileNet built with TensorFlow.js ops straight from a `model/spec.ts` layer list.
 *
 * Weights live in plain `Float32Array`s keyed by the names `model/weights.ts` documents
 * (`<layer>/kernel`, `<layer>/bn/gamma`, ...), so the trainer, its workers and the checkpoint
 * all share one representation; this class copies them into tfjs variables to run.
 *
 * Batch norm: in training mode each batch normalizes with its own statistics (no moving-average
 * update: the moving statistics are re-estimated on training batches before evaluation and export,
 * see FIELD_NOTES "Pitfall").
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Activation, ConvLayer, ModelSpec } from "../spec.ts";
import { BN_EPSILON, type NamedTensors } from "../weights.ts";
import type { Rng } from "./rng.ts";
import { bnActTrain } from "../../kernels/grad/bn_act.ts";

export interface ParamInfo {
  name: string;
  shape: number[];
  size: number;
  trainable: boolean;
}

/** Knowledge distillation's soft targets for one batch (`TfMobileNet.gradients`). */
export interface DistillTargets {
  /** n rows of the teachers' class probabilities at `temperature`. */
  soft: Float32Array;
  /** Share of the soft-target term in the loss, 0..1. */
  weight: number;
  temperature: number;
}

/** The named tensors of a spec, trainable ones first, in a fixed order. */
export function paramInfos(spec: ModelSpec): ParamInfo[] {
  const train: ParamInfo[] = [];
  const stats: ParamInfo[] = [];
  const add = (list: ParamInfo[], name: string, shape: number[], trainable: boolean) =>
    list.push({ name, shape, size: shape.reduce((a, b) => a * b, 1), trainable });
  for (const l of spec.layers) {
    if (l.kind === "conv") {
      const [cin] = l.inShape;
      const [cout] = l.outShape;
      const depthwise = l.groups > 1;
      if (depthwise && l.groups !== cin) {
        throw new RangeError(
          `Cannot build ${l.name} as grouped convolutions must be depthwise: groups ${l.groups}, channels ${cin}`,
        );
      }
      add(
        train,
        `${l.name}/kernel`,
        depthwise ? [l.kernel, l.kernel, cin, 1] : [
          l.kernel,
          l.kernel,
          cin,
          cout,
        ],
        true,
      );
      if (l.bias) add(train, `${l.name}/bias`, [cout], true);
      if (l.batchNorm) {
        add(train, `${l.name}/bn/gamma`, [cout], true);
        add(train, `${l.name}/bn/beta`, [cout], true);
        add(stats, `${l.name}/bn/moving_mean`, [cout], false);
        add(stats, `${l.name}/bn/moving_variance`, [cout], false);
      }
    } else if (l.kind === "fc") {
      add(train, `${l.name}/kernel`, [l.inShape[0], l.outShape[0]], true);
      add(train, `${l.name}/bias`, [l.outShape[0]], true);
    } else if (l.kind === "se") {
      throw new TypeError(
        `Cannot build ${l.name} as the tfjs trainer does not support squeeze-and-excitation layers (${spec.arch})`,
      );
    }
  }
  return [...train, ...stats];
}

/** Fresh weights: He-normal convolutions, Glorot-uniform FC, BN gamma 1, beta 0, stats 0/1. */
export function initWeights(spec: ModelSpec, rng: Rng): NamedTensors {
  const out: NamedTensors = new Map();
  for (const p of paramInfos(spec)) {
    const data = new Float32Array(p.size);
    if (p.name.endsWith("/bn/gamma") || p.name.endsWith("/moving_variance")) data.fill(1);
    else if (p.name.endsWith("/kernel")) {
      if (p.shape.length === 4) {
        const [kh, kw, cin, cout] = p.shape as [number, number, number, number];
        const fanIn = cout === 1 && p.name.includes("_dw") ? kh * kw : kh * kw * cin;
        const std = Math.sqrt(2 / fanIn);
        for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
      } else {
        const [fin, fout] = p.shape as [number, number];
        const lim = Math.sqrt(6 / (fin + fout));
        for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-lim, lim);
      }
    }
    out.set(p.name, { shape: p.shape, data });
  }
  return out;
}

function activate(x: tf.Tensor, a: Activation): tf.Tensor {
  switch (a) {
    case "none":
      return x;
    case "relu":
      return tf.relu(x);
    case "relu6":
      return tf.relu6(x);
    case "hswish":
      return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
  }
}

/** Per-BN-layer sums of channel means and mean squares, for re-estimating statistics. */
export interface BnSums {
  batches: number;
  /** layer name -> [sum of batch means (C), sum of batch mean squares (C)] */
  sums: Map<string, [Float32Array, Float32Array]>;
}

/**
 * Training-mode batch norm over N, H, W with its closed-form gradient
 * (dx = gamma / sigma * (dy - mean(dy) - xhat * mean(dy * xhat))): a handful of ops instead of
 * the generic batchNorm + moments gradient, whose Tile kernel is slow on the wasm backend.
 */
export const batchNormTrain = tf.customGrad(
  ((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const xhat = tf.mul(tf.sub(x, mean), invStd);
    save([xhat, invStd, gamma]);
    return {
      value: tf.add(tf.mul(xhat, gamma), beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, is, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const m = dy.size / dy.shape[dy.rank - 1]!;
        const dbeta = tf.sum(dy, [0, 1, 2]);
        const dgamma = tf.sum(tf.mul(dy, xh), [0, 1, 2]);
        const dx = tf.mul(
          tf.sub(tf.sub(dy, tf.div(dbeta, m)), tf.mul(xh, tf.div(dgamma, m))),
          tf.mul(g, is),
        );
        return [dx, dgamma, dbeta];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0],
);

/**
 * Fake quantization of weights with a straight-through gradient (quantization-aware training,
 * `train.ts --weight-qmax`): the forward pass sees the weights the int8 export will hold,
 * symmetric `-qmax..qmax` with one scale per slice along the axes not in `axes` (per output channel
 * for convolutions, one scale for the FC, as `model/export/quantize.ts` quantizes them), and the
 * gradient passes to the float weights unchanged. Per-output-channel quantization is invariant to
 * the BN fold (which scales each output channel), so the exported integers are these.
 */
function fakeQuantFn(qmax: number, axes: number[]) {
  return tf.customGrad(
    ((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const w = args[0] as tf.Tensor;
      const m = tf.max(tf.abs(w), axes, true);
      const s = tf.div(tf.where(tf.greater(m, 0), m, tf.onesLike(m)), qmax);
      return {
        value: tf.mul(tf.clipByValue(tf.round(tf.div(w, s)), -qmax, qmax), s),
        gradFunc: (dy: tf.Tensor) => [dy],
      };
    }) as Parameters<typeof tf.customGrad>[0],
  );
}

/** `fakeQuant(w, qmax, axes)`: see `fakeQuantFn`; one customGrad function per (qmax, axes). */
const fakeQuantCache = new Map<string, (w: tf.Tensor) => tf.Tensor>();
export function fakeQuant(w: tf.Tensor, qmax: number, axes: number[]): tf.Tensor {
  const key = `${qmax}:${axes}`;
  let f = fakeQuantCache.get(key);
  if (!f) {
    f = fakeQuantFn(qmax, axes) as unknown as (w: tf.Tensor) => tf.Tensor;
    fakeQuantCache.set(key, f);
  }
  return f(w);
}

export interface TfMobileNetOptions {
  /** Run training batch norm + activation as one fused WASM kernel (kernels/grad/bn_act.ts). */
  fusedBn?: boolean;
  /**
   * Quantization-aware training: every forward pass uses weights fake-quantized to
   * `-weightQmax..weightQmax` (see `fakeQuant`); unset, the float weights.
   */
  weightQmax?: number | undefined;
}

export class TfMobileNet {
  readonly spec: ModelSpec;
  readonly params: ParamInfo[];
  readonly trainable: ParamInfo[];
  readonly trainableSize: number;
  #vars = new Map<string, tf.Variable>();
  /** Inside a frozen-BN gradient computation (see `gradients`). */
  #frozenGrad = false;

  /** Run training batch norm + activation as one fused WASM kernel (kernels/grad/bn_act.ts). */
  readonly fusedBn: boolean;
  /** Weight range of quantization-aware training (`TfMobileNetOptions.weightQmax`). */
  readonly weightQmax: number | undefined;

  constructor(spec: ModelSpec, opts: TfMobileNetOptions = {}) {
    this.spec = spec;
    this.fusedBn = opts.fusedBn ?? false;
    this.weightQmax = opts.weightQmax;
    this.params = paramInfos(spec);
    this.trainable = this.params.filter((p) => p.trainable);
    this.trainableSize = this.trainable.reduce((a, p) => a + p.size, 0);
    for (const p of this.params) {
      this.#vars.set(p.name, tf.tidy(() => tf.variable(tf.zeros(p.shape), p.trainable)));
    }
  }

  /** Copies named weights into the variables (missing names are an error). */
  setWeights(w: NamedTensors): void {
    for (const p of this.params) {
      const t = w.get(p.name);
      if (!t || t.data.length !== p.size) {
        throw new TypeError(
          `Cannot set weights as ${p.name} must hold ${p.size} values [${p.shape}]: current ${
            t ? `[${t.shape}]` : "missing"
          }`,
        );
      }
      this.#vars.get(p.name)!.assign(tf.tensor(t.data, p.shape));
    }
  }

  /** Copies the trainable weights from one flat vector (trainable order). */
  setTrainableFlat(flat: Float32Array): void {
    let o = 0;
    for (const p of this.trainable) {
      tf.tidy(() =>
        this.#vars.get(p.name)!.assign(tf.tensor(flat.subarray(o, o + p.size), p.shape))
      );
      o += p.size;
    }
  }

  /** Copies BN moving statistics (or any non-trainable tensors) from named tensors. */
  setStats(w: NamedTensors): void {
    for (const p of this.params) {
      if (p.trainable) continue;
      const t = w.get(p.name);
      if (t) tf.tidy(() => this.#vars.get(p.name)!.assign(tf.tensor(t.data, p.shape)));
    }
  }

  getWeights(): NamedTensors {
    const out: NamedTensors = new Map();
    for (const p of this.params) {
      out.set(p.name, { shape: p.shape, data: this.#vars.get(p.name)!.dataSync() as Float32Array });
    }
    return out;
  }

  #v(name: string): tf.Variable {
    return this.#vars.get(name)!;
  }

  #conv(l: ConvLayer, h: tf.Tensor4D, train: boolean, collect?: BnSums): tf.Tensor4D {
    let k: tf.Tensor4D = this.#v(`${l.name}/kernel`) as tf.Variable<tf.Rank.R4>;
    if (this.weightQmax !== undefined) {
      // conv2d kernels [kh, kw, in, out], depthwise [kh, kw, channels, 1]: one scale per output.
      k = fakeQuant(k, this.weightQmax, l.groups > 1 ? [0, 1, 3] : [0, 1, 2]) as tf.Tensor4D;
    }
    let y: tf.Tensor4D = l.groups > 1
      ? tf.depthwiseConv2d(h, k, l.stride, "same")
      : tf.conv2d(h, k, l.stride, "same");
    if (l.bias) y = tf.add(y, this.#v(`${l.name}/bias`));
    if (l.batchNorm) {
      const gamma = this.#v(`${l.name}/bn/gamma`) as tf.Variable<tf.Rank.R1>;
      const beta = this.#v(`${l.name}/bn/beta`) as tf.Variable<tf.Rank.R1>;
      if (train && !collect && this.fusedBn && l.activation !== "hswish") {
        return bnActTrain(y, gamma, beta, l.activation, BN_EPSILON) as tf.Tensor4D;
      } else if (train && !collect) {
        y = batchNormTrain(y, gamma, beta) as tf.Tensor4D;
      } else if (collect) {
        const { mean, variance } = tf.moments(y, [0, 1, 2]);
        if (collect) {
          const m = mean.dataSync() as Float32Array;
          const v = variance.dataSync() as Float32Array;
          let s = collect.sums.get(l.name);
          if (!s) {
            s = [new Float32Array(m.length), new Float32Array(m.length)];
            collect.sums.set(l.name, s);
          }
          for (let i = 0; i < m.length; i++) {
            s[0][i]! += m[i]!;
            s[1][i]! += v[i]! + m[i]! * m[i]!;
          }
        }
        y = tf.batchNorm(y, mean, variance, beta, gamma, BN_EPSILON) as tf.Tensor4D;
      } else if (this.#frozenGrad) {
        // Frozen-BN training: the same affine map as tf.batchNorm with the moving statistics,
        // written as mul/add so the gradients reach gamma and beta through plain ops.
        const scale = tf.mul(
          gamma,
          tf.rsqrt(tf.add(this.#v(`${l.name}/bn/moving_variance`), BN_EPSILON)),
        );
        const shift = tf.sub(beta, tf.mul(this.#v(`${l.name}/bn/moving_mean`), scale));
        y = tf.add(tf.mul(y, scale), shift) as tf.Tensor4D;
      } else {
        y = tf.batchNorm(
          y,
          this.#v(`${l.name}/bn/moving_mean`) as tf.Variable<tf.Rank.R1>,
          this.#v(`${l.name}/bn/moving_variance`) as tf.Variable<tf.Rank.R1>,
          beta,
          gamma,
          BN_EPSILON,
        ) as tf.Tensor4D;
      }
    }
    return activate(y, l.activation) as tf.Tensor4D;
  }

  /**
   * Logits `[N, classes]` for an NHWC batch. `train` uses batch statistics; `collect` also adds
   * each BN layer's batch statistics to the sums (for `reestimateBn`).
   */
  forward(x: tf.Tensor4D, train: boolean, collect?: BnSums): tf.Tensor2D {
    let h: tf.Tensor = x;
    const inputs = new Map<string, tf.Tensor>();
    for (const l of this.spec.layers) {
      inputs.set(l.name, h);
      if (l.kind === "conv") {
        let y = this.#conv(l, h as tf.Tensor4D, train, collect);
        if (l.residualFrom) y = tf.add(y, inputs.get(l.residualFrom)!);
        h = y;
      } else if (l.kind === "pool") {
        h = tf.mean(h, [1, 2]);
      } else if (l.kind === "fc") {
        let w: tf.Tensor = this.#v(`${l.name}/kernel`);
        if (this.weightQmax !== undefined) w = fakeQuant(w, this.weightQmax, [0, 1]);
        const y = tf.add(
          tf.matMul(tf.reshape(h, [-1, l.inShape[0]]), w as tf.Tensor2D),
          this.#v(`${l.name}/bias`),
        );
        h = activate(y, l.activation);
      }
    }
    return h as tf.Tensor2D;
  }

  /**
   * Mean cross-entropy loss, gradients of the trainable weights as one flat vector (trainable
   * order) and the number of correct predictions, for one batch. `resolution` (default the spec's)
   * is the side of the images in `x`: the layers are convolutions, global pooling and FC, so the
   * same variables run at any input size (multi-resolution training). `frozenBn` trains through
   * BN in inference mode (moving statistics fixed; gamma and beta still learn). With `distill`
   * the loss is knowledge distillation's (Hinton et al. 2015): `(1 - weight)` times the labels'
   * cross-entropy plus `weight * T^2` times the cross-entropy of the teachers' soft targets
   * (`soft`, n rows of class probabilities at temperature T) against softmax(logits / T).
   */
  gradients(
    x: Float32Array,
    labels: Int32Array,
    n: number,
    resolution: number = this.spec.resolution,
    frozenBn = false,
    distill?: DistillTargets,
  ): {
    loss: number;
    correct: number;
    grads: Float32Array;
  } {
    const r = resolution;
    const c = this.spec.inputChannels;
    const vars = this.trainable.map((p) => this.#v(p.name));
    const flat = new Float32Array(this.trainableSize);
    let loss = 0;
    let correct = 0;
    tf.tidy(() => {
      const xt = tf.tensor4d(x.subarray(0, n * r * r * c), [n, r, r, c]);
      const yt = tf.oneHot(tf.tensor1d(labels.subarray(0, n), "int32"), this.spec.classes);
      let predT: tf.Tensor | undefined;
      this.#frozenGrad = frozenBn;
      const { value, grads } = tf.variableGrads(() => {
        // frozenBn: normalize with the moving statistics (set by setStats) instead of the batch's,
        // so the weights learn to work with the one set of statistics the exported model has.
        const logits = this.forward(xt, !frozenBn);
        // variableGrads disposes intermediates: keep the predictions for the accuracy count.
        predT = tf.keep(tf.argMax(logits, 1));
        const hard = tf.losses.softmaxCrossEntropy(yt, logits) as tf.Scalar;
        if (!distill) return hard;
        const { weight: w, temperature: t } = distill;
        const st = tf.tensor2d(distill.soft.subarray(0, n * this.spec.classes), [
          n,
          this.spec.classes,
        ]);
        const softLoss = tf.losses.softmaxCrossEntropy(st, tf.div(logits, t)) as tf.Scalar;
        return tf.add(tf.mul(hard, 1 - w), tf.mul(softLoss, w * t * t)) as tf.Scalar;
      }, vars);
      this.#frozenGrad = false;
      loss = value.dataSync()[0]!;
      const pred = predT!.dataSync();
      predT!.dispose();
      for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
      let o = 0;
      this.trainable.forEach((p, i) => {
        flat.set(grads[vars[i]!.name]!.dataSync() as Float32Array, o);
        o += p.size;
      });
    });
    return { loss, correct, grads: flat };
  }

  /** Predicted class per image (inference mode, moving statistics). */
  predict(x: Float32Array, n: number, resolution: number = this.spec.resolution): Int32Array {
    const r = resolution;
    const c = this.spec.inputChannels;
    return tf.tidy(() => {
      const xt = tf.tensor4d(x.subarray(0, n * r * r * c), [n, r, r, c]);
      return tf.argMax(this.forward(xt, false), 1).dataSync() as Int32Array;
    });
  }

  /** Adds one batch's BN statistics to `sums`. */
  collectBn(
    x: Float32Array,
    n: number,
    sums: BnSums,
    resolution: number = this.spec.resolution,
  ): void {
    const r = resolution;
    const c = this.spec.inputChannels;
    tf.tidy(() => {
      this.forward(tf.tensor4d(x.subarray(0, n * r * r * c), [n, r, r, c]), true, sums);
    });
    sums.batches++;
  }

  dispose(): void {
    for (const v of this.#vars.values()) v.dispose();
    this.#vars.clear();
  }
}

/** Moving statistics from summed batch statistics (population mean and variance). */
export function bnStatsFromSums(sums: BnSums): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, [m, sq]] of sums.sums) {
    const mean = new Float32Array(m.length);
    const variance = new Float32Array(m.length);
    for (let i = 0; i < m.length; i++) {
      mean[i] = m[i]! / sums.batches;
      variance[i] = Math.max(sq[i]! / sums.batches - mean[i]! * mean[i]!, 0);
    }
    out.set(`${name}/bn/moving_mean`, { shape: [m.length], data: mean });
    out.set(`${name}/bn/moving_variance`, { shape: [m.length], data: variance });
  }
  return out;
}
