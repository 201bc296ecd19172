// AssemblyScript source of kernels/grad/grad.wasm: float32 training kernels in WASM SIMD.
//
// Conventions (kernels/grad/grad_wasm.ts prepares every buffer):
// - Tensors are float32 NHWC; every pointer is a byte offset into the module's own memory, which
//   TypeScript manages (bump allocation from heapBase(), growing as needed).
// - SIMD runs over channels (4 per v128); a scalar loop handles a channel count not divisible by 4.
// - Sums over the batch accumulate per row in float32 and per kernel tap in float64, so results
//   stay within 1e-5 of a sequential float32 sum however large the batch is.
// The module has zero imports (built with --runtime stub and `--use abort=`).

/** First byte after the module's static data: TypeScript allocates from here. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * acc + a * b rounded twice (multiply, then add), as tfjs's cpu backend rounds: batch norm's
 * pre-activation, whose sign decides the ReLU mask, so that a value within rounding of zero
 * falls on the same side as in the cpu reference.
 */
function preact4(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/**
 * acc + a * b. A relaxed-SIMD multiply-add: one fused instruction where the CPU has FMA (V8 on
 * x86-64 with FMA3), else a multiply then an add; fused or not, it is the same on every call on
 * one machine, and fused rounding is only closer to the exact sum.
 */
function fma4(acc: v128, a: v128, b: v128): v128 {
  return f32x4.relaxed_madd(a, b, acc);
}

/** Adds tmp[0..c) (float32) into acc[0..c) (float64). */
function flush(acc: usize, tmp: usize, c: i32): void {
  let ch = 0;
  for (; ch + 4 <= c; ch += 4) {
    const t = v128.load(tmp + (<usize> ch << 2));
    const a0 = acc + (<usize> ch << 3);
    v128.store(a0, f64x2.add(v128.load(a0), f64x2.promote_low_f32x4(t)));
    v128.store(
      a0 + 16,
      f64x2.add(v128.load(a0 + 16), f64x2.promote_low_f32x4(i32x4.shuffle(t, t, 2, 3, 0, 1))),
    );
  }
  for (; ch < c; ch++) {
    const p = acc + (<usize> ch << 3);
    store<f64>(p, load<f64>(p) + <f64> load<f32>(tmp + (<usize> ch << 2)));
  }
}

/**
 * dL/dW of a depthwise convolution (multiplier 1): out[kh*kw*c] (float32); acc (float64,
 * kh*kw*c) and tmp (float32, c) are scratch.
 */
export function dwBackpropFilter(
  x: usize,
  dy: usize,
  out: usize,
  acc: usize,
  tmp: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  pt: i32,
  pl: i32,
): void {
  const taps = kh * kw * c;
  memory.fill(acc, 0, <usize> taps << 3);
  const rowBytes = <usize> c << 2;
  const xStep = (<usize> sw * <usize> c) << 2;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const dyRow = dy + ((<usize> (b * oh + oy) * <usize> ow * <usize> c) << 2);
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh + ky - pt;
        if (iy < 0 || iy >= h) continue;
        const xRow = x + ((<usize> (b * h + iy) * <usize> w * <usize> c) << 2);
        for (let kx = 0; kx < kw; kx++) {
          // The outputs whose tap lands inside the row: ix = ox * sw + kx - pl in [0, w).
          const oxLo = max(0, (pl - kx + sw - 1) / sw);
          // Integer division truncates: a negative numerator means no tap lands in the row.
          const hiNum = w - 1 + pl - kx;
          if (hiNum < 0) continue;
          const oxHi = min(ow - 1, hiNum / sw);
          if (oxLo > oxHi) continue;
          memory.fill(tmp, 0, rowBytes);
          let xp = xRow + ((<usize> (oxLo * sw + kx - pl) * <usize> c) << 2);
          let dp = dyRow + ((<usize> oxLo * <usize> c) << 2);
          for (let ox = oxLo; ox <= oxHi; ox++) {
            let ch = 0;
            for (; ch + 8 <= c; ch += 8) {
              const o = <usize> ch << 2;
              const t = tmp + o;
              v128.store(t, fma4(v128.load(t), v128.load(xp + o), v128.load(dp + o)));
              v128.store(
                t,
                fma4(v128.load(t, 16), v128.load(xp + o, 16), v128.load(dp + o, 16)),
                16,
              );
            }
            for (; ch + 4 <= c; ch += 4) {
              const o = <usize> ch << 2;
              v128.store(tmp + o, fma4(v128.load(tmp + o), v128.load(xp + o), v128.load(dp + o)));
            }
            for (; ch < c; ch++) {
              const o = <usize> ch << 2;
              store<f32>(tmp + o, load<f32>(tmp + o) + load<f32>(xp + o) * load<f32>(dp + o));
            }
            xp += xStep;
            dp += rowBytes;
          }
          flush(acc + ((<usize> (ky * kw + kx) * <usize> c) << 3), tmp, c);
        }
      }
    }
  }
  for (let i = 0; i < taps; i++) {
    store<f32>(out + (<usize> i << 2), <f32> load<f64>(acc + (<usize> i << 3)));
  }
}

/** dL/dx of a depthwise convolution (multiplier 1): out[n*h*w*c]. */
export function dwBackpropInput(
  dy: usize,
  f: usize,
  out: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  pt: i32,
  pl: i32,
): void {
  memory.fill(out, 0, (<usize> n * <usize> h * <usize> w * <usize> c) << 2);
  const rowBytes = <usize> c << 2;
  const xStep = (<usize> sw * <usize> c) << 2;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const dyRow = dy + ((<usize> (b * oh + oy) * <usize> ow * <usize> c) << 2);
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh + ky - pt;
        if (iy < 0 || iy >= h) continue;
        const xRow = out + ((<usize> (b * h + iy) * <usize> w * <usize> c) << 2);
        for (let kx = 0; kx < kw; kx++) {
          const fp = f + ((<usize> (ky * kw + kx) * <usize> c) << 2);
          const oxLo = max(0, (pl - kx + sw - 1) / sw);
          // Integer division truncates: a negative numerator means no tap lands in the row.
          const hiNum = w - 1 + pl - kx;
          if (hiNum < 0) continue;
          const oxHi = min(ow - 1, hiNum / sw);
          if (oxLo > oxHi) continue;
          let xp = xRow + ((<usize> (oxLo * sw + kx - pl) * <usize> c) << 2);
          let dp = dyRow + ((<usize> oxLo * <usize> c) << 2);
          for (let ox = oxLo; ox <= oxHi; ox++) {
            let ch = 0;
            for (; ch + 8 <= c; ch += 8) {
              const o = <usize> ch << 2;
              const t = xp + o;
              v128.store(t, fma4(v128.load(t), v128.load(dp + o), v128.load(fp + o)));
              v128.store(
                t,
                fma4(v128.load(t, 16), v128.load(dp + o, 16), v128.load(fp + o, 16)),
                16,
              );
            }
            for (; ch + 4 <= c; ch += 4) {
              const o = <usize> ch << 2;
              v128.store(xp + o, fma4(v128.load(xp + o), v128.load(dp + o), v128.load(fp + o)));
            }
            for (; ch < c; ch++) {
              const o = <usize> ch << 2;
              store<f32>(xp + o, load<f32>(xp + o) + load<f32>(dp + o) * load<f32>(fp + o));
            }
            xp += xStep;
            dp += rowBytes;
          }
        }
      }
    }
  }
}

/**
 * Per-channel mean (float32, into `mean`) and variance (float64, into acc[0..c)) over `rows` rows
 * of c floats in one pass: sums of d = x - k and d^2 around k = the mean of the first 64 rows
 * (close to the batch mean, so var = E[d^2] - E[d]^2 cancels little), 64-row blocks summed in
 * float32, blocks added in float64. acc: 2c float64; tmp: 2c float32.
 */
function channelStats(x: usize, rows: i32, c: i32, acc: usize, tmp: usize, mean: usize): void {
  const cb = <usize> c << 2;
  const k = mean; // the shift, then the mean
  const block = 64;
  const first = min(rows, block);
  memory.fill(k, 0, cb);
  for (let r = 0; r < first; r++) {
    const xp = x + ((<usize> r * <usize> c) << 2);
    for (let ch = 0; ch < c; ch++) {
      const o = <usize> ch << 2;
      store<f32>(k + o, load<f32>(k + o) + load<f32>(xp + o));
    }
  }
  for (let ch = 0; ch < c; ch++) {
    const o = <usize> ch << 2;
    store<f32>(k + o, load<f32>(k + o) / <f32> first);
  }
  const acc2 = acc + (<usize> c << 3);
  const tmp2 = tmp + cb;
  memory.fill(acc, 0, <usize> c << 4);
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = min(rows, r0 + block);
    memory.fill(tmp, 0, cb << 1);
    for (let r = r0; r < r1; r++) {
      const xp = x + ((<usize> r * <usize> c) << 2);
      let ch = 0;
      for (; ch + 4 <= c; ch += 4) {
        const o = <usize> ch << 2;
        const d = f32x4.sub(v128.load(xp + o), v128.load(k + o));
        v128.store(tmp + o, f32x4.add(v128.load(tmp + o), d));
        v128.store(tmp2 + o, fma4(v128.load(tmp2 + o), d, d));
      }
      for (; ch < c; ch++) {
        const o = <usize> ch << 2;
        const d = load<f32>(xp + o) - load<f32>(k + o);
        store<f32>(tmp + o, load<f32>(tmp + o) + d);
        store<f32>(tmp2 + o, load<f32>(tmp2 + o) + d * d);
      }
    }
    flush(acc, tmp, c);
    flush(acc2, tmp2, c);
  }
  for (let ch = 0; ch < c; ch++) {
    const o = <usize> ch << 2;
    const m1 = load<f64>(acc + (<usize> ch << 3)) / <f64> rows;
    const m2 = load<f64>(acc2 + (<usize> ch << 3)) / <f64> rows;
    store<f64>(acc + (<usize> ch << 3), max(m2 - m1 * m1, 0.0));
    store<f32>(k + o, <f32> (<f64> load<f32>(k + o) + m1));
  }
}

/**
 * Training-mode batch norm over rows (N*H*W) of c channels, then the activation
 * (0 none, 1 relu, 2 relu6): y = act((x - mean) * invStd * gamma + beta). Writes mean and
 * invStd (c floats each) for the backward pass.
 */
export function bnForward(
  x: usize,
  gamma: usize,
  beta: usize,
  y: usize,
  mean: usize,
  invStd: usize,
  acc: usize,
  tmp: usize,
  rows: i32,
  c: i32,
  eps: f32,
  act: i32,
): void {
  channelStats(x, rows, c, acc, tmp, mean);
  for (let ch = 0; ch < c; ch++) {
    const v = load<f64>(acc + (<usize> ch << 3));
    store<f32>(invStd + (<usize> ch << 2), <f32> (1.0 / Math.sqrt(v + <f64> eps)));
  }
  // y = x * scale + shift with scale = gamma * invStd, shift = beta - mean * scale (in tmp).
  const scale = tmp;
  const shift = tmp + (<usize> c << 2);
  for (let ch = 0; ch < c; ch++) {
    const o = <usize> ch << 2;
    const s = load<f32>(gamma + o) * load<f32>(invStd + o);
    store<f32>(scale + o, s);
    store<f32>(shift + o, load<f32>(beta + o) - load<f32>(mean + o) * s);
  }
  const zero = f32x4.splat(0);
  const six = f32x4.splat(6);
  for (let r = 0; r < rows; r++) {
    const xp = x + ((<usize> r * <usize> c) << 2);
    const yp = y + ((<usize> r * <usize> c) << 2);
    let ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      const o = <usize> ch << 2;
      let v = preact4(v128.load(shift + o), v128.load(xp + o), v128.load(scale + o));
      if (act >= 1) v = f32x4.max(v, zero);
      if (act == 2) v = f32x4.min(v, six);
      v128.store(yp + o, v);
    }
    for (; ch < c; ch++) {
      const o = <usize> ch << 2;
      let v = load<f32>(xp + o) * load<f32>(scale + o) + load<f32>(shift + o);
      if (act >= 1) v = max(v, <f32> 0);
      if (act == 2) v = min(v, <f32> 6);
      store<f32>(yp + o, v);
    }
  }
}

/**
 * Backward of bnForward: from dy, x, mean, invStd, gamma and beta, writes dx (may alias dy),
 * dgamma and dbeta (c floats each). The activation's mask comes from the pre-activation
 * recomputed exactly as bnForward computed it (same scale, shift and instruction per lane), so the
 * output y need not be read: y > 0 exactly when the pre-activation is, and y < 6 likewise.
 * acc: 2c float64; tmp: 5c float32.
 */
export function bnBackward(
  dy: usize,
  x: usize,
  mean: usize,
  invStd: usize,
  gamma: usize,
  beta: usize,
  dx: usize,
  dgamma: usize,
  dbeta: usize,
  acc: usize,
  tmp: usize,
  rows: i32,
  c: i32,
  act: i32,
): void {
  const cb = <usize> c << 2;
  // bnForward's per-channel scale and shift, for the mask.
  const scale = tmp + 3 * cb;
  const shift = tmp + 4 * cb;
  for (let ch = 0; ch < c; ch++) {
    const o = <usize> ch << 2;
    const sc = load<f32>(gamma + o) * load<f32>(invStd + o);
    store<f32>(scale + o, sc);
    store<f32>(shift + o, load<f32>(beta + o) - load<f32>(mean + o) * sc);
  }
  // Pass 1: dbeta = sum(g), dgamma = sum(g * xhat), g = dy masked by the activation.
  const acc2 = acc + (<usize> c << 3);
  const tmp2 = tmp + cb;
  memory.fill(acc, 0, <usize> c << 4);
  const zero = f32x4.splat(0);
  const six = f32x4.splat(6);
  const block = 64;
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = min(rows, r0 + block);
    memory.fill(tmp, 0, <usize> c << 3);
    for (let r = r0; r < r1; r++) {
      const off = (<usize> r * <usize> c) << 2;
      let ch = 0;
      for (; ch + 4 <= c; ch += 4) {
        const o = <usize> ch << 2;
        let g = v128.load(dy + off + o);
        const xv = v128.load(x + off + o);
        if (act >= 1) {
          const v = preact4(v128.load(shift + o), xv, v128.load(scale + o));
          let m = f32x4.gt(v, zero);
          if (act == 2) m = v128.and(m, f32x4.lt(v, six));
          g = v128.and(g, m);
        }
        const xh = f32x4.mul(f32x4.sub(xv, v128.load(mean + o)), v128.load(invStd + o));
        v128.store(tmp + o, f32x4.add(v128.load(tmp + o), g));
        v128.store(tmp2 + o, fma4(v128.load(tmp2 + o), g, xh));
      }
      for (; ch < c; ch++) {
        const o = <usize> ch << 2;
        let g = load<f32>(dy + off + o);
        const xv = load<f32>(x + off + o);
        const v = xv * load<f32>(scale + o) + load<f32>(shift + o);
        if (act >= 1 && !(v > 0)) g = 0;
        if (act == 2 && !(v < 6)) g = 0;
        const xh = (xv - load<f32>(mean + o)) * load<f32>(invStd + o);
        store<f32>(tmp + o, load<f32>(tmp + o) + g);
        store<f32>(tmp2 + o, load<f32>(tmp2 + o) + g * xh);
      }
    }
    flush(acc, tmp, c);
    flush(acc2, tmp2, c);
  }
  // Per-channel constants: dx = k * (g - dbeta/m - xhat * dgamma/m), k = gamma * invStd.
  const kk = tmp;
  const mb = tmp + cb;
  const mg = tmp + 2 * cb;
  const inv = 1.0 / <f64> rows;
  for (let ch = 0; ch < c; ch++) {
    const o = <usize> ch << 2;
    const db = load<f64>(acc + (<usize> ch << 3));
    const dg = load<f64>(acc2 + (<usize> ch << 3));
    store<f32>(dbeta + o, <f32> db);
    store<f32>(dgamma + o, <f32> dg);
    store<f32>(kk + o, load<f32>(gamma + o) * load<f32>(invStd + o));
    store<f32>(mb + o, <f32> (db * inv));
    store<f32>(mg + o, <f32> (dg * inv));
  }
  for (let r = 0; r < rows; r++) {
    const off = (<usize> r * <usize> c) << 2;
    let ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      const o = <usize> ch << 2;
      let g = v128.load(dy + off + o);
      const xv = v128.load(x + off + o);
      if (act >= 1) {
        const v = preact4(v128.load(shift + o), xv, v128.load(scale + o));
        let m = f32x4.gt(v, zero);
        if (act == 2) m = v128.and(m, f32x4.lt(v, six));
        g = v128.and(g, m);
      }
      const xh = f32x4.mul(f32x4.sub(xv, v128.load(mean + o)), v128.load(invStd + o));
      const t = f32x4.sub(f32x4.sub(g, v128.load(mb + o)), f32x4.mul(xh, v128.load(mg + o)));
      v128.store(dx + off + o, f32x4.mul(t, v128.load(kk + o)));
    }
    for (; ch < c; ch++) {
      const o = <usize> ch << 2;
      let g = load<f32>(dy + off + o);
      const xv = load<f32>(x + off + o);
      const v = xv * load<f32>(scale + o) + load<f32>(shift + o);
      if (act >= 1 && !(v > 0)) g = 0;
      if (act == 2 && !(v < 6)) g = 0;
      const xh = (xv - load<f32>(mean + o)) * load<f32>(invStd + o);
      store<f32>(
        dx + off + o,
        (g - load<f32>(mb + o) - xh * load<f32>(mg + o)) * load<f32>(kk + o),
      );
    }
  }
}

/**
 * C[i, j] = sum_k A[i, k] * B[k, j] for i < mm, j < nn, k < kk, in float32 (float multiply-adds).
 * Strides are in floats: A[i, k] at a + (i * sai + k * sak), B[k, j] at b + (k * sbk + j),
 * C[i, j] at c + (i * sci + j). Register tiles of 4 rows x 8 columns (8 accumulators, 11 vector
 * registers: no spills on x86-64's 16), then 4-column and scalar remainders, and one row at a
 * time for the last mm % 4 rows. Each C element sums its k terms in order, one multiply-add each.
 */
function gemm(
  a: usize,
  sai: i32,
  sak: i32,
  b: usize,
  sbk: i32,
  c: usize,
  sci: i32,
  mm: i32,
  nn: i32,
  kk: i32,
  mr6: bool,
): void {
  const ai = <usize> sai << 2;
  const ak = <usize> sak << 2;
  const bk = <usize> sbk << 2;
  const ci = <usize> sci << 2;
  const n8 = nn & ~7;
  const n4 = nn & ~3;
  let i = 0;
  // Six-row tiles (12 accumulators, 15 vector registers) when every column strip is 8 wide.
  if (mr6 && n8 == nn) {
    for (; i + 6 <= mm; i += 6) {
      const a0 = a + <usize> i * ai;
      const c0 = c + <usize> i * ci;
      let j = 0;
      for (; j < n8; j += 8) {
        let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
        let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
        let s40 = f32x4.splat(0), s41 = f32x4.splat(0), s50 = f32x4.splat(0), s51 = f32x4.splat(0);
        let pa = a0;
        let pb = b + (<usize> j << 2);
        for (let k = 0; k < kk; k++) {
          const b0 = v128.load(pb);
          const b1 = v128.load(pb, 16);
          const x0 = v128.load32_splat(pa);
          s00 = fma4(s00, x0, b0);
          s01 = fma4(s01, x0, b1);
          const x1 = v128.load32_splat(pa + ai);
          s10 = fma4(s10, x1, b0);
          s11 = fma4(s11, x1, b1);
          const x2 = v128.load32_splat(pa + 2 * ai);
          s20 = fma4(s20, x2, b0);
          s21 = fma4(s21, x2, b1);
          const x3 = v128.load32_splat(pa + 3 * ai);
          s30 = fma4(s30, x3, b0);
          s31 = fma4(s31, x3, b1);
          const x4 = v128.load32_splat(pa + 4 * ai);
          s40 = fma4(s40, x4, b0);
          s41 = fma4(s41, x4, b1);
          const x5 = v128.load32_splat(pa + 5 * ai);
          s50 = fma4(s50, x5, b0);
          s51 = fma4(s51, x5, b1);
          pa += ak;
          pb += bk;
        }
        const pc = c0 + (<usize> j << 2);
        v128.store(pc, s00);
        v128.store(pc, s01, 16);
        v128.store(pc + ci, s10);
        v128.store(pc + ci, s11, 16);
        v128.store(pc + 2 * ci, s20);
        v128.store(pc + 2 * ci, s21, 16);
        v128.store(pc + 3 * ci, s30);
        v128.store(pc + 3 * ci, s31, 16);
        v128.store(pc + 4 * ci, s40);
        v128.store(pc + 4 * ci, s41, 16);
        v128.store(pc + 5 * ci, s50);
        v128.store(pc + 5 * ci, s51, 16);
      }
    }
  }
  for (; i + 4 <= mm; i += 4) {
    const a0 = a + <usize> i * ai;
    const c0 = c + <usize> i * ci;
    let j = 0;
    for (; j < n8; j += 8) {
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize> j << 2);
      for (let k = 0; k < kk; k++) {
        const b0 = v128.load(pb);
        const b1 = v128.load(pb, 16);
        const x0 = v128.load32_splat(pa);
        s00 = fma4(s00, x0, b0);
        s01 = fma4(s01, x0, b1);
        const x1 = v128.load32_splat(pa + ai);
        s10 = fma4(s10, x1, b0);
        s11 = fma4(s11, x1, b1);
        const x2 = v128.load32_splat(pa + 2 * ai);
        s20 = fma4(s20, x2, b0);
        s21 = fma4(s21, x2, b1);
        const x3 = v128.load32_splat(pa + 3 * ai);
        s30 = fma4(s30, x3, b0);
        s31 = fma4(s31, x3, b1);
        pa += ak;
        pb += bk;
      }
      const pc = c0 + (<usize> j << 2);
      v128.store(pc, s00);
      v128.store(pc, s01, 16);
      v128.store(pc + ci, s10);
      v128.store(pc + ci, s11, 16);
      v128.store(pc + 2 * ci, s20);
      v128.store(pc + 2 * ci, s21, 16);
      v128.store(pc + 3 * ci, s30);
      v128.store(pc + 3 * ci, s31, 16);
    }
    for (; j < n4; j += 4) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize> j << 2);
      for (let k = 0; k < kk; k++) {
        const b0 = v128.load(pb);
        s0 = fma4(s0, v128.load32_splat(pa), b0);
        s1 = fma4(s1, v128.load32_splat(pa + ai), b0);
        s2 = fma4(s2, v128.load32_splat(pa + 2 * ai), b0);
        s3 = fma4(s3, v128.load32_splat(pa + 3 * ai), b0);
        pa += ak;
        pb += bk;
      }
      const pc = c0 + (<usize> j << 2);
      v128.store(pc, s0);
      v128.store(pc + ci, s1);
      v128.store(pc + 2 * ci, s2);
      v128.store(pc + 3 * ci, s3);
    }
    for (; j < nn; j++) {
      for (let r = 0; r < 4; r++) {
        let sum: f32 = 0;
        let pa = a0 + <usize> r * ai;
        let pb = b + (<usize> j << 2);
        for (let k = 0; k < kk; k++) {
          sum += load<f32>(pa) * load<f32>(pb);
          pa += ak;
          pb += bk;
        }
        store<f32>(c0 + <usize> r * ci + (<usize> j << 2), sum);
      }
    }
  }
  for (; i < mm; i++) {
    const a0 = a + <usize> i * ai;
    const c0 = c + <usize> i * ci;
    let j = 0;
    for (; j < n4; j += 4) {
      let s0 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize> j << 2);
      for (let k = 0; k < kk; k++) {
        s0 = fma4(s0, v128.load32_splat(pa), v128.load(pb));
        pa += ak;
        pb += bk;
      }
      v128.store(c0 + (<usize> j << 2), s0);
    }
    for (; j < nn; j++) {
      let sum: f32 = 0;
      let pa = a0;
      let pb = b + (<usize> j << 2);
      for (let k = 0; k < kk; k++) {
        sum += load<f32>(pa) * load<f32>(pb);
        pa += ak;
        pb += bk;
      }
      store<f32>(c0 + (<usize> j << 2), sum);
    }
  }
}

/**
 * dL/dW of a 1x1 stride-1 convolution: out[ci * cout + co] = sum_r x[r, ci] * dy[r, co] over m
 * rows (N*H*W): `gemm` with x transposed by its strides, on blocks of 256 rows summed in float32
 * into tmp (float32, cin * cout), each block then added into acc (float64, cin * cout).
 */
export function pwBackpropFilter(
  x: usize,
  dy: usize,
  out: usize,
  acc: usize,
  tmp: usize,
  m: i32,
  cin: i32,
  cout: i32,
): void {
  const total = cin * cout;
  memory.fill(acc, 0, <usize> total << 3);
  const block = 256;
  // Six-row tiles unless they would leave two rows (cin % 6 == 2) to the one-row loop.
  const mr6 = cin % 6 != 2 || cin >= 128;
  for (let r0 = 0; r0 < m; r0 += block) {
    const rows = min(m - r0, block);
    gemm(
      x + ((<usize> r0 * <usize> cin) << 2),
      1,
      cin,
      dy + ((<usize> r0 * <usize> cout) << 2),
      cout,
      tmp,
      cout,
      cin,
      cout,
      rows,
      mr6,
    );
    flush(acc, tmp, total);
  }
  for (let i = 0; i < total; i++) {
    store<f32>(out + (<usize> i << 2), <f32> load<f64>(acc + (<usize> i << 3)));
  }
}

/** Forward 1x1 stride-1 convolution: y[r, co] = sum_ci x[r, ci] * w[ci, co] over m rows. */
export function pwForward(x: usize, w: usize, y: usize, m: i32, cin: i32, cout: i32): void {
  gemm(x, cin, 1, w, cout, y, cout, m, cout, cin, true);
}

/**
 * dL/dx of a 1x1 stride-1 convolution: dx[r, ci] = sum_co dy[r, co] * w[ci, co] over m rows;
 * wt (cout * cin floats) is scratch for w transposed.
 */
export function pwBackpropInput(
  dy: usize,
  w: usize,
  wt: usize,
  dx: usize,
  m: i32,
  cin: i32,
  cout: i32,
): void {
  for (let i = 0; i < cin; i++) {
    for (let o = 0; o < cout; o++) {
      store<f32>(
        wt + ((<usize> (o * cin + i)) << 2),
        load<f32>(w + ((<usize> (i * cout + o)) << 2)),
      );
    }
  }
  gemm(dy, cout, 1, wt, cin, dx, cin, m, cin, cout, true);
}

/**
 * One 3x3 depthwise tap row at a time for a 4-channel group: acc + the three taps of row `p`
 * (left, centre, right neighbours of the pixel at `p`), each a fused multiply-add.
 */
function taps3(acc: v128, p: usize, step: usize, f0: v128, f1: v128, f2: v128): v128 {
  return fma4(fma4(fma4(acc, v128.load(p - step), f0), v128.load(p), f1), v128.load(p + step), f2);
}

/**
 * 3x3 depthwise convolution, stride 1, one pixel of zero padding on every side (output the size
 * of the input), channels a multiple of 4: y[b, oy, ox, ch] = sum over ky, kx of
 * x[b, oy + ky - 1, ox + kx - 1, ch] * f[ky, kx, ch], or of f[2 - ky, 2 - kx, ch] with `flip`
 * (the same layer's backprop input: dy correlated with the rotated filter). Per 4-channel group
 * the nine filter vectors stay in registers while the row is swept: 9 loads and 9 multiply-adds
 * per output vector, each written once. `zero` is scratch for one row of zeros (w * c floats),
 * standing in for the padding rows.
 */
export function dwConv3x3s1(
  x: usize,
  f: usize,
  y: usize,
  zero: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
  flip: bool,
): void {
  const step = <usize> c << 2;
  const rowBytes = <usize> w * step;
  memory.fill(zero, 0, rowBytes);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < h; oy++) {
      const img = x + <usize> (b * h) * rowBytes;
      const r0 = oy > 0 ? img + <usize> (oy - 1) * rowBytes : zero;
      const r1 = img + <usize> oy * rowBytes;
      const r2 = oy + 1 < h ? img + <usize> (oy + 1) * rowBytes : zero;
      const yr = y + <usize> (b * h + oy) * rowBytes;
      for (let ch = 0; ch < c; ch += 4) {
        const o = <usize> ch << 2;
        // Taps t = ky * 3 + kx at f + t * step + o; flipped: 8 - t.
        let f00: v128, f01: v128, f02: v128, f10: v128, f11: v128, f12: v128;
        let f20: v128, f21: v128, f22: v128;
        if (flip) {
          f00 = v128.load(f + 8 * step + o);
          f01 = v128.load(f + 7 * step + o);
          f02 = v128.load(f + 6 * step + o);
          f10 = v128.load(f + 5 * step + o);
          f11 = v128.load(f + 4 * step + o);
          f12 = v128.load(f + 3 * step + o);
          f20 = v128.load(f + 2 * step + o);
          f21 = v128.load(f + step + o);
          f22 = v128.load(f + o);
        } else {
          f00 = v128.load(f + o);
          f01 = v128.load(f + step + o);
          f02 = v128.load(f + 2 * step + o);
          f10 = v128.load(f + 3 * step + o);
          f11 = v128.load(f + 4 * step + o);
          f12 = v128.load(f + 5 * step + o);
          f20 = v128.load(f + 6 * step + o);
          f21 = v128.load(f + 7 * step + o);
          f22 = v128.load(f + 8 * step + o);
        }
        const z = f32x4.splat(0);
        if (w == 1) {
          let acc = fma4(z, v128.load(r0 + o), f01);
          acc = fma4(acc, v128.load(r1 + o), f11);
          v128.store(yr + o, fma4(acc, v128.load(r2 + o), f21));
          continue;
        }
        // Left edge (kx = 0 falls in the padding).
        let acc = fma4(fma4(z, v128.load(r0 + o), f01), v128.load(r0 + o + step), f02);
        acc = fma4(fma4(acc, v128.load(r1 + o), f11), v128.load(r1 + o + step), f12);
        acc = fma4(fma4(acc, v128.load(r2 + o), f21), v128.load(r2 + o + step), f22);
        v128.store(yr + o, acc);
        let off = step + o;
        const end = <usize> (w - 1) * step + o;
        for (; off < end; off += step) {
          let a = taps3(z, r0 + off, step, f00, f01, f02);
          a = taps3(a, r1 + off, step, f10, f11, f12);
          v128.store(yr + off, taps3(a, r2 + off, step, f20, f21, f22));
        }
        // Right edge (kx = 2 falls in the padding).
        acc = fma4(fma4(z, v128.load(r0 + end - step), f00), v128.load(r0 + end), f01);
        acc = fma4(fma4(acc, v128.load(r1 + end - step), f10), v128.load(r1 + end), f11);
        acc = fma4(fma4(acc, v128.load(r2 + end - step), f20), v128.load(r2 + end), f21);
        v128.store(yr + end, acc);
      }
    }
  }
}

/**
 * dL/dW of the 3x3 stride-1 depthwise convolution with one pixel of zero padding (channels a
 * multiple of 4): out[t * c + ch] for taps t = ky * 3 + kx. Per 4-channel group and output row,
 * nine float32 accumulators stay in registers across the row (one dy load and nine x loads per
 * pixel), then add into acc (float64, 9c) per row. `zero` is scratch for one row of zeros.
 */
export function dwBackpropFilter3x3s1(
  x: usize,
  dy: usize,
  out: usize,
  acc: usize,
  zero: usize,
  n: i32,
  h: i32,
  w: i32,
  c: i32,
): void {
  const step = <usize> c << 2;
  const rowBytes = <usize> w * step;
  memory.fill(zero, 0, rowBytes);
  memory.fill(acc, 0, <usize> (9 * c) << 3);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < h; oy++) {
      const img = x + <usize> (b * h) * rowBytes;
      const r0 = oy > 0 ? img + <usize> (oy - 1) * rowBytes : zero;
      const r1 = img + <usize> oy * rowBytes;
      const r2 = oy + 1 < h ? img + <usize> (oy + 1) * rowBytes : zero;
      const dr = dy + <usize> (b * h + oy) * rowBytes;
      for (let ch = 0; ch < c; ch += 4) {
        const o = <usize> ch << 2;
        let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0);
        let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0);
        let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0);
        // ox = 0: the kx = 0 taps fall in the padding.
        let g = v128.load(dr + o);
        a01 = fma4(a01, v128.load(r0 + o), g);
        a11 = fma4(a11, v128.load(r1 + o), g);
        a21 = fma4(a21, v128.load(r2 + o), g);
        if (w > 1) {
          a02 = fma4(a02, v128.load(r0 + o + step), g);
          a12 = fma4(a12, v128.load(r1 + o + step), g);
          a22 = fma4(a22, v128.load(r2 + o + step), g);
          let off = step + o;
          const end = <usize> (w - 1) * step + o;
          for (; off < end; off += step) {
            g = v128.load(dr + off);
            a00 = fma4(a00, v128.load(r0 + off - step), g);
            a01 = fma4(a01, v128.load(r0 + off), g);
            a02 = fma4(a02, v128.load(r0 + off + step), g);
            a10 = fma4(a10, v128.load(r1 + off - step), g);
            a11 = fma4(a11, v128.load(r1 + off), g);
            a12 = fma4(a12, v128.load(r1 + off + step), g);
            a20 = fma4(a20, v128.load(r2 + off - step), g);
            a21 = fma4(a21, v128.load(r2 + off), g);
            a22 = fma4(a22, v128.load(r2 + off + step), g);
          }
          // ox = w - 1: the kx = 2 taps fall in the padding.
          g = v128.load(dr + end);
          a00 = fma4(a00, v128.load(r0 + end - step), g);
          a01 = fma4(a01, v128.load(r0 + end), g);
          a10 = fma4(a10, v128.load(r1 + end - step), g);
          a11 = fma4(a11, v128.load(r1 + end), g);
          a20 = fma4(a20, v128.load(r2 + end - step), g);
          a21 = fma4(a21, v128.load(r2 + end), g);
        }
        const ap = acc + (<usize> ch << 3);
        const tb = <usize> c << 3; // one tap's float64 stride
        add4(ap, a00);
        add4(ap + tb, a01);
        add4(ap + 2 * tb, a02);
        add4(ap + 3 * tb, a10);
        add4(ap + 4 * tb, a11);
        add4(ap + 5 * tb, a12);
        add4(ap + 6 * tb, a20);
        add4(ap + 7 * tb, a21);
        add4(ap + 8 * tb, a22);
      }
    }
  }
  for (let i = 0; i < 9 * c; i++) {
    store<f32>(out + (<usize> i << 2), <f32> load<f64>(acc + (<usize> i << 3)));
  }
}

/** Adds four float32 lanes into four float64 values at p. */
function add4(p: usize, t: v128): void {
  v128.store(p, f64x2.add(v128.load(p), f64x2.promote_low_f32x4(t)));
  v128.store(
    p + 16,
    f64x2.add(v128.load(p + 16), f64x2.promote_low_f32x4(i32x4.shuffle(t, t, 2, 3, 0, 1))),
  );
}
