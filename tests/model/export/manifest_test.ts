import assert from "node:assert/strict";
import {
  type Manifest,
  MANIFEST_FORMAT,
  parseManifest,
  serializeManifest,
} from "../../../model/export/manifest.ts";
import { renderCardSection, updateCard } from "../../../model/export/eval.ts";

export const example: Manifest = {
  format: MANIFEST_FORMAT,
  models: [{
    id: "mobilenet_v1_a0.25",
    arch: "mobilenet_v1",
    alpha: 0.25,
    stridePlan: "imagenet_stem1",
    baseResolution: 28,
    inputChannels: 1,
    classes: 2,
    labels: ["a", "b"],
    preprocessing: {
      mean: [0.286],
      std: [0.353],
      polarity: "light-on-dark",
      layout: "NCHW",
      fit: "resize",
    },
    precision: "int8",
    trained: true,
    file: "mobilenet_v1_a0.25.onnx",
    sha256: "ab".repeat(32),
    bytes: 1234,
    input: { name: "input", shape: ["batch", 1, "height", "width"] },
    output: { name: "logits", shape: ["batch", 2] },
    quantization: {
      format: "qdq-u8s7-perchannel/1",
      calibration: "minmax",
      calibrationImages: 1000,
      candidates: { minmax: 0.9, entropy: 0.8 },
      heldOutImages: 2000,
      weightQmax: 64,
    },
    verification: { images: 8, floatOrtNode: 1e-6, floatOrtWeb: 2e-6, int8OrtWebVsNode: 0 },
    accuracy: { float: { "1": 0.91, "0.5": 0.8 }, int8: { "1": 0.905, "0.5": 0.79 } },
    evaluated: {
      command: "deno task eval",
      date: "2026-11-28T00:00:00.000Z",
      images: 10000,
      runtime: "x",
    },
    training: { recipe: "{}", epochs: 3, seconds: 3600, command: "deno task train" },
    source: { checkpoint: "model/train/runs/x/model", weightsSha256: "cd".repeat(32) },
  }],
};

Deno.test("a manifest survives serializeManifest() and parseManifest() unchanged", () => {
  const back = parseManifest(JSON.parse(serializeManifest(example)));
  assert.deepEqual(back, example);
});

Deno.test("parseManifest() names the first wrong field and its value", () => {
  const bad = structuredClone(example) as unknown as { models: Record<string, unknown>[] };
  bad.models[0]!.alpha = "0.25";
  assert.throws(
    () => parseManifest(bad),
    /manifest\.models\[0\]\.alpha must be a finite number: current value is "0.25"/,
  );
  const wrongLabels = structuredClone(example);
  wrongLabels.models[0]!.labels = ["a"];
  assert.throws(() => parseManifest(wrongLabels), /labels must be 2 labels/);
  const acc = structuredClone(example);
  acc.models[0]!.accuracy.int8["1"] = 91;
  assert.throws(() => parseManifest(acc), /accuracy\.int8\.1 must be a fraction in \[0, 1\]/);
  assert.throws(
    () => parseManifest({ format: "x", models: [] }),
    /manifest\.format must be mobilenet-manifest\/1/,
  );
});

Deno.test("renderCardSection() tables every beta from the manifest and updateCard() replaces only its section", () => {
  const section = renderCardSection(example);
  assert.match(section, /\| 1 \| 28 \| [0-9.]+M \| 91\.00% \| 90\.50% \| -0\.50 \|/);
  assert.match(section, /\| 0\.5 \| 14 \| [0-9.]+M \| 80\.00% \| 79\.00% \| -1\.00 \|/);
  assert.match(section, /\| 0\.875 \| 25 \| [0-9.]+M \| n\/a \| n\/a \| n\/a \|/);
  const card = `# Card\n\nintro\n\n${section}\n\n## After\n`;
  const updated = updateCard(card, renderCardSection({ format: MANIFEST_FORMAT, models: [] }));
  assert.match(updated, /^# Card\n\nintro\n\n/);
  assert.match(updated, /No model is shipped yet\./);
  assert.match(updated, /\n\n## After\n$/);
  assert.doesNotMatch(updated, /91\.00%/);
});

Deno.test("renderCardSection() says a weight average's last stage trained nothing and lists its sources", () => {
  const stage = (name: string, epochs: number) => ({
    checkpoint: `runs/${name}/model`,
    epochs,
    seconds: 600 * epochs,
    command: `deno task train --out runs/${name} --epochs ${epochs}`,
  });
  const soup: Manifest = {
    ...example,
    models: [{
      ...example.models[0]!,
      training: {
        recipe: "{}",
        epochs: 0,
        seconds: 0,
        command: "deno task train --out runs/soup --epochs 0 --init runs/a/model,runs/b/model",
        stages: [stage("a", 2), stage("b", 1), stage("soup", 0)],
      },
    }],
  };
  const section = renderCardSection(soup);
  assert.match(section, /Training: none in this last stage, which averages the weights/);
  assert.match(section, /All 3 stages, first to last .*3 epochs and 30 min/s);
  assert.doesNotMatch(section, /Training: 0 epochs/);
  // An ordinary run keeps its epochs and minutes.
  assert.match(renderCardSection(example), /Training: 3 epochs, 60 min/);
});
