/**
 * The int8 kernels on WebGPU: device, pipelines, buffers and dispatches for the WGSL in
 * `int8_shaders.ts`. Plans (validation, padding, multipliers) come from the TypeScript reference
 * (kernels/int8/), so both implementations accept and reject the same inputs.
 *
 * Two levels:
 * - layers (`GpuConvLayer`, `GpuGemmLayer`, `GpuGlobalAvgPool`): weights uploaded once, then
 *   `bind()` per (batch, resolution) gives a `GpuDispatch` that the engine encodes with the others
 *   into one command buffer;
 * - `createWebGpuInt8Kernels()`: the `Int8Kernels` methods, async (a GPU readback is), each one
 *   upload -> one dispatch -> readback; the conformance suite runs on it.
 *
 * Every shader module and pipeline is created inside a validation error scope, and a failure
 * names the stage (`Cannot create the WebGPU int8 pipeline "conv2d" (shader module): ...`).
 */
import {
  type Conv2dPlan,
  createConv2dPlan,
  type NHWC,
  type Padding,
  type QuantizedConvParams,
  resolvePadding,
} from "../int8/conv2d.ts";
import { createDepthwisePlan, type DepthwiseParams } from "../int8/depthwise.ts";
import { createGemmPlan, type GemmParams, type GemmPlan } from "../int8/gemm.ts";
import {
  createGlobalAvgPoolPlan,
  type GlobalAvgPoolParams,
  type GlobalAvgPoolPlan,
} from "../int8/global_avg_pool.ts";
import type { FloatFcParams, Int8Kernels } from "../int8/kernel_set.ts";
import { createPointwisePlan, type PointwiseParams } from "../int8/pointwise.ts";
import { createRequantizePlan, type RequantizeParams } from "../int8/requantize.ts";
import {
  CONV2D_WGSL,
  gemmWgsl,
  GLOBAL_AVG_POOL_WGSL,
  MAX_WORKGROUPS_PER_DIM,
  REQUANTIZE_WGSL,
  WG,
} from "./int8_shaders.ts";

/** A WebGPU failure while building or running the int8 kernels. */
export class WebGpuKernelError extends TypeError {
  override readonly name = "WebGpuKernelError";
}

export type PipelineName =
  | "conv2d"
  | "gemm_uint8"
  | "gemm_float32"
  | "global_avg_pool"
  | "requantize";

/** The device and the compiled pipelines of every int8 kernel. */
export interface Int8Gpu {
  readonly device: GPUDevice;
  readonly pipelines: Readonly<Record<PipelineName, GPUComputePipeline>>;
}

const SHADERS: Readonly<Record<PipelineName, string>> = {
  conv2d: CONV2D_WGSL,
  gemm_uint8: gemmWgsl(false),
  gemm_float32: gemmWgsl(true),
  global_avg_pool: GLOBAL_AVG_POOL_WGSL,
  requantize: REQUANTIZE_WGSL,
};

/**
 * Runs `make` inside a validation error scope and rejects, naming the stage, if WebGPU reported a
 * validation error (WebGPU does not throw on invalid descriptors: it returns an invalid object
 * and reports the error to the innermost scope).
 */
export async function withErrorScope<T>(
  device: GPUDevice,
  stage: string,
  make: () => T,
): Promise<T> {
  device.pushErrorScope("validation");
  let value: T;
  try {
    value = make();
  } finally {
    const error = await device.popErrorScope();
    if (error) {
      // deno-lint-ignore no-unsafe-finally
      throw new WebGpuKernelError(`Cannot create ${stage}: ${error.message}`);
    }
  }
  return value;
}

/** Compiles one WGSL compute shader (entry point `main`) into a pipeline, each step in a scope. */
export async function createComputePipeline(
  device: GPUDevice,
  name: string,
  code: string,
): Promise<GPUComputePipeline> {
  const module = await withErrorScope(
    device,
    `the WebGPU int8 pipeline "${name}" (shader module)`,
    () => device.createShaderModule({ label: name, code }),
  );
  return await withErrorScope(
    device,
    `the WebGPU int8 pipeline "${name}" (compute pipeline)`,
    () =>
      device.createComputePipeline({
        label: name,
        layout: "auto",
        compute: { module, entryPoint: "main" },
      }),
  );
}

/** Compiles every int8 pipeline on `device`. */
export async function createInt8Gpu(device: GPUDevice): Promise<Int8Gpu> {
  const pipelines = {} as Record<PipelineName, GPUComputePipeline>;
  for (const [name, code] of Object.entries(SHADERS) as [PipelineName, string][]) {
    pipelines[name] = await createComputePipeline(device, name, code);
  }
  return { device, pipelines };
}

/** The default adapter's device, or null when this runtime has no WebGPU adapter. */
export async function requestInt8Device(): Promise<GPUDevice | null> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return null;
  return await adapter.requestDevice();
}

// --- buffers ----------------------------------------------------------------------------------

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** WebGPU bindings need a non-empty buffer whose size is a multiple of 4. */
function byteSize(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/**
 * Refuses a storage buffer larger than the device can bind: WebGPU would only report a validation
 * error later (and skip the dispatch), so the check happens here, with the size.
 */
export function checkBindingSize(device: GPUDevice, bytes: number, label: string): void {
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new RangeError(
      `Cannot allocate the WebGPU buffer "${label}" as it needs ${bytes} bytes: the device binds at most ${limit} (maxStorageBufferBindingSize)`,
    );
  }
}

/** A storage buffer holding `data` (i32 / u32 / f32 words). */
export function storageBuffer(
  device: GPUDevice,
  data: Int32Array | Uint32Array | Float32Array,
  label: string,
): GPUBuffer {
  checkBindingSize(device, data.byteLength, label);
  const buffer = device.createBuffer({ label, size: byteSize(data.byteLength), usage: STORAGE });
  if (data.byteLength > 0) {
    device.queue.writeBuffer(buffer, 0, data as ArrayBufferView<ArrayBuffer>);
  }
  return buffer;
}

/** An empty storage buffer of `words` 32-bit values. */
export function emptyBuffer(device: GPUDevice, words: number, label: string): GPUBuffer {
  checkBindingSize(device, words * 4, label);
  return device.createBuffer({ label, size: byteSize(words * 4), usage: STORAGE });
}

/** uint8 values widened to one u32 word each (the kernels' activation layout). */
export function widenU8(data: Uint8Array): Uint32Array {
  return Uint32Array.from(data);
}

/** Copies `words` 32-bit values of `src` back to the CPU. */
export async function readWords(
  device: GPUDevice,
  src: GPUBuffer,
  words: number,
): Promise<ArrayBuffer> {
  const size = byteSize(words * 4);
  const staging = device.createBuffer({
    label: "readback",
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, staging, 0, size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, words * 4);
  } finally {
    staging.destroy();
  }
}

// --- dispatches -------------------------------------------------------------------------------

/** One bound kernel invocation: encode it into a compute pass, destroy its uniforms when done. */
export interface GpuDispatch {
  encode(pass: GPUComputePassEncoder): void;
  destroy(): void;
}

/** Workgroup grid for `total` invocations: `[x, y]` and the index stride of one grid row. */
export function grid(total: number): { x: number; y: number; rowStride: number } {
  const groups = Math.max(1, Math.ceil(total / WG));
  const x = Math.min(groups, MAX_WORKGROUPS_PER_DIM);
  const y = Math.ceil(groups / x);
  if (y > MAX_WORKGROUPS_PER_DIM) {
    throw new RangeError(
      `Cannot dispatch ${total} WebGPU invocations as it needs more than ${MAX_WORKGROUPS_PER_DIM}^2 workgroups of ${WG}`,
    );
  }
  return { x, y, rowStride: x * WG };
}

/** Uniform words: every Params struct of the shaders is a multiple of 16 bytes of 32-bit fields. */
function uniformBuffer(device: GPUDevice, words: ArrayBuffer, label: string): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: byteSize(words.byteLength),
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, words);
  return buffer;
}

/** Params words: numbers are written as i32 unless listed in `floats`. */
function paramWords(values: readonly number[], floats: readonly number[] = []): ArrayBuffer {
  const words = Math.ceil(values.length / 4) * 4;
  const buf = new ArrayBuffer(words * 4);
  const i32 = new Int32Array(buf);
  const f32 = new Float32Array(buf);
  values.forEach((v, i) => {
    if (floats.includes(i)) f32[i] = v;
    else i32[i] = v;
  });
  return buf;
}

function dispatch(
  gpu: Int8Gpu,
  pipeline: PipelineName,
  total: number,
  fields: (rowStride: number) => ArrayBuffer,
  buffers: readonly GPUBuffer[],
): GpuDispatch {
  const { device } = gpu;
  const g = grid(total);
  const uniform = uniformBuffer(device, fields(g.rowStride), `${pipeline} params`);
  const p = gpu.pipelines[pipeline];
  const bindGroup = device.createBindGroup({
    label: pipeline,
    layout: p.getBindGroupLayout(0),
    entries: [uniform, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return {
    encode(pass) {
      if (total === 0) return;
      pass.setPipeline(p);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(g.x, g.y);
    },
    destroy() {
      uniform.destroy();
    },
  };
}

/**
 * Submits the dispatches in one compute pass (WebGPU orders them: each sees the last's writes),
 * then `after` (a readback copy) in the same command buffer: every submission costs a fence.
 */
export function submit(
  device: GPUDevice,
  dispatches: readonly GpuDispatch[],
  after?: (enc: GPUCommandEncoder) => void,
): void {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const d of dispatches) d.encode(pass);
  pass.end();
  after?.(enc);
  device.queue.submit([enc.finish()]);
}

// --- layers -----------------------------------------------------------------------------------

function perChannel(
  gpu: Int8Gpu,
  label: string,
  weights: Int32Array,
  bias: Int32Array,
  mult: Float32Array,
) {
  return {
    weights: storageBuffer(gpu.device, weights, `${label} weights`),
    bias: storageBuffer(gpu.device, bias, `${label} bias`),
    mult: storageBuffer(gpu.device, mult, `${label} multipliers`),
  };
}

/** Output channels rounded up to whole `vec4` quads (the GEMM shader's column groups). */
export const quads = (n: number): number => Math.ceil(n / 4);

/** GEMM weights `[N, K]` to the shader's `[K, 4 * quads(N)]`, padded with zeros. */
export function gemmWeightsOutInner(w: Int32Array, n: number, k: number): Int32Array {
  const n4 = quads(n) * 4;
  const out = new Int32Array(k * n4);
  for (let o = 0; o < n; o++) {
    for (let i = 0; i < k; i++) out[i * n4 + o] = w[o * k + i]!;
  }
  return out;
}

/** A per-channel vector zero-padded to whole quads. */
function padQuads<T extends Int32Array | Float32Array>(v: T, n: number): T {
  const out = new (v.constructor as { new (len: number): T })(quads(n) * 4);
  out.set(v.subarray(0, n));
  return out;
}

/** OIHW `[out, in / groups, kh, kw]` -> the shader's `[kh, kw, in / groups, out]`. */
function convWeightsOutInner(p: Conv2dPlan): Int32Array {
  const w = p.weights;
  const out = new Int32Array(w.length);
  for (let o = 0; o < p.outC; o++) {
    for (let i = 0; i < p.inPerGroup; i++) {
      for (let ky = 0; ky < p.kh; ky++) {
        for (let kx = 0; kx < p.kw; kx++) {
          out[((ky * p.kw + kx) * p.inPerGroup + i) * p.outC + o] =
            w[((o * p.inPerGroup + i) * p.kh + ky) * p.kw + kx]!;
        }
      }
    }
  }
  return out;
}

/** A planned convolution (any groups, kernel, stride, padding) with its weights on the GPU. */
export class GpuConvLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly #gpu: Int8Gpu;
  readonly #plan: Conv2dPlan;
  readonly #padding: Padding;
  readonly #buffers: { weights: GPUBuffer; bias: GPUBuffer; mult: GPUBuffer };

  /** `padding` as the layer declares it: SAME_UPPER pads depend on each call's input size. */
  constructor(gpu: Int8Gpu, plan: Conv2dPlan, padding: Padding) {
    this.#gpu = gpu;
    this.#plan = plan;
    this.#padding = padding;
    this.inChannels = plan.c;
    this.outChannels = plan.outC;
    this.#buffers = perChannel(gpu, "conv", convWeightsOutInner(plan), plan.bias, plan.multipliers);
  }

  /** Output size and leading pads for an `h x w` input. */
  geometry(h: number, w: number): { outH: number; outW: number; padTop: number; padLeft: number } {
    const p = this.#plan;
    const ry = resolvePadding(h, p.kh, p.strideH, this.#padding, 0);
    const rx = resolvePadding(w, p.kw, p.strideW, this.#padding, 1);
    if (ry.out < 1 || rx.out < 1) {
      throw new RangeError(
        `Cannot run the WebGPU conv as the output of a ${h}x${w} input would be empty (kernel ${p.kh}x${p.kw})`,
      );
    }
    return { outH: ry.out, outW: rx.out, padTop: ry.before, padLeft: rx.before };
  }

  /** Binds NHWC `[n, h, w, inChannels]` input and `[n, outH, outW, outChannels]` output buffers. */
  bind(n: number, h: number, w: number, input: GPUBuffer, output: GPUBuffer): GpuDispatch {
    const p = this.#plan;
    const g = this.geometry(h, w);
    const total = n * g.outH * g.outW * p.outC;
    return dispatch(this.#gpu, "conv2d", total, (rowStride) =>
      paramWords([
        total,
        rowStride,
        n,
        h,
        w,
        p.c,
        g.outH,
        g.outW,
        p.outC,
        p.kh,
        p.kw,
        p.strideH,
        p.strideW,
        g.padTop,
        g.padLeft,
        p.inPerGroup,
        p.outPerGroup,
        p.inZeroPoint,
        p.outZeroPoint,
        p.lo,
        p.hi,
        0,
        0,
        0,
      ]), [input, this.#buffers.weights, this.#buffers.bias, this.#buffers.mult, output]);
  }

  destroy(): void {
    for (const b of Object.values(this.#buffers)) b.destroy();
  }
}

/** A planned GEMM (pointwise conv or FC) with its weights on the GPU. */
export class GpuGemmLayer {
  readonly k: number;
  readonly n: number;
  readonly output: "uint8" | "float32";
  readonly #gpu: Int8Gpu;
  readonly #plan: GemmPlan;
  readonly #buffers: { weights: GPUBuffer; bias: GPUBuffer; mult: GPUBuffer };

  constructor(gpu: Int8Gpu, plan: GemmPlan) {
    this.#gpu = gpu;
    this.#plan = plan;
    this.k = plan.k;
    this.n = plan.n;
    this.output = plan.output;
    this.#buffers = perChannel(
      gpu,
      "gemm",
      gemmWeightsOutInner(plan.weights, plan.n, plan.k),
      padQuads(plan.bias, plan.n),
      padQuads(plan.multipliers, plan.n),
    );
  }

  /** Binds `[m, k]` uint8 input and `[m, n]` output (uint8 words or float32) buffers. */
  bind(m: number, input: GPUBuffer, output: GPUBuffer): GpuDispatch {
    const p = this.#plan;
    const total = Math.ceil(m / 4) * quads(p.n);
    const pipeline = p.output === "float32" ? "gemm_float32" : "gemm_uint8";
    return dispatch(this.#gpu, pipeline, total, (rowStride) =>
      paramWords([
        total,
        rowStride,
        m,
        p.k,
        p.n,
        quads(p.n),
        p.inZeroPoint,
        p.outZeroPoint,
        p.lo,
        p.hi,
        0,
        0,
      ]), [input, this.#buffers.weights, this.#buffers.bias, this.#buffers.mult, output]);
  }

  destroy(): void {
    for (const b of Object.values(this.#buffers)) b.destroy();
  }
}

/**
 * Global average pooling with its quantization; the multiplier depends on the pixel count, so it
 * is computed per call exactly as `createGlobalAvgPoolPlan` does.
 */
export class GpuGlobalAvgPool {
  readonly #gpu: Int8Gpu;
  readonly #params: GlobalAvgPoolParams;

  constructor(gpu: Int8Gpu, params: GlobalAvgPoolParams) {
    this.#gpu = gpu;
    this.#params = params;
  }

  bind(
    n: number,
    h: number,
    w: number,
    c: number,
    input: GPUBuffer,
    output: GPUBuffer,
  ): GpuDispatch {
    const plan: GlobalAvgPoolPlan = createGlobalAvgPoolPlan([n, h, w, c], this.#params);
    const total = n * c;
    return dispatch(this.#gpu, "global_avg_pool", total, (rowStride) =>
      paramWords([
        total,
        rowStride,
        plan.hw,
        c,
        plan.inZeroPoint,
        plan.outZeroPoint,
        plan.lo,
        plan.hi,
        plan.multiplier,
        0,
        0,
        0,
      ], [8]), [input, output]);
  }
}

// --- the Int8Kernels methods, async -----------------------------------------------------------

/** `Int8Kernels` (kernels/int8/kernel_set.ts) with every method returning a promise. */
export type AsyncInt8Kernels =
  & {
    readonly name: string;
  }
  & {
    [K in Exclude<keyof Int8Kernels, "name">]: (
      ...args: Parameters<Int8Kernels[K]>
    ) => Promise<ReturnType<Int8Kernels[K]>>;
  };

/** Runs one dispatch on freshly uploaded input and reads `words` results back. */
async function runOnce(
  gpu: Int8Gpu,
  input: Uint32Array | Int32Array,
  outWords: number,
  bind: (input: GPUBuffer, output: GPUBuffer) => GpuDispatch,
  cleanup: () => void = () => {},
): Promise<ArrayBuffer> {
  const { device } = gpu;
  const inBuf = storageBuffer(device, input, "input");
  const outBuf = emptyBuffer(device, outWords, "output");
  let d: GpuDispatch | null = null;
  try {
    d = bind(inBuf, outBuf);
    submit(device, [d]);
    return await readWords(device, outBuf, outWords);
  } finally {
    d?.destroy();
    inBuf.destroy();
    outBuf.destroy();
    cleanup();
  }
}

const toU8 = (words: ArrayBuffer) => Uint8Array.from(new Uint32Array(words));

function checkLength(what: string, got: number, want: number): void {
  if (got !== want) {
    throw new TypeError(
      `Cannot run the WebGPU ${what} as the input must hold ${want} values: current length is ${got}`,
    );
  }
}

/**
 * The int8 kernels on `gpu`, one dispatch per call (upload, run, read back).
 *
 * @example
 * const device = await requestInt8Device();
 * if (device) {
 *   const k = createWebGpuInt8Kernels(await createInt8Gpu(device));
 *   const y = await k.pointwise(x, [1, 8, 8, 16], params); // Uint8Array
 *   device.destroy();
 * }
 */
export function createWebGpuInt8Kernels(gpu: Int8Gpu): AsyncInt8Kernels {
  const convLike = async (input: Uint8Array, shape: NHWC, plan: Conv2dPlan, padding: Padding) => {
    const [n, h, w, c] = shape;
    checkLength("conv", input.length, n * h * w * c);
    const layer = new GpuConvLayer(gpu, plan, padding);
    return toU8(
      await runOnce(
        gpu,
        widenU8(input),
        n * plan.outH * plan.outW * plan.outC,
        (i, o) => layer.bind(n, h, w, i, o),
        () => layer.destroy(),
      ),
    );
  };
  const gemmLike = async (input: Uint8Array, plan: GemmPlan): Promise<ArrayBuffer> => {
    checkLength("GEMM", input.length, plan.m * plan.k);
    const layer = new GpuGemmLayer(gpu, plan);
    return await runOnce(
      gpu,
      widenU8(input),
      plan.m * plan.n,
      (i, o) => layer.bind(plan.m, i, o),
      () => layer.destroy(),
    );
  };
  return {
    name: "webgpu",
    conv2d: (input: Uint8Array, shape: NHWC, params: QuantizedConvParams) =>
      convLike(input, shape, createConv2dPlan(shape, params), params.padding ?? "same_upper"),
    depthwise: (input: Uint8Array, shape: NHWC, params: DepthwiseParams) =>
      convLike(input, shape, createDepthwisePlan(shape, params), params.padding ?? "same_upper"),
    pointwise: async (input: Uint8Array, shape: NHWC, params: PointwiseParams) =>
      toU8(await gemmLike(input, createPointwisePlan(shape, params))),
    gemm: async (a: Uint8Array, shape: readonly [number, number], params: GemmParams) =>
      toU8(await gemmLike(a, createGemmPlan(shape, { ...params, output: "uint8" }))),
    fc: async (a: Uint8Array, shape: readonly [number, number], params: GemmParams) =>
      toU8(await gemmLike(a, createGemmPlan(shape, { ...params, output: "uint8" }))),
    fcToFloat: async (a: Uint8Array, shape: readonly [number, number], params: FloatFcParams) =>
      new Float32Array(await gemmLike(a, createGemmPlan(shape, { ...params, output: "float32" }))),
    globalAvgPool: async (input: Uint8Array, shape: NHWC, params: GlobalAvgPoolParams) => {
      const [n, h, w, c] = shape;
      createGlobalAvgPoolPlan(shape, params); // validate before touching the GPU
      checkLength("global average pool", input.length, n * h * w * c);
      const pool = new GpuGlobalAvgPool(gpu, params);
      return toU8(await runOnce(gpu, widenU8(input), n * c, (i, o) => pool.bind(n, h, w, c, i, o)));
    },
    requantize: async (
      acc: Int32Array,
      shape: readonly [number, number],
      params: RequantizeParams,
    ) => {
      const plan = createRequantizePlan(shape, params);
      checkLength("requantize", acc.length, plan.rows * plan.channels);
      const bias = storageBuffer(gpu.device, plan.bias, "requantize bias");
      const mult = storageBuffer(gpu.device, plan.multipliers, "requantize multipliers");
      const total = plan.rows * plan.channels;
      return toU8(
        await runOnce(
          gpu,
          acc,
          total,
          (i, o) =>
            dispatch(gpu, "requantize", total, (rowStride) =>
              paramWords([
                total,
                rowStride,
                plan.channels,
                plan.zeroPoint,
                plan.lo,
                plan.hi,
                0,
                0,
              ]), [i, bias, mult, o]),
          () => {
            bias.destroy();
            mult.destroy();
          },
        ),
      );
    },
  };
}
