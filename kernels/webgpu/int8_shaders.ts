/**
 * WGSL sources of the int8 kernels (the spec is the TypeScript reference in kernels/int8/).
 *
 * Layout and arithmetic:
 * - activations are NHWC with one uint8 value per `u32` word (correctness before speed: no
 *   packing, so every invocation writes whole words and needs no atomics);
 * - weights are `i32` values with their zero point already subtracted (`w - zp[o]`), stored with
 *   the output channel innermost (GEMM `[K, N]`, conv `[kh, kw, in / groups, out]`): neighbouring
 *   invocations compute neighbouring channels, so their weight reads are contiguous (one vector
 *   load on llvmpipe, coalesced on a GPU). The accumulator is therefore
 *   the reference's `sum (x - xZp) * (w - wZp) + bias` in i32; the reference plans
 *   reject any layer whose accumulator could leave int32, so i32 arithmetic is exact;
 * - requantization reproduces `requantize.ts`: `f32(acc) * m`, clamp to `[lo - zp, hi - zp]`,
 *   round half to even (WGSL `round()` is specified as ties-to-even), `+ zp`.
 *
 * Every kernel is one invocation per output value, `WG` invocations per workgroup, dispatched as a
 * 2-D grid when the workgroup count passes WebGPU's per-dimension limit of 65535: the linear index
 * is `gid.x + gid.y * rowStride` with `rowStride = workgroupsX * WG`.
 */

/** Invocations per workgroup (WebGPU guarantees at least 256; 64 suits every adapter). */
export const WG = 64;

/** Largest workgroup count per dispatch dimension that every WebGPU device accepts. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * int32 -> float32, rounded to nearest even on every adapter. WGSL leaves the rounding of
 * `f32(i32)` open when the value needs more than 24 bits (either neighbour may be chosen), so the
 * value is split into a high part (|hi| <= 2^15, times 2^16: exact) and a low part (< 2^16:
 * exact); their sum is one correctly rounded f32 addition, as the reference's `Math.fround(acc)`.
 */
const I32_TO_F32 = /* wgsl */ `
fn i32ToF32(v: i32) -> f32 {
  let hi = f32(v >> 16u) * 65536.0;
  let lo = f32(v & 0xffff);
  return hi + lo;
}`;

/** The requantization of `requantize.ts` on one accumulator. */
const REQUANT = /* wgsl */ `
${I32_TO_F32}

fn requant(acc: i32, m: f32, zp: i32, lo: i32, hi: i32) -> u32 {
  // scale in float32, as MLAS does
  let v = i32ToF32(acc) * m;
  // clamp to the folded activation range, then round half to even and add the zero point
  let c = min(max(v, f32(lo - zp)), f32(hi - zp));
  return u32(i32(round(c)) + zp);
}`;

/** Quantized convolution with groups (first conv, depthwise, any k x k conv). */
export const CONV2D_WGSL = /* wgsl */ `
const WG: u32 = ${WG}u;

struct Params {
  total: u32, rowStride: u32, n: u32, h: u32,
  w: u32, c: u32, outH: u32, outW: u32,
  outC: u32, kh: u32, kw: u32, strideH: u32,
  strideW: u32, padTop: i32, padLeft: i32, inPerGroup: u32,
  outPerGroup: u32, inZp: i32, outZp: i32, lo: i32,
  hi: i32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<i32>;
@group(0) @binding(3) var<storage, read> bias: array<i32>;
@group(0) @binding(4) var<storage, read> mult: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;
${REQUANT}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // phase 1: which output value (NHWC index) this invocation computes
  let idx = gid.x + gid.y * p.rowStride;
  if (idx >= p.total) { return; }
  let o = idx % p.outC;
  var t = idx / p.outC;
  let ox = t % p.outW;
  t = t / p.outW;
  let oy = t % p.outH;
  let b = t / p.outH;
  let g = o / p.outPerGroup;

  // phase 2: accumulate over the window; padded pixels hold the input zero point, i.e. add 0
  var acc = bias[o];
  for (var ky = 0u; ky < p.kh; ky++) {
    let iy = i32(oy * p.strideH + ky) - p.padTop;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    for (var kx = 0u; kx < p.kw; kx++) {
      let ix = i32(ox * p.strideW + kx) - p.padLeft;
      if (ix < 0 || ix >= i32(p.w)) { continue; }
      let base = ((b * p.h + u32(iy)) * p.w + u32(ix)) * p.c + g * p.inPerGroup;
      for (var i = 0u; i < p.inPerGroup; i++) {
        let wv = weights[((ky * p.kw + kx) * p.inPerGroup + i) * p.outC + o];
        acc += (i32(x[base + i]) - p.inZp) * wv;
      }
    }
  }

  // phase 3: requantize to uint8
  y[idx] = requant(acc, mult[o], p.outZp, p.lo, p.hi);
}
`;

/**
 * GEMM `[M, K] x [N, K]^T`: pointwise convolutions and the FC layer. Each invocation computes a
 * 4 x 4 tile, four neighbouring output channels of four rows: one weight quad feeds four rows and
 * one input load four multiply-adds, and the
 * weights are `vec4<i32>` rows of a `[K, N4 / 4]` matrix (N padded to a multiple of 4 with zero
 * weights, whose outputs are never stored). `floatOutput` selects the dequantized float32 logits
 * `f32(acc) * scale[n]` instead of requantized uint8.
 */
export function gemmWgsl(floatOutput: boolean): string {
  return /* wgsl */ `
const WG: u32 = ${WG}u;

struct Params {
  total: u32, rowStride: u32, m: u32, k: u32,
  n: u32, nq: u32, inZp: i32, outZp: i32,
  lo: i32, hi: i32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<i32>>;
@group(0) @binding(4) var<storage, read> mult: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<${floatOutput ? "f32" : "u32"}>;
${REQUANT}

fn store(i: u32, acc: i32, m: f32) {
  y[i] = ${floatOutput ? "i32ToF32(acc) * m" : "requant(acc, m, p.outZp, p.lo, p.hi)"};
}

/** Stores the quad 4q .. 4q + 3 of row r, dropping the padded channels past n. */
fn storeQuad(r: u32, q: u32, acc: vec4<i32>, m: vec4<f32>) {
  let o = q * 4u;
  let out = r * p.n + o;
  store(out, acc.x, m.x);
  if (o + 1u < p.n) { store(out + 1u, acc.y, m.y); }
  if (o + 2u < p.n) { store(out + 2u, acc.z, m.z); }
  if (o + 3u < p.n) { store(out + 3u, acc.w, m.w); }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // phase 1: rows 4t .. 4t + 3 (clamped to the last row for loads) and channels 4q .. 4q + 3
  let idx = gid.x + gid.y * p.rowStride;
  if (idx >= p.total) { return; }
  let q = idx % p.nq;
  let r0 = (idx / p.nq) * 4u;
  let last = p.m - 1u;
  let x0 = r0 * p.k;
  let x1 = min(r0 + 1u, last) * p.k;
  let x2 = min(r0 + 2u, last) * p.k;
  let x3 = min(r0 + 3u, last) * p.k;

  // phase 2: a 4 x 4 tile of dot products; each weight quad feeds four rows
  var a0 = bias[q];
  var a1 = a0;
  var a2 = a0;
  var a3 = a0;
  for (var i = 0u; i < p.k; i++) {
    let wv = weights[i * p.nq + q];
    a0 += vec4<i32>(i32(x[x0 + i]) - p.inZp) * wv;
    a1 += vec4<i32>(i32(x[x1 + i]) - p.inZp) * wv;
    a2 += vec4<i32>(i32(x[x2 + i]) - p.inZp) * wv;
    a3 += vec4<i32>(i32(x[x3 + i]) - p.inZp) * wv;
  }

  // phase 3: ${
    floatOutput ? "dequantize to float32 logits" : "requantize to uint8"
  } the rows that exist
  let m = mult[q];
  storeQuad(r0, q, a0, m);
  if (r0 + 1u < p.m) { storeQuad(r0 + 1u, q, a1, m); }
  if (r0 + 2u < p.m) { storeQuad(r0 + 2u, q, a2, m); }
  if (r0 + 3u < p.m) { storeQuad(r0 + 3u, q, a3, m); }
}
`;
}

/** Global average pooling NHWC `[n, h, w, c]` -> `[n, c]` (QLinearGlobalAveragePool). */
export const GLOBAL_AVG_POOL_WGSL = /* wgsl */ `
const WG: u32 = ${WG}u;

struct Params {
  total: u32, rowStride: u32, hw: u32, c: u32,
  inZp: i32, outZp: i32, lo: i32, hi: i32,
  multiplier: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
${REQUANT}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // phase 1: output (image b, channel ch)
  let idx = gid.x + gid.y * p.rowStride;
  if (idx >= p.total) { return; }
  let ch = idx % p.c;
  let b = idx / p.c;

  // phase 2: sum the channel over all pixels, minus the zero point once per pixel
  var acc = -p.inZp * i32(p.hw);
  for (var i = 0u; i < p.hw; i++) {
    acc += i32(x[(b * p.hw + i) * p.c + ch]);
  }

  // phase 3: requantize with the pooled multiplier inScale / (outScale * hw)
  y[idx] = requant(acc, p.multiplier, p.outZp, p.lo, p.hi);
}
`;

/** Requantization of a `[rows, channels]` int32 matrix plus per-channel bias. */
export const REQUANTIZE_WGSL = /* wgsl */ `
const WG: u32 = ${WG}u;

struct Params {
  total: u32, rowStride: u32, channels: u32, zp: i32,
  lo: i32, hi: i32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> acc: array<i32>;
@group(0) @binding(2) var<storage, read> bias: array<i32>;
@group(0) @binding(3) var<storage, read> mult: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<u32>;
${REQUANT}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // phase 1: element (row, channel)
  let idx = gid.x + gid.y * p.rowStride;
  if (idx >= p.total) { return; }
  let ch = idx % p.channels;

  // phase 2: add the channel's bias and requantize
  y[idx] = requant(acc[idx] + bias[ch], mult[ch], p.zp, p.lo, p.hi);
}
`;
