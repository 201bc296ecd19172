/**
 * The int8 kernel interface that every implementation (this TypeScript reference, wasm, later
 * WGSL) offers with the same signatures, so that one conformance suite runs against all of them.
 * Activations are NHWC uint8 (see conv2d.ts).
 */
import { conv2dInt8, type NHWC, type QuantizedConvParams } from "./conv2d.ts";
import { depthwiseConv2dInt8, type DepthwiseParams } from "./depthwise.ts";
import { fcInt8, fcInt8ToFloat } from "./fc.ts";
import { gemmInt8, type GemmParams } from "./gemm.ts";
import { globalAvgPoolInt8, type GlobalAvgPoolParams } from "./global_avg_pool.ts";
import { pointwiseConv2dInt8, type PointwiseParams } from "./pointwise.ts";
import { requantize, type RequantizeParams } from "./requantize.ts";

export type FloatFcParams = Omit<GemmParams, "output" | "outScale" | "outZeroPoint" | "lo" | "hi">;

export interface Int8Kernels {
  readonly name: string;
  conv2d(input: Uint8Array, shape: NHWC, params: QuantizedConvParams): Uint8Array;
  depthwise(input: Uint8Array, shape: NHWC, params: DepthwiseParams): Uint8Array;
  pointwise(input: Uint8Array, shape: NHWC, params: PointwiseParams): Uint8Array;
  gemm(a: Uint8Array, shape: readonly [number, number], params: GemmParams): Uint8Array;
  fc(input: Uint8Array, shape: readonly [number, number], params: GemmParams): Uint8Array;
  fcToFloat(
    input: Uint8Array,
    shape: readonly [number, number],
    params: FloatFcParams,
  ): Float32Array;
  globalAvgPool(input: Uint8Array, shape: NHWC, params: GlobalAvgPoolParams): Uint8Array;
  requantize(
    acc: Int32Array,
    shape: readonly [number, number],
    params: RequantizeParams,
  ): Uint8Array;
}

/** The plain TypeScript reference: the spec the other implementations must equal. */
export const referenceInt8Kernels: Int8Kernels = {
  name: "reference",
  conv2d: conv2dInt8,
  depthwise: depthwiseConv2dInt8,
  pointwise: pointwiseConv2dInt8,
  gemm: gemmInt8,
  fc: fcInt8,
  fcToFloat: fcInt8ToFloat,
  globalAvgPool: globalAvgPoolInt8,
  requantize,
};
