/**
 * The wasm kernels behind the same `Int8Kernels` interface as the TypeScript reference: each call
 * validates and plans with the reference's plan functions, copies the input into wasm memory, runs
 * the SIMD kernel and copies the result out, then frees its scratch. Convenient for tests and
 * one-off calls; the engine uses the prepared layers of `int8_layers.ts` and raw pointers instead.
 */
import { type Conv2dPlan, createConv2dPlan, type NHWC, type Padding } from "../int8/conv2d.ts";
import { createDepthwisePlan } from "../int8/depthwise.ts";
import { createGemmPlan, type GemmParams, type GemmPlan } from "../int8/gemm.ts";
import { createGlobalAvgPoolPlan } from "../int8/global_avg_pool.ts";
import type { FloatFcParams, Int8Kernels } from "../int8/kernel_set.ts";
import { createPointwisePlan } from "../int8/pointwise.ts";
import { createRequantizePlan } from "../int8/requantize.ts";
import type { Int8Wasm } from "./int8_wasm.ts";
import { packConv2d, packGemm, packGlobalAvgPool } from "./int8_layers.ts";

function checkLength(what: string, got: number, want: number): void {
  if (got !== want) {
    throw new TypeError(
      `Cannot run wasm ${what} as the input must hold ${want} values: current length is ${got}`,
    );
  }
}

/** Creates the wasm implementation of `Int8Kernels` on one module instance. */
export function createWasmInt8Kernels(wasm: Int8Wasm): Int8Kernels {
  /** Copies `input` in, runs `body(inPtr)` which returns [outPtr, outBytes], copies out, frees. */
  function once(input: Uint8Array, body: (inPtr: number) => [number, number]): Uint8Array {
    const mark = wasm.mark();
    try {
      const inPtr = wasm.put(input);
      const [outPtr, outBytes] = body(inPtr);
      return wasm.u8(outPtr, outBytes).slice();
    } finally {
      wasm.release(mark);
    }
  }

  function conv(input: Uint8Array, plan: Conv2dPlan, padding: Padding): Uint8Array {
    checkLength("conv", input.length, plan.n * plan.h * plan.w * plan.c);
    return once(input, (inPtr) => {
      const layer = packConv2d(wasm, plan, padding);
      const outBytes = plan.n * plan.outH * plan.outW * plan.outC;
      const outPtr = wasm.alloc(outBytes);
      const scratch = wasm.alloc(layer.scratchBytes(plan.n, plan.h, plan.w));
      if (plan.n > 0) layer.run(inPtr, outPtr, plan.n, plan.h, plan.w, scratch);
      return [outPtr, outBytes];
    });
  }

  function gemmBytes(a: Uint8Array, plan: GemmPlan): Uint8Array {
    checkLength("GEMM", a.length, plan.m * plan.k);
    return once(a, (inPtr) => {
      const layer = packGemm(wasm, plan);
      const outBytes = plan.m * plan.n * (plan.output === "float32" ? 4 : 1);
      const outPtr = wasm.alloc(outBytes);
      const scratch = wasm.alloc(layer.scratchBytes(plan.m));
      if (plan.m > 0) layer.run(inPtr, outPtr, plan.m, scratch);
      return [outPtr, outBytes];
    });
  }

  const gemm = (a: Uint8Array, shape: readonly [number, number], params: GemmParams) =>
    gemmBytes(a, createGemmPlan(shape, { ...params, output: "uint8" }));

  return {
    name: "wasm",
    conv2d: (input, shape: NHWC, params) =>
      conv(input, createConv2dPlan(shape, params), params.padding ?? "same_upper"),
    depthwise: (input, shape, params) =>
      conv(input, createDepthwisePlan(shape, params), params.padding ?? "same_upper"),
    pointwise: (input, shape, params) => gemmBytes(input, createPointwisePlan(shape, params)),
    gemm,
    fc: gemm,
    fcToFloat(input, shape, params: FloatFcParams) {
      const bytes = gemmBytes(input, createGemmPlan(shape, { ...params, output: "float32" }));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    globalAvgPool(input, shape, params) {
      const plan = createGlobalAvgPoolPlan(shape, params);
      checkLength("global average pool", input.length, plan.n * plan.hw * plan.c);
      return once(input, (inPtr) => {
        const layer = packGlobalAvgPool(wasm, plan, {
          inScale: params.input.scale,
          outScale: params.output.scale,
        });
        const outPtr = wasm.alloc(plan.n * plan.c);
        if (plan.n > 0) layer.run(inPtr, outPtr, plan.n, plan.hw, plan.c);
        return [outPtr, plan.n * plan.c];
      });
    },
    requantize(acc, shape, params) {
      const plan = createRequantizePlan(shape, params);
      checkLength("requantize", acc.length, plan.rows * plan.channels);
      const mark = wasm.mark();
      try {
        const src = wasm.put(acc);
        const bias = wasm.putPaddedI32(plan.bias);
        const mult = wasm.putPaddedF32(plan.multipliers);
        const dst = wasm.alloc(acc.length);
        wasm.exports.requantize(
          src,
          plan.rows,
          plan.channels,
          bias,
          mult,
          plan.zeroPoint,
          plan.lo,
          plan.hi,
          dst,
        );
        return wasm.u8(dst, acc.length).slice();
      } finally {
        wasm.release(mark);
      }
    },
  };
}
