// deno-fmt-ignore-file
// deno-lint-ignore-file
// AssemblyScript source of kernels/wasm/kernels.wasm: int8 inference kernels in WASM SIMD.
//
// Conventions (the TypeScript side, kernels/wasm/int8_wasm.ts, prepares every buffer):
// - Activations are uint8 NHWC. Every pointer is a byte offset into the module's own memory,
//   allocated once by TypeScript. Buffers read 8 bytes at a time have at least 16 bytes of slack
//   after their end, so tail channels may over-read (the extra lanes are never stored, or meet zero
//   weights).
// - Weights are pre-packed once as int16 (weight minus its zero point) in the layouts described at
//   each kernel. Accumulation is int32 through i32x4.dot_i16x8_s, which is exact for every
//   (uint8 - zp) x int16 pair sum and portable (no relaxed SIMD needed).
// - Bias (int32) and requantization multipliers (float32) are padded to a multiple of 8 channels.
// - Relaxed SIMD only where exact: relaxed_trunc_f32x4_s on values already clamped to uint8 range.
// - Requantization matches onnxruntime's MLAS (see kernels/int8/requantize.ts): float32 convert,
//   float32 multiply, clamp to [lo - zp, hi - zp], round half to even (f32x4.nearest), add zp.
//
// The module has zero imports (built with --runtime stub and `--use abort=`).

const SCRATCH: usize = memory.data(64, 16);
const TAPS: usize = memory.data(64 * 4, 16);
const OFFS: usize = memory.data(64 * 4, 16);

/** First byte after the module's static data: TypeScript allocates from here. */
export function heapBase(): usize {
  return __heap_base;
}

// @ts-ignore: decorator
@inline
function requant4(acc: v128, mult: v128, flo: v128, fhi: v128, zp: v128): v128 {
  let f = f32x4.mul(f32x4.convert_i32x4_s(acc), mult);
  f = f32x4.pmin(f32x4.pmax(f, flo), fhi);
  // f is clamped to [lo - zp, hi - zp], well inside int32: the relaxed truncation (one cvttps2dq
  // on x64, against ~6 instructions for trunc_sat's NaN and overflow fix-ups) is exact here.
  return i32x4.add(i32x4.relaxed_trunc_f32x4_s(f32x4.nearest(f)), zp);
}

// @ts-ignore: decorator
@inline
function store8(out: usize, lo4: v128, hi4: v128, count: i32): void {
  const n16 = i16x8.narrow_i32x4_s(lo4, hi4);
  const v = i8x16.narrow_i16x8_u(n16, n16);
  if (count >= 8) {
    v128.store64_lane(out, v, 0);
  } else {
    v128.store(SCRATCH, v);
    for (let i = 0; i < count; i++) store<u8>(out + <usize> i, load<u8>(SCRATCH + <usize> i));
  }
}

/**
 * Packs symmetric int8 weights [n][k] (zero point 0) into the gemmU8 layout (see there) at dst,
 * (n rounded up to 8) x kp int16, zero-filled padding. Done at load; in wasm so that loading a
 * model costs little even before the JavaScript packers would be optimized.
 */
export function packGemmWeightsI8(src: usize, n: i32, k: i32, kp: i32, dst: usize): void {
  const total = <usize> (((n + 7) >> 3) * 8 * kp) << 1;
  for (let i: usize = 0; i < total; i += 8) store<u64>(dst + i, 0);
  for (let o = 0; o < n; o++) {
    const lane = o & 7;
    const base = dst + (<usize> (((o >> 3) * 8 * kp) + ((lane >> 2) << 3) + ((lane & 3) << 1)) << 1);
    const row = src + <usize> (o * k);
    for (let p = 0; p < k; p++) {
      store<i16>(base + (<usize> (((p >> 1) << 4) + (p & 1)) << 1), <i16> load<i8>(row + <usize> p));
    }
  }
}

/** Packs symmetric int8 depthwise weights [c][taps] into the depthwise layout (see there). */
export function packDepthwiseWeightsI8(src: usize, c: i32, taps: i32, dst: usize): void {
  const pairs = (taps + 1) >> 1;
  const total = <usize> (((c + 7) >> 3) * pairs * 16) << 1;
  for (let i: usize = 0; i < total; i += 8) store<u64>(dst + i, 0);
  for (let ch = 0; ch < c; ch++) {
    const lane = ch & 7;
    const base = dst + (<usize> ((ch >> 3) * pairs * 16 + ((lane >> 2) << 3) + ((lane & 3) << 1)) << 1);
    const row = src + <usize> (ch * taps);
    for (let t = 0; t < taps; t++) {
      store<i16>(base + (<usize> (((t >> 1) << 4) + (t & 1)) << 1), <i16> load<i8>(row + <usize> t));
    }
  }
}

/**
 * Packs uint8 rows into int16 GEMM rows: dst[r][i] = src[r * ldsrc + i] - zp for i < k, 0 up to kp
 * (kp even). The A operand of gemmU8 for pointwise convolutions and the FC layer.
 */
export function packRows(
  src: usize,
  m: i32,
  k: i32,
  ldsrc: i32,
  zp: i32,
  dst: usize,
  kp: i32,
): void {
  const z = i16x8.splat(<i16> zp);
  for (let r = 0; r < m; r++) {
    const s = src + <usize> r * <usize> ldsrc;
    const d = dst + ((<usize> r * <usize> kp) << 1);
    let i = 0;
    for (; i + 8 <= k; i += 8) {
      v128.store(d + (<usize> i << 1), i16x8.sub(v128.load8x8_u(s + <usize> i), z));
    }
    for (; i < k; i++) store<i16>(d + (<usize> i << 1), <i16> (<i32> load<u8>(s + <usize> i) - zp));
    for (; i < kp; i++) store<i16>(d + (<usize> i << 1), 0);
  }
}

/**
 * im2col for a standard (groups = 1) convolution on NHWC input: one int16 row per output pixel,
 * columns ordered (ky, kx, ci), value x - zp, 0 for padding and for columns kh*kw*c .. kp.
 */
export function packIm2col(
  src: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  padT: i32,
  padL: i32,
  oh: i32,
  ow: i32,
  zp: i32,
  dst: usize,
  kp: i32,
): void {
  let row: usize = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const d = dst + ((row * <usize> kp) << 1);
        let idx = 0;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - padT + ky;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - padL + kx;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
              const s = src + <usize> (((b * h + iy) * w + ix) * c);
              for (let ci = 0; ci < c; ci++) {
                store<i16>(
                  d + (<usize> (idx + ci) << 1),
                  <i16> (<i32> load<u8>(s + <usize> ci) - zp),
                );
              }
            } else {
              for (let ci = 0; ci < c; ci++) store<i16>(d + (<usize> (idx + ci) << 1), 0);
            }
            idx += c;
          }
        }
        for (; idx < kp; idx++) store<i16>(d + (<usize> idx << 1), 0);
        row++;
      }
    }
  }
}

/**
 * int8 GEMM with fused requantization: out[r * ldo + o] = requant(bias[o] + sum_i a[r][i] * w[o][i]).
 *
 * a: int16 [m][kp] from packRows / packIm2col (kp even).
 * w: packed per block of 8 output channels, then per pair of k (p = 0, 2, ..): 16 int16 =
 *    [w[o0][p], w[o0][p+1], w[o1][p], w[o1][p+1], .. w[o3][p+1]] then the same for o4..o7, so that
 *    one i32x4.dot_i16x8_s with the splatted pair (a[r][p], a[r][p+1]) adds 2 terms to 4 channels.
 * Register tile: 4 rows x 8 channels (8 i32x4 accumulators).
 */
export function gemmU8(
  a: usize,
  m: i32,
  kp: i32,
  w: usize,
  n: i32,
  bias: usize,
  mult: usize,
  outZp: i32,
  lo: i32,
  hi: i32,
  out: usize,
  ldo: i32,
): void {
  const zpv = i32x4.splat(outZp);
  const flo = f32x4.splat(<f32> (lo - outZp));
  const fhi = f32x4.splat(<f32> (hi - outZp));
  const rowBytes = <usize> kp << 1;
  const blockBytes = rowBytes << 3;
  const ld = <usize> ldo;
  const nb = (n + 7) >> 3;
  for (let j = 0; j < nb; j++) {
    const wb = w + <usize> j * blockBytes;
    const pb = bias + (<usize> j << 5);
    const pm = mult + (<usize> j << 5);
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    const s0 = v128.load(pm);
    const s1 = v128.load(pm, 16);
    const cnt = min(8, n - (j << 3));
    const ob = out + (<usize> j << 3);
    const wend = wb + blockBytes;
    let r = 0;
    for (; r + 6 <= m; r += 6) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      let c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
      let c40 = b0, c41 = b1, c50 = b0, c51 = b1;
      while (pw < wend) {
        const w0 = v128.load(pw);
        const w1 = v128.load(pw, 16);
        let x = v128.load32_splat(pa);
        c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x, w0));
        c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + rowBytes);
        c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x, w0));
        c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + (rowBytes << 1));
        c20 = i32x4.add(c20, i32x4.dot_i16x8_s(x, w0));
        c21 = i32x4.add(c21, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + rowBytes * 3);
        c30 = i32x4.add(c30, i32x4.dot_i16x8_s(x, w0));
        c31 = i32x4.add(c31, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + (rowBytes << 2));
        c40 = i32x4.add(c40, i32x4.dot_i16x8_s(x, w0));
        c41 = i32x4.add(c41, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + rowBytes * 5);
        c50 = i32x4.add(c50, i32x4.dot_i16x8_s(x, w0));
        c51 = i32x4.add(c51, i32x4.dot_i16x8_s(x, w1));
        pw += 32;
        pa += 4;
      }
      const o = ob + <usize> r * ld;
      store8(o, requant4(c00, s0, flo, fhi, zpv), requant4(c01, s1, flo, fhi, zpv), cnt);
      store8(o + ld, requant4(c10, s0, flo, fhi, zpv), requant4(c11, s1, flo, fhi, zpv), cnt);
      store8(o + 2 * ld, requant4(c20, s0, flo, fhi, zpv), requant4(c21, s1, flo, fhi, zpv), cnt);
      store8(o + 3 * ld, requant4(c30, s0, flo, fhi, zpv), requant4(c31, s1, flo, fhi, zpv), cnt);
      store8(o + 4 * ld, requant4(c40, s0, flo, fhi, zpv), requant4(c41, s1, flo, fhi, zpv), cnt);
      store8(o + 5 * ld, requant4(c50, s0, flo, fhi, zpv), requant4(c51, s1, flo, fhi, zpv), cnt);
    }
    for (; r + 4 <= m; r += 4) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      let c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
      while (pw < wend) {
        const w0 = v128.load(pw);
        const w1 = v128.load(pw, 16);
        let x = v128.load32_splat(pa);
        c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x, w0));
        c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + rowBytes);
        c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x, w0));
        c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + (rowBytes << 1));
        c20 = i32x4.add(c20, i32x4.dot_i16x8_s(x, w0));
        c21 = i32x4.add(c21, i32x4.dot_i16x8_s(x, w1));
        x = v128.load32_splat(pa + rowBytes * 3);
        c30 = i32x4.add(c30, i32x4.dot_i16x8_s(x, w0));
        c31 = i32x4.add(c31, i32x4.dot_i16x8_s(x, w1));
        pw += 32;
        pa += 4;
      }
      const o = ob + <usize> r * ld;
      store8(o, requant4(c00, s0, flo, fhi, zpv), requant4(c01, s1, flo, fhi, zpv), cnt);
      store8(o + ld, requant4(c10, s0, flo, fhi, zpv), requant4(c11, s1, flo, fhi, zpv), cnt);
      store8(o + 2 * ld, requant4(c20, s0, flo, fhi, zpv), requant4(c21, s1, flo, fhi, zpv), cnt);
      store8(o + 3 * ld, requant4(c30, s0, flo, fhi, zpv), requant4(c31, s1, flo, fhi, zpv), cnt);
    }
    for (; r < m; r++) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      let c00 = b0, c01 = b1;
      while (pw < wend) {
        const x = v128.load32_splat(pa);
        c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x, v128.load(pw)));
        c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x, v128.load(pw, 16)));
        pw += 32;
        pa += 4;
      }
      store8(
        ob + <usize> r * ld,
        requant4(c00, s0, flo, fhi, zpv),
        requant4(c01, s1, flo, fhi, zpv),
        cnt,
      );
    }
  }
}

/**
 * The same GEMM with float32 output: out[r * n + o] = f32(acc) * scale[o] (dequantized logits of
 * the classifier). Layouts as gemmU8.
 */
export function gemmF32(
  a: usize,
  m: i32,
  kp: i32,
  w: usize,
  n: i32,
  bias: usize,
  scale: usize,
  out: usize,
): void {
  const rowBytes = <usize> kp << 1;
  const blockBytes = rowBytes << 3;
  const nb = (n + 7) >> 3;
  for (let j = 0; j < nb; j++) {
    const wb = w + <usize> j * blockBytes;
    const wend = wb + blockBytes;
    const cnt = min(8, n - (j << 3));
    for (let r = 0; r < m; r++) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      let c0 = v128.load(bias + (<usize> j << 5));
      let c1 = v128.load(bias + (<usize> j << 5), 16);
      while (pw < wend) {
        const x = v128.load32_splat(pa);
        c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x, v128.load(pw)));
        c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x, v128.load(pw, 16)));
        pw += 32;
        pa += 4;
      }
      v128.store(
        SCRATCH,
        f32x4.mul(f32x4.convert_i32x4_s(c0), v128.load(scale + (<usize> j << 5))),
      );
      v128.store(
        SCRATCH,
        f32x4.mul(f32x4.convert_i32x4_s(c1), v128.load(scale + (<usize> j << 5), 16)),
        16,
      );
      const o = out + ((<usize> r * <usize> n + (<usize> j << 3)) << 2);
      for (let i = 0; i < cnt; i++) {
        store<f32>(o + (<usize> i << 2), load<f32>(SCRATCH + (<usize> i << 2)));
      }
    }
  }
}

/**
 * Depthwise k x k convolution (any stride, explicit top/left padding; bottom/right follow from
 * oh, ow) on NHWC uint8 with fused requantization.
 *
 * w: packed per block of 8 channels, then per pair of taps (t = 0, 2, .. in ky-major order, an odd
 *    tap count padded with a zero tap): 16 int16 = [w[c0][t], w[c0][t+1], .. w[c3][t+1]] then
 *    c4..c7. Two taps' inputs are interleaved with an i16x8 shuffle so that one dot_i16x8_s adds
 *    2 taps to 4 channels.
 * zrow: at least c + 16 bytes, all equal to inZp: out-of-image taps point there, so padding adds
 *    exactly (zp - zp) * w = 0, as SAME padding with the zero point does.
 * biasIn: bias - inZp * sum_t w[c][t] (padded to 8 channels): pixels whose window lies inside the
 *    image skip the zero-point subtraction and start from it (the same integer sum); 3x3 has an
 *    unrolled path, other sizes read tap offsets from a table.
 */
export function depthwise(
  src: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  k: i32,
  stride: i32,
  padT: i32,
  padL: i32,
  oh: i32,
  ow: i32,
  inZp: i32,
  wts: usize,
  bias: usize,
  mult: usize,
  outZp: i32,
  lo: i32,
  hi: i32,
  dst: usize,
  zrow: usize,
  biasIn: usize,
): void {
  const zpv = i32x4.splat(outZp);
  const flo = f32x4.splat(<f32> (lo - outZp));
  const fhi = f32x4.splat(<f32> (hi - outZp));
  const zin = i16x8.splat(<i16> inZp);
  const cs = <usize> c;
  const rs = <usize> (w * c);
  const taps = k * k;
  const pairs = (taps + 1) >> 1;
  const blockBytes = <usize> pairs << 5;
  const cb = (c + 7) >> 3;
  if (taps & 1) store<usize>(TAPS + (<usize> taps << 2), zrow);
  // Byte offsets of the taps from a window's top-left pixel (interior pixels, any k); an odd tap
  // count pairs the last tap with offset 0, whose packed weight is 0.
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) store<u32>(OFFS + (<usize> (ky * k + kx) << 2), <u32> (<usize> ky * rs + <usize> kx * cs));
  }
  if (taps & 1) store<u32>(OFFS + (<usize> taps << 2), 0);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * stride - padT;
      const rowsIn = iy0 >= 0 && iy0 + k <= h;
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * stride - padL;
        if (k == 3 && rowsIn && ix0 >= 0 && ix0 + 3 <= w) {
          // Interior 3x3 pixel: fixed tap offsets, no padding, and the input zero point folded
          // into biasIn (bias - inZp * sum(w)), so raw uint8 inputs enter the dot products.
          const base = src + <usize> (((b * h + iy0) * w + ix0) * c);
          const o = dst + <usize> (((b * oh + oy) * ow + ox) * c);
          for (let j = 0; j < cb; j++) {
            const off = <usize> j << 3;
            const q = base + off;
            const pw = wts + <usize> j * blockBytes;
            let a0 = v128.load(biasIn + (off << 2));
            let a1 = v128.load(biasIn + (off << 2), 16);
            let xa = v128.load8x8_u(q);
            let xb = v128.load8x8_u(q + cs);
            a0 = i32x4.add(
              a0,
              i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(pw)),
            );
            a1 = i32x4.add(
              a1,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15),
                v128.load(pw, 16),
              ),
            );
            xa = v128.load8x8_u(q + 2 * cs);
            xb = v128.load8x8_u(q + rs);
            a0 = i32x4.add(
              a0,
              i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(pw, 32)),
            );
            a1 = i32x4.add(
              a1,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15),
                v128.load(pw, 48),
              ),
            );
            xa = v128.load8x8_u(q + rs + cs);
            xb = v128.load8x8_u(q + rs + 2 * cs);
            a0 = i32x4.add(
              a0,
              i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(pw, 64)),
            );
            a1 = i32x4.add(
              a1,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15),
                v128.load(pw, 80),
              ),
            );
            xa = v128.load8x8_u(q + 2 * rs);
            xb = v128.load8x8_u(q + 2 * rs + cs);
            a0 = i32x4.add(
              a0,
              i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(pw, 96)),
            );
            a1 = i32x4.add(
              a1,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15),
                v128.load(pw, 112),
              ),
            );
            // tap 8 pairs with itself: the packed weight of the padding tap is 0
            xa = v128.load8x8_u(q + 2 * rs + 2 * cs);
            a0 = i32x4.add(
              a0,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xa, 0, 8, 1, 9, 2, 10, 3, 11),
                v128.load(pw, 128),
              ),
            );
            a1 = i32x4.add(
              a1,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xa, 4, 12, 5, 13, 6, 14, 7, 15),
                v128.load(pw, 144),
              ),
            );
            store8(
              o + off,
              requant4(a0, v128.load(mult + (off << 2)), flo, fhi, zpv),
              requant4(a1, v128.load(mult + (off << 2), 16), flo, fhi, zpv),
              min(8, c - (j << 3)),
            );
          }
          continue;
        }
        if (rowsIn && ix0 >= 0 && ix0 + k <= w) {
          // Interior pixel, other kernel sizes: tap offsets from OFFS, zero point folded in biasIn.
          const base = src + <usize> (((b * h + iy0) * w + ix0) * c);
          const o = dst + <usize> (((b * oh + oy) * ow + ox) * c);
          for (let j = 0; j < cb; j++) {
            const off = <usize> j << 3;
            const q0 = base + off;
            let a0 = v128.load(biasIn + (off << 2));
            let a1 = v128.load(biasIn + (off << 2), 16);
            let pw = wts + <usize> j * blockBytes;
            for (let q = 0; q < pairs; q++) {
              const op = OFFS + (<usize> q << 3);
              const xa = v128.load8x8_u(q0 + <usize> load<u32>(op));
              const xb = v128.load8x8_u(q0 + <usize> load<u32>(op, 4));
              a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(pw)));
              a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), v128.load(pw, 16)));
              pw += 32;
            }
            store8(
              o + off,
              requant4(a0, v128.load(mult + (off << 2)), flo, fhi, zpv),
              requant4(a1, v128.load(mult + (off << 2), 16), flo, fhi, zpv),
              min(8, c - (j << 3)),
            );
          }
          continue;
        }
        let t: usize = 0;
        for (let ky = 0; ky < k; ky++) {
          const iy = iy0 + ky;
          const rowOk = iy >= 0 && iy < h;
          const rowBase = src + <usize> (((b * h + iy) * w) * c);
          for (let kx = 0; kx < k; kx++) {
            const ix = ix0 + kx;
            const p = rowOk && ix >= 0 && ix < w ? rowBase + <usize> (ix * c) : zrow;
            store<usize>(TAPS + (t << 2), p);
            t++;
          }
        }
        const o = dst + <usize> (((b * oh + oy) * ow + ox) * c);
        for (let j = 0; j < cb; j++) {
          const off = <usize> j << 3;
          let a0 = v128.load(bias + (off << 2));
          let a1 = v128.load(bias + (off << 2), 16);
          let pw = wts + <usize> j * blockBytes;
          for (let q = 0; q < pairs; q++) {
            const tp = TAPS + (<usize> q << 3);
            const xa = i16x8.sub(v128.load8x8_u(load<usize>(tp) + off), zin);
            const xb = i16x8.sub(v128.load8x8_u(load<usize>(tp, 4) + off), zin);
            a0 = i32x4.add(
              a0,
              i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(pw)),
            );
            a1 = i32x4.add(
              a1,
              i32x4.dot_i16x8_s(
                i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15),
                v128.load(pw, 16),
              ),
            );
            pw += 32;
          }
          store8(
            o + off,
            requant4(a0, v128.load(mult + (off << 2)), flo, fhi, zpv),
            requant4(a1, v128.load(mult + (off << 2), 16), flo, fhi, zpv),
            min(8, c - (j << 3)),
          );
        }
      }
    }
  }
}

/**
 * Global average pool NHWC [n, hw, c] -> [n, c] with QLinearGlobalAveragePool's arithmetic:
 * acc = sum - inZp * hw, one float32 multiplier f32(inScale / f32(outScale * hw)).
 */
export function globalAvgPool(
  src: usize,
  n: i32,
  hw: i32,
  c: i32,
  inZp: i32,
  mult: f32,
  outZp: i32,
  lo: i32,
  hi: i32,
  dst: usize,
): void {
  const zpv = i32x4.splat(outZp);
  const flo = f32x4.splat(<f32> (lo - outZp));
  const fhi = f32x4.splat(<f32> (hi - outZp));
  const mv = f32x4.splat(mult);
  const start = i32x4.splat(-inZp * hw);
  for (let b = 0; b < n; b++) {
    const base = src + <usize> b * <usize> hw * <usize> c;
    for (let cc = 0; cc < c; cc += 8) {
      let a0 = start, a1 = start;
      let p = base + <usize> cc;
      for (let i = 0; i < hw; i++) {
        const x = v128.load8x8_u(p);
        a0 = i32x4.add(a0, i32x4.extend_low_i16x8_u(x));
        a1 = i32x4.add(a1, i32x4.extend_high_i16x8_u(x));
        p += <usize> c;
      }
      store8(
        dst + <usize> (b * c + cc),
        requant4(a0, mv, flo, fhi, zpv),
        requant4(a1, mv, flo, fhi, zpv),
        min(8, c - cc),
      );
    }
  }
}

/**
 * Requantizes an int32 matrix [m, c] (row-major) to uint8 with per-channel bias and multipliers
 * (padded to a multiple of 8).
 */
export function requantize(
  src: usize,
  m: i32,
  c: i32,
  bias: usize,
  mult: usize,
  outZp: i32,
  lo: i32,
  hi: i32,
  dst: usize,
): void {
  const zpv = i32x4.splat(outZp);
  const flo = f32x4.splat(<f32> (lo - outZp));
  const fhi = f32x4.splat(<f32> (hi - outZp));
  for (let r = 0; r < m; r++) {
    const s = src + ((<usize> r * <usize> c) << 2);
    const d = dst + <usize> r * <usize> c;
    for (let cc = 0; cc < c; cc += 8) {
      const off = <usize> cc << 2;
      const a0 = i32x4.add(v128.load(s + off), v128.load(bias + off));
      const a1 = i32x4.add(v128.load(s + off, 16), v128.load(bias + off, 16));
      store8(
        d + <usize> cc,
        requant4(a0, v128.load(mult + off), flo, fhi, zpv),
        requant4(a1, v128.load(mult + off, 16), flo, fhi, zpv),
        min(8, c - cc),
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 7-bit-weight GEMM on the relaxed int8 dot product (i32x4.relaxed_dot_i8x16_i7x16_add_s).
//
// The dot multiplies a signed int8 operand by a 7-bit operand (0..127) and adds groups of 4
// products to each int32 lane; with the second operand in 0..127 every implementation (VNNI's
// vpdpbusd, pmaddubsw + pmaddwd, ARM sdot) gives the same exact result. The shipped models keep
// weights in -64..64 (model/export/quantize.ts), so:
// - per output channel a sign s = +-1 makes the weights w' = s * w fit -64..63 (s = -1 when the
//   channel holds +64; a channel holding both +64 and -64 cannot use this path), and the packed
//   operand is b = w' + 64 in 0..127;
// - activations enter as a = x - 128 (x ^ 0x80), the signed operand;
// - sum (x - 128)(w' + 64) = sum x w' + 64 sum x - 128 sum w' - 8192 K, so
//   s * acc = [s * bias + (128 - zp) sum w' + 8192 K]  (per channel, folded at load: biasS7)
//           + [-64 sum x]                                (per row, written by the row packer: corr)
//           + the dot products,
//   and requantization uses s * m[c] (f32(-v) * -m == f32(v) * m exactly in IEEE arithmetic).
// Every step is exact int32 (|dot| <= K * 128 * 127), so results equal the int16 path's.
// ---------------------------------------------------------------------------------------------

/**
 * Packs int8 weights [n][k] (zero point 0) for gemmS7: per block of 8 output channels, per quad
 * of k (kq = k rounded up to 4): 32 bytes = [o0: k0..k3, o1: .., o2, o3] then o4..o7, value
 * s * w + 64, zero in the padding. Writes s (i32) to signs[o] and sum_k s * w to sums[o].
 * Returns 1; 0 when a weight lies outside -64..64 (the caller then uses the int16 path); 2 when a
 * channel holds both +64 and -64 (the caller moves its +64s to extra columns, see gatherColsS8).
 */
export function packGemmWeightsS7(
  src: usize,
  n: i32,
  k: i32,
  kq: i32,
  dst: usize,
  signs: usize,
  sums: usize,
): i32 {
  const total = <usize> (((n + 7) >> 3) * 8 * kq);
  for (let i: usize = 0; i < total; i += 8) store<u64>(dst + i, 0);
  for (let o = 0; o < n; o++) {
    const row = src + <usize> (o * k);
    let hasPos = false, hasNeg = false;
    for (let p = 0; p < k; p++) {
      const v = <i32> load<i8>(row + <usize> p);
      if (v > 64 || v < -64) return 0;
      if (v == 64) hasPos = true;
      if (v == -64) hasNeg = true;
    }
    if (hasPos && hasNeg) return 2;
    const s = hasPos ? -1 : 1;
    const base = dst + <usize> ((o >> 3) * 8 * kq + ((o & 7) >> 2) * 16 + (o & 3) * 4);
    let sum = 0;
    for (let p = 0; p < k; p++) {
      const v = s * <i32> load<i8>(row + <usize> p);
      sum += v;
      store<u8>(base + <usize> ((p >> 2) * 32 + (p & 3)), <u8> (v + 64));
    }
    store<i32>(signs + (<usize> o << 2), s);
    store<i32>(sums + (<usize> o << 2), sum);
  }
  return 1;
}

/** [sum of v0's lanes, .. v3's] (int32, wrapping). */
// @ts-ignore: decorator
@inline
function laneSums4(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(v0, v1, 0, 4, 1, 5), i32x4.shuffle(v0, v1, 2, 6, 3, 7));
  const t1 = i32x4.add(i32x4.shuffle(v2, v3, 0, 4, 1, 5), i32x4.shuffle(v2, v3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline
function laneSum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) +
    i32x4.extract_lane(v, 3);
}

/**
 * One row of packRowsS8: stores x ^ 0x80 in 16-byte chunks (the last chunk runs past k: into the
 * row padding, then into the next row, which is written after; or into the buffer's slack) and
 * returns lanes whose sum is sum(x - 128) over the k real bytes (relaxed dot with 1s, exact).
 */
// @ts-ignore: decorator
@inline
function flipRow(s: usize, d: usize, last: usize, flip: v128, ones: v128, tailOnes: v128): v128 {
  let acc = i32x4.splat(0);
  for (let i: usize = 0; i < last; i += 16) {
    const x = v128.xor(v128.load(s + i), flip);
    v128.store(d + i, x);
    acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, ones, acc);
  }
  const x = v128.xor(v128.load(s + last), flip);
  v128.store(d + last, x);
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, tailOnes, acc);
}

/**
 * Row packer of gemmS7: dst[r][i] = src[r * ldsrc + i] ^ 0x80 (x - 128 as int8) for i < k, bytes
 * up to kq arbitrary (they meet zero weights); corr[r] = -64 * sum_i x. Reads up to 15 bytes past
 * each row (buffers have 16 bytes of slack) and writes up to 15 past the last one (the same).
 */
export function packRowsS8(
  src: usize,
  m: i32,
  k: i32,
  ldsrc: i32,
  dst: usize,
  kq: i32,
  corr: usize,
): void {
  const flip = i8x16.splat(-128);
  const lane = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const last = <usize> ((k - 1) & ~15);
  const ones = i8x16.splat(1);
  const tailOnes = v128.and(ones, i8x16.gt_s(i8x16.splat(<i8> (k - <i32> last)), lane));
  // sum x = sum (x - 128) + 128 k
  const off = -8192 * k;
  const ls = <usize> ldsrc;
  const lq = <usize> kq;
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const s = src + <usize> r * ls;
    const d = dst + <usize> r * lq;
    const v0 = flipRow(s, d, last, flip, ones, tailOnes);
    const v1 = flipRow(s + ls, d + lq, last, flip, ones, tailOnes);
    const v2 = flipRow(s + 2 * ls, d + 2 * lq, last, flip, ones, tailOnes);
    const v3 = flipRow(s + 3 * ls, d + 3 * lq, last, flip, ones, tailOnes);
    v128.store(
      corr + (<usize> r << 2),
      i32x4.add(i32x4.mul(laneSums4(v0, v1, v2, v3), i32x4.splat(-64)), i32x4.splat(off)),
    );
  }
  for (; r < m; r++) {
    const v = flipRow(src + <usize> r * ls, dst + <usize> r * lq, last, flip, ones, tailOnes);
    store<i32>(corr + (<usize> r << 2), -64 * laneSum(v) + off);
  }
}

/**
 * im2col for gemmS7 (groups = 1, NHWC): one row of kq bytes per output pixel, columns (ky, kx, ci),
 * value x ^ 0x80, out-of-image taps take the zero point (so they add (zp - zp) * w = 0), 0 in the
 * column padding; corr[row] = -64 * sum of the row's (x or zp) values.
 */
export function packIm2colS8(
  src: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  padT: i32,
  padL: i32,
  oh: i32,
  ow: i32,
  zp: i32,
  dst: usize,
  kq: i32,
  corr: usize,
): void {
  let row: usize = 0;
  const kk = kh * kw * c;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const d = dst + row * <usize> kq;
        let idx = 0;
        let sum = 0;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - padT + ky;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - padL + kx;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
              const s = src + <usize> (((b * h + iy) * w + ix) * c);
              for (let ci = 0; ci < c; ci++) {
                const x = <i32> load<u8>(s + <usize> ci);
                sum += x;
                store<u8>(d + <usize> (idx + ci), <u8> (x ^ 0x80));
              }
            } else {
              sum += zp * c;
              for (let ci = 0; ci < c; ci++) store<u8>(d + <usize> (idx + ci), <u8> (zp ^ 0x80));
            }
            idx += c;
          }
        }
        for (let i = kk; i < kq; i++) store<u8>(d + <usize> i, 0);
        store<i32>(corr + (row << 2), -64 * sum);
        row++;
      }
    }
  }
}

// @ts-ignore: decorator
@inline
function dot7(x: v128, w: v128, acc: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, acc);
}

/**
 * GEMM on 7-bit weights with fused requantization:
 * out[r * ldo + o] = requant(bias[o] + corr[r] + sum_q dot(a[r][q], w[o][q])), bias and mult as
 * folded by the loader (see the section comment). a: [m][kq] bytes from packRowsS8 / packIm2colS8;
 * w: from packGemmWeightsS7. Register tile 4 rows x 8 channels (8 i32x4 accumulators): a 6-row
 * tile measured slower, its 12 accumulators left V8 too few registers and it spilled in the loop.
 */
export function gemmS7(
  a: usize,
  m: i32,
  kq: i32,
  w: usize,
  n: i32,
  bias: usize,
  corr: usize,
  mult: usize,
  outZp: i32,
  lo: i32,
  hi: i32,
  out: usize,
  ldo: i32,
): void {
  // Only the accumulators, two weight vectors and the activation splat stay live in the inner
  // loops: bias, multipliers and the clamp constants are loaded or splatted per tile, outside
  // them (kept live across the loop, they made V8 spill on x64's 16 xmm registers).
  const flof = <f32> (lo - outZp);
  const fhif = <f32> (hi - outZp);
  const rowBytes = <usize> kq;
  const blockBytes = rowBytes << 3;
  const ld = <usize> ldo;
  const nb = (n + 7) >> 3;
  for (let j = 0; j < nb; j++) {
    const wb = w + <usize> j * blockBytes;
    const pb = bias + (<usize> j << 5);
    const pm = mult + (<usize> j << 5);
    const cnt = min(8, n - (j << 3));
    const ob = out + (<usize> j << 3);
    const wend = wb + blockBytes;
    let r = 0;
    for (; r + 4 <= m; r += 4) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      const b0 = v128.load(pb);
      const b1 = v128.load(pb, 16);
      const pc = corr + (<usize> r << 2);
      let k = i32x4.splat(load<i32>(pc));
      let c00 = i32x4.add(b0, k), c01 = i32x4.add(b1, k);
      k = i32x4.splat(load<i32>(pc, 4));
      let c10 = i32x4.add(b0, k), c11 = i32x4.add(b1, k);
      k = i32x4.splat(load<i32>(pc, 8));
      let c20 = i32x4.add(b0, k), c21 = i32x4.add(b1, k);
      k = i32x4.splat(load<i32>(pc, 12));
      let c30 = i32x4.add(b0, k), c31 = i32x4.add(b1, k);
      while (pw < wend) {
        const w0 = v128.load(pw);
        const w1 = v128.load(pw, 16);
        let x = v128.load32_splat(pa);
        c00 = dot7(x, w0, c00);
        c01 = dot7(x, w1, c01);
        x = v128.load32_splat(pa + rowBytes);
        c10 = dot7(x, w0, c10);
        c11 = dot7(x, w1, c11);
        x = v128.load32_splat(pa + (rowBytes << 1));
        c20 = dot7(x, w0, c20);
        c21 = dot7(x, w1, c21);
        x = v128.load32_splat(pa + rowBytes * 3);
        c30 = dot7(x, w0, c30);
        c31 = dot7(x, w1, c31);
        pw += 32;
        pa += 4;
      }
      const s0 = v128.load(pm);
      const s1 = v128.load(pm, 16);
      const zpv = i32x4.splat(outZp);
      const flo = f32x4.splat(flof);
      const fhi = f32x4.splat(fhif);
      const o = ob + <usize> r * ld;
      store8(o, requant4(c00, s0, flo, fhi, zpv), requant4(c01, s1, flo, fhi, zpv), cnt);
      store8(o + ld, requant4(c10, s0, flo, fhi, zpv), requant4(c11, s1, flo, fhi, zpv), cnt);
      store8(o + 2 * ld, requant4(c20, s0, flo, fhi, zpv), requant4(c21, s1, flo, fhi, zpv), cnt);
      store8(o + 3 * ld, requant4(c30, s0, flo, fhi, zpv), requant4(c31, s1, flo, fhi, zpv), cnt);
    }
    for (; r < m; r++) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      const b0 = v128.load(pb);
      const b1 = v128.load(pb, 16);
      const k = i32x4.splat(load<i32>(corr + (<usize> r << 2)));
      let c00 = i32x4.add(b0, k), c01 = i32x4.add(b1, k);
      while (pw < wend) {
        const x = v128.load32_splat(pa);
        c00 = dot7(x, v128.load(pw), c00);
        c01 = dot7(x, v128.load(pw, 16), c01);
        pw += 32;
        pa += 4;
      }
      const s0 = v128.load(pm);
      const s1 = v128.load(pm, 16);
      const zpv = i32x4.splat(outZp);
      const flo = f32x4.splat(flof);
      const fhi = f32x4.splat(fhif);
      store8(
        ob + <usize> r * ld,
        requant4(c00, s0, flo, fhi, zpv),
        requant4(c01, s1, flo, fhi, zpv),
        cnt,
      );
    }
  }
}

/**
 * gemmS7 with float32 output: out[r * n + o] = f32(acc') * scale'[o] (the dequantized logits;
 * acc' and scale' carry the channel sign, so the product equals f32(acc) * scale).
 */
export function gemmS7F32(
  a: usize,
  m: i32,
  kq: i32,
  w: usize,
  n: i32,
  bias: usize,
  corr: usize,
  scale: usize,
  out: usize,
): void {
  const rowBytes = <usize> kq;
  const blockBytes = rowBytes << 3;
  const nb = (n + 7) >> 3;
  for (let j = 0; j < nb; j++) {
    const wb = w + <usize> j * blockBytes;
    const wend = wb + blockBytes;
    const cnt = min(8, n - (j << 3));
    for (let r = 0; r < m; r++) {
      let pa = a + <usize> r * rowBytes;
      let pw = wb;
      const k = i32x4.splat(load<i32>(corr + (<usize> r << 2)));
      let c0 = i32x4.add(v128.load(bias + (<usize> j << 5)), k);
      let c1 = i32x4.add(v128.load(bias + (<usize> j << 5), 16), k);
      while (pw < wend) {
        const x = v128.load32_splat(pa);
        c0 = dot7(x, v128.load(pw), c0);
        c1 = dot7(x, v128.load(pw, 16), c1);
        pw += 32;
        pa += 4;
      }
      v128.store(SCRATCH, f32x4.mul(f32x4.convert_i32x4_s(c0), v128.load(scale + (<usize> j << 5))));
      v128.store(
        SCRATCH,
        f32x4.mul(f32x4.convert_i32x4_s(c1), v128.load(scale + (<usize> j << 5), 16)),
        16,
      );
      const o = out + ((<usize> r * <usize> n + (<usize> j << 3)) << 2);
      for (let i = 0; i < cnt; i++) {
        store<f32>(o + (<usize> i << 2), load<f32>(SCRATCH + (<usize> i << 2)));
      }
    }
  }
}

/**
 * Copies NHWC uint8 [n, h, w, c] into [n, ph, pw, c] with the image at row padT, column padL and
 * every other pixel set to zp, every byte XORed with flip (0, or 0x80 for the int8 form x - 128):
 * kernels then read every window without bounds checks, and the padding adds exactly
 * (zp - zp) * w = 0. Flipped row copies run in 16-byte chunks (each row's overshoot is
 * overwritten by what follows it; the last one lands in the buffer's slack).
 */
export function padInput(
  src: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  padT: i32,
  padL: i32,
  ph: i32,
  pw: i32,
  zp: i32,
  dst: usize,
  flip: i32,
): void {
  const rowIn = <usize> (w * c);
  const rowOut = <usize> (pw * c);
  const left = <usize> (padL * c);
  const right = rowOut - left - rowIn;
  const z = <u8> (zp ^ flip);
  const f = i8x16.splat(<i8> flip);
  for (let b = 0; b < n; b++) {
    const s = src + <usize> (b * h) * rowIn;
    const d = dst + <usize> (b * ph) * rowOut;
    if (padT > 0) memory.fill(d, z, <usize> padT * rowOut);
    for (let y = 0; y < h; y++) {
      const dr = d + <usize> (y + padT) * rowOut;
      const sr = s + <usize> y * rowIn;
      if (left) memory.fill(dr, z, left);
      if (flip) {
        for (let i: usize = 0; i < rowIn; i += 16) {
          v128.store(dr + left + i, v128.xor(v128.load(sr + i), f));
        }
      } else {
        memory.copy(dr + left, sr, rowIn);
      }
      if (right) memory.fill(dr + left + rowIn, z, right);
    }
    const below = ph - padT - h;
    if (below > 0) memory.fill(d + <usize> (padT + h) * rowOut, z, <usize> below * rowOut);
  }
}

/**
 * im2col for gemmS7 on a padded input already in int8 form (padInput with flip 0x80): every
 * window lies inside, so each kernel row's kw * c bytes are one contiguous copy. Rows as
 * packRowsS8 (x - 128 as int8, corr = -64 * sum x); the column padding (kh * kw * c .. kq) holds
 * arbitrary bytes, which meet zero weights. dst needs 16 bytes of slack (copies overshoot by up
 * to 15 bytes into the next row, which is written after).
 */
export function packIm2colS8Padded(
  src: usize,
  n: i32,
  ph: i32,
  pw: i32,
  c: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  oh: i32,
  ow: i32,
  dst: usize,
  kq: i32,
  corr: usize,
): void {
  const span = kw * c;
  const kk = kh * span;
  const rowIn = <usize> (pw * c);
  let row: usize = 0;
  for (let b = 0; b < n; b++) {
    const img = src + <usize> (b * ph) * rowIn;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const d = dst + row * <usize> kq;
        const top = img + <usize> (oy * sh) * rowIn + <usize> (ox * sw * c);
        let idx = 0;
        for (let ky = 0; ky < kh; ky++) {
          const s = top + <usize> ky * rowIn;
          for (let i = 0; i < span; i += 16) {
            v128.store(d + <usize> (idx + i), v128.load(s + <usize> i));
          }
          idx += span;
        }
        row++;
      }
    }
  }
  // row sums, read back once the copies are done (as relaxed dots with 1s: sum(x - 128) exactly)
  const lane = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const last = <usize> ((kk - 1) & ~15);
  const ones = i8x16.splat(1);
  const tailOnes = v128.and(ones, i8x16.gt_s(i8x16.splat(<i8> (kk - <i32> last)), lane));
  const off = -8192 * kk;
  const lq = <usize> kq;
  const rows = <i32> row;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const d = dst + <usize> r * lq;
    const v0 = sumRowS8(d, last, ones, tailOnes);
    const v1 = sumRowS8(d + lq, last, ones, tailOnes);
    const v2 = sumRowS8(d + 2 * lq, last, ones, tailOnes);
    const v3 = sumRowS8(d + 3 * lq, last, ones, tailOnes);
    v128.store(
      corr + (<usize> r << 2),
      i32x4.add(i32x4.mul(laneSums4(v0, v1, v2, v3), i32x4.splat(-64)), i32x4.splat(off)),
    );
  }
  for (; r < rows; r++) {
    const v = sumRowS8(dst + <usize> r * lq, last, ones, tailOnes);
    store<i32>(corr + (<usize> r << 2), -64 * laneSum(v) + off);
  }
}

/** Lanes summing to sum(a) over a row's first (last + popcount of tailOnes) int8 bytes. */
// @ts-ignore: decorator
@inline
function sumRowS8(d: usize, last: usize, ones: v128, tailOnes: v128): v128 {
  let acc = i32x4.splat(0);
  for (let i: usize = 0; i < last; i += 16) {
    acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(d + i), ones, acc);
  }
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(d + last), tailOnes, acc);
}

/**
 * QuantizeLinear as onnxruntime computes it, float32 NCHW -> uint8 NHWC:
 * q = round_half_even(clamp(f32(x / scale), -zp, 255 - zp)) + zp, NaN -> zp (the TypeScript
 * reference, kernels/int8/quantize_linear.ts, does the same).
 */
export function quantizeInput(
  src: usize,
  n: i32,
  c: i32,
  hw: i32,
  scale: f32,
  zp: i32,
  dst: usize,
): void {
  const sv = f32x4.splat(scale);
  const lo: i32 = -zp;
  const hi: i32 = 255 - zp;
  const flo = <f32> lo;
  const fhi = <f32> hi;
  const lov = f32x4.splat(flo);
  const hiv = f32x4.splat(fhi);
  const zpv = i32x4.splat(zp);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const s = src + (<usize> ((b * c + ch) * hw) << 2);
      const d = dst + <usize> (b * hw * c + ch);
      let i = 0;
      if (c == 1) {
        for (; i + 16 <= hw; i += 16) {
          const p = s + (<usize> i << 2);
          const q0 = quant4(v128.load(p), sv, lov, hiv, zpv);
          const q1 = quant4(v128.load(p, 16), sv, lov, hiv, zpv);
          const q2 = quant4(v128.load(p, 32), sv, lov, hiv, zpv);
          const q3 = quant4(v128.load(p, 48), sv, lov, hiv, zpv);
          v128.store(
            d + <usize> i,
            i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)),
          );
        }
      }
      for (; i < hw; i++) {
        let v = load<f32>(s + (<usize> i << 2)) / scale;
        if (v != v) v = 0;
        v = min(max(v, flo), fhi);
        store<u8>(d + <usize> (i * c), <u8> (<i32> nearest<f32>(v) + zp));
      }
    }
  }
}

// @ts-ignore: decorator
@inline
function quant4(x: v128, sv: v128, lov: v128, hiv: v128, zpv: v128): v128 {
  let f = f32x4.div(x, sv);
  f = v128.and(f, f32x4.eq(f, f)); // NaN -> 0
  f = f32x4.pmin(f32x4.pmax(f, lov), hiv);
  return i32x4.add(i32x4.relaxed_trunc_f32x4_s(f32x4.nearest(f)), zpv);
}

/**
 * Extra GEMM columns for the 7-bit path (after packRowsS8 wrote the k real ones): column k + j of
 * row r is a copy of input column cols[j] (x ^ 0x80), and corr[r] gets -64 * sum_j x. A channel
 * that holds both +64 and -64 keeps 63 in place of each +64 and gets weight 1 in the extra column
 * that copies that input: the same sum, every packed weight in range.
 */
export function gatherColsS8(
  src: usize,
  m: i32,
  ldsrc: i32,
  cols: usize,
  e: i32,
  dst: usize,
  kq: i32,
  k: i32,
  corr: usize,
): void {
  for (let r = 0; r < m; r++) {
    const s = src + <usize> r * <usize> ldsrc;
    const d = dst + <usize> r * <usize> kq + <usize> k;
    let sum = 0;
    for (let j = 0; j < e; j++) {
      const x = <i32> load<u8>(s + <usize> load<i32>(cols + (<usize> j << 2)));
      sum += x;
      store<u8>(d + <usize> j, <u8> (x ^ 0x80));
    }
    const pc = corr + (<usize> r << 2);
    store<i32>(pc, load<i32>(pc) - 64 * sum);
  }
}

/**
 * Depthwise 3x3 on a padded NHWC uint8 input (padInput: every window inside), int16 weights as
 * `depthwise` packs them, biasIn = bias - inZp * sum(w) (the zero point folded in). Per output
 * row, per block of 8 channels, the block's 10 weight vectors are loaded once and reused along
 * the row.
 */
export function depthwise3x3Padded(
  src: usize,
  n: i32,
  ph: i32,
  pw: i32,
  c: i32,
  stride: i32,
  oh: i32,
  ow: i32,
  wts: usize,
  biasIn: usize,
  mult: usize,
  outZp: i32,
  lo: i32,
  hi: i32,
  dst: usize,
): void {
  const flof = <f32> (lo - outZp);
  const fhif = <f32> (hi - outZp);
  const cs = <usize> c;
  const rs = <usize> (pw * c);
  const step = <usize> stride * cs;
  const cb = (c + 7) >> 3;
  // per output row, then per channel block: the 3 input rows stay in L1 while every block walks
  // them, and each block's weights are loaded once per row
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const qrow = src + <usize> ((b * ph + oy * stride) * pw) * cs;
      const orow = dst + <usize> ((b * oh + oy) * ow) * cs;
      for (let j = 0; j < cb; j++) {
        const off = <usize> j << 3;
        const pw0 = wts + <usize> j * 160;
        const w0 = v128.load(pw0), w1 = v128.load(pw0, 16), w2 = v128.load(pw0, 32);
        const w3 = v128.load(pw0, 48), w4 = v128.load(pw0, 64), w5 = v128.load(pw0, 80);
        const w6 = v128.load(pw0, 96), w7 = v128.load(pw0, 112), w8 = v128.load(pw0, 128);
        const w9 = v128.load(pw0, 144);
        const cnt = min(8, c - (j << 3));
        let q = qrow + off;
        let o = orow + off;
        for (let ox = 0; ox < ow; ox++) {
          let a0 = v128.load(biasIn + (off << 2));
          let a1 = v128.load(biasIn + (off << 2), 16);
          let xa = v128.load8x8_u(q);
          let xb = v128.load8x8_u(q + cs);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), w0));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), w1));
          xa = v128.load8x8_u(q + 2 * cs);
          xb = v128.load8x8_u(q + rs);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), w2));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), w3));
          xa = v128.load8x8_u(q + rs + cs);
          xb = v128.load8x8_u(q + rs + 2 * cs);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), w4));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), w5));
          xa = v128.load8x8_u(q + 2 * rs);
          xb = v128.load8x8_u(q + 2 * rs + cs);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 0, 8, 1, 9, 2, 10, 3, 11), w6));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.shuffle(xa, xb, 4, 12, 5, 13, 6, 14, 7, 15), w7));
          // tap 8 pairs with a zero weight
          xa = v128.load8x8_u(q + 2 * rs + 2 * cs);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i32x4.extend_low_i16x8_u(xa), w8));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i32x4.extend_high_i16x8_u(xa), w9));
          store8(
            o,
            requant4(a0, v128.load(mult + (off << 2)), f32x4.splat(flof), f32x4.splat(fhif), i32x4.splat(outZp)),
            requant4(a1, v128.load(mult + (off << 2), 16), f32x4.splat(flof), f32x4.splat(fhif), i32x4.splat(outZp)),
            cnt,
          );
          q += step;
          o += cs;
        }
      }
    }
  }
}
