/**
 * The three gradient kernels that tfjs's wasm backend lacks, composed from ops it has
 * (pad, strided slice, matMul, mul, sum, depthwise conv). This is the stock baseline: correct for
 * any shape, SAME or VALID padding, stride 1 or 2, but each kernel issues 9+ small ops.
 *
 * Kernel contracts follow tfjs-core (`Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput`): NHWC, filter `[kh, kw, in, out]` / `[kh, kw, c, 1]`.
 */
import * as tf from "@tensorflow/tfjs-core";

type ConvAttrs = {
  strides: number | [number, number];
  pad: "same" | "valid" | number;
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
  dataFormat?: "NHWC" | "NCHW";
};

function checkAttrs(op: string, a: ConvAttrs): void {
  const d = a.dilations ?? 1;
  if (!(d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1))) {
    throw new RangeError(`Cannot run ${op} as dilations must be 1: current value is ${d}`);
  }
  if (a.dataFormat !== undefined && a.dataFormat !== "NHWC") {
    throw new RangeError(
      `Cannot run ${op} as dataFormat must be NHWC: current value is ${a.dataFormat}`,
    );
  }
}

/** Conv geometry as tfjs computes it (out size and SAME padding split). */
export function convInfo(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  a: ConvAttrs,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    depthwise,
  );
}

/** The window of `xp` (already padded) that filter tap (kh, kw) sees, one pixel per output. */
function tap(xp: tf.Tensor4D, ci: tf.backend_util.Conv2DInfo, kh: number, kw: number): tf.Tensor4D {
  const [n, , , c] = xp.shape;
  const sh = ci.strideHeight;
  const sw = ci.strideWidth;
  return tf.stridedSlice(
    xp,
    [0, kh, kw, 0],
    [n, kh + (ci.outHeight - 1) * sh + 1, kw + (ci.outWidth - 1) * sw + 1, c],
    [1, sh, sw, 1],
  ) as tf.Tensor4D;
}

function padded(x: tf.Tensor4D, ci: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const p = ci.padInfo;
  if (p.top === 0 && p.bottom === 0 && p.left === 0 && p.right === 0) return x;
  return tf.pad(x, [[0, 0], [p.top, Math.max(p.bottom, 0)], [p.left, Math.max(p.right, 0)], [
    0,
    0,
  ]]);
}

export function conv2dBackpropFilterComposed(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  a: ConvAttrs,
): tf.Tensor4D {
  checkAttrs("Conv2DBackpropFilter", a);
  const fs = a.filterShape!;
  const ci = convInfo(x.shape, fs, a, false);
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = fs;
    const dy2 = tf.reshape(dy, [-1, cout]);
    if (kh === 1 && kw === 1 && ci.strideHeight === 1 && ci.strideWidth === 1) {
      return tf.reshape(tf.matMul(tf.reshape(x, [-1, cin]), dy2, true, false), fs);
    }
    const xp = padded(x, ci);
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        parts.push(tf.matMul(tf.reshape(tap(xp, ci, i, j), [-1, cin]), dy2, true, false));
      }
    }
    return tf.reshape(tf.stack(parts), fs);
  });
}

export function depthwiseBackpropFilterComposed(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  a: ConvAttrs,
): tf.Tensor4D {
  checkAttrs("DepthwiseConv2dNativeBackpropFilter", a);
  const fs = a.filterShape!;
  if (fs[3] !== 1) {
    throw new RangeError(
      `Cannot run DepthwiseConv2dNativeBackpropFilter as the channel multiplier must be 1: current value is ${
        fs[3]
      }`,
    );
  }
  const ci = convInfo(x.shape, fs, a, true);
  return tf.tidy(() => {
    const xp = padded(x, ci);
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < fs[0]; i++) {
      for (let j = 0; j < fs[1]; j++) parts.push(tf.sum(tf.mul(tap(xp, ci, i, j), dy), [0, 1, 2]));
    }
    return tf.reshape(tf.stack(parts), fs);
  });
}

export function depthwiseBackpropInputComposed(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  a: ConvAttrs,
): tf.Tensor4D {
  checkAttrs("DepthwiseConv2dNativeBackpropInput", a);
  const xs = a.inputShape!;
  const fs = filter.shape;
  if (fs[3] !== 1) {
    throw new RangeError(
      `Cannot run DepthwiseConv2dNativeBackpropInput as the channel multiplier must be 1: current value is ${
        fs[3]
      }`,
    );
  }
  const ci = convInfo(xs, fs, a, true);
  const [n, h, w, c] = xs;
  const [kh, kw] = fs;
  const sh = ci.strideHeight;
  const sw = ci.strideWidth;
  return tf.tidy(() => {
    // Zero-insert dy to stride 1, pad so that a VALID correlation with the flipped filter gives
    // exactly the input's size: dx[i] = sum_k dy_dilated[i + top - k] * w[k].
    let d: tf.Tensor4D = dy;
    const oh = ci.outHeight;
    const ow = ci.outWidth;
    if (sh > 1 || sw > 1) {
      const e = tf.reshape(dy, [n, oh, 1, ow, 1, c]);
      const z = tf.pad(e, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
      d = tf.slice(tf.reshape(z, [n, oh * sh, ow * sw, c]) as tf.Tensor4D, [0, 0, 0, 0], [
        n,
        (oh - 1) * sh + 1,
        (ow - 1) * sw + 1,
        c,
      ]);
    }
    const ld = [(oh - 1) * sh + 1, (ow - 1) * sw + 1];
    const pt = kh - 1 - ci.padInfo.top;
    const pl = kw - 1 - ci.padInfo.left;
    const pb = h + kh - 1 - pt - ld[0]!;
    const pr = w + kw - 1 - pl - ld[1]!;
    d = tf.pad(d, [[0, 0], [Math.max(pt, 0), Math.max(pb, 0)], [Math.max(pl, 0), Math.max(pr, 0)], [
      0,
      0,
    ]]);
    if (pt < 0 || pb < 0 || pl < 0 || pr < 0) {
      d = tf.slice(d, [0, Math.max(-pt, 0), Math.max(-pl, 0), 0], [
        n,
        h + kh - 1,
        w + kw - 1,
        c,
      ]);
    }
    const flipped = tf.reverse(filter, [0, 1]) as tf.Tensor4D;
    return tf.depthwiseConv2d(d, flipped, 1, "valid");
  });
}

/** Registers the composed kernels on `backendName` (replacing any registered there). */
export function registerComposedGradKernels(backendName = "wasm"): void {
  // A replacement keeps the replaced kernel's setup: the wasm backend's stock kernels bind their
  // C++ functions in setupFunc, which runs when the backend initializes, maybe after this call.
  const reg = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    const prev = tf.getKernel(kernelName, backendName);
    if (prev) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({
      kernelName,
      backendName,
      kernelFunc,
      ...(prev?.setupFunc ? { setupFunc: prev.setupFunc } : {}),
      ...(prev?.disposeFunc ? { disposeFunc: prev.disposeFunc } : {}),
    });
  };
  // Put back the backend's own kernels that registerOwnGradKernels replaced.
  for (const name of [tf.Identity, tf.Conv2DBackpropInput, tf.Conv2D, tf.DepthwiseConv2dNative]) {
    const stock =
      (tf.getKernel(name, backendName)?.kernelFunc as { stock?: tf.KernelFunc } | undefined)
        ?.stock;
    if (stock) reg(name, stock);
  }
  reg(tf.Conv2DBackpropFilter, ({ inputs, attrs }) =>
    conv2dBackpropFilterComposed(
      inputs.x as tf.Tensor4D,
      inputs.dy as tf.Tensor4D,
      attrs as unknown as ConvAttrs,
    ));
  reg(
    tf.DepthwiseConv2dNativeBackpropFilter,
    ({ inputs, attrs }) =>
      depthwiseBackpropFilterComposed(
        inputs.x as tf.Tensor4D,
        inputs.dy as tf.Tensor4D,
        attrs as unknown as ConvAttrs,
      ),
  );
  reg(tf.DepthwiseConv2dNativeBackpropInput, ({ inputs, attrs }) =>
    depthwiseBackpropInputComposed(
      inputs.dy as tf.Tensor4D,
      inputs.filter as tf.Tensor4D,
      attrs as unknown as ConvAttrs,
    ));
}

export type { ConvAttrs };
