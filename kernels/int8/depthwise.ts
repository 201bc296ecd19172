/**
 * Reference int8 depthwise convolution (k x k, any stride): the spec of the wasm depthwise kernel.
 * Weights are ONNX's depthwise layout `[C, 1, k, k]`; activations NHWC uint8. See `conv2d.ts` for
 * padding and requantization rules: depthwise is a grouped conv with groups = channels.
 */
import {
  type Conv2dPlan,
  createConv2dPlan,
  type NHWC,
  type QuantizedConvParams,
  runConv2dPlan,
} from "./conv2d.ts";

export type DepthwiseParams = Omit<QuantizedConvParams, "groups">;

/** Validates a depthwise convolution (`[C, 1, k, k]` weights, square kernel) and plans it. */
export function createDepthwisePlan(shape: NHWC, params: DepthwiseParams): Conv2dPlan {
  const [o, one, kh, kw] = params.weightShape;
  const c = shape[3];
  if (o !== c || one !== 1 || kh !== kw) {
    throw new TypeError(
      `Cannot run depthwise conv as weights must be [${c}, 1, k, k] for ${c} input channels: current shape is [${
        params.weightShape.join(",")
      }]`,
    );
  }
  return createConv2dPlan(shape, { ...params, groups: c });
}

/** Depthwise quantized convolution of an NHWC uint8 tensor (reference implementation). */
export function depthwiseConv2dInt8(
  input: Uint8Array,
  shape: NHWC,
  params: DepthwiseParams,
): Uint8Array {
  return runConv2dPlan(createDepthwisePlan(shape, params), input);
}
