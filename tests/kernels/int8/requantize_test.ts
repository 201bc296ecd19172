import assert from "node:assert/strict";
import {
  activationRange,
  requantize,
  requantizeValue,
  requantMultipliers,
  roundHalfEven,
} from "../../../kernels/int8/requantize.ts";

Deno.test("roundHalfEven() rounds ties to the even neighbour in both directions", () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [3.5, 4],
    [-0.5, 0],
    [-1.5, -2],
    [
      -2.5,
      -2,
    ],
    [2.4999, 2],
    [2.5001, 3],
    [-7, -7],
  ];
  for (const [x, want] of cases) assert.equal(roundHalfEven(x) + 0, want, `roundHalfEven(${x})`);
});

Deno.test("requantMultipliers() computes f32(f32(inScale * wScale) / outScale) as onnxruntime does", () => {
  // Float32Array stores round every intermediate to float32: an independent way to do f32 math.
  const f = new Float32Array([0.1, 0.7, 0.3, 0.013]);
  const t = new Float32Array(1);
  const m = requantMultipliers(0.1, [0.7, 0.013], 0.3);
  t[0] = f[0]! * f[1]!;
  t[0] = t[0]! / f[2]!;
  assert.equal(m[0], t[0]);
  t[0] = f[0]! * f[3]!;
  t[0] = t[0]! / f[2]!;
  assert.equal(m[1], t[0]);
  assert.throws(() => requantMultipliers(0, [1], 1), RangeError);
  assert.throws(() => requantMultipliers(1, [1, 2, 3], 1, 2), /1 or 2 entries/);
});

Deno.test("requantizeValue() rounds half to even after the float32 product and clamps to [lo, hi]", () => {
  assert.equal(requantizeValue(3, 0.5, 10, 0, 255), 12); // 1.5 -> 2
  assert.equal(requantizeValue(5, 0.5, 10, 0, 255), 12); // 2.5 -> 2
  assert.equal(requantizeValue(-5, 0.5, 10, 0, 255), 8); // -2.5 -> -2
  assert.equal(requantizeValue(1000, 1, 10, 0, 255), 255);
  assert.equal(requantizeValue(-1000, 1, 10, 0, 255), 0);
  assert.equal(requantizeValue(-3, 1, 10, 10, 255), 10); // ReLU folded: lo = zp
  // int32 -> float32 conversion first: 2^24 + 3 becomes 2^24 + 4 (tie to even), times 2^-2 is
  // 4194305 exactly; clamped by hi. Below 2^24 every integer converts exactly.
  assert.equal(requantizeValue(2 ** 24 + 3, 2 ** -24, 0, 0, 255), 1);
  assert.equal(requantizeValue(2 ** 23 * 3, 2 ** -23, 0, 0, 255), 3);
});

Deno.test("requantize() adds the bias per channel and uses one multiplier per channel", () => {
  const out = requantize(new Int32Array([100, -100, 7, 9]), [2, 2], {
    multipliers: [0.05, 0.5],
    bias: new Int32Array([0, 1]),
    zeroPoint: 128,
  });
  // row 0: 100*0.05 = 5 -> 133; (-100+1)*0.5 = -49.5 -> -50 -> 78
  // row 1: 7*0.05 = 0.35 -> 0 -> 128; (9+1)*0.5 = 5 -> 133
  assert.deepEqual(Array.from(out), [133, 78, 128, 133]);
  assert.throws(
    () => requantize(new Int32Array(3), [2, 2], { multipliers: [1], zeroPoint: 0 }),
    /must hold 2x2 values: current length is 3/,
  );
  assert.throws(
    () => requantize(new Int32Array(4), [2, 2], { multipliers: [1], zeroPoint: 300 }),
    RangeError,
  );
});

Deno.test("activationRange() folds ReLU into lo and ReLU6 into hi = q(6)", () => {
  assert.deepEqual(activationRange("none", { scale: 0.1, zeroPoint: 7 }), { lo: 0, hi: 255 });
  assert.deepEqual(activationRange("relu", { scale: 0.1, zeroPoint: 7 }), { lo: 7, hi: 255 });
  assert.deepEqual(activationRange("relu6", { scale: 0.05, zeroPoint: 10 }), { lo: 10, hi: 130 });
  assert.deepEqual(activationRange("relu6", { scale: 6 / 255, zeroPoint: 0 }), { lo: 0, hi: 255 });
});
