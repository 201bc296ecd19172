/**
 * The wasm kernels behind the same `Int8Kernels` interface as the TypeScript reference: each call
 * validates and plans with the reference's plan functions, copies the input into wasm memory, runs
 * the SIMD kernel and copies the result out, then frees its scratch. Convenient for tests and
 * one-off calls; the engine uses the prepared layers of `int8_layers.ts` and raw pointers instead.
 */
import { createConv2dPlan, type NHWC } from "../int8/conv2d.ts";
import { createDepthwisePlan } from "../int8/depthwise.ts";
import { createGemmPlan, type GemmParams } from "../int8/gemm.ts";
import { createGlobalAvgPoolPlan } from "../int8/global_avg_pool.ts";
import type { FloatFcParams, Int8Kernels } from "../int8/kernel_set.ts";
import { createPointwisePlan } from "../int8/pointwise.ts";
import { createRequantizePlan } from "../int8/requantize.ts";
import type { Int8Wasm } from "./int8_wasm.ts";
import { prepareConv2d, prepareGemm, prepareGlobalAvgPool, type WasmLayer } from "./int8_layers.ts";

function checkLength(what: string, got: number, want: number): void {
  if (got !== want) {
    throw new TypeError(
      `Cannot run wasm ${what} as the input must hold ${want} values: current length is ${got}`,
    );
  }
}

/** Creates the wasm implementation of `Int8Kernels` on one module instance. */
export function createWasmInt8Kernels(wasm: Int8Wasm): Int8Kernels {
  /** Runs a prepared layer on a copy of `input`, with all allocations freed afterwards. */
  function once(input: Uint8Array, n: number, prepare: () => WasmLayer): Uint8Array {
    const mark = wasm.mark();
    try {
      const layer = prepare();
      const inPtr = wasm.put(input);
      const outPtr = wasm.alloc(n * layer.outBytes);
      if (n > 0) layer.run(inPtr, outPtr, n);
      return wasm.u8(outPtr, n * layer.outBytes).slice();
    } finally {
      wasm.release(mark);
    }
  }

  function gemm(a: Uint8Array, shape: readonly [number, number], params: GemmParams): Uint8Array {
    const plan = createGemmPlan(shape, { ...params, output: "uint8" });
    checkLength("GEMM", a.length, plan.m * plan.k);
    return once(a, plan.m, () => prepareGemm(wasm, plan, 1, Math.max(plan.m, 1)));
  }

  return {
    name: "wasm",
    conv2d(input, shape: NHWC, params) {
      const plan = createConv2dPlan(shape, params);
      checkLength("conv", input.length, plan.n * plan.h * plan.w * plan.c);
      return once(input, plan.n, () => prepareConv2d(wasm, plan, Math.max(plan.n, 1)));
    },
    depthwise(input, shape, params) {
      const plan = createDepthwisePlan(shape, params);
      checkLength("depthwise conv", input.length, plan.n * plan.h * plan.w * plan.c);
      return once(input, plan.n, () => prepareConv2d(wasm, plan, Math.max(plan.n, 1)));
    },
    pointwise(input, shape, params) {
      const plan = createPointwisePlan(shape, params);
      checkLength("pointwise conv", input.length, plan.m * plan.k);
      const rows = shape[1] * shape[2];
      return once(input, shape[0], () => prepareGemm(wasm, plan, rows, Math.max(shape[0], 1)));
    },
    gemm,
    fc: gemm,
    fcToFloat(input, shape, params: FloatFcParams) {
      const plan = createGemmPlan(shape, { ...params, output: "float32" });
      checkLength("FC", input.length, plan.m * plan.k);
      const bytes = once(input, plan.m, () => prepareGemm(wasm, plan, 1, Math.max(plan.m, 1)));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    globalAvgPool(input, shape, params) {
      const plan = createGlobalAvgPoolPlan(shape, params);
      checkLength("global average pool", input.length, plan.n * plan.hw * plan.c);
      return once(input, plan.n, () => prepareGlobalAvgPool(wasm, plan, Math.max(plan.n, 1)));
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
