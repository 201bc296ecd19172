/**
 * Deterministic stand-in checkpoints for tests and for untrained artifacts: seeded random
 * MobileNet weights in the trainer's format (`model/weights.ts`), with batch-norm statistics
 * re-estimated on real images so that activations keep a sane scale through every layer, and an
 * optional least-squares classifier head fitted on pooled features so the model is better than
 * chance and int8 vs float comparisons mean something.
 */
import type { ModelSpec } from "../spec.ts";
import type { NamedTensors } from "../weights.ts";
import { type Activations, referenceForward } from "./reference.ts";

/** mulberry32: a tiny seeded generator (deterministic across platforms). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * He-normal kernels (depthwise made positive, pointwise plus an identity so that a deep random
 * network neither forgets its input nor amplifies quantization noise chaotically), BN gamma in [0.8, 1.2], beta in [-0.1, 0.1], mean 0 and variance 1 (replace
 * them with `reestimateBatchNorm`), FC kernel Glorot-normal, FC bias 0.
 */
export function randomWeights(spec: ModelSpec, seed: number): NamedTensors {
  const rand = seededRandom(seed);
  const t: NamedTensors = new Map();
  const fill = (shape: number[], f: () => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = f();
    return { shape, data };
  };
  for (const l of spec.layers) {
    if (l.kind === "conv") {
      const [inC] = l.inShape;
      const [outC] = l.outShape;
      const dw = l.groups > 1;
      const fanIn = (dw ? 1 : inC) * l.kernel * l.kernel;
      const std = Math.sqrt(2 / fanIn);
      const shape = dw ? [l.kernel, l.kernel, inC, 1] : [l.kernel, l.kernel, inC, outC];
      const kernel = fill(shape, () => gaussian(rand) * std);
      if (dw) {
        // Positive (blurring) depthwise filters average noise out instead of amplifying it.
        for (let i = 0; i < kernel.data.length; i++) kernel.data[i] = Math.abs(kernel.data[i]!);
      } else if (l.kernel === 1) {
        // Near-identity pointwise maps keep each channel's information through the depth.
        for (let o = 0; o < outC; o++) kernel.data[(o % inC) * outC + o]! += 1;
      }
      t.set(`${l.name}/kernel`, kernel);
      if (l.batchNorm) {
        t.set(`${l.name}/bn/gamma`, fill([outC], () => 0.8 + 0.4 * rand()));
        t.set(`${l.name}/bn/beta`, fill([outC], () => 0.2 * rand() - 0.1));
        t.set(`${l.name}/bn/moving_mean`, fill([outC], () => 0));
        t.set(`${l.name}/bn/moving_variance`, fill([outC], () => 1));
      } else if (l.bias) {
        t.set(`${l.name}/bias`, fill([outC], () => 0));
      }
    } else if (l.kind === "fc") {
      const [inC] = l.inShape;
      const [outC] = l.outShape;
      const std = Math.sqrt(2 / (inC + outC));
      t.set(`${l.name}/kernel`, fill([inC, outC], () => gaussian(rand) * std));
      t.set(`${l.name}/bias`, fill([outC], () => 0));
    }
  }
  return t;
}

/**
 * Sets every BN layer's moving mean and variance to the statistics of its input on `batch`
 * (layer by layer, so each layer sees the already-normalized output of the one before), as the
 * trainer does before export. Returns the pooled features `[n, C]` of the last layer.
 */
export function reestimateBatchNorm(
  spec: ModelSpec,
  tensors: NamedTensors,
  batch: Activations,
): Float32Array {
  let pooled = new Float32Array();
  referenceForward(spec, tensors, batch, {
    onConvRaw(layer, raw) {
      if (!layer.batchNorm) return;
      const [n, c, h, w] = raw.shape;
      const mean = tensors.get(`${layer.name}/bn/moving_mean`)!.data;
      const variance = tensors.get(`${layer.name}/bn/moving_variance`)!.data;
      const hw = h * w;
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        let sq = 0;
        for (let b = 0; b < n; b++) {
          const base = (b * c + ch) * hw;
          for (let p = 0; p < hw; p++) {
            const v = raw.data[base + p]!;
            s += v;
            sq += v * v;
          }
        }
        const m = s / (n * hw);
        mean[ch] = m;
        variance[ch] = Math.max(sq / (n * hw) - m * m, 1e-6);
      }
    },
    onActivation(name, x) {
      if (name === "pool") pooled = x.data.slice();
    },
  });
  return pooled;
}

/**
 * Fits the FC layer by ridge regression of one-hot targets on pooled features (closed form,
 * Cholesky), a cheap way to turn random features into a classifier better than chance.
 */
export function fitHead(
  tensors: NamedTensors,
  fcName: string,
  features: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
  lambda = 1e-2,
): void {
  const n = labels.length;
  const d = features.length / n;
  const dim = d + 1; // last column: bias
  const a = new Float64Array(dim * dim);
  const b = new Float64Array(dim * classes);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = features[i * d + j]!;
    row[d] = 1;
    for (let j = 0; j < dim; j++) {
      const rj = row[j]!;
      if (rj === 0) continue;
      for (let k = 0; k < dim; k++) a[j * dim + k]! += rj * row[k]!;
      b[j * classes + labels[i]!]! += rj;
    }
  }
  for (let j = 0; j < d; j++) a[j * dim + j]! += lambda * n;
  // Cholesky a = L L^T, in place in the lower triangle.
  for (let j = 0; j < dim; j++) {
    let s = a[j * dim + j]!;
    for (let k = 0; k < j; k++) s -= a[j * dim + k]! ** 2;
    const djj = Math.sqrt(Math.max(s, 1e-12));
    a[j * dim + j] = djj;
    for (let i = j + 1; i < dim; i++) {
      let t = a[i * dim + j]!;
      for (let k = 0; k < j; k++) t -= a[i * dim + k]! * a[j * dim + k]!;
      a[i * dim + j] = t / djj;
    }
  }
  const kernel = tensors.get(`${fcName}/kernel`)!.data;
  const bias = tensors.get(`${fcName}/bias`)!.data;
  const y = new Float64Array(dim);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < dim; i++) {
      let s = b[i * classes + c]!;
      for (let k = 0; k < i; k++) s -= a[i * dim + k]! * y[k]!;
      y[i] = s / a[i * dim + i]!;
    }
    for (let i = dim - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let k = i + 1; k < dim; k++) s -= a[k * dim + i]! * y[k]!;
      y[i] = s / a[i * dim + i]!;
    }
    for (let j = 0; j < d; j++) kernel[j * classes + c] = y[j]!;
    bias[c] = y[d]!;
  }
}
