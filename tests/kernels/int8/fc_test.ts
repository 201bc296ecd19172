import assert from "node:assert/strict";
import { fcInt8, fcInt8ToFloat } from "../../../kernels/int8/fc.ts";

const params = {
  weights: Int8Array.from([1, -1, 2, 0, 3, -128]),
  outChannels: 2,
  weightScales: [0.5, 0.25],
  bias: Int32Array.from([4, 0]),
  inScale: 0.1,
  inZeroPoint: 2,
};

Deno.test("fcInt8ToFloat() dequantizes the accumulators with f32(inScale * wScale)", () => {
  // x - zp = [3, 0, 1]: acc0 = 3 + 0 + 2 + 4 = 9, acc1 = 0 + 0 - 128 = -128
  const y = fcInt8ToFloat(Uint8Array.from([5, 2, 3]), [1, 3], params);
  assert.equal(y[0], Math.fround(9 * Math.fround(0.1 * 0.5)));
  assert.equal(y[1], Math.fround(-128 * Math.fround(Math.fround(0.1) * 0.25)));
});

Deno.test("fcInt8() requantizes the accumulators to uint8", () => {
  // multipliers f32(0.05 / 0.05) = 1 and 0.5: 9 -> 109, -128 * 0.5 = -64 -> 36
  const y = fcInt8(Uint8Array.from([5, 2, 3]), [1, 3], {
    ...params,
    outScale: 0.05,
    outZeroPoint: 100,
  });
  assert.deepEqual(Array.from(y), [109, 36]);
  assert.throws(
    () => fcInt8(new Uint8Array(3), [1, 3], params),
    /outScale and outZeroPoint are missing/,
  );
});
