/**
 * Cost model: multiply-adds (MACs) and parameters per layer, computed from `model/spec.ts`.
 *
 * Counting convention (the MobileNet papers'):
 * - MACs: one multiply-add per weight use in convolutions, squeeze-and-excitation FCs and FC
 *   layers. Batch norm is folded into the preceding convolution and not counted; activations,
 *   pooling, residual additions and the SE channel-wise scale are not counted.
 * - Parameters: convolution and FC weights, plus a bias where a layer has one without batch norm
 *   (the classifier, V3's SE FCs and its 1x1 head). BN scale/shift and moving statistics are not
 *   counted (they fold into the convolutions at export).
 */
import type { Layer, LayerRole, ModelSpec } from "./spec.ts";

export const COUNTING_CONVENTION =
  "MACs count one multiply-add per weight use in convolutions, squeeze-and-excitation FCs and FC " +
  "layers; batch norm is folded and not counted; activations, pooling, residual additions and the SE " +
  "channel-wise scale are not counted. Parameters count convolution and FC weights plus biases of " +
  "layers without batch norm (classifier, SE FCs, V3 head); BN parameters are not counted.";

export interface LayerCost {
  name: string;
  type: LayerRole;
  inputShape: [number, number, number];
  outputShape: [number, number, number];
  kernel: number | null;
  stride: number | null;
  groups: number | null;
  macs: number;
  params: number;
}

export interface SeparableComparison {
  /** The depthwise layer and the pointwise (or projection) layer that follows it. */
  depthwise: string;
  pointwise: string;
  cIn: number;
  cOut: number;
  kernel: number;
  /** Output side of the depthwise layer. */
  height: number;
  width: number;
  /** C_in K^2 H W + C_in H W C_out. */
  separableMacs: number;
  /** C_in K^2 H W C_out: a standard KxK convolution of the same shape. */
  standardMacs: number;
  separableParams: number;
  standardParams: number;
  /** separable / standard = 1/C_out + 1/K^2 (seed formula 15.7.1). */
  ratio: number;
}

export interface CostReport {
  totals: { macs: number; params: number };
  layers: LayerCost[];
  /** Share of MACs and parameters by layer type (fractions summing to 1). */
  shares: Record<string, { macs: number; params: number; macsShare: number; paramsShare: number }>;
  separable: {
    layers: SeparableComparison[];
    total: {
      separableMacs: number;
      standardMacs: number;
      separableParams: number;
      standardParams: number;
      ratio: number;
    };
    /** The whole network with every depthwise-separable pair replaced by a standard conv. */
    standardNetwork: { macs: number; params: number };
  };
  convention: string;
}

/** MACs and parameters of one layer. */
export function layerCost(layer: Layer): LayerCost {
  const [cIn, hIn, wIn] = layer.inShape;
  const [cOut, h, w] = layer.outShape;
  let macs = 0;
  let params = 0;
  let kernel: number | null = null;
  let stride: number | null = null;
  let groups: number | null = null;
  switch (layer.kind) {
    case "conv": {
      kernel = layer.kernel;
      stride = layer.stride;
      groups = layer.groups;
      const weights = (cIn / layer.groups) * layer.kernel * layer.kernel * cOut;
      macs = weights * h * w;
      params = weights + (layer.bias ? cOut : 0);
      break;
    }
    case "se":
      // Two FCs with bias on the pooled vector: C -> squeeze -> C.
      macs = 2 * cIn * layer.squeeze;
      params = 2 * cIn * layer.squeeze + layer.squeeze + cIn;
      break;
    case "fc":
      macs = cIn * cOut;
      params = cIn * cOut + cOut;
      break;
    case "pool":
      break;
  }
  void hIn;
  void wIn;
  return {
    name: layer.name,
    type: layer.role,
    inputShape: [...layer.inShape],
    outputShape: [...layer.outShape],
    kernel,
    stride,
    groups,
    macs,
    params,
  };
}

/** The full cost report for a spec: totals, per-layer table, shares, and formula 15.7.1. */
export function costReport(spec: ModelSpec): CostReport {
  const layers = spec.layers.map(layerCost);
  const totals = layers.reduce((t, l) => ({ macs: t.macs + l.macs, params: t.params + l.params }), {
    macs: 0,
    params: 0,
  });
  const shares: CostReport["shares"] = {};
  for (const l of layers) {
    const s = shares[l.type] ??= { macs: 0, params: 0, macsShare: 0, paramsShare: 0 };
    s.macs += l.macs;
    s.params += l.params;
  }
  for (const s of Object.values(shares)) {
    s.macsShare = totals.macs ? s.macs / totals.macs : 0;
    s.paramsShare = totals.params ? s.params / totals.params : 0;
  }

  const pairs: SeparableComparison[] = [];
  spec.layers.forEach((layer, i) => {
    if (layer.kind !== "conv" || layer.role !== "depthwise") return;
    // The pointwise partner is the next conv (an SE block may sit between them in V3).
    const next = spec.layers.slice(i + 1).find((l) => l.kind === "conv");
    if (!next || next.kind !== "conv" || next.kernel !== 1) return;
    const cIn = layer.inShape[0];
    const [, h, w] = layer.outShape;
    const cOut = next.outShape[0];
    const k = layer.kernel;
    const separableMacs = cIn * k * k * h * w + cIn * h * w * cOut;
    const standardMacs = cIn * k * k * h * w * cOut;
    pairs.push({
      depthwise: layer.name,
      pointwise: next.name,
      cIn,
      cOut,
      kernel: k,
      height: h,
      width: w,
      separableMacs,
      standardMacs,
      separableParams: cIn * k * k + cIn * cOut,
      standardParams: cIn * k * k * cOut,
      ratio: separableMacs / standardMacs,
    });
  });
  const sum = (f: (p: SeparableComparison) => number) => pairs.reduce((a, p) => a + f(p), 0);
  const total = {
    separableMacs: sum((p) => p.separableMacs),
    standardMacs: sum((p) => p.standardMacs),
    separableParams: sum((p) => p.separableParams),
    standardParams: sum((p) => p.standardParams),
    ratio: 0,
  };
  total.ratio = total.standardMacs ? total.separableMacs / total.standardMacs : 0;

  return {
    totals,
    layers,
    shares,
    separable: {
      layers: pairs,
      total,
      standardNetwork: {
        macs: totals.macs - total.separableMacs + total.standardMacs,
        params: totals.params - total.separableParams + total.standardParams,
      },
    },
    convention: COUNTING_CONVENTION,
  };
}
