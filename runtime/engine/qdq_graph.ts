/**
 * Reads an int8 QDQ ONNX graph (opset 13, as model/export/quantize.ts writes it and as
 * onnxruntime's quantizer writes similar ones) into a list of integer steps for the engine.
 *
 * The reader follows the data, not tensor names: every compute node (Conv, GlobalAveragePool,
 * Flatten, Gemm) must read activations through DequantizeLinear of a uint8 tensor and constant
 * weights / bias through DequantizeLinear of initializers, and write a tensor that goes through
 * QuantizeLinear (optionally after Relu or Clip, which fold into the output clamp) or is a float
 * graph output (the logits). This is the same pattern onnxruntime fuses into QLinearConv /
 * QLinearGlobalAveragePool / QGemm, so the engine's integer arithmetic can match it exactly.
 */
import type { OnnxModel, OnnxNode, OnnxTensor } from "../../model/export/onnx_writer.ts";
import type { Padding } from "../../kernels/int8/conv2d.ts";
import { roundHalfEven } from "../../kernels/int8/requantize.ts";

/** uint8 activation quantization. */
export interface ActQuant {
  readonly scale: number;
  readonly zeroPoint: number;
}

export interface QuantizeInputStep {
  readonly op: "quantize_input";
  /** Float graph input name. */
  readonly input: string;
  /** Quantized tensor id. */
  readonly output: string;
  readonly quant: ActQuant;
}

export interface ConvStep {
  readonly op: "conv";
  readonly name: string;
  readonly input: string;
  readonly output: string;
  readonly inQuant: ActQuant;
  readonly outQuant: ActQuant;
  /** OIHW int8 (or uint8 with zero points) weights. */
  readonly weights: Int8Array | Uint8Array;
  readonly weightShape: readonly [number, number, number, number];
  readonly weightScales: Float32Array;
  readonly weightZeroPoints: Int32Array;
  readonly bias: Int32Array;
  readonly strides: readonly [number, number];
  readonly padding: Padding;
  readonly groups: number;
  /** Output clamp after Relu / Clip folding. */
  readonly lo: number;
  readonly hi: number;
}

export interface GlobalAvgPoolStep {
  readonly op: "global_avg_pool";
  readonly name: string;
  readonly input: string;
  readonly output: string;
  readonly inQuant: ActQuant;
  readonly outQuant: ActQuant;
}

/** A pure reshape of a [n, c, 1, 1] tensor to [n, c] with unchanged quantization. */
export interface FlattenStep {
  readonly op: "flatten";
  readonly name: string;
  readonly input: string;
  readonly output: string;
}

export interface GemmStep {
  readonly op: "gemm";
  readonly name: string;
  readonly input: string;
  /** Quantized tensor id, or the float graph output name when `outQuant` is undefined. */
  readonly output: string;
  readonly inQuant: ActQuant;
  readonly outQuant?: ActQuant;
  /** `[N, K]` (B transposed as needed). */
  readonly weights: Int8Array | Uint8Array;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weightScales: Float32Array;
  readonly weightZeroPoints: Int32Array;
  readonly bias: Int32Array;
  readonly lo: number;
  readonly hi: number;
}

export type Step = QuantizeInputStep | ConvStep | GlobalAvgPoolStep | FlattenStep | GemmStep;

export interface QdqGraph {
  readonly inputName: string;
  readonly outputName: string;
  readonly inputChannels: number;
  readonly classes: number;
  readonly steps: readonly Step[];
}

const SUPPORTED =
  "QuantizeLinear, DequantizeLinear, Conv, Relu, Clip, GlobalAveragePool, Flatten, Gemm";

interface ConstDq {
  readonly q: OnnxTensor;
  readonly scale: Float32Array;
  readonly zeroPoint: Int32Array;
  /** DequantizeLinear's axis (ONNX default 1), meaningful for per-channel scales. */
  readonly axis: number;
}

function fail(what: string): never {
  throw new TypeError(`Cannot read the int8 ONNX graph as ${what}`);
}

function attrInt(node: OnnxNode, name: string, dflt: number): number {
  const a = node.attrs?.[name];
  if (a === undefined) return dflt;
  if (!("i" in a)) fail(`attribute ${name} of ${node.name} is not an int`);
  return a.i;
}

function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const a = node.attrs?.[name];
  if (a === undefined) return undefined;
  if (!("ints" in a)) fail(`attribute ${name} of ${node.name} is not a list of ints`);
  return a.ints;
}

function attrString(node: OnnxNode, name: string, dflt: string): string {
  const a = node.attrs?.[name];
  if (a === undefined) return dflt;
  if (!("s" in a)) fail(`attribute ${name} of ${node.name} is not a string`);
  return a.s;
}

function toI32(t: OnnxTensor): Int32Array {
  if (t.data instanceof BigInt64Array) return Int32Array.from(t.data, (v) => Number(v));
  return Int32Array.from(t.data as ArrayLike<number>);
}

function scalarFloat(t: OnnxTensor, what: string): number {
  if (!(t.data instanceof Float32Array) || t.data.length !== 1) {
    fail(`${what} ${t.name} must be one float32`);
  }
  return t.data[0]!;
}

/** Reads the QDQ graph into engine steps; throws a TypeError naming the first node it cannot use. */
export function readQdqGraph(model: OnnxModel): QdqGraph {
  const g = model.graph;
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i)!.push(n);
    }
  }
  const graphInputs = g.inputs.filter((i) => !inits.has(i.name));
  if (graphInputs.length !== 1) {
    fail(`it must have one input: found ${graphInputs.map((i) => i.name).join(", ")}`);
  }
  if (g.outputs.length !== 1) {
    fail(`it must have one output: found ${g.outputs.map((o) => o.name).join(", ")}`);
  }
  const inputInfo = graphInputs[0]!;
  const outputName = g.outputs[0]!.name;
  const inputChannels = Number(inputInfo.shape?.[1]);

  const init = (name: string, what: string): OnnxTensor =>
    inits.get(name) ?? fail(`${what} ${name} is not an initializer`);
  const actQuant = (scaleName: string, zpName: string): ActQuant => {
    const zp = init(zpName, "zero point");
    if (!(zp.data instanceof Uint8Array) || zp.data.length !== 1) {
      fail(
        `activation zero point ${zpName} must be one uint8 (int8 activations are not supported)`,
      );
    }
    return {
      scale: scalarFloat(init(scaleName, "scale"), "activation scale"),
      zeroPoint: zp.data[0]!,
    };
  };

  /** DequantizeLinear outputs of activations: dq name -> quantized tensor id and its quant. */
  const actDq = new Map<string, { id: string; quant: ActQuant }>();
  const constDq = new Map<string, ConstDq>();
  /** Float tensors that a QuantizeLinear turns into uint8: float name -> node. */
  const quantizers = new Map<string, OnnxNode>();
  for (const n of g.nodes) if (n.opType === "QuantizeLinear") quantizers.set(n.inputs[0]!, n);
  const handled = new Set<OnnxNode>();
  const steps: Step[] = [];

  /** Follows a float output through optional Relu / Clip to its QuantizeLinear. */
  const quantizedOutput = (floatName: string, owner: OnnxNode) => {
    let name = floatName;
    let relu = false;
    let clip: [number, number] | undefined;
    for (;;) {
      const q = quantizers.get(name);
      if (q) {
        handled.add(q);
        const quant = actQuant(q.inputs[1]!, q.inputs[2]!);
        let lo = 0;
        let hi = 255;
        const qv = (v: number) =>
          Math.min(255, Math.max(0, roundHalfEven(Math.fround(v / quant.scale)) + quant.zeroPoint));
        if (relu) lo = Math.max(lo, quant.zeroPoint);
        if (clip) {
          lo = Math.max(lo, qv(clip[0]));
          hi = Math.min(hi, qv(clip[1]));
        }
        return { id: q.outputs[0]!, quant, lo, hi };
      }
      const next = consumers.get(name) ?? [];
      if (next.length !== 1) fail(`output ${name} of ${owner.name} must go through QuantizeLinear`);
      const act = next[0]!;
      if (act.opType === "Relu") {
        relu = true;
      } else if (act.opType === "Clip") {
        const min = act.inputs[1]
          ? scalarFloat(init(act.inputs[1], "Clip min"), "Clip min")
          : -Infinity;
        const max = act.inputs[2]
          ? scalarFloat(init(act.inputs[2], "Clip max"), "Clip max")
          : Infinity;
        clip = [min, max];
      } else {
        fail(`output ${name} of ${owner.name} goes to ${act.opType}, not to QuantizeLinear`);
      }
      handled.add(act);
      name = act.outputs[0]!;
    }
  };

  const activation = (name: string, owner: OnnxNode) =>
    actDq.get(name) ??
      fail(`input ${name} of ${owner.name} does not come from DequantizeLinear of a uint8 tensor`);
  const constant = (name: string, owner: OnnxNode) =>
    constDq.get(name) ??
      fail(`input ${name} of ${owner.name} does not come from DequantizeLinear of an initializer`);

  for (const n of g.nodes) {
    if (handled.has(n)) continue;
    switch (n.opType) {
      case "QuantizeLinear": {
        if (n.inputs[0] !== inputInfo.name) {
          fail(`QuantizeLinear ${n.name} quantizes ${n.inputs[0]}, which no supported node writes`);
        }
        steps.push({
          op: "quantize_input",
          input: inputInfo.name,
          output: n.outputs[0]!,
          quant: actQuant(n.inputs[1]!, n.inputs[2]!),
        });
        break;
      }
      case "DequantizeLinear": {
        const src = n.inputs[0]!;
        const t = inits.get(src);
        if (t) {
          const scale = init(n.inputs[1]!, "scale").data;
          if (!(scale instanceof Float32Array)) fail(`scale of ${n.name} must be float32`);
          const zp = n.inputs[2]
            ? toI32(init(n.inputs[2], "zero point"))
            : new Int32Array(scale.length);
          constDq.set(n.outputs[0]!, { q: t, scale, zeroPoint: zp, axis: attrInt(n, "axis", 1) });
        } else {
          actDq.set(n.outputs[0]!, { id: src, quant: actQuant(n.inputs[1]!, n.inputs[2]!) });
        }
        break;
      }
      case "Conv": {
        const x = activation(n.inputs[0]!, n);
        const w = constant(n.inputs[1]!, n);
        if (
          !(w.q.data instanceof Int8Array || w.q.data instanceof Uint8Array) ||
          w.q.dims.length !== 4
        ) {
          fail(`weights of ${n.name} must be 8-bit OIHW`);
        }
        const dims = w.q.dims as [number, number, number, number];
        if (w.scale.length > 1 && w.axis !== 0 && w.axis !== -4) {
          fail(
            `weights of ${n.name} are quantized per channel along axis ${w.axis}: only axis 0 (output channels) is supported`,
          );
        }
        const bias = n.inputs[2] ? toI32(constant(n.inputs[2], n).q) : new Int32Array(dims[0]);
        const dil = attrInts(n, "dilations");
        if (dil && dil.some((d) => d !== 1)) {
          fail(`${n.name} has dilations [${dil.join(",")}]: only 1 is supported`);
        }
        const s = attrInts(n, "strides") ?? [1, 1];
        const autoPad = attrString(n, "auto_pad", "NOTSET");
        let padding: Padding;
        if (autoPad === "SAME_UPPER") padding = "same_upper";
        else if (autoPad === "VALID") padding = "valid";
        else if (autoPad === "NOTSET") {
          const p = attrInts(n, "pads") ?? [0, 0, 0, 0];
          padding = [p[0]!, p[1]!, p[2]!, p[3]!];
        } else fail(`${n.name} has auto_pad ${autoPad}: supported are SAME_UPPER, VALID, NOTSET`);
        const out = quantizedOutput(n.outputs[0]!, n);
        steps.push({
          op: "conv",
          name: n.name,
          input: x.id,
          output: out.id,
          inQuant: x.quant,
          outQuant: out.quant,
          weights: w.q.data,
          weightShape: dims,
          weightScales: w.scale,
          weightZeroPoints: w.zeroPoint,
          bias,
          strides: [s[0]!, s[1]!],
          padding,
          groups: attrInt(n, "group", 1),
          lo: out.lo,
          hi: out.hi,
        });
        break;
      }
      case "GlobalAveragePool": {
        const x = activation(n.inputs[0]!, n);
        const out = quantizedOutput(n.outputs[0]!, n);
        steps.push({
          op: "global_avg_pool",
          name: n.name,
          input: x.id,
          output: out.id,
          inQuant: x.quant,
          outQuant: out.quant,
        });
        break;
      }
      case "Flatten": {
        const x = activation(n.inputs[0]!, n);
        const out = quantizedOutput(n.outputs[0]!, n);
        if (out.quant.scale !== x.quant.scale || out.quant.zeroPoint !== x.quant.zeroPoint) {
          fail(`Flatten ${n.name} changes the quantization: only a pure reshape is supported`);
        }
        steps.push({ op: "flatten", name: n.name, input: x.id, output: out.id });
        break;
      }
      case "Gemm": {
        const x = activation(n.inputs[0]!, n);
        const b = constant(n.inputs[1]!, n);
        if (attrInt(n, "transA", 0) !== 0) fail(`Gemm ${n.name} has transA = 1`);
        const alpha = n.attrs?.alpha;
        const beta = n.attrs?.beta;
        if ((alpha && "f" in alpha && alpha.f !== 1) || (beta && "f" in beta && beta.f !== 1)) {
          fail(`Gemm ${n.name} has alpha or beta other than 1`);
        }
        if (
          !(b.q.data instanceof Int8Array || b.q.data instanceof Uint8Array) ||
          b.q.dims.length !== 2
        ) {
          fail(`B of Gemm ${n.name} must be a 2-D 8-bit tensor`);
        }
        const transB = attrInt(n, "transB", 0) === 1;
        const outAxis = transB ? 0 : 1;
        if (b.scale.length > 1 && b.axis !== outAxis && b.axis !== outAxis - 2) {
          fail(
            `B of Gemm ${n.name} is quantized per channel along axis ${b.axis}: only the output axis ${outAxis} is supported`,
          );
        }
        const [d0, d1] = b.q.dims as [number, number];
        const [k, nOut] = transB ? [d1, d0] : [d0, d1];
        let wt: Int8Array | Uint8Array;
        if (transB) wt = b.q.data;
        else {
          wt = b.q.data instanceof Int8Array ? new Int8Array(k * nOut) : new Uint8Array(k * nOut);
          for (let r = 0; r < k; r++) {
            for (let c = 0; c < nOut; c++) wt[c * k + r] = b.q.data[r * nOut + c]!;
          }
        }
        const bias = n.inputs[2] ? toI32(constant(n.inputs[2], n).q) : new Int32Array(nOut);
        const y = n.outputs[0]!;
        const base = {
          op: "gemm" as const,
          name: n.name,
          input: x.id,
          inQuant: x.quant,
          weights: wt,
          inFeatures: k,
          outFeatures: nOut,
          weightScales: b.scale,
          weightZeroPoints: b.zeroPoint,
          bias,
        };
        if (y === outputName) {
          steps.push({ ...base, output: y, lo: 0, hi: 255 });
        } else {
          const out = quantizedOutput(y, n);
          steps.push({ ...base, output: out.id, outQuant: out.quant, lo: out.lo, hi: out.hi });
        }
        break;
      }
      default:
        fail(`node ${n.name} is a ${n.opType}: supported are ${SUPPORTED}`);
    }
  }
  const last = steps.at(-1);
  if (!last || last.op !== "gemm" || last.output !== outputName || last.outQuant) {
    fail(`its output ${outputName} must be the float result of a final Gemm`);
  }
  if (steps[0]?.op !== "quantize_input") {
    fail(`its input ${inputInfo.name} must go through QuantizeLinear first`);
  }
  const channels = Number.isInteger(inputChannels) && inputChannels > 0
    ? inputChannels
    : (steps.find((s) => s.op === "conv") as ConvStep | undefined)?.weightShape[1] ??
      fail("its input channel count is unknown");
  return {
    inputName: inputInfo.name,
    outputName,
    inputChannels: channels,
    classes: last.outFeatures,
    steps,
  };
}
