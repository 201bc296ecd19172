/**
 * Registers the project's gradient kernels with tfjs (`tf.registerKernel`), replacing the
 * composed-op baseline of `composed.ts`:
 * - `DepthwiseConv2dNativeBackpropFilter` and `DepthwiseConv2dNativeBackpropInput` run as WASM
 *   SIMD kernels (grad.wasm; plain TypeScript references in depthwise_backprop_*.ts);
 * - the general `Conv2DBackpropFilter` (the first 3x3 convolution, 1-4 input channels) lays the
 *   input patches out as rows (im2col, on the heap) and runs the pointwise kernel on them; direct
 *   TypeScript loops off the wasm backend;
 * - the 1x1 stride-1 `Conv2DBackpropFilter` (`x^T dy`, the pointwise layers) is a WASM SIMD kernel
 *   with 4x16 register tiles;
 * - the 1x1 stride-1 `Conv2D` forward (`x W`) and `Conv2DBackpropInput` (`dy W^T`) run as grad.wasm's
 *   GEMM (4x8 register tiles, fused multiply-adds) on the heap, at or above XNNPACK's speed on these
 *   narrow layers; without the heap the backprop input is tfjs's BatchMatMul with W transposed
 *   explicitly (its XNNPACK path takes no transposes).
 * On the wasm backend every grad.wasm kernel runs on tfjs's own heap (`onHeap`): no copies.
 * Any other shape falls back to the backend's own kernel or the composed one.
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  conv2dBackpropFilterComposed,
  type ConvAttrs,
  convInfo,
  registerComposedGradKernels,
} from "./composed.ts";
import { conv2dBackpropFilter } from "./conv2d_backprop_filter.ts";
import { type ConvGeometry, geometryOf } from "./conv_geometry.ts";
import {
  dwBackpropFilterWasm,
  dwBackpropInputWasm,
  GradOnHeap,
  pwBackpropFilterWasm,
} from "./grad_wasm.ts";

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  getMemoryOffset?(dataId: tf.DataId): number;
  wasm?: {
    asm?: { memory?: unknown };
    _malloc?: (bytes: number) => number;
    _free?: (ptr: number) => void;
  };
}

function isHeap(b: unknown): b is HeapBackend {
  return typeof (b as HeapBackend).typedArrayFromHeap === "function";
}

/** The wasm backend's heap with grad.wasm instantiated on it, plus tensor pointers. */
export interface OnHeap {
  g: GradOnHeap;
  /** Byte offset of a tensor's data in the heap. */
  ptr(t: tf.TensorInfo): number;
  /** A new float32 output tensor on the heap. */
  out(shape: number[]): tf.TensorInfo;
}

const heaps = new WeakMap<object, OnHeap | null>();

/**
 * grad.wasm on the backend's own memory when the backend is tfjs's wasm backend (its heap, malloc
 * and free reachable), else undefined (callers copy through the standalone instance).
 */
export function onHeap(backend: unknown): OnHeap | undefined {
  if (!isHeap(backend)) return undefined;
  const known = heaps.get(backend);
  if (known !== undefined) return known ?? undefined;
  const w = backend.wasm;
  const mem = w?.asm?.memory;
  let h: OnHeap | null = null;
  if (
    mem instanceof WebAssembly.Memory && typeof w?._malloc === "function" &&
    typeof w._free === "function" && typeof backend.getMemoryOffset === "function"
  ) {
    const malloc = w._malloc.bind(w);
    const free = w._free.bind(w);
    const b = backend;
    h = {
      g: new GradOnHeap(mem, malloc, free),
      ptr: (t) => b.getMemoryOffset!(t.dataId),
      out: (shape) => b.makeOutput(shape, "float32"),
    };
  }
  heaps.set(backend, h);
  return h ?? undefined;
}

/** Runs `fill(inputs..., out)` on the backend's memory and returns the output tensor info. */
function direct(
  backend: unknown,
  shape: number[],
  inputs: tf.TensorInfo[],
  fill: (ins: Float32Array[], out: Float32Array) => void,
): tf.TensorInfo {
  if (isHeap(backend)) {
    // Allocate first: growing the wasm memory would detach views taken before.
    const out = backend.makeOutput(shape, "float32");
    const ins = inputs.map((t) => backend.typedArrayFromHeap(t));
    fill(ins, backend.typedArrayFromHeap(out));
    return out;
  }
  const b = backend as tf.KernelBackend;
  const ins = inputs.map((t) => b.readSync(t.dataId) as Float32Array);
  const out = new Float32Array(shape.reduce((a, c) => a * c, 1));
  fill(ins, out);
  return tf.tensor(out, shape);
}

/** Rows of the convolution's input patches: cols[r, (ky * kw + kx) * cin + ci], zero-padded. */
function im2col(x: Float32Array, g: ConvGeometry, cols: Float32Array): void {
  const k = g.kh * g.kw * g.cin;
  let r = 0;
  for (let b = 0; b < g.n; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++, r++) {
        let o = r * k;
        for (let ky = 0; ky < g.kh; ky++) {
          const iy = oy * g.sh + ky - g.pt;
          for (let kx = 0; kx < g.kw; kx++) {
            const ix = ox * g.sw + kx - g.pl;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) {
              for (let ci = 0; ci < g.cin; ci++) cols[o++] = 0;
            } else {
              const xo = ((b * g.h + iy) * g.w + ix) * g.cin;
              for (let ci = 0; ci < g.cin; ci++) cols[o++] = x[xo + ci]!;
            }
          }
        }
      }
    }
  }
}

/** A 3x3 stride-1 SAME geometry with 4k channels: grad.wasm's `dwConv3x3s1` covers it. */
function is3x3Same(g: ConvGeometry): boolean {
  return g.kh === 3 && g.kw === 3 && g.sh === 1 && g.sw === 1 && g.pt === 1 && g.pl === 1 &&
    g.oh === g.h && g.ow === g.w && g.cin % 4 === 0;
}

function isPointwise(ci: tf.backend_util.Conv2DInfo): boolean {
  return ci.filterHeight === 1 && ci.filterWidth === 1 && ci.strideHeight === 1 &&
    ci.strideWidth === 1 && ci.padInfo.top === 0 && ci.padInfo.left === 0 &&
    ci.dilationHeight === 1 && ci.dilationWidth === 1;
}

/** Registers the own gradient kernels on `backendName` (default wasm). */
export function registerOwnGradKernels(backendName = "wasm"): void {
  // Start from the composed set so every kernel exists, then override.
  registerComposedGradKernels(backendName);
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

  reg(tf.Conv2DBackpropFilter, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.Tensor4D;
    const dy = inputs.dy as tf.Tensor4D;
    const a = attrs as unknown as ConvAttrs;
    const fs = a.filterShape!;
    const ci = convInfo(x.shape, fs, a, false);
    if (isPointwise(ci)) {
      const m = x.size / fs[2];
      const h = onHeap(backend);
      if (h) {
        const out = h.out(fs);
        const total = fs[2] * fs[3];
        const [acc, tmp] = h.g.regions([total * 8, total * 4]);
        h.g.k.pwBackpropFilter(h.ptr(x), h.ptr(dy), h.ptr(out), acc!, tmp!, m, fs[2], fs[3]);
        return out;
      }
      return direct(
        backend,
        fs,
        [x, dy],
        ([xs, dys], out) => pwBackpropFilterWasm(xs!, dys!, m, fs[2], fs[3], out),
      );
    }
    if (fs[2] > 4) return conv2dBackpropFilterComposed(x, dy, a);
    const g = geometryOf(ci);
    const h = onHeap(backend);
    if (h) {
      // The patches as rows (im2col, zeros where SAME padding reaches outside), then the
      // pointwise kernel: dW [kh*kw*cin, cout] = patches^T dy.
      const out = h.out(fs);
      const k = g.kh * g.kw * g.cin;
      const m = g.n * g.oh * g.ow;
      const total = k * g.cout;
      const [cols, acc, tmp] = h.g.regions([m * k * 4, total * 8, total * 4]);
      im2col(
        new Float32Array(h.g.k.memory.buffer, h.ptr(x), x.size),
        g,
        new Float32Array(h.g.k.memory.buffer, cols!, m * k),
      );
      h.g.k.pwBackpropFilter(cols!, h.ptr(dy), h.ptr(out), acc!, tmp!, m, k, g.cout);
      return out;
    }
    return direct(
      backend,
      fs,
      [x, dy],
      ([xs, dys], out) => conv2dBackpropFilter(xs!, dys!, g, out),
    );
  });

  reg(tf.DepthwiseConv2dNativeBackpropFilter, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.Tensor4D;
    const dy = inputs.dy as tf.Tensor4D;
    const a = attrs as unknown as ConvAttrs;
    const fs = a.filterShape!;
    if (fs[3] !== 1) {
      throw new RangeError(
        `Cannot run DepthwiseConv2dNativeBackpropFilter as the channel multiplier must be 1: current value is ${
          fs[3]
        }`,
      );
    }
    const g = geometryOf(convInfo(x.shape, fs, a, true));
    const h = onHeap(backend);
    if (h && is3x3Same(g)) {
      const out = h.out(fs);
      const [acc, zero] = h.g.regions([9 * g.cin * 8, g.w * g.cin * 4]);
      h.g.k.dwBackpropFilter3x3s1(
        h.ptr(x),
        h.ptr(dy),
        h.ptr(out),
        acc!,
        zero!,
        g.n,
        g.h,
        g.w,
        g.cin,
      );
      return out;
    }
    if (h) {
      const out = h.out(fs);
      const [acc, tmp] = h.g.regions([g.kh * g.kw * g.cin * 8, g.cin * 4]);
      h.g.k.dwBackpropFilter(
        h.ptr(x),
        h.ptr(dy),
        h.ptr(out),
        acc!,
        tmp!,
        g.n,
        g.h,
        g.w,
        g.cin,
        g.oh,
        g.ow,
        g.kh,
        g.kw,
        g.sh,
        g.sw,
        g.pt,
        g.pl,
      );
      return out;
    }
    return direct(
      backend,
      fs,
      [x, dy],
      ([xs, dys], out) => dwBackpropFilterWasm(xs!, dys!, g, out),
    );
  });

  reg(tf.DepthwiseConv2dNativeBackpropInput, ({ inputs, attrs, backend }) => {
    const dy = inputs.dy as tf.Tensor4D;
    const filter = inputs.filter as tf.Tensor4D;
    const a = attrs as unknown as ConvAttrs;
    const xs = a.inputShape!;
    if (filter.shape[3] !== 1) {
      throw new RangeError(
        `Cannot run DepthwiseConv2dNativeBackpropInput as the channel multiplier must be 1: current value is ${
          filter.shape[3]
        }`,
      );
    }
    const g = geometryOf(convInfo(xs, filter.shape, a, true));
    const h = onHeap(backend);
    if (h && is3x3Same(g)) {
      // Stride 1: dy correlated with the rotated filter, each dx element written once.
      const out = h.out(xs);
      const [zero] = h.g.regions([g.w * g.cin * 4]);
      h.g.k.dwConv3x3s1(h.ptr(dy), h.ptr(filter), h.ptr(out), zero!, g.n, g.h, g.w, g.cin, true);
      return out;
    }
    if (h) {
      const out = h.out(xs);
      h.g.k.dwBackpropInput(
        h.ptr(dy),
        h.ptr(filter),
        h.ptr(out),
        g.n,
        g.h,
        g.w,
        g.cin,
        g.oh,
        g.ow,
        g.kh,
        g.kw,
        g.sh,
        g.sw,
        g.pt,
        g.pl,
      );
      return out;
    }
    return direct(
      backend,
      xs,
      [dy, filter],
      ([dys, fs], out) => dwBackpropInputWasm(dys!, fs!, g, out),
    );
  });

  // tfjs clones every tensor it saves for the backward pass through Identity, which the wasm
  // backend implements as a full copy (~200 per MobileNet step). Tensors are immutable, so
  // sharing the buffer with a reference count (as the cpu backend does) is enough.
  const stockIdentity = tf.getKernel(tf.Identity, backendName);
  if (stockIdentity && !(stockIdentity.kernelFunc as { own?: boolean }).own) {
    const fallback = stockIdentity.kernelFunc;
    const kernelFunc: tf.KernelFunc & { own?: boolean; stock?: tf.KernelFunc } = (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const b = args.backend as { incRef?: (id: tf.DataId) => void };
      if (x.dtype === "string" || typeof b.incRef !== "function") return fallback(args);
      b.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    };
    kernelFunc.own = true;
    kernelFunc.stock = fallback;
    reg(tf.Identity, kernelFunc);
  }

  // The 1x1 stride-1 convolution (the pointwise layers) and its backprop input run as grad.wasm's
  // GEMM on the heap (4x8 register tiles, fused multiply-adds); other shapes keep the backend's
  // kernel. Without the heap, the backprop input is tfjs's BatchMatMul with W transposed
  // explicitly (its XNNPACK path takes no transposes).
  // The 3x3 stride-1 depthwise forward runs as grad.wasm's dwConv3x3s1 on the heap (filter taps
  // held in registers); other depthwise shapes keep the backend's XNNPACK kernel.
  const stockDw = tf.getKernel(tf.DepthwiseConv2dNative, backendName);
  if (stockDw && !(stockDw.kernelFunc as { own?: boolean }).own) {
    const fallback = stockDw.kernelFunc;
    const kernelFunc: tf.KernelFunc & { own?: boolean; stock?: tf.KernelFunc } = (args) => {
      const x = args.inputs.x as tf.Tensor4D;
      const filter = args.inputs.filter as tf.Tensor4D;
      const a = args.attrs as unknown as ConvAttrs;
      const h = onHeap(args.backend);
      const d = a.dilations ?? 1;
      if (
        !h || x.dtype !== "float32" || filter.shape[3] !== 1 ||
        (a.dataFormat ?? "NHWC") !== "NHWC" ||
        !(d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1))
      ) {
        return fallback(args);
      }
      const g = geometryOf(convInfo(x.shape, filter.shape, a, true));
      if (!is3x3Same(g)) return fallback(args);
      const y = h.out([g.n, g.oh, g.ow, g.cin]);
      const [zero] = h.g.regions([g.w * g.cin * 4]);
      h.g.k.dwConv3x3s1(h.ptr(x), h.ptr(filter), h.ptr(y), zero!, g.n, g.h, g.w, g.cin, false);
      return y;
    };
    kernelFunc.own = true;
    kernelFunc.stock = fallback;
    reg(tf.DepthwiseConv2dNative, kernelFunc);
  }

  const stockConv = tf.getKernel(tf.Conv2D, backendName);
  if (stockConv && !(stockConv.kernelFunc as { own?: boolean }).own) {
    const fallback = stockConv.kernelFunc;
    const kernelFunc: tf.KernelFunc & { own?: boolean; stock?: tf.KernelFunc } = (args) => {
      const x = args.inputs.x as tf.Tensor4D;
      const filter = args.inputs.filter as tf.Tensor4D;
      const a = args.attrs as unknown as ConvAttrs;
      const h = onHeap(args.backend);
      if (
        !h || x.dtype !== "float32" || (a.dataFormat ?? "NHWC") !== "NHWC" ||
        !isPointwise(convInfo(x.shape, filter.shape, a, false))
      ) {
        return fallback(args);
      }
      const [n, hh, w, cin] = x.shape;
      const cout = filter.shape[3];
      const y = h.out([n, hh, w, cout]);
      h.g.k.pwForward(h.ptr(x), h.ptr(filter), h.ptr(y), n * hh * w, cin, cout);
      return y;
    };
    kernelFunc.own = true;
    kernelFunc.stock = fallback;
    reg(tf.Conv2D, kernelFunc);
  }

  const stockInput = tf.getKernel(tf.Conv2DBackpropInput, backendName);
  if (stockInput && !(stockInput.kernelFunc as { own?: boolean }).own) {
    const fallback = stockInput.kernelFunc;
    const kernelFunc: tf.KernelFunc & { own?: boolean; stock?: tf.KernelFunc } = (args) => {
      const dy = args.inputs.dy as tf.Tensor4D;
      const filter = args.inputs.filter as tf.Tensor4D;
      const a = args.attrs as unknown as ConvAttrs;
      const xs = a.inputShape!;
      const ci = convInfo(xs, filter.shape, a, false);
      if (!isPointwise(ci)) return fallback(args);
      const [, , cin, cout] = filter.shape;
      const h = onHeap(args.backend);
      if (h) {
        const dx = h.out(xs);
        const [wt] = h.g.regions([cin * cout * 4]);
        h.g.k.pwBackpropInput(h.ptr(dy), h.ptr(filter), wt!, h.ptr(dx), dy.size / cout, cin, cout);
        return dx;
      }
      return tf.tidy(() =>
        tf.reshape(
          tf.matMul(tf.reshape(dy, [-1, cout]), tf.transpose(tf.reshape(filter, [cin, cout]))),
          xs,
        )
      );
    };
    kernelFunc.own = true;
    kernelFunc.stock = fallback;
    reg(tf.Conv2DBackpropInput, kernelFunc);
  }
}
