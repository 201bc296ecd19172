/**
 * Reference int8 pointwise (1x1, stride 1) convolution on NHWC uint8: a GEMM with
 * M = n * h * w rows, K = input channels and N = output channels (see `gemm.ts`).
 */
import type { NHWC } from "./conv2d.ts";
import { createGemmPlan, type GemmPlan, runGemmPlan } from "./gemm.ts";

export interface PointwiseParams {
  /** OIHW `[outC, inC, 1, 1]`. */
  readonly weights: Int8Array | Uint8Array;
  readonly weightShape: readonly [number, number, number, number];
  readonly weightZeroPoints?: ArrayLike<number>;
  readonly weightScales: ArrayLike<number>;
  readonly bias?: Int32Array;
  readonly inScale: number;
  readonly inZeroPoint: number;
  readonly outScale: number;
  readonly outZeroPoint: number;
  readonly lo?: number;
  readonly hi?: number;
}

/** Validates a pointwise convolution and plans it as a GEMM. */
export function createPointwisePlan(shape: NHWC, params: PointwiseParams): GemmPlan {
  if (shape.length !== 4) {
    throw new TypeError(
      `Cannot run pointwise conv as the input must have 4 dims (NHWC): current shape is [${
        shape.join(",")
      }]`,
    );
  }
  const [n, h, w, c] = shape;
  const [o, i, kh, kw] = params.weightShape;
  if (i !== c || kh !== 1 || kw !== 1) {
    throw new TypeError(
      `Cannot run pointwise conv as weights must be [outC, ${c}, 1, 1]: current shape is [${
        params.weightShape.join(",")
      }]`,
    );
  }
  return createGemmPlan([n * h * w, c], { ...params, outChannels: o, output: "uint8" });
}

/** Pointwise quantized convolution; returns NHWC `[n, h, w, outC]` uint8. */
export function pointwiseConv2dInt8(
  input: Uint8Array,
  shape: NHWC,
  params: PointwiseParams,
): Uint8Array {
  return runGemmPlan(createPointwisePlan(shape, params), input);
}
