/**
 * dL/dW of a standard convolution, NHWC, filter `[kh, kw, cin, cout]`:
 * `dw[kh, kw, ci, co] = sum_{n, oy, ox} x[n, oy*sh + kh - pt, ox*sw + kw - pl, ci] * dy[n, oy, ox, co]`.
 *
 * Direct loops for the small-input-channel first convolution (cin 1-4); the 1x1 pointwise case is
 * a matrix product and runs as tfjs's BatchMatMul instead (see `register.ts`).
 */
import type { ConvGeometry } from "./conv_geometry.ts";

export function conv2dBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeometry,
  out: Float32Array,
): void {
  const { n, h, w, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl } = g;
  if (
    x.length < n * h * w * cin || dy.length < n * oh * ow * cout ||
    out.length < kh * kw * cin * cout
  ) {
    throw new RangeError(
      `Cannot run conv2d backprop filter as buffers are too small for [${n},${h},${w},${cin}] -> [${oh},${ow},${cout}]`,
    );
  }
  const acc = new Float64Array(kh * kw * cin * cout);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const dyo = ((b * oh + oy) * ow + ox) * cout;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh + ky - pt;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw + kx - pl;
            if (ix < 0 || ix >= w) continue;
            const xo = ((b * h + iy) * w + ix) * cin;
            const a0 = (ky * kw + kx) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const xv = x[xo + ci]!;
              if (xv === 0) continue;
              const a = a0 + ci * cout;
              for (let co = 0; co < cout; co++) acc[a + co]! += xv * dy[dyo + co]!;
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) out[i] = acc[i]!;
}
