/**
 * Layers on the wasm int8 kernels, built from the reference plans of kernels/int8/ (which
 * validate the inputs and resolve multipliers, bias and padding): weights are packed once here,
 * scratch is allocated once for the largest batch, and `run` only calls into wasm with pointers.
 */
import type { Conv2dPlan } from "../int8/conv2d.ts";
import type { GemmPlan } from "../int8/gemm.ts";
import type { GlobalAvgPoolPlan } from "../int8/global_avg_pool.ts";
import { type Int8Wasm, roundUp } from "./int8_wasm.ts";

/** A prepared layer: input and output are NHWC (or [n, features]) buffers in wasm memory. */
export interface WasmLayer {
  /** Bytes of one image's input and output (uint8, or float32 for float output). */
  readonly inBytes: number;
  readonly outBytes: number;
  readonly maxBatch: number;
  run(inPtr: number, outPtr: number, n: number): void;
}

function checkBatch(n: number, max: number): void {
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new RangeError(
      `Cannot run wasm layer as batch must be an integer in [1, ${max}]: current value is ${n}`,
    );
  }
}

/**
 * A convolution from a `Conv2dPlan`: depthwise (groups = channels, one output per group, square
 * kernel, equal strides) on the depthwise kernel; groups = 1 as GEMM (direct for 1x1 stride 1
 * without padding, im2col otherwise). Other groupings are not implemented in wasm.
 */
export function prepareConv2d(wasm: Int8Wasm, plan: Conv2dPlan, maxBatch = plan.n || 1): WasmLayer {
  const inBytes = plan.h * plan.w * plan.c;
  const outBytes = plan.outH * plan.outW * plan.outC;
  const bias = wasm.putPaddedI32(plan.bias);
  const mult = wasm.putPaddedF32(plan.multipliers);
  const ex = wasm.exports;
  const { lo, hi, outZeroPoint: outZp, inZeroPoint: inZp } = plan;

  if (plan.groups === plan.c && plan.groups > 1 && plan.outPerGroup === 1) {
    if (plan.kh !== plan.kw || plan.strideH !== plan.strideW) {
      throw new RangeError(
        `Cannot prepare wasm depthwise conv as it needs a square kernel and equal strides: kernel ${plan.kh}x${plan.kw}, strides ${plan.strideH}x${plan.strideW}`,
      );
    }
    const wts = wasm.packDepthwiseWeights(plan.weights, plan.c, plan.kh);
    const zrow = wasm.alloc(plan.c + 16);
    wasm.u8(zrow, plan.c + 16).fill(inZp);
    return {
      inBytes,
      outBytes,
      maxBatch,
      run(inPtr, outPtr, n) {
        checkBatch(n, maxBatch);
        ex.depthwise(
          inPtr,
          n,
          plan.h,
          plan.w,
          plan.c,
          plan.kh,
          plan.strideH,
          plan.padTop,
          plan.padLeft,
          plan.outH,
          plan.outW,
          inZp,
          wts,
          bias,
          mult,
          outZp,
          lo,
          hi,
          outPtr,
          zrow,
        );
      },
    };
  }
  if (plan.groups !== 1) {
    throw new RangeError(
      `Cannot prepare wasm conv as only groups = 1 and depthwise are implemented: groups ${plan.groups} for ${plan.c} channels`,
    );
  }
  // Weights in (ky, kx, ci) column order, as packIm2col writes its rows.
  const k = plan.kh * plan.kw * plan.c;
  const reordered = new Int32Array(plan.outC * k);
  for (let o = 0; o < plan.outC; o++) {
    for (let ci = 0; ci < plan.c; ci++) {
      for (let ky = 0; ky < plan.kh; ky++) {
        for (let kx = 0; kx < plan.kw; kx++) {
          reordered[o * k + (ky * plan.kw + kx) * plan.c + ci] = plan
            .weights[((o * plan.c + ci) * plan.kh + ky) * plan.kw + kx]!;
        }
      }
    }
  }
  const { ptr: wts, kp } = wasm.packGemmWeights(reordered, plan.outC, k);
  const rows = plan.outH * plan.outW;
  const scratch = wasm.alloc(maxBatch * rows * kp * 2);
  const direct = plan.kh === 1 && plan.kw === 1 && plan.strideH === 1 && plan.strideW === 1 &&
    plan.padTop === 0 && plan.padLeft === 0;
  return {
    inBytes,
    outBytes,
    maxBatch,
    run(inPtr, outPtr, n) {
      checkBatch(n, maxBatch);
      if (direct) {
        ex.packRows(inPtr, n * rows, plan.c, plan.c, inZp, scratch, kp);
      } else {
        ex.packIm2col(
          inPtr,
          n,
          plan.h,
          plan.w,
          plan.c,
          plan.kh,
          plan.kw,
          plan.strideH,
          plan.strideW,
          plan.padTop,
          plan.padLeft,
          plan.outH,
          plan.outW,
          inZp,
          scratch,
          kp,
        );
      }
      ex.gemmU8(
        scratch,
        n * rows,
        kp,
        wts,
        plan.outC,
        bias,
        mult,
        outZp,
        lo,
        hi,
        outPtr,
        plan.outC,
      );
    },
  };
}

/**
 * A GEMM from a `GemmPlan` (pointwise conv, FC): `plan.m` is the number of rows per image (h * w
 * for pointwise, 1 for FC). Output uint8 or float32 as the plan says.
 */
export function prepareGemm(
  wasm: Int8Wasm,
  plan: GemmPlan,
  rowsPerImage: number,
  maxBatch: number,
): WasmLayer {
  const { ptr: wts, kp } = wasm.packGemmWeights(plan.weights, plan.n, plan.k);
  const bias = wasm.putPaddedI32(plan.bias);
  const mult = wasm.putPaddedF32(plan.multipliers);
  const scratch = wasm.alloc(maxBatch * rowsPerImage * kp * 2);
  const ex = wasm.exports;
  const float = plan.output === "float32";
  return {
    inBytes: rowsPerImage * plan.k,
    outBytes: rowsPerImage * plan.n * (float ? 4 : 1),
    maxBatch,
    run(inPtr, outPtr, n) {
      checkBatch(n, maxBatch);
      const m = n * rowsPerImage;
      ex.packRows(inPtr, m, plan.k, plan.k, plan.inZeroPoint, scratch, kp);
      if (float) {
        ex.gemmF32(scratch, m, kp, wts, plan.n, bias, mult, outPtr);
      } else {
        ex.gemmU8(
          scratch,
          m,
          kp,
          wts,
          plan.n,
          bias,
          mult,
          plan.outZeroPoint,
          plan.lo,
          plan.hi,
          outPtr,
          plan.n,
        );
      }
    },
  };
}

/** Global average pooling from a `GlobalAvgPoolPlan`. */
export function prepareGlobalAvgPool(
  wasm: Int8Wasm,
  plan: GlobalAvgPoolPlan,
  maxBatch: number,
): WasmLayer {
  const ex = wasm.exports;
  return {
    inBytes: plan.hw * plan.c,
    outBytes: plan.c,
    maxBatch,
    run(inPtr, outPtr, n) {
      checkBatch(n, maxBatch);
      ex.globalAvgPool(
        inPtr,
        n,
        plan.hw,
        plan.c,
        plan.inZeroPoint,
        plan.multiplier,
        plan.outZeroPoint,
        plan.lo,
        plan.hi,
        outPtr,
      );
    },
  };
}

/** Bytes of scratch a GEMM layer needs (for sizing arenas up front). */
export const gemmScratchBytes = (rows: number, k: number): number => rows * roundUp(k, 2) * 2;
