import assert from "node:assert/strict";
import { pointwiseConv2dInt8 } from "../../../kernels/int8/pointwise.ts";

Deno.test("pointwiseConv2dInt8() is a GEMM over pixels with per-channel multipliers", () => {
  // 2 pixels x 2 channels; weights [[1, 2], [-1, 0]]; input zp 10; scales give multipliers 1 and 0.5
  const y = pointwiseConv2dInt8(Uint8Array.from([20, 30, 10, 10]), [1, 1, 2, 2], {
    weights: Int8Array.from([1, 2, -1, 0]),
    weightShape: [2, 2, 1, 1],
    weightScales: [1, 0.5],
    inScale: 1,
    inZeroPoint: 10,
    outScale: 1,
    outZeroPoint: 100,
  });
  // pixel 0: 10 + 2*20 = 50 -> 150; -10 * 0.5 = -5 -> 95. pixel 1: all zero -> 100, 100
  assert.deepEqual(Array.from(y), [150, 95, 100, 100]);
  assert.throws(
    () =>
      pointwiseConv2dInt8(new Uint8Array(4), [1, 1, 2, 2], {
        weights: new Int8Array(18),
        weightShape: [2, 1, 3, 3],
        weightScales: [1],
        inScale: 1,
        inZeroPoint: 0,
        outScale: 1,
        outZeroPoint: 0,
      }),
    /weights must be \[outC, 2, 1, 1\]/,
  );
});
