/**
 * The rules every model registry follows, in one place: the Deno server's `ModelRegistry`
 * (`runtime/registry.ts`, files read from disk, many backends, worker threads) and the edge
 * registry (`edge/edge_registry.ts`, bytes bundled with the script, one in-isolate backend) both
 * derive their variants, pick the default, check each file and warm each variant here, so the two
 * cannot drift apart.
 *
 * This module imports no backend, no protobuf library and no file-system API: the Cloudflare
 * Workers bundle carries it (the ONNX graph is read with the engine's own small reader).
 *
 * @module
 */
import {
  type AccuracyByBeta,
  betaKey,
  BETAS,
  type ManifestModel,
  sha256Hex,
} from "../model/export/manifest.ts";
import type { ValueInfo } from "../model/export/onnx_writer.ts";
import { costReport } from "../model/cost.ts";
import {
  type Arch,
  ARCHS,
  buildSpec,
  resolutionFor,
  resolutionLimits,
  resolveStridePlan,
  STRIDE_PLANS,
  type StridePlan,
} from "../model/spec.ts";
import type { LoadedModel, NCHW } from "./backend.ts";
import { readOnnxModel } from "./engine/onnx_reader.ts";

/** One served model variant (one manifest entry), with what the server derives from it. */
export interface Variant {
  readonly manifest: ManifestModel;
  readonly arch: Arch;
  readonly stridePlan: StridePlan;
  /** Input sides the stride plan supports, capped at the base resolution (beta <= 1). */
  readonly resolution: { min: number; max: number; base: number };
  /** Warm latency medians in ms, per backend, keyed by beta as in the manifest. */
  readonly latencyMs: Record<string, AccuracyByBeta>;
}

/** Where a registry stands; {@link stateReason} says it in words for `/readyz` and errors. */
export type RegistryState =
  | { kind: "new" }
  | { kind: "loading"; step: string }
  | { kind: "ready" }
  | { kind: "failed"; error: Error }
  | { kind: "closed" };

export function stateReason(s: RegistryState): string {
  switch (s.kind) {
    case "new":
      return "Models are not loaded yet. Retry in a few seconds.";
    case "loading":
      return `Models are loading (${s.step}). Retry in a few seconds.`;
    case "failed":
      return `Models failed to load: ${s.error.message}`;
    case "closed":
      return "The model registry is closed: the server is shutting down.";
    case "ready":
      return "";
  }
}

/**
 * The variant a manifest entry describes. Throws when the architecture or stride plan is unknown,
 * the base resolution is below what the stride plan needs, the input has neither 1 nor 3 channels,
 * or the spec cannot build the network.
 */
export function variantOf(m: ManifestModel): Variant {
  if (!(ARCHS as readonly string[]).includes(m.arch)) {
    throw new RangeError(
      `Cannot serve model ${m.id} as arch ${m.arch} is unknown: arch must be one of ${
        ARCHS.join(", ")
      }`,
    );
  }
  const arch = m.arch as Arch;
  const stridePlan: StridePlan = (STRIDE_PLANS as readonly string[]).includes(m.stridePlan)
    ? m.stridePlan as StridePlan
    : m.stridePlan.split(",").map((s) => Number(s.trim()));
  const strides = resolveStridePlan(arch, stridePlan);
  const limits = resolutionLimits(strides);
  if (m.baseResolution < limits.min) {
    throw new RangeError(
      `Cannot serve model ${m.id} as its base resolution ${m.baseResolution} is below the ` +
        `${limits.min} pixels its stride plan needs`,
    );
  }
  if (m.inputChannels !== 1 && m.inputChannels !== 3) {
    throw new RangeError(
      `Cannot serve model ${m.id} as inputChannels must be 1 or 3: current value is ${m.inputChannels}`,
    );
  }
  // The spec must build what the manifest describes, so /v1/cost and answers can cite it.
  buildSpec({
    arch,
    alpha: m.alpha,
    resolution: m.baseResolution,
    inputChannels: m.inputChannels,
    classes: m.classes,
    stridePlan,
  });
  return {
    manifest: m,
    arch,
    stridePlan,
    resolution: { min: limits.min, max: m.baseResolution, base: m.baseResolution },
    latencyMs: {},
  };
}

/**
 * The variant served when a request names no alpha: a trained one before an untrained stand-in,
 * then the highest measured int8 accuracy at beta 1 in the manifest (`deno task eval`), then the
 * widest.
 */
export function defaultVariantOf(variants: readonly Variant[]): Variant {
  const rank = (v: Variant) => [
    v.manifest.trained ? 1 : 0,
    v.manifest.accuracy.int8[betaKey(1)] ?? -1,
    v.manifest.alpha,
  ];
  return variants.reduce((best, v) => {
    const [a, b] = [rank(v), rank(best)];
    const i = a.findIndex((x, k) => x !== b[k]);
    return i >= 0 && a[i]! > b[i]! ? v : best;
  });
}

function shapeText(s: readonly (number | string)[] | undefined): string {
  return s ? `[${s.join(",")}]` : "(no shape)";
}

function sameShape(a: readonly (number | string)[] | undefined, b: readonly (number | string)[]) {
  return !!a && a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkTensor(
  m: ManifestModel,
  kind: "input" | "output",
  want: { name: string; shape: (number | string)[] },
  graph: ValueInfo[],
): void {
  const found = graph.find((t) => t.name === want.name);
  if (!found) {
    throw new TypeError(
      `Cannot load model ${m.id} as ${m.file} has no ${kind} named ${want.name}: its ${kind}s are ${
        graph.map((t) => `${t.name} ${shapeText(t.shape)}`).join(", ") || "none"
      }`,
    );
  }
  if (!sameShape(found.shape, want.shape)) {
    throw new TypeError(
      `Cannot load model ${m.id} as ${kind} ${want.name} has shape ${
        shapeText(found.shape)
      } in ${m.file}: the manifest says ${shapeText(want.shape)}`,
    );
  }
}

/**
 * Checks an ONNX file's bytes against its manifest entry (size, sha256, the graph's input and
 * output names and shapes, and the manifest's own channels and classes) and returns the model as
 * backends take it. Throws with the model, the tensor and both values on the first mismatch.
 */
export async function verifyModel(m: ManifestModel, onnx: Uint8Array): Promise<LoadedModel> {
  if (onnx.length !== m.bytes) {
    throw new RangeError(
      `Cannot load model ${m.id} as ${m.file} has ${onnx.length} bytes: the manifest says ${m.bytes}`,
    );
  }
  const sha = await sha256Hex(onnx);
  if (sha !== m.sha256) {
    throw new RangeError(
      `Cannot load model ${m.id} as the sha256 of ${m.file} is ${sha}: the manifest says ${m.sha256}`,
    );
  }
  let graph;
  try {
    graph = readOnnxModel(onnx).graph;
  } catch (e) {
    throw new TypeError(
      `Cannot load model ${m.id} as ${m.file} is not a readable ONNX model: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  checkTensor(m, "input", m.input, graph.inputs);
  checkTensor(m, "output", m.output, graph.outputs);
  // The manifest's own shapes must say what the rest of the manifest says.
  if (m.input.shape[1] !== m.inputChannels) {
    throw new TypeError(
      `Cannot load model ${m.id} as input ${m.input.name} has shape ${
        shapeText(m.input.shape)
      }: the manifest's inputChannels is ${m.inputChannels}`,
    );
  }
  if (m.output.shape[1] !== m.classes) {
    throw new TypeError(
      `Cannot load model ${m.id} as output ${m.output.name} has shape ${
        shapeText(m.output.shape)
      }: the manifest's classes is ${m.classes}`,
    );
  }
  return {
    id: m.id,
    onnx,
    inputName: m.input.name,
    outputName: m.output.name,
    inputChannels: m.inputChannels,
    classes: m.classes,
  };
}

/**
 * Warms a loaded variant at every beta the manifest measures (`runs` runs each) and records the
 * median warm latency under `backendName` in `v.latencyMs`. Throws when a run gives the wrong
 * number of logits or non-finite values. `runs <= 0` does nothing.
 */
export async function warmVariant(
  v: Variant,
  backendName: string,
  run: (input: Float32Array, shape: NCHW) => Promise<Float32Array>,
  runs: number,
): Promise<void> {
  if (runs <= 0) return;
  const m = v.manifest;
  const table: AccuracyByBeta = {};
  for (const beta of BETAS) {
    const res = resolutionFor(beta, m.baseResolution);
    if (res < v.resolution.min) continue;
    const shape: NCHW = [1, m.inputChannels, res, res];
    const input = new Float32Array(m.inputChannels * res * res);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const out = await run(input, shape);
      times.push(performance.now() - t0);
      if (out.length !== m.classes || out.some((x) => !Number.isFinite(x))) {
        throw new RangeError(
          `Cannot serve model ${m.id} on ${backendName} as its warm-up run at ${res}x${res} gave ` +
            `${out.length} logits (${m.classes} expected) or non-finite values`,
        );
      }
    }
    times.sort((a, b) => a - b);
    // The first run at a new shape plans memory: the median of the rest is the warm latency.
    table[betaKey(beta)] = times[Math.floor(times.length / 2)]!;
  }
  v.latencyMs[backendName] = table;
}

/** MACs and parameters of exactly what ran: the variant's spec at `resolution`. Cached. */
export function variantCost(v: Variant, resolution: number): { macs: number; params: number } {
  const m = v.manifest;
  // Keyed by everything the spec depends on (not the id: two manifests may reuse an id).
  const key = `${v.arch}|${m.alpha}|${v.stridePlan}|${m.inputChannels}|${m.classes}@${resolution}`;
  let c = COST_CACHE.get(key);
  if (!c) {
    c = costReport(buildSpec({
      arch: v.arch,
      alpha: m.alpha,
      resolution,
      inputChannels: m.inputChannels,
      classes: m.classes,
      stridePlan: v.stridePlan,
    })).totals;
    COST_CACHE.set(key, c);
  }
  return c;
}
const COST_CACHE = new Map<string, { macs: number; params: number }>();
