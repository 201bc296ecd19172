/**
 * A models directory for tests: `manifest.json` plus one tiny ONNX file per alpha (see
 * `tiny_model.ts`), in the exact format `deno task export` writes. The files carry no trained
 * weights: tests that need real accuracy use the shipped artifacts.
 */
import {
  type Manifest,
  MANIFEST_FORMAT,
  type ManifestModel,
  serializeManifest,
  sha256Hex,
} from "../../model/export/manifest.ts";
import { type TinyModel, tinyModel } from "./tiny_model.ts";

export const FASHION_LABELS = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

export interface TinyArtifacts {
  dir: string;
  manifest: Manifest;
  models: TinyModel[];
}

/** Writes the directory; `edit` may change each manifest entry before it is written. */
export async function writeTinyArtifacts(
  opts: {
    alphas?: number[];
    channels?: 1 | 3;
    baseResolution?: number;
    edit?: (m: ManifestModel) => void;
  } = {},
): Promise<TinyArtifacts> {
  const dir = await Deno.makeTempDir({ prefix: "registry_test_" });
  const channels = opts.channels ?? 1;
  const models: TinyModel[] = [];
  const entries: ManifestModel[] = [];
  for (const [i, alpha] of (opts.alphas ?? [0.25, 0.5]).entries()) {
    const tiny = tinyModel(channels, FASHION_LABELS.length, i + 1);
    models.push(tiny);
    const id = `mobilenet_v1_a${alpha}`;
    const file = `${id}.onnx`;
    await Deno.writeFile(`${dir}/${file}`, tiny.onnx);
    const m: ManifestModel = {
      id,
      arch: "mobilenet_v1",
      alpha,
      stridePlan: "imagenet_stem1",
      baseResolution: opts.baseResolution ?? 28,
      inputChannels: channels,
      classes: FASHION_LABELS.length,
      labels: FASHION_LABELS,
      preprocessing: {
        mean: new Array(channels).fill(0.286),
        std: new Array(channels).fill(0.353),
        polarity: "light-on-dark",
        layout: "NCHW",
        fit: "resize",
      },
      precision: "int8",
      trained: false,
      file,
      sha256: await sha256Hex(tiny.onnx),
      bytes: tiny.onnx.length,
      input: { name: "input", shape: ["batch", channels, "height", "width"] },
      output: { name: "logits", shape: ["batch", FASHION_LABELS.length] },
      quantization: {
        format: "none (test model)",
        calibration: "none",
        calibrationImages: 0,
        candidates: {},
        heldOutImages: 0,
        weightQmax: 64,
      },
      verification: { images: 0, floatOrtNode: 0, floatOrtWeb: 0, int8OrtWebVsNode: 0 },
      accuracy: { float: { "1": 0.5, "0.75": 0.4 }, int8: { "1": 0.45, "0.75": 0.35 } },
      evaluated: null,
      training: {
        recipe: "none",
        epochs: 0,
        seconds: 0,
        command: "tests/runtime/tiny_artifacts.ts",
      },
      source: { checkpoint: "none", weightsSha256: "none" },
    };
    opts.edit?.(m);
    entries.push(m);
  }
  const manifest: Manifest = { format: MANIFEST_FORMAT, models: entries };
  await Deno.writeTextFile(`${dir}/manifest.json`, serializeManifest(manifest));
  return { dir, manifest, models };
}
