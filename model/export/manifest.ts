/**
 * `model/artifacts/manifest.json`: what the exporter shipped and what eval measured. The model
 * registry reads it; docs/model_card.md describes every field.
 */

export const MANIFEST_FORMAT = "mobilenet-manifest/1";

/** Accuracy (fraction correct, 0..1) keyed by beta written as in `BETAS` ("1", "0.875", ...). */
export type AccuracyByBeta = Record<string, number>;

/** One training run in a model's lineage (`training.stages`). */
export interface TrainingStage {
  checkpoint: string;
  epochs: number;
  seconds: number;
  command: string;
}

export interface ManifestModel {
  /** Unique id, also the file stem: `mobilenet_v1_a0.25`. */
  id: string;
  arch: string;
  alpha: number;
  /** Stride plan name or comma-separated strides (see model/spec.ts). */
  stridePlan: string;
  /** The resolution that beta = 1 means; the served side is round(beta * baseResolution). */
  baseResolution: number;
  inputChannels: number;
  classes: number;
  labels: string[];
  preprocessing: {
    /** Per channel, on pixels scaled to [0, 1]: x = (p / 255 - mean) / std. */
    mean: number[];
    std: number[];
    polarity: "light-on-dark" | "natural";
    layout: "NCHW";
    /** How an image becomes the model's square input: area resize, or resize then zero-pad. */
    fit: "resize" | "pad";
  };
  precision: "int8";
  /** False for a stand-in exported from untrained (random, BN re-estimated) weights. */
  trained: boolean;
  /** File name relative to the manifest. */
  file: string;
  sha256: string;
  bytes: number;
  input: { name: string; shape: (number | string)[] };
  output: { name: string; shape: (number | string)[] };
  quantization: {
    format: string;
    calibration: string;
    calibrationImages: number;
    /** Held-out accuracy of each candidate method (measured by export on training images). */
    candidates: Record<string, number>;
    heldOutImages: number;
    /**
     * Weights lie in -weightQmax..weightQmax: 64 (7 bits) by default, fewer for models trained
     * quantization-aware (`train.ts --weight-qmax`) to pack smaller for the Workers build.
     */
    weightQmax: number;
  };
  /** Max abs logit difference of the float ONNX against the TypeScript reference (export). */
  verification: {
    images: number;
    floatOrtNode: number;
    floatOrtWeb: number;
    int8OrtWebVsNode: number;
  };
  /** Written only by `deno task eval`. */
  accuracy: { float: AccuracyByBeta; int8: AccuracyByBeta };
  evaluated: { command: string; date: string; images: number; runtime: string } | null;
  training: {
    recipe: string;
    epochs: number;
    seconds: number;
    command: string;
    /**
     * Every stage the weights went through, first to last: this checkpoint's run and, before it,
     * the runs its `--init` chain started from (export follows `recipe.init`). Absent in entries
     * exported before it was recorded.
     */
    stages?: TrainingStage[];
  };
  /** The checkpoint the file was exported from, so eval can rebuild the float model. */
  source: { checkpoint: string; weightsSha256: string };
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  models: ManifestModel[];
}

export const BETAS = [1, 0.875, 0.75, 0.5] as const;

function fail(path: string, want: string, got: unknown): never {
  throw new TypeError(
    `Cannot read manifest as ${path} must be ${want}: current value is ${JSON.stringify(got)}`,
  );
}

function str(o: Record<string, unknown>, k: string, path: string): string {
  const v = o[k];
  if (typeof v !== "string") fail(`${path}.${k}`, "a string", v);
  return v;
}

function num(o: Record<string, unknown>, k: string, path: string): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`${path}.${k}`, "a finite number", v);
  return v;
}

function obj(o: unknown, path: string): Record<string, unknown> {
  if (typeof o !== "object" || o === null || Array.isArray(o)) fail(path, "an object", o);
  return o as Record<string, unknown>;
}

function numArray(o: Record<string, unknown>, k: string, path: string): number[] {
  const v = o[k];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number")) {
    fail(`${path}.${k}`, "an array of numbers", v);
  }
  return v as number[];
}

function shape(
  o: Record<string, unknown>,
  path: string,
): { name: string; shape: (number | string)[] } {
  const v = o.shape;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number" && typeof x !== "string")) {
    fail(`${path}.shape`, "an array of numbers and strings", v);
  }
  return { name: str(o, "name", path), shape: v as (number | string)[] };
}

function accuracy(o: unknown, path: string): AccuracyByBeta {
  const r = obj(o, path);
  const out: AccuracyByBeta = {};
  for (const k of Object.keys(r)) {
    const v = num(r, k, path);
    if (v < 0 || v > 1) fail(`${path}.${k}`, "a fraction in [0, 1]", v);
    out[k] = v;
  }
  return out;
}

function parseModel(m: unknown, path: string): ManifestModel {
  const o = obj(m, path);
  const pre = obj(o.preprocessing, `${path}.preprocessing`);
  const polarity = str(pre, "polarity", `${path}.preprocessing`);
  if (polarity !== "light-on-dark" && polarity !== "natural") {
    fail(`${path}.preprocessing.polarity`, "light-on-dark or natural", polarity);
  }
  const layout = str(pre, "layout", `${path}.preprocessing`);
  if (layout !== "NCHW") fail(`${path}.preprocessing.layout`, "NCHW", layout);
  const fit = str(pre, "fit", `${path}.preprocessing`);
  if (fit !== "resize" && fit !== "pad") fail(`${path}.preprocessing.fit`, "resize or pad", fit);
  const precision = str(o, "precision", path);
  if (precision !== "int8") fail(`${path}.precision`, "int8", precision);
  if (typeof o.trained !== "boolean") fail(`${path}.trained`, "a boolean", o.trained);
  const labels = o.labels;
  if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string")) {
    fail(`${path}.labels`, "an array of strings", labels);
  }
  const q = obj(o.quantization, `${path}.quantization`);
  const cand = obj(q.candidates, `${path}.quantization.candidates`);
  const ver = obj(o.verification, `${path}.verification`);
  const acc = obj(o.accuracy, `${path}.accuracy`);
  const tr = obj(o.training, `${path}.training`);
  const src = obj(o.source, `${path}.source`);
  let evaluated: ManifestModel["evaluated"] = null;
  if (o.evaluated !== null) {
    const e = obj(o.evaluated, `${path}.evaluated`);
    evaluated = {
      command: str(e, "command", `${path}.evaluated`),
      date: str(e, "date", `${path}.evaluated`),
      images: num(e, "images", `${path}.evaluated`),
      runtime: str(e, "runtime", `${path}.evaluated`),
    };
  }
  const model: ManifestModel = {
    id: str(o, "id", path),
    arch: str(o, "arch", path),
    alpha: num(o, "alpha", path),
    stridePlan: str(o, "stridePlan", path),
    baseResolution: num(o, "baseResolution", path),
    inputChannels: num(o, "inputChannels", path),
    classes: num(o, "classes", path),
    labels: labels as string[],
    preprocessing: {
      mean: numArray(pre, "mean", `${path}.preprocessing`),
      std: numArray(pre, "std", `${path}.preprocessing`),
      polarity,
      layout,
      fit,
    },
    precision,
    trained: o.trained,
    file: str(o, "file", path),
    sha256: str(o, "sha256", path),
    bytes: num(o, "bytes", path),
    input: shape(obj(o.input, `${path}.input`), `${path}.input`),
    output: shape(obj(o.output, `${path}.output`), `${path}.output`),
    quantization: {
      format: str(q, "format", `${path}.quantization`),
      calibration: str(q, "calibration", `${path}.quantization`),
      calibrationImages: num(q, "calibrationImages", `${path}.quantization`),
      candidates: Object.fromEntries(
        Object.keys(cand).map((k) => [k, num(cand, k, `${path}.quantization.candidates`)]),
      ),
      heldOutImages: num(q, "heldOutImages", `${path}.quantization`),
      weightQmax: q.weightQmax === undefined ? 64 : num(q, "weightQmax", `${path}.quantization`),
    },
    verification: {
      images: num(ver, "images", `${path}.verification`),
      floatOrtNode: num(ver, "floatOrtNode", `${path}.verification`),
      floatOrtWeb: num(ver, "floatOrtWeb", `${path}.verification`),
      int8OrtWebVsNode: num(ver, "int8OrtWebVsNode", `${path}.verification`),
    },
    accuracy: {
      float: accuracy(acc.float, `${path}.accuracy.float`),
      int8: accuracy(acc.int8, `${path}.accuracy.int8`),
    },
    evaluated,
    training: {
      recipe: str(tr, "recipe", `${path}.training`),
      epochs: num(tr, "epochs", `${path}.training`),
      seconds: num(tr, "seconds", `${path}.training`),
      command: str(tr, "command", `${path}.training`),
      ...(Array.isArray(tr.stages)
        ? {
          stages: tr.stages.map((st: unknown, i: number) => {
            const o = obj(st, `${path}.training.stages[${i}]`);
            const at = `${path}.training.stages[${i}]`;
            return {
              checkpoint: str(o, "checkpoint", at),
              epochs: num(o, "epochs", at),
              seconds: num(o, "seconds", at),
              command: str(o, "command", at),
            };
          }),
        }
        : {}),
    },
    source: {
      checkpoint: str(src, "checkpoint", `${path}.source`),
      weightsSha256: str(src, "weightsSha256", `${path}.source`),
    },
  };
  if (!/^[A-Za-z0-9_.-]+$/.test(model.id)) fail(`${path}.id`, "letters, digits, _ . -", model.id);
  if (!/^[0-9a-f]{64}$/.test(model.sha256)) fail(`${path}.sha256`, "64 hex digits", model.sha256);
  if (model.labels.length !== model.classes) {
    fail(`${path}.labels`, `${model.classes} labels (one per class)`, model.labels.length);
  }
  return model;
}

/** Validates parsed JSON as a manifest, naming the first field that is wrong. */
export function parseManifest(json: unknown): Manifest {
  const o = obj(json, "manifest");
  if (o.format !== MANIFEST_FORMAT) fail("manifest.format", MANIFEST_FORMAT, o.format);
  if (!Array.isArray(o.models)) fail("manifest.models", "an array", o.models);
  const models = o.models.map((m, i) => parseModel(m, `manifest.models[${i}]`));
  const ids = new Set<string>();
  for (const m of models) {
    if (ids.has(m.id)) fail("manifest.models", "unique ids", m.id);
    ids.add(m.id);
  }
  return { format: MANIFEST_FORMAT, models };
}

export function serializeManifest(m: Manifest): string {
  return JSON.stringify(m, null, 2) + "\n";
}

export async function readManifest(path: string): Promise<Manifest> {
  try {
    return parseManifest(JSON.parse(await Deno.readTextFile(path)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { format: MANIFEST_FORMAT, models: [] };
    throw e;
  }
}

export async function writeManifest(path: string, m: Manifest): Promise<void> {
  parseManifest(JSON.parse(serializeManifest(m)));
  await Deno.writeTextFile(`${path}.tmp`, serializeManifest(m));
  await Deno.rename(`${path}.tmp`, path);
}

/** The manifest key of a beta: `1`, `0.875`, ... */
export function betaKey(beta: number): string {
  return String(beta);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
