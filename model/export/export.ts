/**
 * `deno task export`: checkpoint -> int8 ONNX in model/artifacts + manifest entry.
 *
 * @example
 * deno task export --checkpoint model/train/runs/v1_a025/model --out model/artifacts
 * # an untrained stand-in (random weights, BN re-estimated), marked "trained": false:
 * deno task export --random-seed 1 --alpha 0.25 --plan imagenet_stem1 --resolution 28
 */
import { FASHION_MNIST_LABELS, loadIdxDataset } from "../train/data.ts";
import { initDirs, loadWeights, loadWeightsMeta, type NamedTensors } from "../weights.ts";
import type { CalibrationMethod } from "./calibrate.ts";
import { INPUT_NAME, OUTPUT_NAME } from "./float_graph.ts";
import {
  type ManifestModel,
  readManifest,
  sha256Hex,
  type TrainingStage,
  writeManifest,
} from "./manifest.ts";
import {
  basePlan,
  type CheckpointMeta,
  exportModel,
  type ImageSet,
  parseCheckpointMeta,
  specFromMeta,
} from "./pipeline.ts";
import { QUANTIZATION_FORMAT, WEIGHT_QMAX } from "./quantize.ts";
import { standInWeights } from "./stand_in.ts";

export const DEFAULT_METHODS: CalibrationMethod[] = [
  "minmax",
  "percentile:99.99",
  "percentile:99.999",
  "entropy",
];

export interface ExportArgs {
  checkpoint?: string;
  out: string;
  data: string;
  randomSeed?: number;
  alpha: number;
  plan: string;
  resolution: number;
  calibrationImages: number;
  heldOut: number;
  verifyImages: number;
  methods: CalibrationMethod[];
  floatOut?: string;
}

const USAGE = `deno task export --checkpoint DIR [--out model/artifacts] [options]
  --checkpoint DIR         trainer output (<run>/model or <run>, weights.json + weights.bin)
  --random-seed N          instead of a checkpoint: untrained stand-in ("trained": false)
    --alpha A --plan P --resolution R   its architecture (defaults 0.25, imagenet_stem1, 28)
  --out DIR                artifacts folder with manifest.json (default model/artifacts)
  --data DIR               Fashion-MNIST IDX folder (default /usr/share/datasets/fashion-mnist)
  --calibration-images N   training images for calibration (default 1000)
  --held-out N             other training images that score each method (default 2000)
  --methods LIST           comma-separated: minmax, entropy, percentile:<p>
                           (default ${DEFAULT_METHODS.join(",")})
  --float-out DIR          also write the float ONNX there`;

export function parseExportArgs(argv: string[]): ExportArgs {
  const a: ExportArgs = {
    out: "model/artifacts",
    data: "/usr/share/datasets/fashion-mnist",
    alpha: 0.25,
    plan: "imagenet_stem1",
    resolution: 28,
    calibrationImages: 1000,
    heldOut: 2000,
    verifyImages: 8,
    methods: DEFAULT_METHODS,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new TypeError(`Cannot parse ${k} as it needs a value\n${USAGE}`);
      return x;
    };
    switch (k) {
      case "--":
        break;
      case "--checkpoint":
        a.checkpoint = v();
        break;
      case "--out":
        a.out = v();
        break;
      case "--data":
        a.data = v();
        break;
      case "--random-seed":
        a.randomSeed = Number(v());
        break;
      case "--alpha":
        a.alpha = Number(v());
        break;
      case "--plan":
        a.plan = v();
        break;
      case "--resolution":
        a.resolution = Number(v());
        break;
      case "--calibration-images":
        a.calibrationImages = Number(v());
        break;
      case "--held-out":
        a.heldOut = Number(v());
        break;
      case "--verify-images":
        a.verifyImages = Number(v());
        break;
      case "--methods":
        a.methods = v().split(",") as CalibrationMethod[];
        break;
      case "--float-out":
        a.floatOut = v();
        break;
      case "--help":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new TypeError(`Cannot parse argument ${k} as it is unknown\n${USAGE}`);
    }
  }
  if ((a.checkpoint === undefined) === (a.randomSeed === undefined)) {
    throw new TypeError(
      `Cannot export as exactly one of --checkpoint, --random-seed is needed\n${USAGE}`,
    );
  }
  return a;
}

async function resolveCheckpoint(dir: string): Promise<string> {
  for (const d of [dir, `${dir}/model`]) {
    try {
      await Deno.stat(`${d}/weights.json`);
      return d;
    } catch {
      // try the next
    }
  }
  throw new TypeError(
    `Cannot export as ${dir} holds no weights.json (nor ${dir}/model/weights.json)`,
  );
}

/**
 * A checkpoint's lineage, first run to last: the runs its `recipe.init` named (another run's
 * `model/` folder, or several comma-separated whose weights it averaged), theirs before them, and
 * so on, each once and after every run it started from; the run itself last. A stage whose folder
 * is gone ends that branch.
 */
export async function trainingStages(dir: string): Promise<TrainingStage[]> {
  const out: TrainingStage[] = [];
  const seen = new Set<string>();
  const visit = async (at: string): Promise<void> => {
    if (seen.has(at)) return;
    seen.add(at);
    let meta: Record<string, unknown>;
    try {
      meta = await loadWeightsMeta(at);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    const recipe = meta.recipe as { init?: unknown; distill?: { teachers?: unknown } } | undefined;
    if (typeof recipe?.init === "string") { for (const d of initDirs(recipe.init)) await visit(d); }
    // A distilled stage also needed its teachers (and what made them) before it could run.
    const teachers = recipe?.distill?.teachers;
    if (Array.isArray(teachers)) {
      for (const d of teachers) if (typeof d === "string") await visit(d);
    }
    out.push({
      checkpoint: at,
      epochs: Number(meta.epochs ?? 0),
      seconds: Number(meta.seconds ?? 0),
      command: String(meta.command ?? ""),
    });
  };
  await visit(dir);
  return out;
}

/** Runs the whole export for one model and upserts its manifest entry. */
export async function runExport(args: ExportArgs, command: string): Promise<ManifestModel> {
  const log = (s: string) => console.log(s);
  const data = await loadIdxDataset(args.data);
  const train: ImageSet = data.train;
  const test: ImageSet = data.test;
  let meta: CheckpointMeta;
  let tensors: NamedTensors;
  let source: ManifestModel["source"];
  let trained: boolean;
  if (args.checkpoint !== undefined) {
    const dir = await resolveCheckpoint(args.checkpoint);
    const loaded = await loadWeights(dir);
    meta = parseCheckpointMeta(loaded.meta);
    tensors = loaded.tensors;
    source = {
      checkpoint: dir,
      weightsSha256: await sha256Hex(await Deno.readFile(`${dir}/weights.bin`)),
    };
    trained = true;
  } else {
    const seed = args.randomSeed!;
    const made = await standInWeights(
      { alpha: args.alpha, plan: args.plan, resolution: args.resolution, seed },
      train,
      FASHION_MNIST_LABELS,
    );
    meta = made.meta;
    tensors = made.tensors;
    source = { checkpoint: made.source, weightsSha256: made.weightsSha256 };
    trained = false;
  }
  const spec = specFromMeta(meta);
  const id = `${spec.arch}_a${spec.alpha}`;
  log(
    `export ${id}: ${spec.stridePlan} plan, ${spec.resolution}x${spec.resolution}x${spec.inputChannels}, ${spec.classes} classes, ${
      trained ? "trained" : "UNTRAINED stand-in"
    }`,
  );
  const plan = basePlan(meta);
  const r = await exportModel({
    spec,
    tensors,
    plan,
    train,
    test,
    calibrationImages: args.calibrationImages,
    heldOutImages: args.heldOut,
    verifyImages: args.verifyImages,
    methods: args.methods,
    weightQmax: meta.weightQmax,
    log,
  });
  await Deno.mkdir(args.out, { recursive: true });
  const file = `${id}.onnx`;
  await Deno.writeFile(`${args.out}/${file}`, r.int8Bytes);
  if (args.floatOut) {
    await Deno.mkdir(args.floatOut, { recursive: true });
    await Deno.writeFile(`${args.floatOut}/${id}.float.onnx`, r.floatBytes);
  }
  const sha256 = await sha256Hex(r.int8Bytes);
  const manifestPath = `${args.out}/manifest.json`;
  const manifest = await readManifest(manifestPath);
  const old = manifest.models.find((m) => m.id === id);
  // Eval's numbers stay only while they describe exactly this file and checkpoint.
  const keepAccuracy = old !== undefined && old.sha256 === sha256 &&
    old.source.weightsSha256 === source.weightsSha256;
  const entry: ManifestModel = {
    id,
    arch: spec.arch,
    alpha: spec.alpha,
    stridePlan: spec.stridePlan,
    baseResolution: spec.resolution,
    inputChannels: spec.inputChannels,
    classes: spec.classes,
    labels: meta.labels,
    preprocessing: {
      mean: meta.mean,
      std: meta.std,
      polarity: meta.polarity,
      layout: "NCHW",
      fit: meta.fit,
    },
    precision: "int8",
    trained,
    file,
    sha256,
    bytes: r.int8Bytes.length,
    input: { name: INPUT_NAME, shape: ["batch", spec.inputChannels, "height", "width"] },
    output: { name: OUTPUT_NAME, shape: ["batch", spec.classes] },
    quantization: {
      format: QUANTIZATION_FORMAT,
      calibration: r.method,
      calibrationImages: args.calibrationImages,
      candidates: r.candidates,
      heldOutImages: args.heldOut,
      weightQmax: meta.weightQmax ?? WEIGHT_QMAX,
    },
    verification: r.verification,
    accuracy: keepAccuracy ? old.accuracy : { float: {}, int8: {} },
    evaluated: keepAccuracy ? old.evaluated : null,
    training: {
      recipe: meta.recipe,
      epochs: meta.epochs,
      seconds: meta.seconds,
      command: meta.command,
      ...(trained ? { stages: await trainingStages(source.checkpoint) } : {}),
    },
    source,
  };
  const models = manifest.models.filter((m) => m.id !== id);
  models.push(entry);
  models.sort((a, b) => a.arch.localeCompare(b.arch) || a.alpha - b.alpha);
  await writeManifest(manifestPath, { format: manifest.format, models });
  log(
    `wrote ${args.out}/${file} (${r.int8Bytes.length} bytes, sha256 ${
      sha256.slice(0, 12)
    }…) and ${manifestPath}; command: ${command}`,
  );
  return entry;
}

if (import.meta.main) {
  const args = parseExportArgs(Deno.args);
  await runExport(args, `deno task export ${Deno.args.filter((a) => a !== "--").join(" ")}`);
}
