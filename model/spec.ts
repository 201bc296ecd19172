/**
 * The single source of truth for MobileNet architectures.
 *
 * `buildSpec()` turns (arch, alpha, resolution, input channels, classes, stride plan) into a flat
 * list of layers with their shapes. The cost model (`model/cost.ts`), the tfjs builder
 * (`model/train/`), the ONNX writer (`model/export/`) and the int8 engine (`runtime/`) all read it.
 *
 * Sources: MobileNet V1, arXiv 1704.04861 (Table 1); V2, arXiv 1801.04381 (Table 2);
 * V3, arXiv 1905.02244 (Tables 1 and 2). Channel rounding follows the reference implementations:
 * V1 `max(8, int(c * alpha))` (TF-slim `depth_multiplier` with `min_depth=8`), V2/V3
 * `makeDivisible(c * alpha, 8)` (nearest multiple of 8, never below 90% of `c * alpha`).
 *
 * Padding is SAME (TF / ONNX `auto_pad=SAME_UPPER`): the output side is `ceil(input / stride)`.
 */

export const ARCHS = [
  "mobilenet_v1",
  "mobilenet_v2",
  "mobilenet_v3_large",
  "mobilenet_v3_small",
] as const;
export type Arch = typeof ARCHS[number];

/** Named stride plans; any explicit list of strides (one per stride-bearing stage) also works. */
export const STRIDE_PLANS = ["imagenet", "cifar", "imagenet_stem1"] as const;
export type StridePlanName = typeof STRIDE_PLANS[number];
export type StridePlan = StridePlanName | readonly number[];

export type Activation = "none" | "relu" | "relu6" | "hswish";

/** What a layer is, for cost shares and for the kernels that run it. */
export type LayerRole =
  | "first_conv"
  | "depthwise"
  | "pointwise"
  | "expand"
  | "project"
  | "last_conv"
  | "se"
  | "pool"
  | "fc";

interface LayerBase {
  /** Unique, stable name; weights are keyed by it (`<name>/kernel`, `<name>/bn/gamma`, ...). */
  readonly name: string;
  readonly role: LayerRole;
  /** Input shape [channels, height, width]. */
  readonly inShape: readonly [number, number, number];
  /** Output shape [channels, height, width]. */
  readonly outShape: readonly [number, number, number];
}

/** A 2-D convolution (standard, depthwise when groups == inChannels, or 1x1 pointwise). */
export interface ConvLayer extends LayerBase {
  readonly kind: "conv";
  readonly kernel: number;
  readonly stride: number;
  readonly groups: number;
  /** Followed by batch normalization (folded into weights and bias at export). */
  readonly batchNorm: boolean;
  /** Has its own bias (true for convolutions without BN, e.g. V3's last 1x1 layers). */
  readonly bias: boolean;
  readonly activation: Activation;
  /** Name of an earlier layer whose *input* is added to this layer's output (inverted residual). */
  readonly residualFrom?: string;
}

/**
 * Squeeze-and-excitation (V3): global average pool -> FC(C -> squeeze) + ReLU ->
 * FC(squeeze -> C) + hard-sigmoid -> channel-wise scale. Shape-preserving.
 */
export interface SELayer extends LayerBase {
  readonly kind: "se";
  readonly squeeze: number;
}

/** Global average pooling to [C, 1, 1]. */
export interface PoolLayer extends LayerBase {
  readonly kind: "pool";
}

/** Fully connected layer on a [C, 1, 1] input, with bias (the classifier, or V3's 1x1 NBN head). */
export interface FCLayer extends LayerBase {
  readonly kind: "fc";
  readonly activation: Activation;
}

export type Layer = ConvLayer | SELayer | PoolLayer | FCLayer;

export interface SpecOptions {
  arch?: Arch;
  alpha?: number;
  /** Input side in pixels. Overrides `beta`. */
  resolution?: number;
  /** Resolution multiplier in (0, 1]: resolution = round(beta * baseResolution). */
  beta?: number;
  /** Base resolution that beta scales (224 for the paper's ImageNet models). */
  baseResolution?: number;
  inputChannels?: number;
  classes?: number;
  stridePlan?: StridePlan;
}

export interface ModelSpec {
  readonly arch: Arch;
  readonly alpha: number;
  readonly resolution: number;
  readonly inputChannels: number;
  readonly classes: number;
  /** The explicit list of strides the plan resolved to. */
  readonly strides: readonly number[];
  readonly stridePlan: string;
  readonly layers: readonly Layer[];
}

export const ALPHA_RANGE = { min: 0, max: 1.5 } as const;
export const MAX_RESOLUTION = 1024;

/** V1 channel rounding (TF-slim): `max(8, int(c * alpha))`. */
export function v1Channels(c: number, alpha: number): number {
  return Math.max(8, Math.floor(c * alpha + 1e-9));
}

/** V2/V3 channel rounding (`_make_divisible` of the reference code). */
export function makeDivisible(v: number, divisor = 8, minValue = divisor): number {
  let n = Math.max(minValue, Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor));
  if (n < 0.9 * v) n += divisor;
  return n;
}

// --- architecture tables -------------------------------------------------------------------

/** V1 (paper Table 1): the first conv, then 13 depthwise-separable blocks [out, stride]. */
const V1_BLOCKS: readonly (readonly [number, number])[] = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

/** V2 (paper Table 2): [expansion t, out c, repeats n, first stride s]. */
const V2_STAGES: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** V3 bneck rows (paper Tables 1 and 2): [kernel, expansion size, out, SE, activation, stride]. */
type V3Row = readonly [number, number, number, boolean, "relu" | "hswish", number];
const V3_LARGE: readonly V3Row[] = [
  [3, 16, 16, false, "relu", 1],
  [3, 64, 24, false, "relu", 2],
  [3, 72, 24, false, "relu", 1],
  [5, 72, 40, true, "relu", 2],
  [5, 120, 40, true, "relu", 1],
  [5, 120, 40, true, "relu", 1],
  [3, 240, 80, false, "hswish", 2],
  [3, 200, 80, false, "hswish", 1],
  [3, 184, 80, false, "hswish", 1],
  [3, 184, 80, false, "hswish", 1],
  [3, 480, 112, true, "hswish", 1],
  [3, 672, 112, true, "hswish", 1],
  [5, 672, 160, true, "hswish", 2],
  [5, 960, 160, true, "hswish", 1],
  [5, 960, 160, true, "hswish", 1],
];
const V3_SMALL: readonly V3Row[] = [
  [3, 16, 16, true, "relu", 2],
  [3, 72, 24, false, "relu", 2],
  [3, 88, 24, false, "relu", 1],
  [5, 96, 40, true, "hswish", 2],
  [5, 240, 40, true, "hswish", 1],
  [5, 240, 40, true, "hswish", 1],
  [5, 120, 48, true, "hswish", 1],
  [5, 144, 48, true, "hswish", 1],
  [5, 288, 96, true, "hswish", 2],
  [5, 576, 96, true, "hswish", 1],
  [5, 576, 96, true, "hswish", 1],
];

/** The paper's strides for each stride-bearing stage: the first conv, then each block or stage. */
export function imagenetStrides(arch: Arch): number[] {
  switch (arch) {
    case "mobilenet_v1":
      return [2, ...V1_BLOCKS.map(([, s]) => s)];
    case "mobilenet_v2":
      return [2, ...V2_STAGES.map(([, , , s]) => s)];
    case "mobilenet_v3_large":
      return [2, ...V3_LARGE.map((r) => r[5])];
    case "mobilenet_v3_small":
      return [2, ...V3_SMALL.map((r) => r[5])];
  }
}

/**
 * Resolves a stride plan to an explicit list.
 * - `imagenet`: the paper's.
 * - `cifar`: the seed's 15.7.3 — the first two stride-2 stages (V1: the first conv and block 2)
 *   run at stride 1, so 32x32 ends at 4x4 instead of 1x1.
 * - `imagenet_stem1`: the paper's plan with a stride-1 first conv (28x28 ends at 2x2 for V1).
 */
export function resolveStridePlan(arch: Arch, plan: StridePlan): number[] {
  const base = imagenetStrides(arch);
  if (typeof plan !== "string") {
    if (plan.length !== base.length) {
      throw new RangeError(
        `Cannot use stride plan for ${arch} as it must list ${base.length} strides: current length is ${plan.length}`,
      );
    }
    for (const s of plan) {
      if (s !== 1 && s !== 2) {
        throw new RangeError(
          `Cannot use stride plan as every stride must be 1 or 2: current value is ${s}`,
        );
      }
    }
    return [...plan];
  }
  switch (plan) {
    case "imagenet":
      return base;
    case "imagenet_stem1":
      return [1, ...base.slice(1)];
    case "cifar": {
      let changed = 0;
      return base.map((s) => (s === 2 && changed++ < 2 ? 1 : s));
    }
    default:
      throw new RangeError(
        `Cannot use stride plan as it is unknown: stride_plan must be one of ${
          STRIDE_PLANS.join(", ")
        } ` +
          `or a comma-separated list of 1s and 2s; current value is ${String(plan)}`,
      );
  }
}

export const DEFAULT_BASE_RESOLUTION = 224;

/** Resolution for a beta: `round(beta * base)`. */
export function resolutionFor(beta: number, base: number): number {
  return Math.round(beta * base);
}

/**
 * Smallest and largest input sides a stride plan supports. With SAME padding a side never drops
 * below 1, but a stride-2 stage that receives a 1-pixel map would halve it below one pixel; so
 * every stride-2 stage must receive at least 2 pixels: `ceil(r / 2^(n-1)) >= 2` for n stride-2
 * stages, i.e. `r >= 2^(n-1) + 1`.
 */
export function resolutionLimits(strides: readonly number[]): { min: number; max: number } {
  const n = strides.filter((s) => s === 2).length;
  return { min: n === 0 ? 1 : 2 ** (n - 1) + 1, max: MAX_RESOLUTION };
}

// --- builder --------------------------------------------------------------------------------

class Builder {
  readonly layers: Layer[] = [];
  c: number;
  h: number;
  w: number;
  constructor(c: number, h: number, w: number) {
    this.c = c;
    this.h = h;
    this.w = w;
  }

  conv(
    name: string,
    role: LayerRole,
    out: number,
    kernel: number,
    stride: number,
    opts: {
      depthwise?: boolean;
      activation: Activation;
      batchNorm?: boolean;
      residualFrom?: string;
    },
  ): ConvLayer {
    const inShape = [this.c, this.h, this.w] as const;
    const groups = opts.depthwise ? this.c : 1;
    const outC = opts.depthwise ? this.c : out;
    const oh = Math.ceil(this.h / stride);
    const ow = Math.ceil(this.w / stride);
    const batchNorm = opts.batchNorm ?? true;
    const layer: ConvLayer = {
      kind: "conv",
      name,
      role,
      inShape,
      outShape: [outC, oh, ow],
      kernel,
      stride,
      groups,
      batchNorm,
      bias: !batchNorm,
      activation: opts.activation,
      ...(opts.residualFrom ? { residualFrom: opts.residualFrom } : {}),
    };
    this.layers.push(layer);
    [this.c, this.h, this.w] = [outC, oh, ow];
    return layer;
  }

  se(name: string, squeeze: number): void {
    const shape = [this.c, this.h, this.w] as const;
    this.layers.push({ kind: "se", name, role: "se", inShape: shape, outShape: shape, squeeze });
  }

  pool(name: string): void {
    this.layers.push({
      kind: "pool",
      name,
      role: "pool",
      inShape: [this.c, this.h, this.w],
      outShape: [this.c, 1, 1],
    });
    this.h = 1;
    this.w = 1;
  }

  fc(name: string, out: number, activation: Activation): void {
    this.layers.push({
      kind: "fc",
      name,
      role: "fc",
      inShape: [this.c, 1, 1],
      outShape: [out, 1, 1],
      activation,
    });
    this.c = out;
  }
}

function checkNumber(name: string, v: number, lo: number, hi: number, loOpen: boolean): void {
  if (!Number.isFinite(v) || (loOpen ? v <= lo : v < lo) || v > hi) {
    throw new RangeError(
      `Cannot build spec as ${name} must be in ${
        loOpen ? "(" : "["
      }${lo}, ${hi}]: current value is ${v}`,
    );
  }
}

/**
 * Builds the layer list of a MobileNet.
 *
 * @example
 * const spec = buildSpec({ arch: "mobilenet_v1", alpha: 0.5, resolution: 32, stridePlan: "cifar",
 *   inputChannels: 1, classes: 10 });
 */
export function buildSpec(opts: SpecOptions = {}): ModelSpec {
  const arch = opts.arch ?? "mobilenet_v1";
  if (!ARCHS.includes(arch)) {
    throw new RangeError(
      `Cannot build spec as arch must be one of ${ARCHS.join(", ")}: current value is ${arch}`,
    );
  }
  const alpha = opts.alpha ?? 1;
  checkNumber("alpha", alpha, ALPHA_RANGE.min, ALPHA_RANGE.max, true);
  let resolution: number;
  if (opts.resolution !== undefined) {
    resolution = opts.resolution;
  } else {
    const beta = opts.beta ?? 1;
    checkNumber("beta", beta, 0, 1, true);
    resolution = resolutionFor(beta, opts.baseResolution ?? DEFAULT_BASE_RESOLUTION);
  }

  const inputChannels = opts.inputChannels ?? 3;
  checkNumber("input channels", inputChannels, 1, 4, false);
  const classes = opts.classes ?? 1000;
  checkNumber("classes", classes, 1, 100000, false);
  if (!Number.isInteger(inputChannels) || !Number.isInteger(classes)) {
    throw new RangeError(
      `Cannot build spec as channels and classes must be integers: got ${inputChannels}, ${classes}`,
    );
  }
  const planArg = opts.stridePlan ?? "imagenet";
  const strides = resolveStridePlan(arch, planArg);
  const limits = resolutionLimits(strides);
  if (!Number.isInteger(resolution) || resolution < limits.min || resolution > limits.max) {
    throw new RangeError(
      `Cannot build spec as resolution must be an integer in [${limits.min}, ${limits.max}] for this stride plan ` +
        `(every stride-2 stage needs at least 2 pixels): current value is ${resolution}`,
    );
  }
  const b = new Builder(inputChannels, resolution, resolution);

  switch (arch) {
    case "mobilenet_v1":
      buildV1(b, alpha, strides, classes);
      break;
    case "mobilenet_v2":
      buildV2(b, alpha, strides, classes);
      break;
    case "mobilenet_v3_large":
      buildV3(b, alpha, strides, classes, V3_LARGE, 960, 1280);
      break;
    case "mobilenet_v3_small":
      buildV3(b, alpha, strides, classes, V3_SMALL, 576, 1024);
      break;
  }
  return {
    arch,
    alpha,
    resolution,
    inputChannels,
    classes,
    strides,
    stridePlan: typeof planArg === "string" ? planArg : planArg.join(","),
    layers: b.layers,
  };
}

function buildV1(b: Builder, alpha: number, strides: number[], classes: number): void {
  b.conv("conv1", "first_conv", v1Channels(32, alpha), 3, strides[0]!, { activation: "relu" });
  V1_BLOCKS.forEach(([out], i) => {
    const n = i + 1;
    b.conv(`block${n}_dw`, "depthwise", 0, 3, strides[n]!, { depthwise: true, activation: "relu" });
    b.conv(`block${n}_pw`, "pointwise", v1Channels(out, alpha), 1, 1, { activation: "relu" });
  });
  b.pool("pool");
  b.fc("fc", classes, "none");
}

function buildV2(b: Builder, alpha: number, strides: number[], classes: number): void {
  b.conv("conv1", "first_conv", makeDivisible(32 * alpha), 3, strides[0]!, { activation: "relu6" });
  let block = 0;
  V2_STAGES.forEach(([t, c, n], stage) => {
    const out = makeDivisible(c * alpha);
    for (let i = 0; i < n; i++) {
      block++;
      const stride = i === 0 ? strides[stage + 1]! : 1;
      const inC = b.c;
      const residual = stride === 1 && inC === out;
      const first = t !== 1 ? `block${block}_expand` : `block${block}_dw`;
      if (t !== 1) b.conv(first, "expand", inC * t, 1, 1, { activation: "relu6" });
      b.conv(`block${block}_dw`, "depthwise", 0, 3, stride, {
        depthwise: true,
        activation: "relu6",
      });
      b.conv(`block${block}_project`, "project", out, 1, 1, {
        activation: "none",
        ...(residual ? { residualFrom: first } : {}),
      });
    }
  });
  // The reference implementations widen the last conv only for alpha > 1.
  b.conv("last_conv", "last_conv", alpha > 1 ? makeDivisible(1280 * alpha) : 1280, 1, 1, {
    activation: "relu6",
  });
  b.pool("pool");
  b.fc("fc", classes, "none");
}

function buildV3(
  b: Builder,
  alpha: number,
  strides: number[],
  classes: number,
  rows: readonly V3Row[],
  lastConv: number,
  head: number,
): void {
  b.conv("conv1", "first_conv", makeDivisible(16 * alpha), 3, strides[0]!, {
    activation: "hswish",
  });
  rows.forEach(([k, exp, c, se, act], i) => {
    const n = i + 1;
    const stride = strides[n]!;
    const inC = b.c;
    const expC = makeDivisible(exp * alpha);
    const out = makeDivisible(c * alpha);
    const residual = stride === 1 && inC === out;
    const first = expC !== inC ? `block${n}_expand` : `block${n}_dw`;
    if (expC !== inC) b.conv(first, "expand", expC, 1, 1, { activation: act });
    b.conv(`block${n}_dw`, "depthwise", 0, k, stride, { depthwise: true, activation: act });
    if (se) b.se(`block${n}_se`, makeDivisible(expC / 4));
    b.conv(`block${n}_project`, "project", out, 1, 1, {
      activation: "none",
      ...(residual ? { residualFrom: first } : {}),
    });
  });
  b.conv("last_conv", "last_conv", makeDivisible(lastConv * alpha), 1, 1, { activation: "hswish" });
  b.pool("pool");
  // The 1x1 "NBN" head conv after pooling is an FC layer with bias on a 1x1 map.
  b.fc("head", alpha > 1 ? makeDivisible(head * alpha) : head, "hswish");
  b.fc("fc", classes, "none");
}
