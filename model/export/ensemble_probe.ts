/**
 * How far the trained checkpoints are from each other: each run's float model (as trained: a
 * quantization-aware run's weights fake-quantized, as export scores it) on the full Fashion-MNIST
 * test set at its base resolution, alone and with horizontal-flip averaging, then the ensemble (mean
 * softmax) of all of them. An ensemble barely above its best member says the members make the same
 * mistakes, so averaging or distilling them cannot reach much further.
 *
 * @example
 * deno run -A model/export/ensemble_probe.ts model/train/runs/s8_a100_soup2_q7/model \
 *   model/train/runs/s9_a100_cifar_q7/model
 */
import { DEFAULT_FASHION_MNIST_DIR, loadIdxDataset } from "../train/data.ts";
import {
  accuracyOf,
  addSoftmaxRows,
  checkpointFloatSession,
  type ImageSet,
  runNode,
} from "./pipeline.ts";

/** The set with every image mirrored left to right (one channel or several, HWC). */
export function mirrored(set: ImageSet): ImageSet {
  const { height: h, width: w, channels: c } = set;
  const out = new Uint8Array(set.images.length);
  for (let i = 0; i < set.n; i++) {
    for (let y = 0; y < h; y++) {
      const row = (i * h + y) * w * c;
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) {
          out[row + x * c + k] = set.images[row + (w - 1 - x) * c + k]!;
        }
      }
    }
  }
  return { ...set, images: out };
}

/** Row-wise softmax of `[n, classes]` logits. */
export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  addSoftmaxRows(logits, classes, 1, out);
  return out;
}

/** Element-wise sum of equally long arrays. */
export function summed(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts[0]!.length);
  for (const p of parts) for (let i = 0; i < p.length; i++) out[i]! += p[i]!;
  return out;
}

if (import.meta.main) {
  const dirs = Deno.args.filter((a) => a !== "--");
  if (dirs.length === 0) {
    console.error(
      "usage: deno run -A model/export/ensemble_probe.ts <run>/model [<run>/model ...]",
    );
    Deno.exit(2);
  }
  const { test } = await loadIdxDataset(DEFAULT_FASHION_MNIST_DIR);
  const flipped = mirrored(test);
  const idx = Array.from({ length: test.n }, (_, i) => i);
  const pct = (p: Float32Array, classes: number) =>
    `${(100 * accuracyOf(p, test.labels, idx, classes)).toFixed(2)}%`;
  const plain: Float32Array[] = [];
  const both: Float32Array[] = [];
  let classes = 0;
  for (const dir of dirs) {
    const { session, spec, plan } = await checkpointFloatSession(dir, { classes });
    classes = spec.classes;
    const p = softmaxRows(await runNode(session, test, idx, plan, classes), classes);
    const f = softmaxRows(await runNode(session, flipped, idx, plan, classes), classes);
    await session.release();
    plain.push(p);
    both.push(summed([p, f]));
    console.log(
      `${dir} (${spec.stridePlan} plan, ${spec.resolution}x${spec.resolution}): ${
        pct(p, classes)
      }, mirrored ${pct(f, classes)}, with flip averaging ${pct(both.at(-1)!, classes)}`,
    );
  }
  console.log(
    `ensemble of ${dirs.length} (mean softmax) on ${test.n} test images: ${
      pct(summed(plain), classes)
    }, with flip averaging ${pct(summed(both), classes)}`,
  );
}
