/**
 * Reference uint8 global average pooling: NHWC `[n, h, w, c]` -> `[n, c]`, with requantization as
 * onnxruntime's QLinearGlobalAveragePool (MLAS `MlasQLinearGlobalAveragePoolNhwc`):
 * `acc = sum(x) - inZp * hw`, multiplier `f32(inScale / f32(outScale * hw))`, then the rules of
 * `requantize.ts`.
 */
import type { NHWC } from "./conv2d.ts";
import {
  checkCount,
  checkRange,
  checkScale,
  checkZeroPoint,
  type QuantParams,
  requantizeValue,
} from "./requantize.ts";

export interface GlobalAvgPoolParams {
  readonly input: QuantParams;
  readonly output: QuantParams;
  readonly lo?: number;
  readonly hi?: number;
}

export interface GlobalAvgPoolPlan {
  readonly n: number;
  readonly hw: number;
  readonly c: number;
  readonly multiplier: number;
  readonly inZeroPoint: number;
  readonly outZeroPoint: number;
  readonly lo: number;
  readonly hi: number;
}

/** Validates a global average pool and computes its multiplier. */
export function createGlobalAvgPoolPlan(
  shape: NHWC,
  params: GlobalAvgPoolParams,
): GlobalAvgPoolPlan {
  if (shape.length !== 4) {
    throw new TypeError(
      `Cannot run global average pool as the input must have 4 dims (NHWC): current shape is [${
        shape.join(",")
      }]`,
    );
  }
  const [n, h, w, c] = shape;
  checkCount("batch", n, 0);
  checkCount("height", h, 1);
  checkCount("width", w, 1);
  checkCount("channels", c, 1);
  const hw = h * w;
  if (hw >= 0x1000000) {
    throw new RangeError(
      `Cannot run global average pool as h * w must be below 2^24: current value is ${hw}`,
    );
  }
  checkScale("input scale", params.input.scale);
  checkScale("output scale", params.output.scale);
  checkZeroPoint("input zero point", params.input.zeroPoint);
  checkZeroPoint("output zero point", params.output.zeroPoint);
  const { lo, hi } = checkRange(params.lo ?? 0, params.hi ?? 255);
  const multiplier = Math.fround(
    Math.fround(params.input.scale) / Math.fround(Math.fround(params.output.scale) * hw),
  );
  return {
    n,
    hw,
    c,
    multiplier,
    inZeroPoint: params.input.zeroPoint,
    outZeroPoint: params.output.zeroPoint,
    lo,
    hi,
  };
}

/** Global average pool of NHWC uint8; returns `[n, c]` uint8. */
export function globalAvgPoolInt8(
  input: Uint8Array,
  shape: NHWC,
  params: GlobalAvgPoolParams,
): Uint8Array {
  const plan = createGlobalAvgPoolPlan(shape, params);
  const { n, hw, c } = plan;
  if (input.length !== n * hw * c) {
    throw new TypeError(
      `Cannot run global average pool as the input must hold ${n}x${hw}x${c} values: current length is ${input.length}`,
    );
  }
  const out = new Uint8Array(n * c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      let acc = -plan.inZeroPoint * hw;
      for (let p = 0; p < hw; p++) acc += input[(b * hw + p) * c + ch]!;
      out[b * c + ch] = requantizeValue(acc, plan.multiplier, plan.outZeroPoint, plan.lo, plan.hi);
    }
  }
  return out;
}
