import assert from "node:assert/strict";
import { createDepthwisePlan, depthwiseConv2dInt8 } from "../../../kernels/int8/depthwise.ts";

Deno.test("depthwiseConv2dInt8() filters each channel with its own [1, k, k] kernel", () => {
  // 3x3 image, 2 channels interleaved (NHWC): ch0 = 1..9, ch1 = all 4.
  const x = new Uint8Array(18);
  for (let i = 0; i < 9; i++) {
    x[2 * i] = i + 1;
    x[2 * i + 1] = 4;
  }
  const w = new Int8Array(18);
  w.fill(1, 0, 9); // ch0: box filter
  w[9 + 4] = 2; // ch1: 2 x centre
  const y = depthwiseConv2dInt8(x, [1, 3, 3, 2], {
    weights: w,
    weightShape: [2, 1, 3, 3],
    weightScales: [1],
    inScale: 1,
    inZeroPoint: 0,
    outScale: 1,
    outZeroPoint: 0,
    strides: 2,
  });
  // stride 2 on 3x3: output 2x2, pad total 1 -> top/left 1... ceil(3/2) = 2, total = (2-1)*2+3-3 = 2 -> 1 each side
  assert.deepEqual(Array.from(y), [12, 8, 16, 8, 24, 8, 28, 8]);
  assert.throws(
    () =>
      createDepthwisePlan([1, 3, 3, 2], {
        weights: w,
        weightShape: [2, 2, 3, 3],
        weightScales: [1],
        inScale: 1,
        inZeroPoint: 0,
        outScale: 1,
        outZeroPoint: 0,
      }),
    /weights must be \[2, 1, k, k\]/,
  );
});
