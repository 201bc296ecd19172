import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "../../../model/train/backend.ts";
import { conv2dBackpropFilter } from "../../../kernels/grad/conv2d_backprop_filter.ts";
import { convInfo } from "../../../kernels/grad/composed.ts";
import { geometryOf } from "../../../kernels/grad/conv_geometry.ts";
import { depthwiseBackpropFilter } from "../../../kernels/grad/depthwise_backprop_filter.ts";
import { depthwiseBackpropInput } from "../../../kernels/grad/depthwise_backprop_input.ts";
import { registerOwnGradKernels } from "../../../kernels/grad/register.ts";
import { registerComposedGradKernels } from "../../../kernels/grad/composed.ts";
import {
  dwBackpropFilterWasm,
  dwBackpropInputWasm,
  pwBackpropFilterWasm,
} from "../../../kernels/grad/grad_wasm.ts";
import { bnActTrain } from "../../../kernels/grad/bn_act.ts";
import { buildGradWasm } from "../../../kernels/grad/build.ts";
import { batchNormTrain } from "../../../model/train/mobilenet.ts";
import { Rng } from "../../../model/train/rng.ts";

/** Allowed difference, relative to the reference tensor's largest magnitude (issue #3: 1e-5). */
const RTOL = 1e-5;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= RTOL * scale)) {
      assert.fail(
        `${what}: index ${i}: ${actual[i]} vs ${expected[i]} (|d| ${d} > ${RTOL} x ${scale})`,
      );
    }
  }
}

function rand(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

interface Case {
  name: string;
  x: [number, number, number, number];
  k: number;
  cout: number;
  stride: number;
  pad: "same" | "valid";
}

const DW_CASES: Case[] = [
  { name: "3x3 s1 same 7x7x5", x: [2, 7, 7, 5], k: 3, cout: 5, stride: 1, pad: "same" },
  { name: "3x3 s1 same 1x1x4 (one pixel)", x: [2, 1, 1, 4], k: 3, cout: 4, stride: 1, pad: "same" },
  { name: "3x3 s1 same 2x3x12", x: [2, 2, 3, 12], k: 3, cout: 12, stride: 1, pad: "same" },
  { name: "3x3 s2 same 8x8x4", x: [2, 8, 8, 4], k: 3, cout: 4, stride: 2, pad: "same" },
  { name: "3x3 s2 same odd 7x9x3", x: [1, 7, 9, 3], k: 3, cout: 3, stride: 2, pad: "same" },
  { name: "5x5 s1 valid 9x9x2", x: [3, 9, 9, 2], k: 5, cout: 2, stride: 1, pad: "valid" },
  { name: "3x3 s2 valid 9x8x6", x: [2, 9, 8, 6], k: 3, cout: 6, stride: 2, pad: "valid" },
  {
    name: "3x3 s1 same batch 64 16x16x8 (long sums)",
    x: [64, 16, 16, 8],
    k: 3,
    cout: 8,
    stride: 1,
    pad: "same",
  },
  {
    name: "3x3 s2 same 1x1x12 (taps off the image)",
    x: [2, 1, 1, 12],
    k: 3,
    cout: 12,
    stride: 2,
    pad: "same",
  },
  {
    name: "5x5 s2 same 2x3x9 (wide kernel, tiny image)",
    x: [3, 2, 3, 9],
    k: 5,
    cout: 9,
    stride: 2,
    pad: "same",
  },
  {
    name: "3x3 s1 same 6x5x20 (8- and 4-wide channel steps)",
    x: [2, 6, 5, 20],
    k: 3,
    cout: 20,
    stride: 1,
    pad: "same",
  },
];

const CONV_CASES: Case[] = [
  { name: "3x3 s1 same cin1 cout8", x: [2, 8, 8, 1], k: 3, cout: 8, stride: 1, pad: "same" },
  { name: "3x3 s2 same cin3 cout5 odd", x: [2, 9, 7, 3], k: 3, cout: 5, stride: 2, pad: "same" },
  { name: "3x3 s2 valid cin2 cout4", x: [1, 8, 8, 2], k: 3, cout: 4, stride: 2, pad: "valid" },
];

Deno.test("depthwise backprop filter and input match tfjs's cpu backend to 1e-5", async () => {
  await tf.setBackend("cpu");
  const rng = new Rng(3);
  for (const c of DW_CASES) {
    const fs: [number, number, number, number] = [c.k, c.k, c.x[3], 1];
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1, filterShape: fs, inputShape: c.x };
    const ci = convInfo(c.x, fs, attrs, true);
    const g = geometryOf(ci);
    const x = rand(c.x.reduce((a, b) => a * b), rng);
    const dy = rand(c.x[0] * ci.outHeight * ci.outWidth * c.x[3], rng);
    const w = rand(fs.reduce((a, b) => a * b), rng);
    const xt = tf.tensor4d(x, c.x);
    const dyt = tf.tensor4d(dy, [c.x[0], ci.outHeight, ci.outWidth, c.x[3]]);
    const wt = tf.tensor4d(w, fs);
    const refF = tf.engine().runKernel(
      tf.DepthwiseConv2dNativeBackpropFilter,
      { x: xt, dy: dyt },
      attrs,
    ) as tf.Tensor;
    const refI = tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropInput, {
      dy: dyt,
      filter: wt,
    }, attrs) as tf.Tensor;
    const outF = new Float32Array(w.length);
    depthwiseBackpropFilter(x, dy, g, outF);
    assertClose(outF, refF.dataSync(), `filter ${c.name}`);
    const outI = new Float32Array(x.length);
    depthwiseBackpropInput(dy, w, g, outI);
    assertClose(outI, refI.dataSync(), `input ${c.name}`);
    const wasmF = new Float32Array(w.length);
    dwBackpropFilterWasm(x, dy, g, wasmF);
    assertClose(wasmF, refF.dataSync(), `wasm filter ${c.name}`);
    const wasmI = new Float32Array(x.length);
    dwBackpropInputWasm(dy, w, g, wasmI);
    assertClose(wasmI, refI.dataSync(), `wasm input ${c.name}`);
    tf.dispose([xt, dyt, wt, refF, refI]);
  }
});

Deno.test("conv2d backprop filter matches tfjs's cpu backend to 1e-5", async () => {
  await tf.setBackend("cpu");
  const rng = new Rng(4);
  for (const c of CONV_CASES) {
    const fs: [number, number, number, number] = [c.k, c.k, c.x[3], c.cout];
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: "NHWC", filterShape: fs };
    const ci = convInfo(c.x, fs, { strides: c.stride, pad: c.pad }, false);
    const x = rand(c.x.reduce((a, b) => a * b), rng);
    const dy = rand(c.x[0] * ci.outHeight * ci.outWidth * c.cout, rng);
    const xt = tf.tensor4d(x, c.x);
    const dyt = tf.tensor4d(dy, [c.x[0], ci.outHeight, ci.outWidth, c.cout]);
    const ref = tf.engine().runKernel(
      tf.Conv2DBackpropFilter,
      { x: xt, dy: dyt },
      attrs,
    ) as tf.Tensor;
    const out = new Float32Array(fs.reduce((a, b) => a * b));
    conv2dBackpropFilter(x, dy, geometryOf(ci), out);
    assertClose(out, ref.dataSync(), c.name);
    tf.dispose([xt, dyt, ref]);
  }
});

/** Gradients of sum(r * relu(dw(pw(conv(x))))) with respect to x and all filters. */
function graphGrads(
  x: Float32Array,
  ws: Float32Array[],
  r: Float32Array,
  stride: number,
): Float32Array[] {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [2, 9, 9, 3]);
    const w1 = tf.tensor4d(ws[0]!, [3, 3, 3, 6]);
    const w2 = tf.tensor4d(ws[1]!, [3, 3, 6, 1]);
    const w3 = tf.tensor4d(ws[2]!, [1, 1, 6, 4]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D, c: tf.Tensor4D, d: tf.Tensor4D) => {
      const h1 = tf.relu(tf.conv2d(a, b, stride, "same"));
      const h2 = tf.relu(tf.depthwiseConv2d(h1, c, stride, "same"));
      const h3 = tf.conv2d(h2, d, 1, "same");
      return tf.sum(tf.mul(h3, tf.tensor(r, h3.shape)));
    };
    const grads = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([xt, w1, w2, w3]);
    return grads.map((g) => g.dataSync() as Float32Array);
  });
}

Deno.test("registered own and composed kernels give the cpu backend's gradients through tf.grads", async () => {
  const rng = new Rng(5);
  const x = rand(2 * 9 * 9 * 3, rng);
  const ws = [rand(3 * 3 * 3 * 6, rng), rand(3 * 3 * 6, rng), rand(6 * 4, rng)];
  for (const stride of [1, 2]) {
    const oh = stride === 1 ? 9 : 3;
    const r = rand(2 * oh * oh * 4, rng);
    await tf.setBackend("cpu");
    const ref = graphGrads(x, ws, r, stride);
    await tf.setBackend("wasm");
    for (
      const [name, register] of [["own", registerOwnGradKernels], [
        "composed",
        registerComposedGradKernels,
      ]] as const
    ) {
      register("wasm");
      const got = graphGrads(x, ws, r, stride);
      ref.forEach((g, i) => assertClose(got[i]!, g, `${name} stride ${stride} grad ${i}`));
    }
  }
});

Deno.test("fused batch norm + relu/relu6/none (grad.wasm) matches the tfjs formulation on the cpu backend", async () => {
  await tf.setBackend("cpu");
  for (const shape of [[4, 5, 6, 7], [6, 2, 2, 132]] as [number, number, number, number][]) {
    const rng = new Rng(6);
    const size = shape.reduce((a, b) => a * b);
    const c = shape[3];
    const x = tf.tensor4d(Float32Array.from({ length: size }, () => rng.normal() * 3 + 2), shape);
    const gamma = tf.tensor1d(Float32Array.from({ length: c }, () => rng.uniform(0.5, 2)));
    const beta = tf.tensor1d(Float32Array.from({ length: c }, () => rng.normal()));
    const r = tf.tensor4d(Float32Array.from({ length: size }, () => rng.normal()), shape);
    const acts = { none: (t: tf.Tensor) => t, relu: tf.relu, relu6: tf.relu6 } as const;
    for (const act of ["none", "relu", "relu6"] as const) {
      const fused = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(bnActTrain(a, g, b, act, 1e-3), r));
      const plain = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(acts[act](batchNormTrain(a, g, b)), r));
      assertClose(
        bnActTrain(x, gamma, beta, act, 1e-3).dataSync(),
        acts[act](batchNormTrain(x, gamma, beta)).dataSync(),
        `${act} forward`,
      );
      const gf = tf.grads(fused)([x, gamma, beta]);
      const gp = tf.grads(plain)([x, gamma, beta]);
      gf.forEach((g, i) =>
        assertClose(g.dataSync(), gp[i]!.dataSync(), `${act} [${shape}] grad ${i}`)
      );
    }
  }
});

Deno.test("grad.wasm rebuilds byte for byte from its AssemblyScript source and imports only its memory", async () => {
  const built = await buildGradWasm();
  const committed = await Deno.readFile(
    new URL("../../../kernels/grad/grad.wasm", import.meta.url),
  );
  assert.deepEqual(built, committed);
  // The one import is the memory it runs on (tfjs's wasm heap in training, no copies).
  assert.deepEqual(WebAssembly.Module.imports(new WebAssembly.Module(committed)), [
    { module: "env", name: "memory", kind: "memory" },
  ]);
});

Deno.test("pointwise backprop filter (grad.wasm) matches tfjs's cpu backend to 1e-5", async () => {
  await tf.setBackend("cpu");
  const rng = new Rng(7);
  // Register tiles (4 x 16), remainder channels, and a long batch sum.
  for (const [n, h, cin, cout] of [[2, 4, 8, 16], [3, 5, 6, 21], [8, 16, 32, 64], [1, 3, 3, 2]]) {
    const xShape: [number, number, number, number] = [n!, h!, h!, cin!];
    const fs: [number, number, number, number] = [1, 1, cin!, cout!];
    const x = rand(n! * h! * h! * cin!, rng);
    const dy = rand(n! * h! * h! * cout!, rng);
    const xt = tf.tensor4d(x, xShape);
    const dyt = tf.tensor4d(dy, [n!, h!, h!, cout!]);
    const ref = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: xt, dy: dyt }, {
      strides: 1,
      pad: "same",
      dataFormat: "NHWC",
      filterShape: fs,
    }) as tf.Tensor;
    const out = new Float32Array(cin! * cout!);
    pwBackpropFilterWasm(x, dy, n! * h! * h!, cin!, cout!, out);
    assertClose(out, ref.dataSync(), `[${xShape}] -> ${cout}`);
    tf.dispose([xt, dyt, ref]);
  }
});

Deno.test("on the wasm heap (grad.wasm on tfjs's memory, no copies) the own kernels match the cpu backend to 1e-5", async () => {
  const rng = new Rng(8);
  const run = async (backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> => {
    await tf.setBackend(backend);
    if (backend === "wasm") registerOwnGradKernels("wasm");
    return tf.tidy(() => f().map((t) => t.dataSync() as Float32Array));
  };
  const both = async (what: string, f: () => tf.Tensor[]) => {
    const ref = await run("cpu", f);
    const got = await run("wasm", f);
    ref.forEach((r, i) => assertClose(got[i]!, r, `${what} output ${i}`));
  };
  for (const c of DW_CASES) {
    const fs: [number, number, number, number] = [c.k, c.k, c.x[3], 1];
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1, filterShape: fs, inputShape: c.x };
    const ci = convInfo(c.x, fs, attrs, true);
    const x = rand(c.x.reduce((a, b) => a * b), rng);
    const dy = rand(c.x[0] * ci.outHeight * ci.outWidth * c.x[3], rng);
    const w = rand(fs.reduce((a, b) => a * b), rng);
    await both(`depthwise ${c.name}`, () => {
      const dyt = tf.tensor4d(dy, [c.x[0], ci.outHeight, ci.outWidth, c.x[3]]);
      return [
        tf.depthwiseConv2d(tf.tensor4d(x, c.x), tf.tensor4d(w, fs), c.stride, c.pad),
        tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, {
          x: tf.tensor4d(x, c.x),
          dy: dyt,
        }, attrs) as tf.Tensor,
        tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropInput, {
          dy: dyt,
          filter: tf.tensor4d(w, fs),
        }, attrs) as tf.Tensor,
      ];
    });
  }
  for (
    const [n, h, cin, cout] of [[2, 4, 8, 16], [3, 5, 6, 21], [8, 16, 32, 64], [1, 3, 3, 2]]
  ) {
    const xs: [number, number, number, number] = [n!, h!, h!, cin!];
    const fs: [number, number, number, number] = [1, 1, cin!, cout!];
    const x = rand(n! * h! * h! * cin!, rng);
    const dy = rand(n! * h! * h! * cout!, rng);
    const w = rand(cin! * cout!, rng);
    await both(`pointwise [${xs}] -> ${cout}`, () => {
      const dyt = tf.tensor4d(dy, [n!, h!, h!, cout!]);
      const attrs = { strides: 1, pad: "same", dataFormat: "NHWC" };
      return [
        tf.conv2d(tf.tensor4d(x, xs), tf.tensor4d(w, fs), 1, "same"),
        tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(x, xs), dy: dyt }, {
          ...attrs,
          filterShape: fs,
        }) as tf.Tensor,
        tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dyt, filter: tf.tensor4d(w, fs) }, {
          ...attrs,
          inputShape: xs,
        }) as tf.Tensor,
      ];
    });
  }
  for (const c of CONV_CASES) {
    const fs: [number, number, number, number] = [c.k, c.k, c.x[3], c.cout];
    const ci = convInfo(c.x, fs, { strides: c.stride, pad: c.pad }, false);
    const x = rand(c.x.reduce((a, b) => a * b), rng);
    const dy = rand(c.x[0] * ci.outHeight * ci.outWidth * c.cout, rng);
    await both(`conv2d backprop filter ${c.name}`, () => [
      tf.engine().runKernel(tf.Conv2DBackpropFilter, {
        x: tf.tensor4d(x, c.x),
        dy: tf.tensor4d(dy, [c.x[0], ci.outHeight, ci.outWidth, c.cout]),
      }, { strides: c.stride, pad: c.pad, dataFormat: "NHWC", filterShape: fs }) as tf.Tensor,
    ]);
  }
  // [shape, std, mean]: the last case has a mean far above its spread (one-pass variance).
  const bnCases: [[number, number, number, number], number, number][] = [
    [[4, 5, 6, 7], 3, 2],
    [[6, 2, 2, 132], 3, 2],
    [[8, 16, 16, 8], 3, 2],
    [[4, 8, 8, 12], 0.5, 50],
  ];
  for (const [shape, std, mu] of bnCases) {
    const size = shape.reduce((a, b) => a * b);
    const c = shape[3];
    const x = Float32Array.from({ length: size }, () => rng.normal() * std + mu);
    const gamma = Float32Array.from({ length: c }, () => rng.uniform(0.5, 2));
    const beta = Float32Array.from({ length: c }, () => rng.normal());
    const r = Float32Array.from({ length: size }, () => rng.normal());
    for (const act of ["none", "relu", "relu6"] as const) {
      await both(`batch norm + ${act} [${shape}]`, () => {
        const args = [tf.tensor4d(x, shape), tf.tensor1d(gamma), tf.tensor1d(beta)];
        const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(bnActTrain(a, g, b, act, 1e-3), tf.tensor4d(r, shape)));
        return [bnActTrain(args[0]!, args[1]!, args[2]!, act, 1e-3), ...tf.grads(f)(args)];
      });
    }
  }
});
