/**
 * Area-averaging resize (a box filter whose support is exactly one destination pixel's footprint
 * in the source), the antialiased downscale that OpenCV calls INTER_AREA and PIL calls BOX. Each
 * output sample is the mean of the source area it covers, with partly covered source pixels
 * weighted by the covered fraction, so the result is exact for integer and fractional ratios alike:
 * a constant image stays constant and the image mean is preserved. Upscaling with the same rule
 * gives each output pixel the overlap-weighted mix of the (at most two per axis) source pixels
 * under it.
 *
 * This plain TypeScript version is the reference and the production path: the filter is
 * separable, so it runs as a horizontal pass (source rows -> destination width) and a vertical
 * pass, touching each source sample about once per pass.
 *
 * @module
 */

/** Per-axis taps: destination pixel i reads `count[i]` source pixels from `start[i]`. */
export interface AreaPlan {
  srcLength: number;
  dstLength: number;
  start: Int32Array;
  count: Int32Array;
  /** Weights of all taps, destination pixel after destination pixel; each pixel's sum to 1. */
  weights: Float64Array;
  /** Offset of pixel i's first weight in `weights`. */
  offset: Int32Array;
}

/**
 * The taps that map `srcLength` samples onto `dstLength` along one axis: destination pixel `i`
 * covers source interval `[i * s, (i + 1) * s)` with `s = srcLength / dstLength`.
 */
export function createAreaPlan(srcLength: number, dstLength: number): AreaPlan {
  checkLength("source", srcLength);
  checkLength("destination", dstLength);
  const start = new Int32Array(dstLength), count = new Int32Array(dstLength);
  const offset = new Int32Array(dstLength);
  const weights: number[] = [];
  const scale = srcLength / dstLength;
  for (let i = 0; i < dstLength; i++) {
    // i * src / dst keeps integer boundaries exact (no accumulated i * scale error).
    const a = i * srcLength / dstLength, b = (i + 1) * srcLength / dstLength;
    const first = Math.floor(a), last = Math.min(Math.ceil(b), srcLength) - 1;
    start[i] = first;
    offset[i] = weights.length;
    let n = 0;
    for (let j = first; j <= last; j++) {
      const overlap = Math.min(b, j + 1) - Math.max(a, j);
      if (overlap <= 0) continue;
      weights.push(overlap / scale);
      n++;
    }
    count[i] = n;
  }
  return { srcLength, dstLength, start, count, weights: Float64Array.from(weights), offset };
}

/**
 * Resizes an interleaved image (`channels` samples per pixel, row-major) by area averaging.
 * Returns float samples in the input's units (e.g. 0..255 for bytes), interleaved like the input.
 *
 * @param out optional destination of length `dstWidth * dstHeight * channels`, reused if given.
 *
 * @example
 * ```ts
 * // 4x4 gray -> 2x2: each output is the mean of a 2x2 block.
 * resizeArea(new Uint8Array([0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 2, 2, 8, 8, 2, 2]), 4, 4, 1, 2, 2);
 * // Float32Array [0, 4, 8, 2]
 * ```
 */
export function resizeArea(
  src: Uint8Array | Uint8ClampedArray | Float32Array | Float64Array,
  srcWidth: number,
  srcHeight: number,
  channels: number,
  dstWidth: number,
  dstHeight: number,
  out?: Float32Array,
): Float32Array {
  checkLength("channel", channels);
  const px = cachedPlan(srcWidth, dstWidth), py = cachedPlan(srcHeight, dstHeight);
  if (src.length !== srcWidth * srcHeight * channels) {
    throw new TypeError(
      `Cannot resize as the source has ${src.length} samples, not ` +
        `${srcWidth}x${srcHeight}x${channels} = ${srcWidth * srcHeight * channels}`,
    );
  }
  const dstSize = dstWidth * dstHeight * channels;
  if (out && out.length !== dstSize) {
    throw new TypeError(
      `Cannot resize into an output of ${out.length} samples as ${dstWidth}x${dstHeight}x` +
        `${channels} needs ${dstSize}`,
    );
  }
  const result = out ?? new Float32Array(dstSize);
  if (srcWidth === dstWidth && srcHeight === dstHeight) {
    // Same size: every weight is exactly 1, so both passes copy; the general path gives these
    // very values (a 28x28 upload to a 28x28 model, the common case, costs a copy).
    result.set(src);
    return result;
  }
  // Horizontal pass: srcHeight rows of dstWidth pixels, kept in float64 for the second pass.
  // Scalar accumulators per channel count (1 gray, 3 RGB, 4 RGBA) keep the hot loop free of
  // array stores: ~4x faster than one generic loop over an accumulator array.
  const tmp = new Float64Array(srcHeight * dstWidth * channels);
  const { offset, count, start, weights } = px;
  for (let y = 0; y < srcHeight; y++) {
    const row = y * srcWidth * channels;
    let d = y * dstWidth * channels;
    for (let x = 0; x < dstWidth; x++) {
      const o = offset[x]!, n = count[x]!;
      let s = row + start[x]! * channels;
      if (channels === 1) {
        let a = 0;
        for (let k = 0; k < n; k++) a += weights[o + k]! * src[s + k]!;
        tmp[d++] = a;
      } else if (channels === 3 || channels === 4) {
        let a = 0, b = 0, c = 0, e = 0;
        for (let k = 0; k < n; k++, s += channels) {
          const w = weights[o + k]!;
          a += w * src[s]!, b += w * src[s + 1]!, c += w * src[s + 2]!;
          if (channels === 4) e += w * src[s + 3]!;
        }
        tmp[d++] = a, tmp[d++] = b, tmp[d++] = c;
        if (channels === 4) tmp[d++] = e;
      } else {
        for (let c = 0; c < channels; c++) {
          let a = 0;
          for (let k = 0; k < n; k++) a += weights[o + k]! * src[s + k * channels + c]!;
          tmp[d++] = a;
        }
      }
    }
  }
  // Vertical pass: each destination row mixes the source rows under it.
  const rowLen = dstWidth * channels;
  const rowAcc = new Float64Array(rowLen);
  for (let y = 0; y < dstHeight; y++) {
    const o = py.offset[y]!, n = py.count[y]!, first = py.start[y]!;
    rowAcc.fill(0);
    for (let k = 0; k < n; k++) {
      const w = py.weights[o + k]!, base = (first + k) * rowLen;
      for (let i = 0; i < rowLen; i++) rowAcc[i]! += w * tmp[base + i]!;
    }
    result.set(rowAcc, y * rowLen);
  }
  return result;
}

/**
 * Plans by (source, destination) length: a service resizes to a handful of resolutions from a
 * handful of upload sizes, and planning costs more than resizing a small image. Plans are only
 * read. Bounded: cleared when full.
 */
function cachedPlan(srcLength: number, dstLength: number): AreaPlan {
  if (!(srcLength < 65536 && dstLength < 65536)) return createAreaPlan(srcLength, dstLength);
  const key = srcLength * 65536 + dstLength;
  let plan = PLANS.get(key);
  if (!plan) {
    plan = createAreaPlan(srcLength, dstLength);
    if (PLANS.size >= 256) PLANS.clear();
    PLANS.set(key, plan);
  }
  return plan;
}
const PLANS = new Map<number, AreaPlan>();

function checkLength(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Cannot plan an area resize as the ${what} size must be an integer >= 1: ${n}`,
    );
  }
}
