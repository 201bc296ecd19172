/**
 * A tiny classifier written with the project's ONNX writer, for tests that need a real ONNX file
 * without a trained model: `input` [batch, C, height, width] -> GlobalAveragePool -> Flatten ->
 * Gemm -> `logits` [batch, classes]. {@link tinyLogits} computes the same in plain TypeScript.
 */
import { DataType, encodeModel } from "../../model/export/onnx_writer.ts";

export interface TinyModel {
  onnx: Uint8Array;
  channels: number;
  classes: number;
  /** Gemm weight [channels, classes] and bias [classes]. */
  weight: Float32Array;
  bias: Float32Array;
}

/** Builds the model; `seed` changes the weights so two files differ. */
export function tinyModel(channels = 1, classes = 10, seed = 1): TinyModel {
  const weight = new Float32Array(channels * classes).map((_, i) => Math.sin(seed * 7 + i * 1.3));
  const bias = new Float32Array(classes).map((_, i) => 0.01 * i);
  const onnx = encodeModel({
    irVersion: 7,
    opsets: [{ domain: "", version: 13 }],
    producerName: "tests/runtime/tiny_model.ts",
    producerVersion: "1",
    graph: {
      name: "tiny",
      nodes: [
        { opType: "GlobalAveragePool", name: "pool", inputs: ["input"], outputs: ["pool.out"] },
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
          outputs: ["logits"],
        },
      ],
      initializers: [
        { name: "fc.weight", dataType: DataType.FLOAT, dims: [channels, classes], data: weight },
        { name: "fc.bias", dataType: DataType.FLOAT, dims: [classes], data: bias },
      ],
      inputs: [{
        name: "input",
        elemType: DataType.FLOAT,
        shape: ["batch", channels, "height", "width"],
      }],
      outputs: [{ name: "logits", elemType: DataType.FLOAT, shape: ["batch", classes] }],
    },
  });
  return { onnx, channels, classes, weight, bias };
}

/** The model's logits for one NCHW batch, in plain TypeScript (the spec of what ORT must give). */
export function tinyLogits(m: TinyModel, input: Float32Array, n: number, h: number, w: number) {
  const out = new Float32Array(n * m.classes);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < m.channels; c++) {
      let sum = 0;
      const base = (b * m.channels + c) * h * w;
      for (let i = 0; i < h * w; i++) sum += input[base + i]!;
      const mean = sum / (h * w);
      for (let k = 0; k < m.classes; k++) {
        out[b * m.classes + k]! += mean * m.weight[c * m.classes + k]!;
      }
    }
    for (let k = 0; k < m.classes; k++) out[b * m.classes + k]! += m.bias[k]!;
  }
  return out;
}
