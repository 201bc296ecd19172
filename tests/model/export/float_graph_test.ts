import assert from "node:assert/strict";
import * as ortNode from "onnxruntime-node";
import { foldModel } from "../../../model/export/fold_bn.ts";
import { buildFloatModel } from "../../../model/export/float_graph.ts";
import { decodeModel, encodeModel } from "../../../model/export/onnx_writer.ts";
import { inputBatch, maxAbsDiff, webLogits } from "../../../model/export/pipeline.ts";
import { referenceForward } from "../../../model/export/reference.ts";
import { makeTestModel } from "./test_model.ts";

const m = await makeTestModel();
const bytes = encodeModel(buildFloatModel(m.spec, foldModel(m.spec, m.tensors)));
/** Float32 reassociation over 28 layers: differences stay near 1e-6 of the logits' magnitude. */
const FLOAT_RTOL = 1e-5;

Deno.test("the float ONNX declares input [batch,1,height,width] and output logits [batch,10]", () => {
  const g = decodeModel(bytes).graph;
  assert.deepEqual(g.inputs, [{
    name: "input",
    elemType: 1,
    shape: ["batch", 1, "height", "width"],
  }]);
  assert.deepEqual(g.outputs, [{ name: "logits", elemType: 1, shape: ["batch", 10] }]);
  const ops = g.nodes.map((n) => n.opType);
  assert.equal(ops.filter((o) => o === "Conv").length, 27);
  assert.equal(ops.filter((o) => o === "Relu").length, 27);
  assert.deepEqual(ops.slice(-3), ["GlobalAveragePool", "Flatten", "Gemm"]);
  assert.ok(!ops.includes("BatchNormalization"), "batch norm must be folded");
});

for (const res of [28, 21, 14]) {
  Deno.test(`the float ONNX in onnxruntime-node and -web equals the TypeScript reference on real images at ${res}x${res}`, async () => {
    const idx = [0, 1, 2, 3];
    const plan = { ...m.plan, resolution: res };
    const x = inputBatch(m.test, idx, plan);
    const shape: [number, number, number, number] = [4, 1, res, res];
    const ref = referenceForward(m.spec, m.tensors, { data: x, shape });
    const s = await ortNode.InferenceSession.create(bytes);
    const node = (await s.run({ input: new ortNode.Tensor("float32", x, shape) })).logits!;
    await s.release();
    assert.deepEqual(node.dims, [4, 10]);
    const web = await webLogits(bytes, x, shape);
    const tol = FLOAT_RTOL * Math.max(1, ...Array.from(ref, Math.abs));
    const dNode = maxAbsDiff(ref, node.data as Float32Array);
    const dWeb = maxAbsDiff(ref, web);
    assert.ok(dNode < tol, `onnxruntime-node max abs logit diff ${dNode} (tolerance ${tol})`);
    assert.ok(dWeb < tol, `onnxruntime-web max abs logit diff ${dWeb} (tolerance ${tol})`);
    // The comparison means something: the logits differ between images. (At 14x14 this random
    // network's activations die before the head, so only the larger sizes are checked.)
    if (res >= 21) assert.ok(maxAbsDiff(ref.subarray(10, 20), ref.subarray(20, 30)) > 1e-2);
  });
}
