/**
 * The int8 engine: runs the shipped QDQ ONNX file (the same file onnxruntime runs) on the
 * project's WASM SIMD kernels.
 *
 * - Load: `readQdqGraph` turns the graph into integer steps; each step is validated and planned by
 *   the TypeScript reference (kernels/int8/) and its weights packed once into wasm memory.
 * - Per input resolution (the file has dynamic spatial dims, so one file serves every beta): the
 *   first request at a new h x w allocates that resolution's activation buffers and scratch for
 *   `maxBatch` images; later requests at that size allocate nothing in wasm.
 * - Run: the float NCHW input is quantized exactly as onnxruntime's QuantizeLinear does
 *   (`f32(x / scale)`, clamp, round half to even, + zp) straight into NHWC uint8 in wasm memory;
 *   then every layer runs with fused requantization (ReLU / ReLU6 as the output clamp), and the
 *   classifier writes float32 logits `f32(acc) * f32(inScale * wScale)`.
 * - Batches above `maxBatch` run in chunks.
 *
 * Layouts: NHWC uint8 activations inside (pointwise convolutions are then plain GEMMs); NCHW float
 * at the boundary, as the backend contract says.
 */
import type { OnnxModel } from "../../model/export/onnx_writer.ts";
import { readOnnxModel } from "./onnx_reader.ts";
import { createConv2dPlan } from "../../kernels/int8/conv2d.ts";
import { createGemmPlan } from "../../kernels/int8/gemm.ts";
import { createGlobalAvgPoolPlan } from "../../kernels/int8/global_avg_pool.ts";
import { checkScale, checkZeroPoint } from "../../kernels/int8/requantize.ts";
import {
  packConv2d,
  type PackedConv,
  type PackedGemm,
  type PackedGlobalAvgPool,
  packGemm,
  packGlobalAvgPool,
} from "../../kernels/wasm/int8_layers.ts";
import { type Int8Wasm, loadInt8Wasm } from "../../kernels/wasm/int8_wasm.ts";
import { type ActQuant, type QdqGraph, readQdqGraph } from "./qdq_graph.ts";

export interface EngineOptions {
  /** Largest batch run in one pass (buffers are sized for it). Default 8. */
  maxBatch?: number;
  /** Precompiled kernels module (edge platforms import it instead of compiling bytes). */
  module?: WebAssembly.Module;
  /** Resolutions kept ready at once; beyond that the buffers are rebuilt. Default 8. */
  maxResolutions?: number;
}

type Layer =
  | { kind: "conv"; input: string; output: string; conv: PackedConv }
  | { kind: "gap"; input: string; output: string; gap: PackedGlobalAvgPool }
  | { kind: "alias"; input: string; output: string }
  | { kind: "gemm"; input: string; output: string; gemm: PackedGemm };

/** Shape [h, w, c] (per image) of every quantized tensor at one input resolution. */
interface Resolution {
  readonly h: number;
  readonly w: number;
  /** Pointer of each tensor's buffer (aliases share). */
  readonly ptr: Map<string, number>;
  readonly shape: Map<string, readonly [number, number, number]>;
  readonly scratch: number;
  readonly logits: number;
  /** Float32 staging buffer for the NCHW input of `maxBatch` images. */
  readonly input: number;
  /** Every layer bound to this resolution's buffers and geometry: `ops[i](n)` runs layer i. */
  readonly ops: readonly ((n: number) => void)[];
}

/** Runs an int8 QDQ MobileNet on the wasm kernels. */
export class Int8Engine {
  readonly graph: QdqGraph;
  readonly maxBatch: number;
  readonly #wasm: Int8Wasm;
  readonly #layers: Layer[];
  readonly #input: { id: string; quant: ActQuant };
  readonly #weightsMark: number;
  readonly #resolutions = new Map<string, Resolution>();
  readonly #maxResolutions: number;

  private constructor(wasm: Int8Wasm, graph: QdqGraph, maxBatch: number, maxResolutions: number) {
    this.#wasm = wasm;
    this.graph = graph;
    this.maxBatch = maxBatch;
    this.#maxResolutions = maxResolutions;
    const first = graph.steps[0];
    if (first?.op !== "quantize_input") {
      throw new TypeError(
        "Cannot build the engine as the graph does not start by quantizing its input",
      );
    }
    checkScale("input scale", first.quant.scale);
    checkZeroPoint("input zero point", first.quant.zeroPoint);
    this.#input = { id: first.output, quant: first.quant };
    this.#layers = [];
    for (const s of graph.steps.slice(1)) {
      switch (s.op) {
        case "conv": {
          const [o, i, kh, kw] = s.weightShape;
          const params = {
            weights: s.weights,
            weightShape: s.weightShape,
            weightScales: s.weightScales,
            weightZeroPoints: s.weightZeroPoints,
            bias: s.bias,
            inScale: s.inQuant.scale,
            inZeroPoint: s.inQuant.zeroPoint,
            outScale: s.outQuant.scale,
            outZeroPoint: s.outQuant.zeroPoint,
            lo: s.lo,
            hi: s.hi,
            strides: s.strides,
            padding: s.padding,
            groups: s.groups,
          };
          // Validate and plan at the smallest size the kernel accepts; the packed layer takes the
          // real size per call.
          const plan = createConv2dPlan([1, kh + s.strides[0], kw + s.strides[1], i * s.groups], {
            ...params,
            padding: "same_upper",
          });
          if (plan.outC !== o) {
            throw new TypeError(`Cannot build the engine as ${s.name} has inconsistent weights`);
          }
          this.#layers.push({
            kind: "conv",
            input: s.input,
            output: s.output,
            conv: packConv2d(wasm, plan, s.padding),
          });
          break;
        }
        case "global_avg_pool": {
          // validation only: the pixel and channel counts come with each call
          const plan = createGlobalAvgPoolPlan([1, 1, 1, 1], {
            input: s.inQuant,
            output: s.outQuant,
          });
          this.#layers.push({
            kind: "gap",
            input: s.input,
            output: s.output,
            gap: packGlobalAvgPool(wasm, plan, {
              inScale: s.inQuant.scale,
              outScale: s.outQuant.scale,
            }),
          });
          break;
        }
        case "flatten":
          this.#layers.push({ kind: "alias", input: s.input, output: s.output });
          break;
        case "gemm": {
          const plan = createGemmPlan([1, s.inFeatures], {
            weights: s.weights,
            outChannels: s.outFeatures,
            weightScales: s.weightScales,
            weightZeroPoints: s.weightZeroPoints,
            bias: s.bias,
            inScale: s.inQuant.scale,
            inZeroPoint: s.inQuant.zeroPoint,
            ...(s.outQuant
              ? {
                outScale: s.outQuant.scale,
                outZeroPoint: s.outQuant.zeroPoint,
                lo: s.lo,
                hi: s.hi,
                output: "uint8" as const,
              }
              : { output: "float32" as const }),
          });
          this.#layers.push({
            kind: "gemm",
            input: s.input,
            output: s.output,
            gemm: packGemm(wasm, plan),
          });
          break;
        }
        default:
          throw new TypeError(
            `Cannot build the engine as step ${s.op} is not expected after the input`,
          );
      }
    }
    this.#weightsMark = wasm.mark();
  }

  /** Loads an int8 QDQ ONNX file (bytes or a decoded model). */
  static async load(onnx: Uint8Array | OnnxModel, opts: EngineOptions = {}): Promise<Int8Engine> {
    const maxBatch = opts.maxBatch ?? 8;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1024) {
      throw new RangeError(
        `Cannot load the engine as maxBatch must be an integer in [1, 1024]: current value is ${maxBatch}`,
      );
    }
    const model = onnx instanceof Uint8Array ? readOnnxModel(onnx) : onnx;
    const graph = readQdqGraph(model);
    const wasm = await loadInt8Wasm(opts.module);
    return new Int8Engine(wasm, graph, maxBatch, opts.maxResolutions ?? 8);
  }

  get inputChannels(): number {
    return this.graph.inputChannels;
  }

  get classes(): number {
    return this.graph.classes;
  }

  /** Bytes of wasm memory in use (weights plus the buffers of the resolutions seen). */
  get memoryBytes(): number {
    return this.#wasm.memory.buffer.byteLength;
  }

  /** Buffers for one resolution, made on first use. */
  #resolution(h: number, w: number): Resolution {
    const key = `${h}x${w}`;
    const have = this.#resolutions.get(key);
    if (have) return have;
    if (this.#resolutions.size >= this.#maxResolutions) {
      this.#resolutions.clear();
      this.#wasm.release(this.#weightsMark);
    }
    const shape = new Map<string, readonly [number, number, number]>();
    shape.set(this.#input.id, [h, w, this.inputChannels]);
    let scratch = 0;
    for (const l of this.#layers) {
      const s = shape.get(l.input);
      if (!s) {
        throw new TypeError(
          `Cannot run the engine as tensor ${l.input} is used before it is written`,
        );
      }
      const [ih, iw, ic] = s;
      if (l.kind === "conv") {
        if (ic !== l.conv.inChannels) {
          throw new TypeError(
            `Cannot run the engine as tensor ${l.input} has ${ic} channels where ${l.conv.inChannels} are expected`,
          );
        }
        const g = l.conv.geometry(ih, iw);
        shape.set(l.output, [g.outH, g.outW, l.conv.outChannels]);
        scratch = Math.max(scratch, l.conv.scratchBytes(this.maxBatch, ih, iw));
      } else if (l.kind === "gap") {
        shape.set(l.output, [1, 1, ic]);
      } else if (l.kind === "alias") {
        if (ih * iw > 1 && ic > 1) {
          // ONNX flattens NCHW as (c, h, w); the engine's NHWC buffer is (h, w, c).
          throw new TypeError(
            `Cannot run the engine as ${l.output} flattens a ${ih}x${iw}x${ic} tensor: only [n, c, 1, 1] inputs (after global pooling) are supported`,
          );
        }
        shape.set(l.output, s);
      } else {
        if (ih * iw > 1 && ic > 1) {
          throw new TypeError(
            `Cannot run the engine as Gemm reads ${l.input} of ${ih}x${iw}x${ic}: it needs [n, features] (after pooling)`,
          );
        }
        if (ih * iw * ic !== l.gemm.k) {
          throw new TypeError(
            `Cannot run the engine as tensor ${l.input} has ${
              ih * iw * ic
            } features where ${l.gemm.k} are expected`,
          );
        }
        shape.set(l.output, [1, 1, l.gemm.n]);
        scratch = Math.max(scratch, l.gemm.scratchBytes(this.maxBatch));
      }
    }
    // Buffers: one per live tensor, all of the largest tensor's size, returned to a pool after
    // the last reader (a chain needs two). Flatten aliases its input's buffer.
    const wasm = this.#wasm;
    let maxBytes = 0;
    for (const [a, b, c] of shape.values()) {
      maxBytes = Math.max(maxBytes, this.maxBatch * a * b * c);
    }
    const root = new Map<string, string>();
    const rootOf = (id: string) => root.get(id) ?? id;
    for (const l of this.#layers) if (l.kind === "alias") root.set(l.output, rootOf(l.input));
    const lastUse = new Map<string, number>();
    this.#layers.forEach((l, i) => lastUse.set(rootOf(l.input), i));
    const ptr = new Map<string, number>();
    const pool: number[] = [];
    const take = () => pool.pop() ?? wasm.alloc(maxBytes);
    ptr.set(this.#input.id, take());
    this.#layers.forEach((l, i) => {
      if (l.kind === "alias") ptr.set(l.output, ptr.get(rootOf(l.input))!);
      else if (l.output !== this.graph.outputName) ptr.set(l.output, take());
      const r = rootOf(l.input);
      if (lastUse.get(r) === i) pool.push(ptr.get(r)!);
    });
    const logits = wasm.alloc(this.maxBatch * this.classes * 4);
    const scratchPtr = wasm.alloc(scratch);
    const inputF32 = wasm.alloc(this.maxBatch * this.inputChannels * h * w * 4);
    const ops = this.#layers.map((l): (n: number) => void => {
      if (l.kind === "alias") return () => {};
      const inPtr = ptr.get(l.input)!;
      const [ih, iw, ic] = shape.get(l.input)!;
      const outPtr = l.output === this.graph.outputName ? logits : ptr.get(l.output)!;
      if (l.kind === "conv") {
        const run = l.conv.prepare(ih, iw);
        return (n) => run(inPtr, outPtr, n, scratchPtr);
      }
      if (l.kind === "gap") {
        const run = l.gap.prepare(ih * iw, ic);
        return (n) => run(inPtr, outPtr, n);
      }
      const gemm = l.gemm;
      return (n) => gemm.run(inPtr, outPtr, n, scratchPtr);
    });
    const r: Resolution = { h, w, ptr, shape, scratch: scratchPtr, logits, input: inputF32, ops };
    this.#resolutions.set(key, r);
    return r;
  }

  /**
   * Classifies a batch: `input` is float32 NCHW (normalized as the model expects), the result is
   * `n * classes` float32 logits, written into `out` when given (then nothing is allocated).
   */
  run(
    input: Float32Array,
    shape: readonly [number, number, number, number],
    out?: Float32Array,
  ): Float32Array {
    const [n, c, h, w] = shape;
    if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new TypeError(
        `Cannot run the engine as the input shape must be 4 positive integers (NCHW): current shape is [${
          shape.join(",")
        }]`,
      );
    }
    if (c !== this.inputChannels) {
      throw new TypeError(
        `Cannot run the engine as the model takes ${this.inputChannels} input channels: current shape is [${
          shape.join(",")
        }]`,
      );
    }
    if (input.length !== n * c * h * w) {
      throw new TypeError(
        `Cannot run the engine as the input must hold ${n * c * h * w} values for shape [${
          shape.join(",")
        }]: current length is ${input.length}`,
      );
    }
    if (out && out.length !== n * this.classes) {
      throw new TypeError(
        `Cannot run the engine as the output buffer must hold ${
          n * this.classes
        } values: current length is ${out.length}`,
      );
    }
    const res = this.#resolution(h, w);
    const logits = out ?? new Float32Array(n * this.classes);
    for (let start = 0; start < n; start += this.maxBatch) {
      const nb = Math.min(this.maxBatch, n - start);
      this.#quantizeInput(
        input.subarray(start * c * h * w, (start + nb) * c * h * w),
        nb,
        c,
        h,
        w,
        res,
      );
      this.#forward(res, nb);
      logits.set(this.#wasm.f32(res.logits, nb * this.classes), start * this.classes);
    }
    return logits;
  }

  /**
   * QuantizeLinear as onnxruntime computes it, NCHW float -> NHWC uint8 in wasm memory (the
   * floats are copied in, then quantized by the module's SIMD kernel, which computes exactly what
   * the TypeScript reference `quantizeNchwToNhwc` does).
   */
  #quantizeInput(
    x: Float32Array,
    n: number,
    c: number,
    h: number,
    w: number,
    res: Resolution,
  ): void {
    this.#wasm.f32(res.input, x.length).set(x);
    const { scale, zeroPoint } = this.#input.quant;
    this.#wasm.exports.quantizeInput(
      res.input,
      n,
      c,
      h * w,
      scale,
      zeroPoint,
      res.ptr.get(this.#input.id)!,
    );
  }

  /**
   * Milliseconds per layer (10th percentile of `reps` runs of the whole network on `input`: on a
   * shared machine the low percentile shows the uncontended cost), for benchmarks.
   */
  profile(
    input: Float32Array,
    shape: readonly [number, number, number, number],
    reps = 20,
  ): {
    layer: string;
    kind: string;
    /** Arithmetic of the layer's kernel ("s7" 7-bit relaxed dot, "i16"; "" for other steps). */
    path: string;
    ms: number;
    inShape: readonly [number, number, number];
    outShape: readonly [number, number, number];
  }[] {
    this.run(input, shape);
    const res = this.#resolution(shape[2], shape[3]);
    const times = this.#layers.map(() => [] as number[]);
    for (let r = 0; r < reps; r++) this.#forward(res, shape[0], times);
    return this.#layers.map((l, i) => {
      const t = times[i]!.sort((a, b) => a - b);
      const kind = l.kind === "conv" ? l.conv.kind : l.kind;
      return {
        layer: l.output,
        kind,
        path: l.kind === "conv" ? l.conv.path : l.kind === "gemm" ? l.gemm.path : "",
        ms: t[Math.floor(t.length / 10)] ?? 0,
        inShape: res.shape.get(l.input)!,
        outShape: res.shape.get(l.output)!,
      };
    });
  }

  #forward(res: Resolution, n: number, times?: number[][]): void {
    const ops = res.ops;
    if (!times) {
      for (let i = 0; i < ops.length; i++) ops[i]!(n);
      return;
    }
    for (let i = 0; i < ops.length; i++) {
      const t0 = performance.now();
      ops[i]!(n);
      times[i]!.push(performance.now() - t0);
    }
  }
}
