import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import {
  DataType,
  decodeModel,
  encodeModel,
  type OnnxModel,
} from "../../../model/export/onnx_writer.ts";

const tiny: OnnxModel = {
  irVersion: 7,
  opsets: [{ domain: "", version: 13 }],
  producerName: "test",
  producerVersion: "1",
  metadata: { note: "hello" },
  graph: {
    name: "tiny",
    nodes: [
      {
        opType: "Conv",
        name: "conv",
        inputs: ["x", "w", "b"],
        outputs: ["y"],
        attrs: {
          auto_pad: { s: "SAME_UPPER" },
          strides: { ints: [2, 2] },
          kernel_shape: { ints: [3, 3] },
          group: { i: 1 },
        },
      },
      {
        opType: "Clip",
        name: "clip",
        inputs: ["y", "lo", "hi"],
        outputs: ["z"],
      },
    ],
    initializers: [
      {
        name: "w",
        dataType: DataType.FLOAT,
        dims: [2, 1, 3, 3],
        data: new Float32Array(18).fill(1),
      },
      { name: "b", dataType: DataType.FLOAT, dims: [2], data: new Float32Array([0.5, -100]) },
      { name: "lo", dataType: DataType.FLOAT, dims: [], data: new Float32Array([0]) },
      { name: "hi", dataType: DataType.FLOAT, dims: [], data: new Float32Array([6]) },
      { name: "u8", dataType: DataType.UINT8, dims: [2], data: new Uint8Array([0, 255]) },
      { name: "s8", dataType: DataType.INT8, dims: [2], data: new Int8Array([-128, 127]) },
      { name: "s32", dataType: DataType.INT32, dims: [1], data: new Int32Array([-123456789]) },
      { name: "s64", dataType: DataType.INT64, dims: [1], data: new BigInt64Array([-5n]) },
    ],
    inputs: [{ name: "x", elemType: DataType.FLOAT, shape: ["batch", 1, "height", "width"] }],
    outputs: [{ name: "z", elemType: DataType.FLOAT, shape: ["batch", 2, "oh", "ow"] }],
  },
};

Deno.test("encodeModel() then decodeModel() gives back nodes, attributes, typed initializers and symbolic dims", () => {
  const back = decodeModel(encodeModel(tiny));
  assert.equal(back.irVersion, 7);
  assert.deepEqual(back.opsets, [{ domain: "", version: 13 }]);
  assert.deepEqual(back.metadata, { note: "hello" });
  assert.deepEqual(back.graph.inputs, tiny.graph.inputs);
  assert.deepEqual(back.graph.outputs, tiny.graph.outputs);
  assert.deepEqual(back.graph.nodes[0]!.attrs, tiny.graph.nodes[0]!.attrs);
  assert.equal(back.graph.nodes[1]!.opType, "Clip");
  for (const t of tiny.graph.initializers) {
    const b = back.graph.initializers.find((x) => x.name === t.name)!;
    assert.equal(b.dataType, t.dataType, t.name);
    assert.deepEqual(b.dims, t.dims, t.name);
    assert.deepEqual(
      Array.from(b.data as ArrayLike<number | bigint>),
      Array.from(t.data as ArrayLike<number | bigint>),
      t.name,
    );
  }
});

Deno.test("a model from encodeModel() runs in onnxruntime-node with SAME_UPPER padding at odd sizes", async () => {
  const m = structuredClone(tiny);
  m.graph.initializers = m.graph.initializers.slice(0, 4);
  const s = await ort.InferenceSession.create(encodeModel(m));
  // 5x5 ones, stride 2, SAME_UPPER: 3x3 output, total pad 2 split 1/1.
  const out = await s.run({
    x: new ort.Tensor("float32", new Float32Array(25).fill(1), [1, 1, 5, 5]),
  });
  const z = out.z!;
  assert.deepEqual(z.dims, [1, 2, 3, 3]);
  // Channel 0: window sums 4, 6, 4 / 6, 9, 6 / 4, 6, 4 plus 0.5 bias, then Clip to 6.
  assert.deepEqual(Array.from(z.data as Float32Array).slice(0, 9), [
    4.5,
    6,
    4.5,
    6,
    6,
    6,
    4.5,
    6,
    4.5,
  ]);
  assert.deepEqual(Array.from(z.data as Float32Array).slice(9), new Array(9).fill(0));
  // 4x4 input, stride 2: total pad 1, all of it at the bottom/right (SAME_UPPER).
  const out4 = await s.run({
    x: new ort.Tensor("float32", new Float32Array(16).fill(1), [1, 1, 4, 4]),
  });
  assert.deepEqual(Array.from(out4.z!.data as Float32Array).slice(0, 4), [6, 6, 6, 4.5]);
  await s.release();
});

const QLINEARCONV = "/usr/share/libonnx-testdata/data/node/test_qlinearconv/model.onnx";
const hasTestdata = await Deno.stat(QLINEARCONV).then(() => true, () => false);

Deno.test({
  name: "decodeModel() reads ONNX's own test_qlinearconv model (libonnx-testdata)",
  ignore: !hasTestdata,
  fn: async () => {
    const m = decodeModel(await Deno.readFile(QLINEARCONV));
    assert.equal(m.graph.nodes.length, 1);
    assert.equal(m.graph.nodes[0]!.opType, "QLinearConv");
    assert.equal(m.graph.nodes[0]!.inputs.length, 8);
    // Re-encoding what was read gives a model onnxruntime accepts.
    const s = await ort.InferenceSession.create(encodeModel(m));
    assert.deepEqual(s.inputNames, m.graph.inputs.map((i) => i.name));
    await s.release();
  },
});
