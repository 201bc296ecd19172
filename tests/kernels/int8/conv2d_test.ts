import assert from "node:assert/strict";
import { conv2dInt8, createConv2dPlan } from "../../../kernels/int8/conv2d.ts";

const unit = { weightScales: [1], inScale: 1, outScale: 1, outZeroPoint: 0 };
const ones3x3 = new Int8Array(9).fill(1);

Deno.test("conv2dInt8() sums a 3x3 window with SAME_UPPER padding holding the zero point", () => {
  // 3x3 image 1..9, box filter: corner = 1+2+4+5, centre = 45.
  const x = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const y = conv2dInt8(x, [1, 3, 3, 1], {
    ...unit,
    weights: ones3x3,
    weightShape: [1, 1, 3, 3],
    inZeroPoint: 0,
  });
  assert.deepEqual(Array.from(y), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
  // With input zero point 1 every real pixel counts x - 1 and padding counts 0.
  const y1 = conv2dInt8(x, [1, 3, 3, 1], {
    ...unit,
    weights: ones3x3,
    weightShape: [1, 1, 3, 3],
    inZeroPoint: 1,
  });
  assert.deepEqual(Array.from(y1), [8, 15, 12, 21, 36, 27, 20, 33, 24]);
});

Deno.test("conv2dInt8() with stride 2 puts SAME_UPPER's extra pad at the bottom and right", () => {
  // 4x4 input, stride 2: output 2x2, total pad 1 -> top/left 0, bottom/right 1.
  const x = Uint8Array.from({ length: 16 }, (_, i) => i);
  const plan = createConv2dPlan([1, 4, 4, 1], {
    ...unit,
    weights: ones3x3,
    weightShape: [1, 1, 3, 3],
    inZeroPoint: 0,
    strides: 2,
  });
  assert.equal(plan.padTop, 0);
  assert.equal(plan.padLeft, 0);
  assert.deepEqual([plan.outH, plan.outW], [2, 2]);
  const y = conv2dInt8(x, [1, 4, 4, 1], {
    ...unit,
    weights: ones3x3,
    weightShape: [1, 1, 3, 3],
    inZeroPoint: 0,
    strides: 2,
    hi: 255,
  });
  // out[0,0] = rows 0-2 x cols 0-2 = 0+1+2+4+5+6+8+9+10 = 45; out[1,1] = rows 2-3 x cols 2-3 = 10+11+14+15 = 50
  // out[0,1] = rows 0-2 x cols 2-3 = 39; out[1,0] = rows 2-3 x cols 0-2 = 66
  assert.deepEqual(Array.from(y), [45, 39, 66, 50]);
});

Deno.test("conv2dInt8() mixes input channels with OIHW weights and NHWC activations", () => {
  // 1x1 pixel, 2 channels [3, 5]; 2 outputs: w0 = [1, 2], w1 = [-1, 1] (1x1 kernel), bias [0, 10]
  const y = conv2dInt8(Uint8Array.from([3, 5]), [1, 1, 1, 2], {
    ...unit,
    weights: Int8Array.from([1, 2, -1, 1]),
    weightShape: [2, 2, 1, 1],
    bias: Int32Array.from([0, 10]),
    inZeroPoint: 0,
    outZeroPoint: 100,
  });
  assert.deepEqual(Array.from(y), [113, 112]);
});

Deno.test("createConv2dPlan() rejects bad shapes, groups and overflow-prone weights with the value", () => {
  const p = { ...unit, weights: ones3x3, weightShape: [1, 1, 3, 3] as const, inZeroPoint: 0 };
  assert.throws(
    () => createConv2dPlan([1, 3, 3] as unknown as [1, 3, 3, 1], p),
    /must have 4 dims \(NHWC\): current shape is \[1,3,3\]/,
  );
  assert.throws(() => createConv2dPlan([1, 3, 3, 2], p), TypeError);
  assert.throws(
    () => createConv2dPlan([1, 3, 3, 1], { ...p, inZeroPoint: 256 }),
    /input zero point .* current value is 256/,
  );
  assert.throws(
    () =>
      createConv2dPlan([1, 1, 1, 300], {
        ...p,
        weights: new Uint8Array(300).fill(255),
        weightShape: [1, 300, 1, 1],
        weightZeroPoints: [-32000],
      }),
    /int32 accumulator could overflow/,
  );
  assert.throws(
    () => createConv2dPlan([1, 2, 2, 1], { ...p, padding: "valid" }),
    /output would be empty/,
  );
});
