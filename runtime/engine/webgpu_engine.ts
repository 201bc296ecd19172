/**
 * The int8 engine on WebGPU: runs the shipped QDQ ONNX file with the WGSL kernels of
 * kernels/webgpu/, the same integer arithmetic as the wasm engine (engine.ts), so its logits are
 * expected to equal the wasm engine's bit for bit.
 *
 * - Load: `readQdqGraph` gives the integer steps; each is validated and planned by the TypeScript
 *   reference and its weights, bias and multipliers uploaded once.
 * - Per (batch, resolution): the first run allocates one GPU buffer per tensor, the uniforms and
 *   bind groups of every layer, the logits buffer and its readback copy; later runs of that size
 *   allocate nothing on the GPU.
 * - Run: the input is quantized on the CPU (`quantizeNchwToNhwc`, onnxruntime's QuantizeLinear),
 *   uploaded, then one compute pass holds one dispatch per layer, and the float32 logits are read
 *   back. Runs are serialized: the buffers of a size are shared.
 */
import type { OnnxModel } from "../../model/export/onnx_writer.ts";
import { createConv2dPlan } from "../../kernels/int8/conv2d.ts";
import { createGemmPlan } from "../../kernels/int8/gemm.ts";
import { createGlobalAvgPoolPlan } from "../../kernels/int8/global_avg_pool.ts";
import { quantizeNchwToNhwc } from "../../kernels/int8/quantize_linear.ts";
import {
  createInt8Gpu,
  emptyBuffer,
  GpuConvLayer,
  type GpuDispatch,
  GpuGemmLayer,
  GpuGlobalAvgPool,
  type Int8Gpu,
  requestInt8Device,
  submit,
  WebGpuKernelError,
  withErrorScope,
} from "../../kernels/webgpu/int8_webgpu.ts";
import { readOnnxModel } from "./onnx_reader.ts";
import { type ActQuant, type QdqGraph, readQdqGraph } from "./qdq_graph.ts";

export interface WebGpuEngineOptions {
  /** Largest batch run in one pass. Default 8. */
  maxBatch?: number;
  /** Device to run on (the caller keeps ownership); default: the default adapter's, owned. */
  device?: GPUDevice;
  /** (batch, resolution) buffer sets kept at once; beyond that they are rebuilt. Default 8. */
  maxSizes?: number;
}

type Layer =
  | { kind: "conv"; input: string; output: string; conv: GpuConvLayer }
  | { kind: "pointwise"; input: string; output: string; gemm: GpuGemmLayer }
  | { kind: "gap"; input: string; output: string; gap: GpuGlobalAvgPool }
  | { kind: "alias"; input: string; output: string }
  | { kind: "gemm"; input: string; output: string; gemm: GpuGemmLayer };

/** Everything allocated for one size, freed together. */
interface Allocations {
  readonly buffers: GPUBuffer[];
  readonly dispatches: GpuDispatch[];
}

/** The GPU buffers and bound dispatches for one (batch, h, w). */
interface SizeSet extends Allocations {
  readonly input: GPUBuffer;
  readonly logits: GPUBuffer;
  readonly readback: GPUBuffer;
}

/** Runs an int8 QDQ MobileNet on the WGSL kernels. */
export class WebGpuInt8Engine {
  readonly graph: QdqGraph;
  readonly maxBatch: number;
  readonly #gpu: Int8Gpu;
  readonly #ownsDevice: boolean;
  readonly #layers: Layer[];
  readonly #input: { id: string; quant: ActQuant };
  readonly #sizes = new Map<string, SizeSet>();
  readonly #maxSizes: number;
  #queue: Promise<unknown> = Promise.resolve();
  #destroyed = false;
  #lost: GPUDeviceLostInfo | null = null;

  private constructor(
    gpu: Int8Gpu,
    ownsDevice: boolean,
    graph: QdqGraph,
    maxBatch: number,
    maxSizes: number,
  ) {
    this.#gpu = gpu;
    this.#ownsDevice = ownsDevice;
    this.graph = graph;
    this.maxBatch = maxBatch;
    this.#maxSizes = maxSizes;
    // A lost device (driver reset, destroyed by its owner) fails every later run with the reason.
    gpu.device.lost.then((info) => {
      this.#lost = info;
    });
    const first = graph.steps[0];
    if (first?.op !== "quantize_input") {
      throw new TypeError(
        "Cannot build the WebGPU engine as the graph does not start by quantizing its input",
      );
    }
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
          };
          const padless = s.padding === "valid" ||
            (Array.isArray(s.padding) && s.padding.every((p) => p === 0)) ||
            s.padding === "same_upper";
          if (
            kh === 1 && kw === 1 && s.strides[0] === 1 && s.strides[1] === 1 && s.groups === 1 &&
            padless
          ) {
            // 1x1 stride 1: a GEMM over the NHWC pixels ([O, I, 1, 1] weights are [N, K])
            const plan = createGemmPlan([1, i], { ...params, outChannels: o, output: "uint8" });
            this.#layers.push({
              kind: "pointwise",
              input: s.input,
              output: s.output,
              gemm: new GpuGemmLayer(gpu, plan),
            });
            break;
          }
          // Validate and plan at the smallest size the reference accepts; the layer resolves the
          // real padding per input size.
          const plan = createConv2dPlan([1, kh + s.strides[0], kw + s.strides[1], i * s.groups], {
            ...params,
            strides: s.strides,
            padding: "same_upper",
            groups: s.groups,
          });
          this.#layers.push({
            kind: "conv",
            input: s.input,
            output: s.output,
            conv: new GpuConvLayer(gpu, plan, s.padding),
          });
          break;
        }
        case "global_avg_pool": {
          const params = { input: s.inQuant, output: s.outQuant };
          createGlobalAvgPoolPlan([1, 1, 1, 1], params); // validation; the size comes per call
          this.#layers.push({
            kind: "gap",
            input: s.input,
            output: s.output,
            gap: new GpuGlobalAvgPool(gpu, params),
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
            gemm: new GpuGemmLayer(gpu, plan),
          });
          break;
        }
        default:
          throw new TypeError(
            `Cannot build the WebGPU engine as step ${s.op} is not expected after the input`,
          );
      }
    }
    const last = this.#layers.at(-1);
    if (last?.kind !== "gemm" || last.gemm.output !== "float32") {
      throw new TypeError(
        "Cannot build the WebGPU engine as the graph does not end with a Gemm giving float logits",
      );
    }
  }

  /** Loads an int8 QDQ ONNX file (bytes or a decoded model) onto a WebGPU device. */
  static async load(
    onnx: Uint8Array | OnnxModel,
    opts: WebGpuEngineOptions = {},
  ): Promise<WebGpuInt8Engine> {
    const maxBatch = opts.maxBatch ?? 8;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1024) {
      throw new RangeError(
        `Cannot load the WebGPU engine as maxBatch must be an integer in [1, 1024]: current value is ${maxBatch}`,
      );
    }
    const graph = readQdqGraph(onnx instanceof Uint8Array ? readOnnxModel(onnx) : onnx);
    const device = opts.device ?? await requestInt8Device();
    if (!device) {
      throw new WebGpuKernelError(
        "Cannot load the WebGPU engine as this runtime has no WebGPU adapter (navigator.gpu.requestAdapter() gave null)",
      );
    }
    const owns = opts.device === undefined;
    try {
      const gpu = await createInt8Gpu(device);
      return new WebGpuInt8Engine(gpu, owns, graph, maxBatch, opts.maxSizes ?? 8);
    } catch (e) {
      if (owns) device.destroy();
      throw e;
    }
  }

  get inputChannels(): number {
    return this.graph.inputChannels;
  }

  get classes(): number {
    return this.graph.classes;
  }

  /**
   * Buffers and dispatches for one (batch, h, w), made on first use inside a validation error
   * scope; on failure everything made so far is freed and the error names the size.
   */
  async #sizeSet(n: number, h: number, w: number): Promise<SizeSet> {
    const key = `${n}:${h}x${w}`;
    const have = this.#sizes.get(key);
    if (have) return have;
    if (this.#sizes.size >= this.#maxSizes) {
      for (const s of this.#sizes.values()) destroySizeSet(s);
      this.#sizes.clear();
    }
    const made: Allocations = { buffers: [], dispatches: [] };
    try {
      const set = await withErrorScope(
        this.#gpu.device,
        `the WebGPU engine's buffers for batch ${n} at ${h}x${w}`,
        () => this.#buildSizeSet(n, h, w, made),
      );
      this.#sizes.set(key, set);
      return set;
    } catch (e) {
      destroySizeSet(made);
      throw e;
    }
  }

  /** Fills `made` as it allocates, so that a failure can free what exists. */
  #buildSizeSet(n: number, h: number, w: number, made: Allocations): SizeSet {
    const device = this.#gpu.device;
    const buffers = made.buffers;
    const make = (words: number, label: string) => {
      const b = emptyBuffer(device, words, label);
      buffers.push(b);
      return b;
    };
    const shape = new Map<string, readonly [number, number, number]>();
    const buf = new Map<string, GPUBuffer>();
    const input = make(n * h * w * this.inputChannels, this.#input.id);
    shape.set(this.#input.id, [h, w, this.inputChannels]);
    buf.set(this.#input.id, input);
    const logits = make(n * this.classes, "logits");
    const dispatches = made.dispatches;
    for (const l of this.#layers) {
      const s = shape.get(l.input);
      const src = buf.get(l.input);
      if (!s || !src) {
        throw new TypeError(
          `Cannot run the WebGPU engine as tensor ${l.input} is used before it is written`,
        );
      }
      const [ih, iw, ic] = s;
      if (l.kind === "alias") {
        if (ih * iw > 1 && ic > 1) {
          throw new TypeError(
            `Cannot run the WebGPU engine as ${l.output} flattens a ${ih}x${iw}x${ic} tensor: only [n, c, 1, 1] inputs are supported`,
          );
        }
        shape.set(l.output, s);
        buf.set(l.output, src);
        continue;
      }
      let out: readonly [number, number, number];
      if (l.kind === "conv") {
        if (ic !== l.conv.inChannels) {
          throw new TypeError(
            `Cannot run the WebGPU engine as tensor ${l.input} has ${ic} channels where ${l.conv.inChannels} are expected`,
          );
        }
        const g = l.conv.geometry(ih, iw);
        out = [g.outH, g.outW, l.conv.outChannels];
      } else if (l.kind === "pointwise" || l.kind === "gemm") {
        const k = l.kind === "pointwise" ? ic : ih * iw * ic;
        if (k !== l.gemm.k) {
          throw new TypeError(
            `Cannot run the WebGPU engine as tensor ${l.input} has ${k} features where ${l.gemm.k} are expected`,
          );
        }
        out = l.kind === "pointwise" ? [ih, iw, l.gemm.n] : [1, 1, l.gemm.n];
      } else {
        out = [1, 1, ic];
      }
      const dst = l.output === this.graph.outputName
        ? logits
        : make(n * out[0] * out[1] * out[2], l.output);
      shape.set(l.output, out);
      buf.set(l.output, dst);
      if (l.kind === "conv") dispatches.push(l.conv.bind(n, ih, iw, src, dst));
      else if (l.kind === "pointwise") dispatches.push(l.gemm.bind(n * ih * iw, src, dst));
      else if (l.kind === "gemm") dispatches.push(l.gemm.bind(n, src, dst));
      else dispatches.push(l.gap.bind(n, ih, iw, ic, src, dst));
    }
    const readback = device.createBuffer({
      label: "logits readback",
      size: logits.size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    buffers.push(readback);
    return { input, logits, readback, buffers, dispatches };
  }

  /**
   * Classifies a batch: `input` is float32 NCHW (normalized as the model expects), the result is
   * `n * classes` float32 logits. Concurrent calls run one after the other.
   */
  run(
    input: Float32Array,
    shape: readonly [number, number, number, number],
  ): Promise<Float32Array> {
    const result = this.#queue.then(() => this.#run(input, shape));
    this.#queue = result.catch(() => {});
    return result;
  }

  async #run(
    input: Float32Array,
    shape: readonly [number, number, number, number],
  ): Promise<Float32Array> {
    if (this.#destroyed) {
      throw new TypeError("Cannot run the WebGPU engine as it was destroyed");
    }
    if (this.#lost) {
      throw new WebGpuKernelError(
        `Cannot run the WebGPU engine as its device was lost: ${this.#lost.reason} ${this.#lost.message}`,
      );
    }
    const [n, c, h, w] = shape;
    if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new TypeError(
        `Cannot run the WebGPU engine as the input shape must be 4 positive integers (NCHW): current shape is [${
          shape.join(",")
        }]`,
      );
    }
    if (c !== this.inputChannels) {
      throw new TypeError(
        `Cannot run the WebGPU engine as the model takes ${this.inputChannels} input channels: current shape is [${
          shape.join(",")
        }]`,
      );
    }
    if (input.length !== n * c * h * w) {
      throw new TypeError(
        `Cannot run the WebGPU engine as the input must hold ${n * c * h * w} values for shape [${
          shape.join(",")
        }]: current length is ${input.length}`,
      );
    }
    const device = this.#gpu.device;
    const logits = new Float32Array(n * this.classes);
    for (let start = 0; start < n; start += this.maxBatch) {
      const nb = Math.min(this.maxBatch, n - start);
      const set = await this.#sizeSet(nb, h, w);
      const q = quantizeNchwToNhwc(
        input.subarray(start * c * h * w, (start + nb) * c * h * w),
        [nb, c, h, w],
        this.#input.quant,
      );
      device.queue.writeBuffer(set.input, 0, Uint32Array.from(q));
      submit(
        device,
        set.dispatches,
        (enc) => enc.copyBufferToBuffer(set.logits, 0, set.readback, 0, set.logits.size),
      );
      await set.readback.mapAsync(GPUMapMode.READ);
      try {
        logits.set(
          new Float32Array(set.readback.getMappedRange(), 0, nb * this.classes),
          start * this.classes,
        );
      } finally {
        set.readback.unmap();
      }
    }
    return logits;
  }

  /**
   * Milliseconds per layer (10th percentile of `reps` runs, each layer submitted alone and waited
   * for), for benchmarks. The input is left as the last `run` of that size wrote it.
   */
  async profile(
    input: Float32Array,
    shape: readonly [number, number, number, number],
    reps = 5,
  ): Promise<{ layer: string; kind: string; ms: number }[]> {
    await this.run(
      input.subarray(0, Math.min(shape[0], this.maxBatch) * shape[1] * shape[2] * shape[3]),
      [
        Math.min(shape[0], this.maxBatch),
        shape[1],
        shape[2],
        shape[3],
      ],
    );
    const set = await this.#sizeSet(Math.min(shape[0], this.maxBatch), shape[2], shape[3]);
    const device = this.#gpu.device;
    const compute = this.#layers.filter((l) => l.kind !== "alias");
    const times = compute.map(() => [] as number[]);
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < set.dispatches.length; i++) {
        const t0 = performance.now();
        submit(device, [set.dispatches[i]!]);
        await device.queue.onSubmittedWorkDone();
        times[i]!.push(performance.now() - t0);
      }
    }
    return compute.map((l, i) => {
      const t = times[i]!.sort((a, b) => a - b);
      return { layer: l.output, kind: l.kind, ms: t[Math.floor(t.length / 10)] ?? 0 };
    });
  }

  /** Frees every GPU buffer (and the device when the engine created it). */
  async destroy(): Promise<void> {
    await this.#queue;
    this.#destroyed = true;
    for (const s of this.#sizes.values()) destroySizeSet(s);
    this.#sizes.clear();
    for (const l of this.#layers) {
      if (l.kind === "conv") l.conv.destroy();
      else if (l.kind === "gemm" || l.kind === "pointwise") l.gemm.destroy();
    }
    if (this.#ownsDevice) this.#gpu.device.destroy();
  }
}

function destroySizeSet(s: Allocations): void {
  for (const d of s.dispatches) d.destroy();
  for (const b of s.buffers) b.destroy();
}
