/**
 * Builds the float ONNX graph of MobileNet V1 from folded layers.
 *
 * Input `input`: float32 NCHW `[batch, C, height, width]` with symbolic batch, height and width, so
 * one file serves every resolution multiplier. Normalization stays outside the model.
 * Per conv layer `<name>`: initializers `<name>.weight` (OIHW) and `<name>.bias`, node
 * `Conv(auto_pad=SAME_UPPER)` -> `<name>.conv`, then `Relu` (or `Clip(0, 6)` for ReLU6) ->
 * `<name>.out` (a layer without activation writes `<name>.out` from the Conv itself).
 * Head: `GlobalAveragePool` -> `pool.out`, `Flatten(axis=1)` -> `flatten.out`,
 * `Gemm(fc.weight [in, out], fc.bias)` -> `logits` `[batch, classes]`.
 */
import type { ModelSpec } from "../spec.ts";
import type { FoldedConv, FoldedFC, FoldedLayer } from "./fold_bn.ts";
import {
  type Attr,
  DataType,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type ValueInfo,
} from "./onnx_writer.ts";

export const INPUT_NAME = "input";
export const OUTPUT_NAME = "logits";
export const OPSET = 13;
export const IR_VERSION = 7;
export const PRODUCER = "mobilenet-edge model/export";

/** Name of the tensor a layer produces after its activation. */
export function activationName(layer: string): string {
  return `${layer}.out`;
}

export function convAttrs(f: FoldedConv): Record<string, Attr> {
  const l = f.layer;
  return {
    auto_pad: { s: "SAME_UPPER" },
    kernel_shape: { ints: [l.kernel, l.kernel] },
    strides: { ints: [l.stride, l.stride] },
    dilations: { ints: [1, 1] },
    group: { i: l.groups },
  };
}

/** The nodes that apply a conv layer's activation from `src` to `dst`, or none. */
export function activationNodes(f: FoldedConv, src: string, dst: string): {
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
} {
  const name = f.layer.name;
  switch (f.layer.activation) {
    case "relu":
      return {
        nodes: [{ opType: "Relu", name: `${name}/relu`, inputs: [src], outputs: [dst] }],
        initializers: [],
      };
    case "relu6":
      return {
        nodes: [{
          opType: "Clip",
          name: `${name}/relu6`,
          inputs: [src, `${name}.clip_min`, `${name}.clip_max`],
          outputs: [dst],
        }],
        initializers: [
          {
            name: `${name}.clip_min`,
            dataType: DataType.FLOAT,
            dims: [],
            data: new Float32Array([0]),
          },
          {
            name: `${name}.clip_max`,
            dataType: DataType.FLOAT,
            dims: [],
            data: new Float32Array([6]),
          },
        ],
      };
    case "none":
      return { nodes: [], initializers: [] };
    default:
      throw new RangeError(
        `Cannot export ${name} as activation ${f.layer.activation} is not supported: use relu, relu6 or none`,
      );
  }
}

export function inputInfo(spec: ModelSpec): ValueInfo {
  return {
    name: INPUT_NAME,
    elemType: DataType.FLOAT,
    shape: ["batch", spec.inputChannels, "height", "width"],
  };
}

export function outputInfo(spec: ModelSpec): ValueInfo {
  return { name: OUTPUT_NAME, elemType: DataType.FLOAT, shape: ["batch", spec.classes] };
}

export interface FloatGraphOptions {
  /** Extra graph outputs (e.g. activations for calibration), float with unknown shape. */
  extraOutputs?: string[];
  metadata?: Record<string, string>;
}

/** Builds the float model. */
export function buildFloatModel(
  spec: ModelSpec,
  folded: FoldedLayer[],
  opts: FloatGraphOptions = {},
): OnnxModel {
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  let x = INPUT_NAME;
  let fcLayer: FoldedFC | undefined;
  for (const f of folded) {
    if (f.kind === "fc") {
      fcLayer = f;
      continue;
    }
    const name = f.layer.name;
    inits.push(
      { name: `${name}.weight`, dataType: DataType.FLOAT, dims: [...f.weightDims], data: f.weight },
      { name: `${name}.bias`, dataType: DataType.FLOAT, dims: [f.bias.length], data: f.bias },
    );
    const out = activationName(name);
    const convOut = f.layer.activation === "none" ? out : `${name}.conv`;
    nodes.push({
      opType: "Conv",
      name: `${name}/conv`,
      inputs: [x, `${name}.weight`, `${name}.bias`],
      outputs: [convOut],
      attrs: convAttrs(f),
    });
    const act = activationNodes(f, convOut, out);
    nodes.push(...act.nodes);
    inits.push(...act.initializers);
    x = out;
  }
  if (!fcLayer) throw new RangeError(`Cannot export ${spec.arch} as it has no fc layer`);
  nodes.push(
    { opType: "GlobalAveragePool", name: "pool", inputs: [x], outputs: ["pool.out"] },
    {
      opType: "Flatten",
      name: "flatten",
      inputs: ["pool.out"],
      outputs: ["flatten.out"],
      attrs: { axis: { i: 1 } },
    },
    {
      opType: "Gemm",
      name: "fc",
      inputs: ["flatten.out", "fc.weight", "fc.bias"],
      outputs: [OUTPUT_NAME],
      attrs: { transB: { i: 0 } },
    },
  );
  inits.push(
    {
      name: "fc.weight",
      dataType: DataType.FLOAT,
      dims: [...fcLayer.weightDims],
      data: fcLayer.weight,
    },
    { name: "fc.bias", dataType: DataType.FLOAT, dims: [fcLayer.bias.length], data: fcLayer.bias },
  );
  return {
    irVersion: IR_VERSION,
    opsets: [{ domain: "", version: OPSET }],
    producerName: PRODUCER,
    producerVersion: "1",
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
    graph: {
      name: `${spec.arch}_a${spec.alpha}`,
      nodes,
      initializers: inits,
      inputs: [inputInfo(spec)],
      outputs: [
        outputInfo(spec),
        ...(opts.extraOutputs ?? []).map((name) => ({ name, elemType: DataType.FLOAT })),
      ],
    },
  };
}
