import assert from "node:assert/strict";
import type { ConvLayer } from "../../../model/spec.ts";
import { BN_EPSILON, type NamedTensors } from "../../../model/weights.ts";
import { foldConv } from "../../../model/export/fold_bn.ts";

const conv = (groups: number, inC: number, outC: number): ConvLayer => ({
  kind: "conv",
  name: "c",
  role: groups > 1 ? "depthwise" : "pointwise",
  inShape: [inC, 4, 4],
  outShape: [outC, 4, 4],
  kernel: 1,
  stride: 1,
  groups,
  batchNorm: true,
  bias: false,
  activation: "relu",
});

function bn(
  t: NamedTensors,
  c: number,
  gamma: number[],
  beta: number[],
  mean: number[],
  variance: number[],
) {
  t.set("c/bn/gamma", { shape: [c], data: Float32Array.from(gamma) });
  t.set("c/bn/beta", { shape: [c], data: Float32Array.from(beta) });
  t.set("c/bn/moving_mean", { shape: [c], data: Float32Array.from(mean) });
  t.set("c/bn/moving_variance", { shape: [c], data: Float32Array.from(variance) });
}

Deno.test("foldConv() scales each output channel by gamma/sqrt(var+eps) and turns [kh,kw,in,out] into OIHW", () => {
  const t: NamedTensors = new Map();
  // 1x1 kernel, 2 in, 3 out: tfjs [1,1,2,3], value = 10*in + out.
  t.set("c/kernel", { shape: [1, 1, 2, 3], data: Float32Array.from([0, 1, 2, 10, 11, 12]) });
  bn(t, 3, [1, 2, 3], [0.5, 0, -1], [1, 0, 2], [1 - BN_EPSILON, 4 - BN_EPSILON, 9 - BN_EPSILON]);
  const f = foldConv(t, conv(1, 2, 3));
  assert.deepEqual(f.weightDims, [3, 2, 1, 1]);
  // scale = gamma / sqrt(var + eps) = [1, 1, 1]; OIHW[o][i] = tfjs[i][o].
  const w = Array.from(f.weight, (v) => Math.round(v * 1e5) / 1e5);
  assert.deepEqual(w, [0, 10, 1, 11, 2, 12]);
  // bias = beta - mean * scale.
  assert.deepEqual(Array.from(f.bias, (v) => Math.round(v * 1e5) / 1e5), [-0.5, 0, -3]);
});

Deno.test("foldConv() reads depthwise kernels [kh,kw,C,1] as OIHW [C,1,kh,kw]", () => {
  const t: NamedTensors = new Map();
  t.set("c/kernel", { shape: [1, 1, 2, 1], data: Float32Array.from([3, 5]) });
  bn(t, 2, [2, 1], [0, 0], [0, 0], [1 - BN_EPSILON, 1 - BN_EPSILON]);
  const f = foldConv(t, conv(2, 2, 2));
  assert.deepEqual(f.weightDims, [2, 1, 1, 1]);
  assert.deepEqual(Array.from(f.weight, (v) => Math.round(v * 1e5) / 1e5), [6, 5]);
});

Deno.test("foldConv() names the tensor and both shapes when the checkpoint disagrees with the spec", () => {
  const t: NamedTensors = new Map();
  t.set("c/kernel", { shape: [1, 1, 3, 3], data: new Float32Array(9) });
  assert.throws(
    () => foldConv(t, conv(1, 2, 3)),
    /c\/kernel as the spec needs shape \[1,1,2,3\]: current shape is \[1,1,3,3\]/,
  );
  assert.throws(() => foldConv(new Map(), conv(1, 2, 3)), /Cannot find tensor c\/kernel/);
});
