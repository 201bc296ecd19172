/**
 * Layers on the wasm int8 kernels, built from the reference plans of kernels/int8/ (which
 * validate the inputs and resolve multipliers, bias and zero points). Weights are packed once
 * into wasm memory; the spatial size is given per call, so one packed layer serves every input
 * resolution, and `run` only calls into wasm with pointers (no allocation: the caller passes a
 * scratch buffer of `scratchBytes(...)`).
 */
import { type Conv2dPlan, type Padding, resolvePadding } from "../int8/conv2d.ts";
import type { GemmPlan } from "../int8/gemm.ts";
import type { GlobalAvgPoolPlan } from "../int8/global_avg_pool.ts";
import { type Int8Wasm, type PackedS7, roundUp, SLACK } from "./int8_wasm.ts";

/** The weights as Int8Array when they are int8 with all zero points 0 (packed in wasm). */
function symmetricInt8(w: Int8Array | Uint8Array, zp: Int32Array): Int8Array | undefined {
  return w instanceof Int8Array && zp.every((z) => z === 0) ? w : undefined;
}

/** Output size and leading padding of a convolution for one input size. */
export interface ConvGeometry {
  readonly outH: number;
  readonly outW: number;
  readonly padTop: number;
  readonly padLeft: number;
}

/** A packed convolution (standard or depthwise) that runs on NHWC uint8 of any spatial size. */
export interface PackedConv {
  readonly kind: "depthwise" | "gemm_direct" | "gemm_im2col";
  /**
   * Arithmetic: "s7" = 7-bit weights on the relaxed int8 dot product (gemmS7), "i16" = int16
   * dot products (every other case).
   */
  readonly path: "s7" | "i16";
  readonly inChannels: number;
  readonly outChannels: number;
  geometry(h: number, w: number): ConvGeometry;
  /** Scratch bytes `run` needs for a batch of n images of h x w. */
  scratchBytes(n: number, h: number, w: number): number;
  run(inPtr: number, outPtr: number, n: number, h: number, w: number, scratch: number): void;
  /**
   * `run` for one input size, with the geometry resolved once: the engine binds each layer per
   * resolution so that a request pays no per-layer planning in JavaScript.
   */
  prepare(h: number, w: number): ConvRunner;
}

/** A convolution bound to one input size: `(inPtr, outPtr, n, scratch)`. */
export type ConvRunner = (inPtr: number, outPtr: number, n: number, scratch: number) => void;

/** Adds `run` (prepare, then call) to a packed convolution. */
function withRun(conv: Omit<PackedConv, "run">): PackedConv {
  return {
    ...conv,
    run: (inPtr, outPtr, n, h, w, scratch) => conv.prepare(h, w)(inPtr, outPtr, n, scratch),
  };
}

/**
 * Packs a convolution from a `Conv2dPlan` (whose spatial size only served validation) and the
 * padding rule to apply at run time. Depthwise (groups = channels, one output per group, square
 * kernel, equal strides) runs on the depthwise kernel; groups = 1 on the GEMM (directly for 1x1
 * stride 1 without padding, through im2col otherwise). Other groupings are not implemented.
 */
export function packConv2d(wasm: Int8Wasm, plan: Conv2dPlan, padding: Padding): PackedConv {
  const bias = wasm.putPaddedI32(plan.bias);
  const mult = wasm.putPaddedF32(plan.multipliers);
  const ex = wasm.exports;
  const { lo, hi, outZeroPoint: outZp, inZeroPoint: inZp, kh, kw, strideH, strideW, c } = plan;
  const geometry = (h: number, w: number): ConvGeometry => {
    const y = resolvePadding(h, kh, strideH, padding, 0);
    const x = resolvePadding(w, kw, strideW, padding, 1);
    if (y.out < 1 || x.out < 1) {
      throw new RangeError(
        `Cannot run wasm conv as a ${h}x${w} input gives an empty output with kernel ${kh}x${kw}`,
      );
    }
    return { outH: y.out, outW: x.out, padTop: y.before, padLeft: x.before };
  };
  /** Size of the input with its padding: every window of the output inside, the image too. */
  const padded = (h: number, w: number) => {
    const g = geometry(h, w);
    return {
      h: Math.max((g.outH - 1) * strideH + kh, g.padTop + h),
      w: Math.max((g.outW - 1) * strideW + kw, g.padLeft + w),
    };
  };

  if (plan.groups === c && plan.groups > 1 && plan.outPerGroup === 1) {
    if (kh !== kw || strideH !== strideW) {
      throw new RangeError(
        `Cannot prepare wasm depthwise conv as it needs a square kernel and equal strides: kernel ${kh}x${kw}, strides ${strideH}x${strideW}`,
      );
    }
    const symmetric = symmetricInt8(plan.sourceWeights, plan.weightZeroPoints);
    const wts = symmetric
      ? wasm.packDepthwiseWeightsInt8(symmetric, c, kh)
      : wasm.packDepthwiseWeights(plan.weights, c, kh);
    const taps = kh * kw;
    const w = symmetric ?? plan.weights;
    const folded = new Int32Array(c);
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let t = 0; t < taps; t++) sum += w[ch * taps + t]!;
      folded[ch] = plan.bias[ch]! - inZp * sum;
    }
    const biasIn = wasm.putPaddedI32(folded);
    const zrow = wasm.alloc(c + 16);
    wasm.u8(zrow, c + 16).fill(inZp);
    return withRun({
      kind: "depthwise",
      path: "i16",
      inChannels: c,
      outChannels: c,
      geometry,
      scratchBytes: (n, h, w) => {
        const p = padded(h, w);
        return n * p.h * p.w * c;
      },
      prepare(h, w) {
        // a zero-point border around the input: every window takes the interior path
        const g = geometry(h, w);
        const p = padded(h, w);
        return (inPtr, outPtr, n, scratch) => {
          ex.padInput(inPtr, n, h, w, c, g.padTop, g.padLeft, p.h, p.w, inZp, scratch, 0);
          if (kh === 3) {
            ex.depthwise3x3Padded(
              scratch,
              n,
              p.h,
              p.w,
              c,
              strideH,
              g.outH,
              g.outW,
              wts,
              biasIn,
              mult,
              outZp,
              lo,
              hi,
              outPtr,
            );
            return;
          }
          ex.depthwise(
            scratch,
            n,
            p.h,
            p.w,
            c,
            kh,
            strideH,
            0,
            0,
            g.outH,
            g.outW,
            inZp,
            wts,
            bias,
            mult,
            outZp,
            lo,
            hi,
            outPtr,
            zrow,
            biasIn,
          );
        };
      },
    });
  }
  if (plan.groups !== 1) {
    throw new RangeError(
      `Cannot prepare wasm conv as only groups = 1 and depthwise are implemented: groups ${plan.groups} for ${c} channels`,
    );
  }
  // Weights in (ky, kx, ci) column order, as packIm2col writes its rows (OIHW already is for 1x1).
  const k = kh * kw * c;
  const taps = kh * kw;
  const direct = kh === 1 && kw === 1 && strideH === 1 && strideW === 1;
  const kind = direct ? "gemm_direct" as const : "gemm_im2col" as const;
  const source = symmetricInt8(plan.sourceWeights, plan.weightZeroPoints);
  let s7: PackedS7 | undefined;
  if (source) {
    let w8 = source;
    if (taps > 1) {
      w8 = new Int8Array(plan.outC * k);
      for (let o = 0; o < plan.outC; o++) {
        for (let ci = 0; ci < c; ci++) {
          for (let t = 0; t < taps; t++) w8[o * k + t * c + ci] = source[(o * c + ci) * taps + t]!;
        }
      }
    }
    // extra columns (see gatherColsS8) only where rows are packed straight from the input
    s7 = wasm.packGemmWeightsS7(w8, plan.outC, k, plan.bias, plan.multipliers, inZp, direct);
  }
  if (s7) {
    // 7-bit weights: the relaxed int8 dot product (gemmS7), rows packed as bytes + row sums
    const { ptr: w7, kq, bias: b7, mult: m7, extra, extraCount } = s7;
    const rowsOf = (n: number, h: number, w: number) => {
      const g = geometry(h, w);
      return n * g.outH * g.outW;
    };
    return withRun({
      kind,
      path: "s7",
      inChannels: c,
      outChannels: plan.outC,
      geometry,
      scratchBytes(n, h, w) {
        const rows = rowsOf(n, h, w);
        if (direct) return s7Scratch(rows, kq);
        const p = padded(h, w);
        return s7Scratch(rows, kq) + roundUp(n * p.h * p.w * c + SLACK, 16);
      },
      prepare(h, w) {
        const g = geometry(h, w);
        const pixels = g.outH * g.outW;
        if (direct) {
          return (inPtr, outPtr, n, scratch) => {
            const rows = n * pixels;
            const a = scratch + roundUp(rows * 4, 16);
            ex.packRowsS8(inPtr, rows, c, c, a, kq, scratch);
            if (extraCount) ex.gatherColsS8(inPtr, rows, c, extra, extraCount, a, kq, c, scratch);
            ex.gemmS7(
              a,
              rows,
              kq,
              w7,
              plan.outC,
              b7,
              scratch,
              m7,
              outZp,
              lo,
              hi,
              outPtr,
              plan.outC,
            );
          };
        }
        const p = padded(h, w);
        return (inPtr, outPtr, n, scratch) => {
          // scratch: row sums | padded input (+ slack for over-reads) | rows (written last, they
          // overshoot by up to 15 bytes into the arena's slack)
          const rows = n * pixels;
          const pin = scratch + roundUp(rows * 4, 16);
          const a = pin + roundUp(n * p.h * p.w * c + SLACK, 16);
          ex.padInput(inPtr, n, h, w, c, g.padTop, g.padLeft, p.h, p.w, inZp, pin, 0x80);
          ex.packIm2colS8Padded(
            pin,
            n,
            p.h,
            p.w,
            c,
            kh,
            kw,
            strideH,
            strideW,
            g.outH,
            g.outW,
            a,
            kq,
            scratch,
          );
          ex.gemmS7(a, rows, kq, w7, plan.outC, b7, scratch, m7, outZp, lo, hi, outPtr, plan.outC);
        };
      },
    });
  }
  let reordered = plan.weights;
  if (taps > 1) {
    reordered = new Int32Array(plan.outC * k);
    for (let o = 0; o < plan.outC; o++) {
      for (let ci = 0; ci < c; ci++) {
        for (let t = 0; t < taps; t++) {
          reordered[o * k + t * c + ci] = plan.weights[(o * c + ci) * taps + t]!;
        }
      }
    }
  }
  const { ptr: wts, kp } = source && taps === 1
    ? wasm.packGemmWeightsInt8(source, plan.outC, k)
    : wasm.packGemmWeights(reordered, plan.outC, k);
  return withRun({
    kind,
    path: "i16",
    inChannels: c,
    outChannels: plan.outC,
    geometry,
    scratchBytes(n, h, w) {
      const g = geometry(h, w);
      return n * g.outH * g.outW * kp * 2;
    },
    prepare(h, w) {
      const g = geometry(h, w);
      return (inPtr, outPtr, n, scratch) => {
        const rows = n * g.outH * g.outW;
        if (direct) {
          ex.packRows(inPtr, rows, c, c, inZp, scratch, kp);
        } else {
          ex.packIm2col(
            inPtr,
            n,
            h,
            w,
            c,
            kh,
            kw,
            strideH,
            strideW,
            g.padTop,
            g.padLeft,
            g.outH,
            g.outW,
            inZp,
            scratch,
            kp,
          );
        }
        ex.gemmU8(scratch, rows, kp, wts, plan.outC, bias, mult, outZp, lo, hi, outPtr, plan.outC);
      };
    },
  });
}

/** Scratch of the 7-bit GEMM path: row corrections (int32, 16-byte aligned) then byte rows. */
const s7Scratch = (rows: number, kq: number) => roundUp(rows * 4, 16) + rows * kq;

/** A packed GEMM (pointwise conv over all pixels, FC) on `[rows, K]` uint8 input. */
export interface PackedGemm {
  readonly k: number;
  readonly n: number;
  readonly output: "uint8" | "float32";
  /** As `PackedConv.path`. */
  readonly path: "s7" | "i16";
  scratchBytes(rows: number): number;
  run(inPtr: number, outPtr: number, rows: number, scratch: number): void;
}

/** Packs a GEMM from a `GemmPlan` (its row count only served validation). */
export function packGemm(wasm: Int8Wasm, plan: GemmPlan): PackedGemm {
  const symmetric = symmetricInt8(plan.sourceWeights, plan.weightZeroPoints);
  const ex = wasm.exports;
  const float = plan.output === "float32";
  const s7 = symmetric
    ? wasm.packGemmWeightsS7(
      symmetric,
      plan.n,
      plan.k,
      plan.bias,
      plan.multipliers,
      plan.inZeroPoint,
    )
    : undefined;
  if (s7) {
    const { ptr: w7, kq, bias: b7, mult: m7, extra, extraCount } = s7;
    return {
      k: plan.k,
      n: plan.n,
      output: plan.output,
      path: "s7",
      scratchBytes: (rows) => s7Scratch(rows, kq),
      run(inPtr, outPtr, rows, scratch) {
        const a = scratch + roundUp(rows * 4, 16);
        ex.packRowsS8(inPtr, rows, plan.k, plan.k, a, kq, scratch);
        if (extraCount) {
          ex.gatherColsS8(inPtr, rows, plan.k, extra, extraCount, a, kq, plan.k, scratch);
        }
        if (float) {
          ex.gemmS7F32(a, rows, kq, w7, plan.n, b7, scratch, m7, outPtr);
        } else {
          ex.gemmS7(
            a,
            rows,
            kq,
            w7,
            plan.n,
            b7,
            scratch,
            m7,
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
  const { ptr: wts, kp } = symmetric
    ? wasm.packGemmWeightsInt8(symmetric, plan.n, plan.k)
    : wasm.packGemmWeights(plan.weights, plan.n, plan.k);
  const bias = wasm.putPaddedI32(plan.bias);
  const mult = wasm.putPaddedF32(plan.multipliers);
  return {
    k: plan.k,
    n: plan.n,
    output: plan.output,
    path: "i16",
    scratchBytes: (rows) => rows * kp * 2,
    run(inPtr, outPtr, rows, scratch) {
      ex.packRows(inPtr, rows, plan.k, plan.k, plan.inZeroPoint, scratch, kp);
      if (float) {
        ex.gemmF32(scratch, rows, kp, wts, plan.n, bias, mult, outPtr);
      } else {
        ex.gemmU8(
          scratch,
          rows,
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

/** Global average pooling with the parameters of a `GlobalAvgPoolPlan`, any size and channels. */
export interface PackedGlobalAvgPool {
  run(inPtr: number, outPtr: number, n: number, hw: number, c: number): void;
  /** `run` for one pixel count and channel count (multiplier computed once). */
  prepare(hw: number, c: number): (inPtr: number, outPtr: number, n: number) => void;
}

/**
 * The multiplier depends on the pixel count (`f32(inScale / f32(outScale * hw))`), so it is
 * recomputed per call from the scales.
 */
export function packGlobalAvgPool(
  wasm: Int8Wasm,
  plan: GlobalAvgPoolPlan,
  scales: { inScale: number; outScale: number },
): PackedGlobalAvgPool {
  const ex = wasm.exports;
  const prepare = (hw: number, c: number) => {
    const mult = Math.fround(
      Math.fround(scales.inScale) / Math.fround(Math.fround(scales.outScale) * hw),
    );
    return (inPtr: number, outPtr: number, n: number) =>
      ex.globalAvgPool(
        inPtr,
        n,
        hw,
        c,
        plan.inZeroPoint,
        mult,
        plan.outZeroPoint,
        plan.lo,
        plan.hi,
        outPtr,
      );
  };
  return {
    prepare,
    run: (inPtr, outPtr, n, hw, c) => prepare(hw, c)(inPtr, outPtr, n),
  };
}
