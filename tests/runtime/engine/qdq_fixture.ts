/**
 * A small int8 QDQ MobileNet-style ONNX model built in the test, following the pattern that
 * model/export/quantize.ts documents (QuantizeLinear / DequantizeLinear around Conv with
 * SAME_UPPER, per-channel int8 weights in -64..64, int32 bias, GlobalAveragePool, Flatten, Gemm
 * with per-tensor weights and float logits). Seeded, so every run builds the same bytes.
 *
 * Layers: 3x3 s2 first conv (relu), depthwise 3x3 s1 (relu6 as Clip), pointwise, depthwise 3x3 s2,
 * pointwise to 13 channels (not a multiple of 8), depthwise 5x5 s1 (Relu node), pointwise 13 -> 24,
 * GAP, Flatten, Gemm 24 -> 10.
 */
import type { ModelSpec } from "../../../model/spec.ts";
import {
  DataType,
  encodeModel,
  type OnnxNode,
  type OnnxTensor,
} from "../../../model/export/onnx_writer.ts";

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Smooth random images (sums of plane waves), NCHW in about [-1.2, 1.2]. */
export function waveImages(n: number, c: number, h: number, w: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * c * h * w);
  for (let b = 0; b < n * c; b++) {
    const waves = Array.from({ length: 3 }, () => [r() * 1.5, r() * 1.5, r() * 6, r()] as const);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let v = -0.2;
        for (const [a, bb, p, amp] of waves) v += amp * Math.sin(a * i + bb * j + p);
        x[(b * h + i) * w + j] = Math.max(-1.2, Math.min(1.2, v));
      }
    }
  }
  return x;
}

interface FloatT {
  data: Float32Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

/** Float NCHW conv with SAME_UPPER padding (zero padding), for calibrating the fixture. */
function floatConv(
  x: FloatT,
  w: Float32Array,
  bias: Float32Array,
  oc: number,
  k: number,
  stride: number,
  groups: number,
): FloatT {
  const oh = Math.ceil(x.h / stride);
  const ow = Math.ceil(x.w / stride);
  const pt = Math.floor(Math.max(0, (oh - 1) * stride + k - x.h) / 2);
  const pl = Math.floor(Math.max(0, (ow - 1) * stride + k - x.w) / 2);
  const inPer = x.c / groups;
  const outPer = oc / groups;
  const y = new Float32Array(x.n * oc * oh * ow);
  for (let b = 0; b < x.n; b++) {
    for (let o = 0; o < oc; o++) {
      const g = Math.floor(o / outPer);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let acc = bias[o]!;
          for (let i = 0; i < inPer; i++) {
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * stride - pt + ky;
              if (iy < 0 || iy >= x.h) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = ox * stride - pl + kx;
                if (ix < 0 || ix >= x.w) continue;
                acc += x.data[((b * x.c + g * inPer + i) * x.h + iy) * x.w + ix]! *
                  w[((o * inPer + i) * k + ky) * k + kx]!;
              }
            }
          }
          y[((b * oc + o) * oh + oy) * ow + ox] = acc;
        }
      }
    }
  }
  return { data: y, n: x.n, c: oc, h: oh, w: ow };
}

/** One conv layer of a fixture network (`out` is ignored for depthwise). */
export interface FixtureConv {
  readonly name: string;
  readonly out: number;
  readonly k: number;
  readonly stride: number;
  readonly depthwise: boolean;
  /** `relu_node` writes a Relu node too (same math as relu), `relu6` a Clip(0, 6). */
  readonly act: "relu" | "relu6" | "relu_node" | "none";
}

/** The small test network described in the module comment. */
export const TINY_NET: readonly FixtureConv[] = [
  { name: "conv0", out: 8, k: 3, stride: 2, depthwise: false, act: "relu" },
  { name: "dw1", out: 0, k: 3, stride: 1, depthwise: true, act: "relu6" },
  { name: "pw1", out: 16, k: 1, stride: 1, depthwise: false, act: "relu" },
  { name: "dw2", out: 0, k: 3, stride: 2, depthwise: true, act: "relu" },
  { name: "pw2", out: 13, k: 1, stride: 1, depthwise: false, act: "none" },
  { name: "dw3", out: 0, k: 5, stride: 1, depthwise: true, act: "relu_node" },
  { name: "pw3", out: 24, k: 1, stride: 1, depthwise: false, act: "relu" },
];

/** The conv layers of a `model/spec.ts` MobileNet V1 spec as fixture layers. */
export function specConvs(spec: ModelSpec): FixtureConv[] {
  const out: FixtureConv[] = [];
  for (const l of spec.layers) {
    if (l.kind !== "conv") continue;
    out.push({
      name: l.name,
      out: l.outShape[0],
      k: l.kernel,
      stride: l.stride,
      depthwise: l.groups > 1,
      act: l.activation === "relu6" ? "relu6" : l.activation === "relu" ? "relu" : "none",
    });
  }
  return out;
}

export interface FixtureOptions {
  inputChannels?: number;
  seed?: number;
  /** Conv layers; default `TINY_NET`. */
  layers?: readonly FixtureConv[];
  classes?: number;
  /** Calibration images (count and side); default 8 of 24x24. */
  calibration?: { count: number; side: number };
}

/** Builds the fixture model; returns its ONNX bytes. */
export function buildQdqFixture(opts: FixtureOptions = {}): Uint8Array {
  const r = rng(opts.seed ?? 7);
  const cin = opts.inputChannels ?? 1;
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const f32 = (name: string, v: number[], dims: number[] = []) =>
    inits.push({ name, dataType: DataType.FLOAT, dims, data: Float32Array.from(v) });

  const qdq = (t: string, scale: number, zp: number): string => {
    f32(`${t}.scale`, [scale]);
    inits.push({
      name: `${t}.zero_point`,
      dataType: DataType.UINT8,
      dims: [],
      data: Uint8Array.from([zp]),
    });
    nodes.push(
      {
        opType: "QuantizeLinear",
        name: `${t}/quantize`,
        inputs: [t, `${t}.scale`, `${t}.zero_point`],
        outputs: [`${t}.q`],
      },
      {
        opType: "DequantizeLinear",
        name: `${t}/dequantize`,
        inputs: [`${t}.q`, `${t}.scale`, `${t}.zero_point`],
        outputs: [`${t}.dq`],
      },
    );
    return `${t}.dq`;
  };
  const constDq = (
    base: string,
    q: Int8Array | Int32Array,
    dims: number[],
    scales: Float32Array,
    axis?: number,
  ) => {
    const int8 = q instanceof Int8Array;
    const zpDims = axis === undefined ? [] : [scales.length];
    inits.push(
      { name: `${base}.q`, dataType: int8 ? DataType.INT8 : DataType.INT32, dims, data: q },
      { name: `${base}.scale`, dataType: DataType.FLOAT, dims: zpDims, data: scales },
      {
        name: `${base}.zero_point`,
        dataType: int8 ? DataType.INT8 : DataType.INT32,
        dims: zpDims,
        data: int8 ? new Int8Array(scales.length) : new Int32Array(scales.length),
      },
    );
    nodes.push({
      opType: "DequantizeLinear",
      name: `${base}/dequantize`,
      inputs: [`${base}.q`, `${base}.scale`, `${base}.zero_point`],
      outputs: [`${base}.dq`],
      ...(axis !== undefined ? { attrs: { axis: { i: axis } } } : {}),
    });
    return `${base}.dq`;
  };

  // Calibration: a float forward pass on a few images picks every activation's range.
  const cal = opts.calibration ?? { count: 8, side: 24 };
  let calib: FloatT = {
    data: waveImages(cal.count, cin, cal.side, cal.side, 99),
    n: cal.count,
    c: cin,
    h: cal.side,
    w: cal.side,
  };
  let x = qdq("input", 2 / 255, 128); // normalized input in about [-1, 1]
  let xScale = 2 / 255;
  let c = cin;
  const conv = (
    name: string,
    out: number,
    k: number,
    stride: number,
    depthwise: boolean,
    act: "relu" | "relu6" | "relu_node" | "none",
  ) => {
    const inPer = depthwise ? 1 : c;
    const oc = depthwise ? c : out;
    const w = Int8Array.from({ length: oc * inPer * k * k }, () => Math.round((r() * 2 - 1) * 64));
    const ws = Float32Array.from({ length: oc }, () => 0.004 + r() * 0.01);
    const wdq = constDq(`${name}.weight`, w, [oc, inPer, k, k], ws, 0);
    const bs = Float32Array.from(ws, (s) => Math.fround(xScale * s));
    const b = Int32Array.from({ length: oc }, () => Math.round((r() * 2 - 1) * 3000));
    const bdq = constDq(`${name}.bias`, b, [oc], bs, 0);
    const y = `${name}.out`;
    const pre = act === "none" ? y : `${name}.pre`;
    nodes.push({
      opType: "Conv",
      name,
      inputs: [x, wdq, bdq],
      outputs: [pre],
      attrs: {
        auto_pad: { s: "SAME_UPPER" },
        kernel_shape: { ints: [k, k] },
        strides: { ints: [stride, stride] },
        dilations: { ints: [1, 1] },
        group: { i: depthwise ? c : 1 },
      },
    });
    const wf = Float32Array.from(w, (v, i) => v * ws[Math.floor(i / (inPer * k * k))]!);
    const bf = Float32Array.from(b, (v, i) => v * bs[i]!);
    calib = floatConv(calib, wf, bf, oc, k, stride, depthwise ? c : 1);
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < calib.data.length; i++) {
      let v = calib.data[i]!;
      if (act !== "none") v = Math.max(0, v);
      if (act === "relu6") v = Math.min(6, v);
      calib.data[i] = v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const outScale = Math.fround((hi - lo) / 255);
    const zp = Math.round(-lo / outScale);
    if (act === "relu") {
      nodes.push({ opType: "Relu", name: `${name}/relu`, inputs: [pre], outputs: [y] });
    }
    if (act === "relu_node") {
      nodes.push({ opType: "Relu", name: `${name}/relu`, inputs: [pre], outputs: [y] });
    }
    if (act === "relu6") {
      f32(`${name}.clip_min`, [0]);
      f32(`${name}.clip_max`, [6]);
      nodes.push({
        opType: "Clip",
        name: `${name}/relu6`,
        inputs: [pre, `${name}.clip_min`, `${name}.clip_max`],
        outputs: [y],
      });
    }
    x = qdq(y, outScale, zp);
    xScale = outScale;
    c = oc;
  };
  for (const l of opts.layers ?? TINY_NET) conv(l.name, l.out, l.k, l.stride, l.depthwise, l.act);
  nodes.push({ opType: "GlobalAveragePool", name: "pool", inputs: [x], outputs: ["pool.out"] });
  const poolScale = xScale;
  x = qdq("pool.out", poolScale, 0);
  nodes.push({
    opType: "Flatten",
    name: "flatten",
    inputs: [x],
    outputs: ["flatten.out"],
    attrs: { axis: { i: 1 } },
  });
  x = qdq("flatten.out", poolScale, 0);
  const classes = opts.classes ?? 10;
  const fw = Int8Array.from({ length: c * classes }, () => Math.round((r() * 2 - 1) * 64));
  const fws = Float32Array.from([0.01]);
  const fwdq = constDq("fc.weight", fw, [c, classes], fws);
  const fb = Int32Array.from({ length: classes }, () => Math.round((r() * 2 - 1) * 100));
  const fbdq = constDq(
    "fc.bias",
    fb,
    [classes],
    Float32Array.from({ length: classes }, () => Math.fround(poolScale * 0.01)),
    0,
  );
  nodes.push({
    opType: "Gemm",
    name: "fc",
    inputs: [x, fwdq, fbdq],
    outputs: ["logits"],
    attrs: { transB: { i: 0 } },
  });
  return encodeModel({
    irVersion: 7,
    opsets: [{ domain: "", version: 13 }],
    producerName: "tests/runtime/engine/qdq_fixture.ts",
    producerVersion: "1",
    graph: {
      name: "qdq_fixture",
      nodes,
      initializers: inits,
      inputs: [{ name: "input", elemType: DataType.FLOAT, shape: ["n", cin, "h", "w"] }],
      outputs: [{ name: "logits", elemType: DataType.FLOAT, shape: ["n", classes] }],
    },
  });
}
