import assert from "node:assert/strict";
import { decodeModel } from "../../../model/export/onnx_writer.ts";
import { readOnnxModel, readOnnxTensor } from "../../../runtime/engine/onnx_reader.ts";
import { buildQdqFixture } from "./qdq_fixture.ts";

Deno.test("readOnnxModel() decodes the same graph as the exporter's protobufjs decoder", () => {
  const bytes = buildQdqFixture({ inputChannels: 3 });
  const mine = readOnnxModel(bytes);
  const theirs = decodeModel(bytes);
  assert.equal(mine.irVersion, theirs.irVersion);
  assert.deepEqual(mine.opsets, theirs.opsets);
  assert.deepEqual(mine.graph.inputs, theirs.graph.inputs);
  assert.deepEqual(mine.graph.outputs, theirs.graph.outputs);
  assert.deepEqual(mine.graph.nodes, theirs.graph.nodes);
  assert.equal(mine.graph.initializers.length, theirs.graph.initializers.length);
  mine.graph.initializers.forEach((t, i) => {
    const u = theirs.graph.initializers[i]!;
    assert.equal(t.name, u.name);
    assert.equal(t.dataType, u.dataType);
    assert.deepEqual(t.dims, u.dims);
    assert.deepEqual(
      Array.from(t.data as ArrayLike<number>),
      Array.from(u.data as ArrayLike<number>),
      t.name,
    );
  });
});

Deno.test("readOnnxTensor() decodes ONNX test data and negative int64 attributes survive", async () => {
  const t = readOnnxTensor(
    await Deno.readFile(
      "/usr/share/libonnx-testdata/data/node/test_qlinearconv/test_data_set_0/input_0.pb",
    ),
  );
  assert.deepEqual(t.dims, [1, 1, 7, 7]);
  assert.equal(t.name, "x");
  assert.equal(t.data[0], 255);
  // Flatten's axis as a negative int64 (10-byte varint) through a model round trip
  const bytes = buildQdqFixture();
  const m = decodeModel(bytes);
  const flat = m.graph.nodes.find((n) => n.opType === "Flatten")!;
  flat.attrs = { axis: { i: -1 } };
  const { encodeModel } = await import("../../../model/export/onnx_writer.ts");
  const back = readOnnxModel(encodeModel(m)).graph.nodes.find((n) => n.opType === "Flatten")!;
  assert.deepEqual(back.attrs, { axis: { i: -1 } });
  assert.throws(() => readOnnxModel(new Uint8Array([0x08, 0x07])), /has no graph/);
});
