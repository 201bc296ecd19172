/**
 * The measurement behind the weight ranges (see `quantize.ts`): one checkpoint quantized with
 * weights in -qmax..qmax for each `--qmax` (default 64 and 127), each run in onnxruntime-node
 * (u8s8 kernels, which saturate on CPUs without VNNI) and in onnxruntime-web (exact), on the first
 * N test images at beta 1; with the file's size packed for the Workers build (`edge/model_pack.ts`),
 * which is what narrower weight ranges buy.
 *
 * @example
 * deno run -A model/export/weight_bits_study.ts model/train/runs/v1_a025_stem1_28/model 2000
 * deno run -A model/export/weight_bits_study.ts <run>/model 2000 --qmax 64,31,15,7
 */
import * as ortWeb from "onnxruntime-web";
import { loadIdxDataset } from "../train/data.ts";
import { loadWeights } from "../weights.ts";
import { collectStats, rangesFor } from "./calibrate.ts";
import { foldModel } from "./fold_bn.ts";
import { INPUT_NAME, OUTPUT_NAME } from "./float_graph.ts";
import { encodeModel } from "./onnx_writer.ts";
import {
  accuracyOf,
  argmax,
  basePlan,
  inputBatch,
  nodeSession,
  parseCheckpointMeta,
  runNode,
  sampleIndices,
  specFromMeta,
} from "./pipeline.ts";
import { quantizeModel } from "./quantize.ts";
import { packModel } from "../../edge/model_pack.ts";

const qmaxAt = Deno.args.indexOf("--qmax");
const qmaxes = qmaxAt >= 0 ? Deno.args[qmaxAt + 1]!.split(",").map(Number) : [64, 127];
if (qmaxes.some((q) => !Number.isInteger(q) || q < 1 || q > 127)) {
  throw new RangeError(`Cannot study --qmax ${qmaxes.join(",")}: give integers in 1..127`);
}
const [dir, count] = Deno.args.filter((a, i) =>
  a !== "--" && a !== "--qmax" && !(qmaxAt >= 0 && i === qmaxAt + 1)
);
if (!dir) {
  throw new TypeError("Cannot run the study as a checkpoint folder is needed: see @example");
}
const n = Number(count ?? 2000);
const ds = await loadIdxDataset();
const { tensors, meta: raw } = await loadWeights(dir);
const meta = parseCheckpointMeta(raw);
const spec = specFromMeta(meta);
const r = spec.resolution;
const plan = basePlan(meta);
const folded = foldModel(spec, tensors);
const cal = sampleIndices(1000, 0, ds.train.n, 1234);
const batches = [];
for (let s = 0; s < cal.length; s += 100) {
  const idx = cal.slice(s, s + 100);
  batches.push({
    data: inputBatch(ds.train, idx, plan),
    shape: [idx.length, spec.inputChannels, r, r] as [number, number, number, number],
  });
}
const ranges = rangesFor(await collectStats(spec, folded, batches), "percentile:99.99");
const idx = Array.from({ length: Math.min(n, ds.test.n) }, (_, i) => i);
ortWeb.env.wasm.numThreads = 1;
console.log(`${dir}: ${idx.length} test images, beta 1, calibration percentile:99.99`);
for (const weightQmax of qmaxes) {
  const bytes = encodeModel(
    quantizeModel(spec, folded, ranges, { calibration: "study", weightQmax }),
  );
  const node = await runNode(await nodeSession(bytes), ds.test, idx, plan, spec.classes);
  const web = new Float32Array(node.length);
  const s = await ortWeb.InferenceSession.create(bytes);
  for (let i = 0; i < idx.length; i += 250) {
    const b = idx.slice(i, i + 250);
    const out = await s.run({
      [INPUT_NAME]: new ortWeb.Tensor("float32", inputBatch(ds.test, b, plan), [
        b.length,
        spec.inputChannels,
        r,
        r,
      ]),
    });
    web.set(out[OUTPUT_NAME]!.data as Float32Array, i * spec.classes);
  }
  let agree = 0;
  for (let i = 0; i < idx.length; i++) {
    if (argmax(node, i, spec.classes) === argmax(web, i, spec.classes)) agree++;
  }
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  console.log(
    `weights -${weightQmax}..${weightQmax}: onnxruntime-node ${
      pct(accuracyOf(node, ds.test.labels, idx, spec.classes))
    }, onnxruntime-web ${pct(accuracyOf(web, ds.test.labels, idx, spec.classes))}, ` +
      `node/web argmax agreement ${pct(agree / idx.length)}, ` +
      `packed ${(packModel(bytes).length / 1e6).toFixed(3)} MB of ${
        (bytes.length / 1e6).toFixed(3)
      } MB`,
  );
}
