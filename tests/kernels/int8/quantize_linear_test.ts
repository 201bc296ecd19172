import assert from "node:assert/strict";
import { quantizeNchwToNhwc, quantizeValue } from "../../../kernels/int8/quantize_linear.ts";
import { ONNX_NODE_DIR } from "./conformance.ts";
import { readOnnxTestCase } from "./onnx_tensor.ts";

Deno.test("quantizeValue() matches ONNX's test_quantizelinear (ties to even, saturation)", async () => {
  const { inputs, outputs } = await readOnnxTestCase(`${ONNX_NODE_DIR}/test_quantizelinear`);
  const [x, scale, zp] = inputs as [typeof inputs[0], typeof inputs[0], typeof inputs[0]];
  const got = Array.from(x!.data, (v) => quantizeValue(v, scale!.data[0]!, zp!.data[0]!));
  assert.deepEqual(got, Array.from(outputs[0]!.data));
});

Deno.test("quantizeNchwToNhwc() interleaves channels and divides in float32", () => {
  assert.deepEqual(
    Array.from(
      quantizeNchwToNhwc(new Float32Array([0, 1, 2, 3]), [1, 2, 1, 2], { scale: 1, zeroPoint: 0 }),
    ),
    [0, 2, 1, 3],
  );
  // in float32, 0.3 / 0.1 rounds to exactly 3 and 0.25 / 0.1 to exactly 2.5, which ties to 2
  assert.deepEqual(
    Array.from(
      quantizeNchwToNhwc(new Float32Array([0.3, 0.25, -1e9, 1e9]), [1, 1, 2, 2], {
        scale: 0.1,
        zeroPoint: 10,
      }),
    ),
    [13, 12, 0, 255],
  );
  assert.throws(
    () => quantizeNchwToNhwc(new Float32Array(3), [1, 1, 2, 2], { scale: 1, zeroPoint: 0 }),
    /must hold 4 values/,
  );
});
