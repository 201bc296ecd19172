/**
 * int8 static quantization of the folded MobileNet V1 into an ONNX QDQ graph (opset 13) that
 * onnxruntime fuses into QLinearConv / QLinearGlobalAveragePool / QGemm, and that the project's
 * own int8 engine (runtime/engine/) reads. The layout is regular on purpose; this is its contract.
 *
 * ## Number formats
 * - Activations: uint8, asymmetric, per tensor. `scale = (rmax - rmin) / 255` with the calibrated
 *   range widened to include 0 (`rmin = min(rmin, 0)`, `rmax = max(rmax, 0)`),
 *   `zero_point = round(-rmin / scale)` clamped to 0..255. A tensor after ReLU/ReLU6 has rmin = 0,
 *   so its zero point is 0.
 * - Conv weights: int8, symmetric, per output channel (axis 0 of OIHW), zero point 0,
 *   `scale[c] = max|w[c]| / 64`, values in -64..64 (`WEIGHT_QMAX`: "reduce_range", 7 bits).
 *   Why not -127..127: onnxruntime's AVX2 u8s8 kernels use VPMADDUBSW, which saturates the
 *   int16 sum of two uint8 x int8 products (this project's machines list avx_vnni and
 *   avx512_vnni in /proc/cpuinfo, yet the saturation was measured there in onnxruntime-node,
 *   and portable WASM has no VNNI); with full-range weights the fused QLinearConv then differed from
 *   the QDQ graph's own math by up to 78 quantization steps on the first layer (measured).
 *   With |w| <= 64, 2 * 255 * 64 = 32640 fits, so every runtime computes exactly the same int8
 *   result, the project's WASM engine included.
 * - FC weights (`fc.weight`, Gemm B, `[in, out]`, transB = 0): int8 symmetric, per tensor (see
 *   "FC" below), zero point 0, the same -64..64 range.
 * - Biases: int32, zero point 0, `scale[c] = input_scale * weight_scale[c]`,
 *   `q = round(b / scale[c])`.
 * - Rounding is round-half-to-even everywhere (as QuantizeLinear and numpy do).
 *
 * ## Tensor names (T is a float activation name of the float graph, see `float_graph.ts`)
 * - `T.scale` (float32 scalar), `T.zero_point` (uint8 scalar),
 *   node `T/quantize`: `QuantizeLinear(T, T.scale, T.zero_point) -> T.q` (uint8),
 *   node `T/dequantize`: `DequantizeLinear(T.q, T.scale, T.zero_point) -> T.dq` (float).
 * - Activations quantized: `input` (the normalized image), `<layer>.out` for every conv layer,
 *   `pool.out` and `flatten.out` (the same scale and zero point as `pool.out`).
 * - Weights of layer L: `L.weight.q` (int8 OIHW), `L.weight.scale` (float32 [O]),
 *   `L.weight.zero_point` (int8 [O], zeros), node `L.weight/dequantize` (axis 0) -> `L.weight.dq`.
 * - Bias of layer L: `L.bias.q` (int32 [O]), `L.bias.scale` (float32 [O]), `L.bias.zero_point`
 *   (int32 [O], zeros), node `L.bias/dequantize` (axis 0) -> `L.bias.dq`.
 *
 * ## Pattern per layer, in graph order
 * - Input: `input -> QuantizeLinear -> input.q -> DequantizeLinear -> input.dq`.
 * - Every conv layer L (first conv, depthwise with group = C, pointwise), X the previous activation:
 *   `Conv(X.dq, L.weight.dq, L.bias.dq; auto_pad=SAME_UPPER, strides, group, kernel_shape)
 *    -> L.out -> QuantizeLinear -> L.out.q -> DequantizeLinear -> L.out.dq`.
 *   The ReLU (or ReLU6) node is removed, as onnxruntime's own quantizer does: L.out's range is
 *   calibrated after the activation, so its zero point is 0 and saturating at 0 (and, for ReLU6,
 *   at `255 * scale <= 6`) is the activation. An engine computes
 *   `q = clamp(round(acc * in_scale * w_scale[c] / out_scale) + out_zp, 0, 255)` with
 *   `acc = sum((x_q - x_zp) * w_q) + bias_q`.
 *   The layer's spec activation is also recorded in the model metadata (`activation:<L>`).
 * - GAP: `GlobalAveragePool(last.out.dq) -> pool.out -> Q -> pool.out.q -> DQ -> pool.out.dq`.
 * - Flatten: `Flatten(pool.out.dq; axis=1) -> flatten.out -> Q -> flatten.out.q -> DQ ->
 *   flatten.out.dq`, with the scale and zero point of `pool.out` (a pure reshape, so the uint8
 *   values pass through unchanged).
 * - FC: `Gemm(flatten.out.dq, fc.weight.dq, fc.bias.dq; transB=0) -> logits`, float logits, no Q.
 *   `fc.weight` has one scale (per tensor, DQ without axis). onnxruntime 1.30 would also fuse
 *   per-column scales (axis 1) into QGemm (checked by a dump); one scale keeps the engine's FC
 *   step the simplest, and the FC holds a small share of the weights.
 *
 * ## What onnxruntime makes of it (onnxruntime-node 1.30, `optimizedModelFilePath` dumps)
 * - level "extended": QuantizeLinear 1, QLinearConv 27, com.microsoft QLinearGlobalAveragePool 1,
 *   Flatten 1 (on uint8), com.microsoft QGemm 1 (float logits). No DequantizeLinear is left.
 * - level "all": the same with com.microsoft (NHWC) QLinearConv and 2 Transpose nodes.
 *
 * Metadata (`metadata_props`): `quantization` = `qdq-u8s7-perchannel/1`, `calibration` = method
 * and image count, `activation:<layer>` = relu | relu6 | none.
 */
import type { ModelSpec } from "../spec.ts";
import type { FoldedConv, FoldedFC, FoldedLayer } from "./fold_bn.ts";
import {
  activationName,
  convAttrs,
  INPUT_NAME,
  inputInfo,
  IR_VERSION,
  OPSET,
  OUTPUT_NAME,
  outputInfo,
  PRODUCER,
} from "./float_graph.ts";
import { DataType, type OnnxModel, type OnnxNode, type OnnxTensor } from "./onnx_writer.ts";

export const QUANTIZATION_FORMAT = "qdq-u8s7-perchannel/1";

/** Largest weight magnitude after quantization (7-bit range; see the module doc). */
export const WEIGHT_QMAX = 64;

/** A calibrated float range of one activation tensor. */
export interface Range {
  min: number;
  max: number;
}

export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/** Round half to even, as ONNX QuantizeLinear and numpy round. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** uint8 asymmetric parameters for a float range (widened to include 0). */
export function activationParams(range: Range): QuantParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
    throw new RangeError(
      `Cannot quantize a tensor as its range must be finite with min <= max: current range is [${range.min}, ${range.max}]`,
    );
  }
  const rmin = Math.min(range.min, 0);
  const rmax = Math.max(range.max, 0);
  if (rmax === rmin) return { scale: 1, zeroPoint: 0 };
  // Round through float32, the type stored in the file, so the zero point matches the stored scale.
  const scale = Math.fround((rmax - rmin) / 255);
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(-rmin / scale)));
  return { scale, zeroPoint };
}

/**
 * int8 symmetric per-channel weights in -qmax..qmax: channel c is the c-th of `channels` equal
 * slices (OIHW axis 0).
 */
export function quantizeWeightsPerChannel(
  w: Float32Array,
  channels: number,
  qmax = WEIGHT_QMAX,
): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]!));
    const s = m > 0 ? Math.fround(m / qmax) : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) {
      q[i] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[i]! / s)));
    }
  }
  return { q, scales };
}

/**
 * The float model a quantization-aware run trained (`train.ts --weight-qmax`): folded layers with
 * their weights replaced by the dequantized int8 values (`q * scale`, per output channel for
 * convolutions, one scale for the FC, as `quantizeModel` quantizes them). Quantizing the result
 * again gives the same integers; float accuracy of such a model is that of the weights as trained,
 * so int8 against it measures what activation quantization costs.
 */
export function fakeQuantizeFolded(folded: FoldedLayer[], qmax: number): FoldedLayer[] {
  return folded.map((f) => {
    const channels = f.kind === "conv" ? f.weightDims[0] : 1;
    const { q, scales } = quantizeWeightsPerChannel(f.weight, channels, qmax);
    const per = q.length / channels;
    const weight = Float32Array.from(q, (v, i) => v * scales[Math.floor(i / per)]!);
    return { ...f, weight };
  });
}

/**
 * The folded layers as a run trained them: fake-quantized for a quantization-aware run (weight
 * range narrower than the default `WEIGHT_QMAX`), unchanged otherwise.
 */
export function foldedAsTrained(folded: FoldedLayer[], weightQmax?: number): FoldedLayer[] {
  return weightQmax !== undefined && weightQmax < WEIGHT_QMAX
    ? fakeQuantizeFolded(folded, weightQmax)
    : folded;
}

/** int32 bias with `scale[c] = inScale * wScales[c]` (one weight scale broadcasts). */
export function quantizeBias(
  b: Float32Array,
  inScale: number,
  wScales: Float32Array,
): { q: Int32Array; scales: Float32Array } {
  const q = new Int32Array(b.length);
  const scales = new Float32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    const s = Math.fround(inScale * wScales[wScales.length === 1 ? 0 : c]!);
    scales[c] = s;
    q[c] = Math.max(-2147483647, Math.min(2147483647, roundHalfEven(b[c]! / s)));
  }
  return { q, scales };
}

class QdqBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly inits: OnnxTensor[] = [];
  readonly params = new Map<string, QuantParams>();

  /** Appends Q and DQ after float tensor `t`; returns the name of the dequantized tensor. */
  qdq(t: string, p: QuantParams): string {
    this.params.set(t, p);
    this.inits.push(
      { name: `${t}.scale`, dataType: DataType.FLOAT, dims: [], data: new Float32Array([p.scale]) },
      {
        name: `${t}.zero_point`,
        dataType: DataType.UINT8,
        dims: [],
        data: new Uint8Array([p.zeroPoint]),
      },
    );
    this.nodes.push(
      {
        opType: "QuantizeLinear",
        name: `${t}/quantize`,
        inputs: [t, `${t}.scale`, `${t}.zero_point`],
        outputs: [`${t}.q`],
      },
      {
        opType: "DequantizeLinear",
        name: `${t}/dequantize`,
        inputs: [`${t}.q`, `${t}.scale`, `${t}.zero_point`],
        outputs: [`${t}.dq`],
      },
    );
    return `${t}.dq`;
  }

  /** A constant int8 or int32 tensor with its DQ node; returns the dequantized name. */
  constDq(
    base: string,
    q: Int8Array | Int32Array,
    dims: number[],
    scales: Float32Array,
    axis: number | undefined,
  ): string {
    const isInt8 = q instanceof Int8Array;
    const zpDims = scales.length === 1 && axis === undefined ? [] : [scales.length];
    this.inits.push(
      { name: `${base}.q`, dataType: isInt8 ? DataType.INT8 : DataType.INT32, dims, data: q },
      { name: `${base}.scale`, dataType: DataType.FLOAT, dims: zpDims, data: scales },
      {
        name: `${base}.zero_point`,
        dataType: isInt8 ? DataType.INT8 : DataType.INT32,
        dims: zpDims,
        data: isInt8 ? new Int8Array(scales.length) : new Int32Array(scales.length),
      },
    );
    this.nodes.push({
      opType: "DequantizeLinear",
      name: `${base}/dequantize`,
      inputs: [`${base}.q`, `${base}.scale`, `${base}.zero_point`],
      outputs: [`${base}.dq`],
      ...(axis !== undefined ? { attrs: { axis: { i: axis } } } : {}),
    });
    return `${base}.dq`;
  }
}

export interface QuantizeOptions {
  /** Free text stored in the metadata, e.g. `minmax, 2000 images`. */
  calibration: string;
  /** Weight range -qmax..qmax; default `WEIGHT_QMAX` (64). 127 only for comparisons. */
  weightQmax?: number | undefined;
  metadata?: Record<string, string>;
}

function rangeOf(ranges: Map<string, Range>, t: string): Range {
  const r = ranges.get(t);
  if (!r) {
    throw new RangeError(
      `Cannot quantize tensor ${t} as the calibration has no range for it: known are ${
        [...ranges.keys()].join(", ")
      }`,
    );
  }
  return r;
}

/**
 * Builds the int8 QDQ model from folded layers and calibrated activation ranges, keyed by the
 * float graph's tensor names (`input`, `<layer>.out`, `pool.out`).
 */
export function quantizeModel(
  spec: ModelSpec,
  folded: FoldedLayer[],
  ranges: Map<string, Range>,
  opts: QuantizeOptions,
): OnnxModel {
  const b = new QdqBuilder();
  let xParams = activationParams(rangeOf(ranges, INPUT_NAME));
  let x = b.qdq(INPUT_NAME, xParams);
  const meta: Record<string, string> = {
    quantization: QUANTIZATION_FORMAT,
    calibration: opts.calibration,
    ...opts.metadata,
  };
  let fcLayer: FoldedFC | undefined;
  for (const f of folded) {
    if (f.kind === "fc") {
      fcLayer = f;
      continue;
    }
    x = quantizeConv(b, f, x, xParams, ranges, opts.weightQmax ?? WEIGHT_QMAX);
    xParams = b.params.get(activationName(f.layer.name))!;
    meta[`activation:${f.layer.name}`] = f.layer.activation;
  }
  if (!fcLayer) throw new RangeError(`Cannot quantize ${spec.arch} as it has no fc layer`);
  b.nodes.push({ opType: "GlobalAveragePool", name: "pool", inputs: [x], outputs: ["pool.out"] });
  const poolParams = activationParams(rangeOf(ranges, "pool.out"));
  const pooled = b.qdq("pool.out", poolParams);
  b.nodes.push({
    opType: "Flatten",
    name: "flatten",
    inputs: [pooled],
    outputs: ["flatten.out"],
    attrs: { axis: { i: 1 } },
  });
  const flat = b.qdq("flatten.out", poolParams);
  const w = quantizeWeightsPerChannel(fcLayer.weight, 1, opts.weightQmax ?? WEIGHT_QMAX);
  const wDq = b.constDq("fc.weight", w.q, [...fcLayer.weightDims], w.scales, undefined);
  const bias = quantizeBias(fcLayer.bias, poolParams.scale, w.scales);
  const bDq = b.constDq("fc.bias", bias.q, [bias.q.length], bias.scales, 0);
  b.nodes.push({
    opType: "Gemm",
    name: "fc",
    inputs: [flat, wDq, bDq],
    outputs: [OUTPUT_NAME],
    attrs: { transB: { i: 0 } },
  });
  return {
    irVersion: IR_VERSION,
    opsets: [{ domain: "", version: OPSET }],
    producerName: PRODUCER,
    producerVersion: "1",
    metadata: meta,
    graph: {
      name: `${spec.arch}_a${spec.alpha}_int8`,
      nodes: b.nodes,
      initializers: b.inits,
      inputs: [inputInfo(spec)],
      outputs: [outputInfo(spec)],
    },
  };
}

function quantizeConv(
  b: QdqBuilder,
  f: FoldedConv,
  x: string,
  xParams: QuantParams,
  ranges: Map<string, Range>,
  weightQmax: number,
): string {
  const name = f.layer.name;
  const [outC] = f.weightDims;
  const w = quantizeWeightsPerChannel(f.weight, outC, weightQmax);
  const wDq = b.constDq(`${name}.weight`, w.q, [...f.weightDims], w.scales, 0);
  const bias = quantizeBias(f.bias, xParams.scale, w.scales);
  const bDq = b.constDq(`${name}.bias`, bias.q, [outC], bias.scales, 0);
  const out = activationName(name);
  const range = rangeOf(ranges, out);
  if (f.layer.activation !== "none" && range.min < 0) {
    throw new RangeError(
      `Cannot drop the ${f.layer.activation} of ${name} as its calibrated range must start at 0: current min is ${range.min}`,
    );
  }
  b.nodes.push({
    opType: "Conv",
    name: `${name}/conv`,
    inputs: [x, wDq, bDq],
    outputs: [out],
    attrs: convAttrs(f),
  });
  return b.qdq(out, activationParams(range));
}
