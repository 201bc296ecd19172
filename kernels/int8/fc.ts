/**
 * Reference int8 fully connected layer on `[batch, K]` uint8 features: ONNX Gemm with B = weights
 * `[N, K]` (transB = 1) between DequantizeLinear / QuantizeLinear nodes. Output uint8
 * (requantized) or float32 logits (`f32(acc) * f32(inScale * wScale[n])`). See `gemm.ts`.
 */
import {
  createGemmPlan,
  type GemmParams,
  type GemmPlan,
  runGemmPlan,
  runGemmPlanFloat,
} from "./gemm.ts";

/** Validates an FC layer on `[batch, features]` input and plans it. */
export function createFcPlan(shape: readonly [number, number], params: GemmParams): GemmPlan {
  return createGemmPlan(shape, params);
}

/** FC layer with uint8 output. */
export function fcInt8(
  input: Uint8Array,
  shape: readonly [number, number],
  params: GemmParams,
): Uint8Array {
  return runGemmPlan(createFcPlan(shape, { ...params, output: "uint8" }), input);
}

/** FC layer with float32 output (dequantized logits). */
export function fcInt8ToFloat(
  input: Uint8Array,
  shape: readonly [number, number],
  params: Omit<GemmParams, "output" | "outScale" | "outZeroPoint" | "lo" | "hi">,
): Float32Array {
  return runGemmPlanFloat(createFcPlan(shape, { ...params, output: "float32" }), input);
}
