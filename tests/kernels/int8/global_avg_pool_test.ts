import assert from "node:assert/strict";
import { globalAvgPoolInt8 } from "../../../kernels/int8/global_avg_pool.ts";

Deno.test("globalAvgPoolInt8() averages each channel and rounds the mean half to even", () => {
  // channel 0: 1,2,3,4 -> 2.5 -> 2 (tie to even); channel 1: 2,2,2,3 -> 2.25 -> 2; zp 0
  const x = Uint8Array.from([1, 2, 2, 2, 3, 2, 4, 3]);
  const params = { input: { scale: 1, zeroPoint: 0 }, output: { scale: 1, zeroPoint: 0 } };
  assert.deepEqual(Array.from(globalAvgPoolInt8(x, [1, 2, 2, 2], params)), [2, 2]);
  // input zero point 1, output zero point 50, output scale 0.5: (mean - 1) * 2 + 50
  const y = globalAvgPoolInt8(x, [1, 2, 2, 2], {
    input: { scale: 1, zeroPoint: 1 },
    output: { scale: 0.5, zeroPoint: 50 },
  });
  assert.deepEqual(Array.from(y), [53, 52]);
  assert.throws(
    () => globalAvgPoolInt8(x, [1, 2, 2, 3], params),
    /must hold 1x4x3 values: current length is 8/,
  );
});
