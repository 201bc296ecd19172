import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "../../../model/train/backend.ts";
import { buildSpec, type ConvLayer } from "../../../model/spec.ts";
import type { NamedTensors } from "../../../model/weights.ts";
import { loadWeights } from "../../../model/weights.ts";
import { fakeQuant, initWeights, TfMobileNet } from "../../../model/train/mobilenet.ts";
import { Rng } from "../../../model/train/rng.ts";
import { foldModel } from "../../../model/export/fold_bn.ts";
import { quantizeWeightsPerChannel } from "../../../model/export/quantize.ts";
import { parseCheckpointMeta } from "../../../model/export/pipeline.ts";
import { DEFAULT_OPTIONS, parseArgs, train } from "../../../model/train/train.ts";

const QMAX = 3;
const spec = buildSpec({
  alpha: 0.25,
  resolution: 12,
  inputChannels: 1,
  classes: 10,
  stridePlan: "cifar",
});

/** He-normal weights with BN parameters that make the fold matter (negative gammas included). */
function weights(): NamedTensors {
  const w = initWeights(spec, new Rng(7));
  const rng = new Rng(8);
  for (const [name, t] of w) {
    if (name.endsWith("/bn/gamma")) t.data.forEach((_, i) => t.data[i] = rng.uniform(-2, 2));
    if (name.endsWith("/moving_variance")) {
      t.data.forEach((_, i) => t.data[i] = rng.uniform(0.1, 3));
    }
    if (name.endsWith("/moving_mean") || name.endsWith("/bn/beta")) {
      t.data.forEach((_, i) => t.data[i] = rng.normal());
    }
  }
  return w;
}

/** The kernels as the QAT forward pass sees them (`fakeQuant`), other tensors unchanged. */
function fakeQuantized(w: NamedTensors): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, t] of w) {
    if (!name.endsWith("/kernel")) {
      out.set(name, t);
      continue;
    }
    const axes = t.shape.length === 2 ? [0, 1] : name.includes("_dw") ? [0, 1, 3] : [0, 1, 2];
    const data = tf.tidy(() =>
      fakeQuant(tf.tensor(t.data, t.shape), QMAX, axes).dataSync() as Float32Array
    );
    out.set(name, { shape: t.shape, data: Float32Array.from(data) });
  }
  return out;
}

Deno.test("QAT kernels hold exactly the integers the exporter writes after folding batch norm", async () => {
  await tf.setBackend("cpu");
  const w = weights();
  const fq = fakeQuantized(w);
  let layers = 0;
  for (const f of foldModel(spec, w)) {
    const name = f.layer.name;
    const t = w.get(`${name}/kernel`)!;
    const q = fq.get(`${name}/kernel`)!.data;
    const outC = f.kind === "conv" ? f.weightDims[0] : 1;
    const gamma = f.kind === "conv" && f.layer.batchNorm
      ? w.get(`${name}/bn/gamma`)!.data
      : undefined;
    const exported = quantizeWeightsPerChannel(f.weight, outC, QMAX);
    // QAT values are q * s with s = max|w[c]| / QMAX per output channel (one s for the FC):
    // recover q in the exporter's layout and compare the integers.
    const [kh, kw, cin, cout] = t.shape.length === 4
      ? t.shape as [number, number, number, number]
      : [1, 1, t.shape[0]!, t.shape[1]!];
    const depthwise = f.kind === "conv" && (f.layer as ConvLayer).groups > 1;
    const channels = depthwise ? cin : cout;
    const maxAbs = new Float32Array(f.kind === "fc" ? 1 : channels);
    t.data.forEach((v, i) => {
      const c = f.kind === "fc" ? 0 : depthwise ? Math.floor(i / cout) % cin : i % cout;
      maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(v));
    });
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let i = 0; i < cin; i++) {
          for (let o = 0; o < cout; o++) {
            const src = ((y * kw + x) * cin + i) * cout + o;
            const c = f.kind === "fc" ? 0 : depthwise ? i : o;
            // A negative BN scale flips the channel's sign in the fold, and so its integers.
            const sign = gamma && gamma[c]! < 0 ? -1 : 1;
            const qi = sign * Math.round(q[src]! / Math.fround(maxAbs[c]! / QMAX));
            // Exporter layouts: OIHW [out, in/groups, kh, kw]; depthwise [C, 1, kh, kw]; FC [in, out].
            const dst = f.kind === "fc"
              ? i * cout + o
              : depthwise
              ? (i * kh + y) * kw + x
              : ((o * cin + i) * kh + y) * kw + x;
            assert.equal(qi + 0, exported.q[dst], `${name} [${y},${x},${i},${o}]`); // +0: no -0
            assert.ok(Math.abs(qi) <= QMAX);
          }
        }
      }
    }
    layers++;
  }
  assert.equal(layers, spec.layers.filter((l) => l.kind !== "pool").length);
});

Deno.test("QAT forward equals the float model run on the fake-quantized weights; gradients pass straight through", async () => {
  await tf.setBackend("cpu");
  const w = weights();
  const rng = new Rng(3);
  const n = 4;
  const x = Float32Array.from({ length: n * 144 }, () => rng.normal());
  const labels = Int32Array.from({ length: n }, () => rng.int(10));
  const qat = new TfMobileNet(spec, { weightQmax: QMAX });
  qat.setWeights(w);
  const ref = new TfMobileNet(spec);
  ref.setWeights(fakeQuantized(w));
  try {
    const xt = tf.tensor4d(x, [n, 12, 12, 1]);
    const a = tf.tidy(() => qat.forward(xt, false).dataSync() as Float32Array);
    const b = tf.tidy(() => ref.forward(xt, false).dataSync() as Float32Array);
    xt.dispose();
    assert.deepEqual(Array.from(a), Array.from(b));
    const ga = qat.gradients(x, labels, n);
    const gb = ref.gradients(x, labels, n);
    assert.equal(ga.loss, gb.loss);
    assert.deepEqual(Array.from(ga.grads), Array.from(gb.grads));
    // Quantization changes the function: the float model's logits differ.
    const plain = new TfMobileNet(spec);
    plain.setWeights(w);
    const xt2 = tf.tensor4d(x, [n, 12, 12, 1]);
    const c = tf.tidy(() => plain.forward(xt2, false).dataSync() as Float32Array);
    xt2.dispose();
    plain.dispose();
    assert.ok(a.some((v, i) => Math.abs(v - c[i]!) > 1e-3), "3-level weights change the logits");
  } finally {
    qat.dispose();
    ref.dispose();
  }
});

Deno.test("--weight-qmax trains quantization-aware and records the range for the exporter", async () => {
  assert.equal(parseArgs(["--weight-qmax", "7"]).weightQmax, 7);
  assert.equal(parseArgs([]).weightQmax, 0);
  assert.throws(() => parseArgs(["--weight-qmax", "65"]), /1\.\.64/);
  assert.throws(() => parseArgs(["--weight-qmax", "2.5"]), /1\.\.64/);
  const dir = await Deno.makeTempDir();
  try {
    // As train_test's descent test (320 images, lr 1e-2, no augmentation), through a worker, with
    // 4-bit weights (-7..7): from random weights 3 levels learn too slowly to show in 10 steps.
    const o = {
      ...DEFAULT_OPTIONS,
      out: dir,
      workers: 1,
      kernels: "own" as const,
      batch: 32,
      epochs: 1,
      limitTrain: 320,
      limitTest: 64,
      bnBatches: 2,
      bnBatchSize: 32,
      ckptEvery: 0,
      quiet: true,
      weightQmax: 7,
      augment: { ...DEFAULT_OPTIONS.augment, hflip: 0, padCrop: 0 },
    };
    o.recipe = { ...o.recipe, lr: 1e-2 };
    const r = await train(o);
    assert.equal(r.stepLosses.length, 10);
    const first = (r.stepLosses[0]! + r.stepLosses[1]!) / 2;
    const last = (r.stepLosses[8]! + r.stepLosses[9]!) / 2;
    assert.ok(last < first - 0.1, `loss should fall: first ${first}, last ${last}`);
    const { meta } = await loadWeights(`${dir}/model`);
    assert.equal(meta.weightQmax, 7);
    assert.equal(parseCheckpointMeta(meta).weightQmax, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
