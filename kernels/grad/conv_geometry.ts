/**
 * The geometry every gradient kernel needs, taken from tfjs's own `computeConv2DInfo` so SAME
 * padding splits exactly as the forward kernels do.
 */
import type { backend_util } from "@tensorflow/tfjs-core";

export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  cin: number;
  oh: number;
  ow: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** Padding before the first row / column. */
  pt: number;
  pl: number;
}

export function geometryOf(ci: backend_util.Conv2DInfo): ConvGeometry {
  if (ci.dilationHeight !== 1 || ci.dilationWidth !== 1) {
    throw new RangeError(
      `Cannot plan gradient kernel as dilations must be 1: current value is ${ci.dilationHeight}x${ci.dilationWidth}`,
    );
  }
  return {
    n: ci.batchSize,
    h: ci.inHeight,
    w: ci.inWidth,
    cin: ci.inChannels,
    oh: ci.outHeight,
    ow: ci.outWidth,
    cout: ci.outChannels,
    kh: ci.filterHeight,
    kw: ci.filterWidth,
    sh: ci.strideHeight,
    sw: ci.strideWidth,
    pt: ci.padInfo.top,
    pl: ci.padInfo.left,
  };
}
