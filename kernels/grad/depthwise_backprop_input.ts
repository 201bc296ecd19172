/**
 * dL/dx of a depthwise convolution (channel multiplier 1), NHWC, as a scatter of each output
 * gradient back to the inputs its window read:
 * `dx[n, oy*sh + kh - pt, ox*sw + kw - pl, c] += dy[n, oy, ox, c] * w[kh, kw, c]`.
 */
import type { ConvGeometry } from "./conv_geometry.ts";

export function depthwiseBackpropInput(
  dy: Float32Array,
  filter: Float32Array,
  g: ConvGeometry,
  out: Float32Array,
): void {
  const { n, h, w, cin: c, oh, ow, kh, kw, sh, sw, pt, pl } = g;
  if (out.length < n * h * w * c || dy.length < n * oh * ow * c || filter.length < kh * kw * c) {
    throw new RangeError(
      `Cannot run depthwise backprop input as buffers are too small for [${n},${h},${w},${c}] <- [${oh},${ow}]`,
    );
  }
  out.fill(0, 0, n * h * w * c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const dyRow = ((b * oh + oy) * ow) * c;
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh + ky - pt;
        if (iy < 0 || iy >= h) continue;
        const xRow = ((b * h + iy) * w) * c;
        for (let kx = 0; kx < kw; kx++) {
          const f = (ky * kw + kx) * c;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * sw + kx - pl;
            if (ix < 0 || ix >= w) continue;
            const xo = xRow + ix * c;
            const dyo = dyRow + ox * c;
            for (let ch = 0; ch < c; ch++) out[xo + ch]! += dy[dyo + ch]! * filter[f + ch]!;
          }
        }
      }
    }
  }
}
