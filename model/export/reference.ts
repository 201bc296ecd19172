/**
 * A plain float reference forward pass of MobileNet V1 straight from the checkpoint tensors
 * (tfjs NHWC kernels, batch norm applied as a separate step, float64 accumulation). It shares no
 * code with the BN folding or the ONNX writer, so agreeing with onnxruntime checks both.
 */
import type { ConvLayer, FCLayer, ModelSpec } from "../spec.ts";
import { BN_EPSILON, type NamedTensors } from "../weights.ts";
import { getTensor } from "./fold_bn.ts";

/** A batch of NCHW float activations. */
export interface Activations {
  data: Float32Array;
  shape: [number, number, number, number];
}

/** SAME padding as TF and ONNX SAME_UPPER: output ceil(in / s), the odd pixel padded at the end. */
export function samePadding(size: number, k: number, s: number): { out: number; before: number } {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return { out, before: Math.floor(total / 2) };
}

function convRaw(x: Activations, tensors: NamedTensors, layer: ConvLayer): Activations {
  const [n, inC, h, w] = x.shape;
  const outCSpec = layer.outShape[0];
  const k = layer.kernel;
  const s = layer.stride;
  const depthwise = layer.groups > 1;
  const outC = depthwise ? inC : outCSpec;
  if (inC !== layer.inShape[0]) {
    throw new RangeError(
      `Cannot run ${layer.name} as its input must have ${
        layer.inShape[0]
      } channels: current shape is [${x.shape}]`,
    );
  }
  const kernel = getTensor(
    tensors,
    `${layer.name}/kernel`,
    depthwise ? [k, k, inC, 1] : [k, k, inC, outC],
  ).data;
  const py = samePadding(h, k, s);
  const px = samePadding(w, k, s);
  const oh = py.out;
  const ow = px.out;
  const out = new Float32Array(n * outC * oh * ow);
  const acc = new Float64Array(oh * ow);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < outC; o++) {
      acc.fill(0);
      const iFrom = depthwise ? o : 0;
      const iTo = depthwise ? o + 1 : inC;
      for (let i = iFrom; i < iTo; i++) {
        const plane = (b * inC + i) * h * w;
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const wv = depthwise
              ? kernel[(ky * k + kx) * inC + o]!
              : kernel[((ky * k + kx) * inC + i) * outC + o]!;
            if (wv === 0) continue;
            for (let y = 0; y < oh; y++) {
              const iy = y * s + ky - py.before;
              if (iy < 0 || iy >= h) continue;
              const row = plane + iy * w;
              for (let xo = 0; xo < ow; xo++) {
                const ix = xo * s + kx - px.before;
                if (ix < 0 || ix >= w) continue;
                acc[y * ow + xo]! += wv * x.data[row + ix]!;
              }
            }
          }
        }
      }
      out.set(acc, (b * outC + o) * oh * ow);
    }
  }
  return { data: out, shape: [n, outC, oh, ow] };
}

function activate(v: number, act: string): number {
  switch (act) {
    case "relu":
      return v > 0 ? v : 0;
    case "relu6":
      return v < 0 ? 0 : v > 6 ? 6 : v;
    case "none":
      return v;
    default:
      throw new RangeError(`Cannot apply activation ${act} as the reference supports relu, relu6`);
  }
}

/** Hooks see each convolution's raw output (before batch norm), e.g. to re-estimate BN stats. */
export interface ReferenceHooks {
  onConvRaw?: (layer: ConvLayer, raw: Activations) => void;
  /** Every tensor after a layer's activation (what the int8 graph quantizes). */
  onActivation?: (name: string, x: Activations) => void;
}

function bnAct(
  raw: Activations,
  tensors: NamedTensors,
  layer: ConvLayer,
): Activations {
  const [n, c, h, w] = raw.shape;
  const g = getTensor(tensors, `${layer.name}/bn/gamma`, [c]).data;
  const be = getTensor(tensors, `${layer.name}/bn/beta`, [c]).data;
  const m = getTensor(tensors, `${layer.name}/bn/moving_mean`, [c]).data;
  const v = getTensor(tensors, `${layer.name}/bn/moving_variance`, [c]).data;
  const out = new Float32Array(raw.data.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const inv = 1 / Math.sqrt(v[ch]! + BN_EPSILON);
      const base = (b * c + ch) * hw;
      for (let p = 0; p < hw; p++) {
        const y = (raw.data[base + p]! - m[ch]!) * inv * g[ch]! + be[ch]!;
        out[base + p] = activate(y, layer.activation);
      }
    }
  }
  return { data: out, shape: raw.shape };
}

function fc(x: Float32Array, n: number, tensors: NamedTensors, layer: FCLayer): Float32Array {
  const [inC] = layer.inShape;
  const [outC] = layer.outShape;
  const k = getTensor(tensors, `${layer.name}/kernel`, [inC, outC]).data;
  const bias = getTensor(tensors, `${layer.name}/bias`, [outC]).data;
  const out = new Float32Array(n * outC);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < outC; o++) {
      let s = bias[o]!;
      for (let i = 0; i < inC; i++) s += x[b * inC + i]! * k[i * outC + o]!;
      out[b * outC + o] = activate(s, layer.activation);
    }
  }
  return out;
}

/**
 * Runs MobileNet V1 on an NCHW batch of any spatial size and returns the logits `[n, classes]`.
 *
 * @example
 * const logits = referenceForward(spec, tensors, { data, shape: [1, 1, 28, 28] });
 */
export function referenceForward(
  spec: ModelSpec,
  tensors: NamedTensors,
  input: Activations,
  hooks: ReferenceHooks = {},
): Float32Array {
  if (spec.arch !== "mobilenet_v1") {
    throw new RangeError(`Cannot run ${spec.arch} as the reference supports mobilenet_v1 only`);
  }
  let x = input;
  hooks.onActivation?.("input", x);
  let pooled: Float32Array | undefined;
  let logits: Float32Array | undefined;
  for (const layer of spec.layers) {
    if (layer.kind === "conv") {
      const raw = convRaw(x, tensors, layer);
      hooks.onConvRaw?.(layer, raw);
      x = bnAct(raw, tensors, layer);
      hooks.onActivation?.(layer.name, x);
    } else if (layer.kind === "pool") {
      const [n, c, h, w] = x.shape;
      pooled = new Float32Array(n * c);
      for (let i = 0; i < n * c; i++) {
        let s = 0;
        for (let p = 0; p < h * w; p++) s += x.data[i * h * w + p]!;
        pooled[i] = s / (h * w);
      }
      hooks.onActivation?.(layer.name, { data: pooled, shape: [n, c, 1, 1] });
    } else if (layer.kind === "fc") {
      if (!pooled) throw new RangeError(`Cannot run ${layer.name} as no pooling layer came before`);
      logits = fc(pooled, x.shape[0], tensors, layer);
    } else {
      throw new RangeError(`Cannot run ${layer.name} as ${layer.kind} layers are not supported`);
    }
  }
  if (!logits) throw new RangeError(`Cannot run ${spec.arch} as the spec has no fc layer`);
  return logits;
}
