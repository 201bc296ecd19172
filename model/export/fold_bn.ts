/**
 * Batch-norm folding and the tfjs -> ONNX layout change.
 *
 * tfjs keeps convolutions as NHWC kernels `[kh, kw, in, out]` (depthwise `[kh, kw, C, 1]`) followed
 * by batch norm `y = gamma * (x - mean) / sqrt(var + eps) + beta` (eps = `BN_EPSILON`, 1e-3). ONNX
 * Conv wants OIHW `[out, in / groups, kh, kw]`; folding gives, per output channel c,
 * `w'[c] = w[c] * s[c]` and `b'[c] = beta[c] - mean[c] * s[c]` with `s = gamma / sqrt(var + eps)`.
 */
import type { ConvLayer, FCLayer, ModelSpec } from "../spec.ts";
import { BN_EPSILON, type NamedTensors, type Tensor } from "../weights.ts";

export interface FoldedConv {
  kind: "conv";
  layer: ConvLayer;
  /** OIHW `[out, in / groups, k, k]`. */
  weightDims: [number, number, number, number];
  weight: Float32Array;
  bias: Float32Array;
}

export interface FoldedFC {
  kind: "fc";
  layer: FCLayer;
  /** `[in, out]`, as ONNX Gemm's B with transB = 0. */
  weightDims: [number, number];
  weight: Float32Array;
  bias: Float32Array;
}

export type FoldedLayer = FoldedConv | FoldedFC;

/** Looks up a tensor and checks its shape, naming both shapes when they differ. */
export function getTensor(tensors: NamedTensors, name: string, shape: readonly number[]): Tensor {
  const t = tensors.get(name);
  if (!t) {
    throw new RangeError(
      `Cannot find tensor ${name} in the checkpoint: it has ${tensors.size} tensors, e.g. ${
        [...tensors.keys()].slice(0, 4).join(", ")
      }`,
    );
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(
      `Cannot use tensor ${name} as the spec needs shape [${shape}]: current shape is [${t.shape}]`,
    );
  }
  return t;
}

/** Per-channel BN scale and shift: y = x * scale + shift. */
export function bnScaleShift(
  tensors: NamedTensors,
  layer: string,
  channels: number,
): { scale: Float32Array; shift: Float32Array } {
  const g = getTensor(tensors, `${layer}/bn/gamma`, [channels]).data;
  const b = getTensor(tensors, `${layer}/bn/beta`, [channels]).data;
  const m = getTensor(tensors, `${layer}/bn/moving_mean`, [channels]).data;
  const v = getTensor(tensors, `${layer}/bn/moving_variance`, [channels]).data;
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = g[c]! / Math.sqrt(v[c]! + BN_EPSILON);
    scale[c] = s;
    shift[c] = b[c]! - m[c]! * s;
  }
  return { scale, shift };
}

/** Folds one convolution's BN (if any) and turns its kernel into OIHW. */
export function foldConv(tensors: NamedTensors, layer: ConvLayer): FoldedConv {
  const [inC] = layer.inShape;
  const [outC] = layer.outShape;
  const k = layer.kernel;
  const depthwise = layer.groups > 1;
  if (depthwise && layer.groups !== inC) {
    throw new RangeError(
      `Cannot fold ${layer.name} as only depthwise grouping is supported: groups ${layer.groups}, input channels ${inC}`,
    );
  }
  const kernel = getTensor(
    tensors,
    `${layer.name}/kernel`,
    depthwise ? [k, k, inC, 1] : [k, k, inC, outC],
  ).data;
  let scale: Float32Array;
  let shift: Float32Array;
  if (layer.batchNorm) {
    ({ scale, shift } = bnScaleShift(tensors, layer.name, outC));
  } else {
    scale = new Float32Array(outC).fill(1);
    shift = layer.bias
      ? Float32Array.from(getTensor(tensors, `${layer.name}/bias`, [outC]).data)
      : new Float32Array(outC);
  }
  const inPerGroup = depthwise ? 1 : inC;
  const weight = new Float32Array(outC * inPerGroup * k * k);
  for (let o = 0; o < outC; o++) {
    for (let i = 0; i < inPerGroup; i++) {
      for (let y = 0; y < k; y++) {
        for (let x = 0; x < k; x++) {
          // tfjs index: [y][x][in][out]; depthwise: [y][x][c][0] with c = o.
          const src = depthwise ? (y * k + x) * inC + o : ((y * k + x) * inC + i) * outC + o;
          weight[((o * inPerGroup + i) * k + y) * k + x] = kernel[src]! * scale[o]!;
        }
      }
    }
  }
  return {
    kind: "conv",
    layer,
    weightDims: [outC, inPerGroup, k, k],
    weight,
    bias: shift,
  };
}

export function foldFC(tensors: NamedTensors, layer: FCLayer): FoldedFC {
  const [inC] = layer.inShape;
  const [outC] = layer.outShape;
  return {
    kind: "fc",
    layer,
    weightDims: [inC, outC],
    weight: Float32Array.from(getTensor(tensors, `${layer.name}/kernel`, [inC, outC]).data),
    bias: Float32Array.from(getTensor(tensors, `${layer.name}/bias`, [outC]).data),
  };
}

/**
 * Folds every layer of a MobileNet V1 spec. V2/V3 need residual adds and SE, which the ONNX graph
 * builder does not write yet, so they are refused here rather than exported wrong.
 */
export function foldModel(spec: ModelSpec, tensors: NamedTensors): FoldedLayer[] {
  if (spec.arch !== "mobilenet_v1") {
    throw new RangeError(
      `Cannot fold ${spec.arch} as only mobilenet_v1 is exported: arch must be mobilenet_v1`,
    );
  }
  const out: FoldedLayer[] = [];
  for (const layer of spec.layers) {
    if (layer.kind === "conv") out.push(foldConv(tensors, layer));
    else if (layer.kind === "fc") out.push(foldFC(tensors, layer));
    else if (layer.kind === "se") {
      throw new RangeError(`Cannot fold ${layer.name} as SE layers are not exported`);
    }
  }
  return out;
}
