/**
 * dL/dW of a depthwise convolution (channel multiplier 1), NHWC:
 * `dw[kh, kw, c] = sum_{n, oy, ox} x[n, oy*sh + kh - pt, ox*sw + kw - pl, c] * dy[n, oy, ox, c]`.
 *
 * The innermost loop runs over channels, contiguous in both x and dy; accumulation is in float64
 * so the result does not depend on the batch size's summation order.
 */
import type { ConvGeometry } from "./conv_geometry.ts";

export function depthwiseBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeometry,
  out: Float32Array,
): void {
  const { n, h, w, cin: c, oh, ow, kh, kw, sh, sw, pt, pl } = g;
  if (x.length < n * h * w * c || dy.length < n * oh * ow * c || out.length < kh * kw * c) {
    throw new RangeError(
      `Cannot run depthwise backprop filter as buffers are too small for [${n},${h},${w},${c}] -> [${oh},${ow}]`,
    );
  }
  const acc = new Float64Array(kh * kw * c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const dyRow = ((b * oh + oy) * ow) * c;
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh + ky - pt;
        if (iy < 0 || iy >= h) continue;
        const xRow = ((b * h + iy) * w) * c;
        for (let kx = 0; kx < kw; kx++) {
          const a = (ky * kw + kx) * c;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * sw + kx - pl;
            if (ix < 0 || ix >= w) continue;
            const xo = xRow + ix * c;
            const dyo = dyRow + ox * c;
            for (let ch = 0; ch < c; ch++) acc[a + ch]! += x[xo + ch]! * dy[dyo + ch]!;
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) out[i] = acc[i]!;
}
