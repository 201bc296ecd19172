/**
 * Knowledge distillation's soft targets (Hinton, Vinyals and Dean 2015): the mean over teacher
 * models of softmax(logits / T) for every training image, computed once before training (the
 * teachers run as float ONNX in onnxruntime-node, each with its own preprocessing, at its base
 * resolution on the un-augmented image) and cached next to the run as `teachers.f32` with
 * `teachers.json`, which names the teachers' weight hashes and T so a changed teacher is never
 * reused by mistake. `deno task train --teachers A/model,B/model --distill-weight W --distill-temp T`
 * then trains on `(1 - W) * CE(labels) + W * T^2 * CE(soft targets, softmax(logits / T))`.
 *
 * Why: teachers from independent lineages make different mistakes. The mean softmax of an alpha 1.0
 * model from scratch (92.43% at the time) with two of the old lineage (93.74 and 93.34%) scored
 * 94.09% on the test set (`model/export/ensemble_probe.ts`), above each member; one student
 * trained towards their mean can keep part of that gain in a single model of the same cost.
 */
import * as ortNode from "onnxruntime-node";
import { INPUT_NAME, OUTPUT_NAME } from "../export/float_graph.ts";
import {
  accuracyOf,
  addSoftmaxRows,
  checkpointFloatSession,
  type ImageSet,
  runNode,
} from "../export/pipeline.ts";
import { sha256Hex } from "../export/manifest.ts";

/**
 * Where the soft targets come from: `fixed`, once per run on the un-augmented training images
 * (`cachedTeacherTargets`); `batch`, per training step on the batch as the student sees it
 * (augmented, photo round trip included), at the base resolution (`BatchTeachers`).
 */
export type TargetSource = "fixed" | "batch";

function checkTemperature(temperature: number): void {
  if (!(temperature > 0)) {
    throw new RangeError(
      `Cannot distill as the temperature must be above 0: current value is ${temperature}`,
    );
  }
}

/** Per-channel normalization statistics that mean the same (to 1e-6). */
function sameStats(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-6);
}

export interface DistillOptions {
  /** Teacher checkpoints (`<run>/model`). */
  teachers: string[];
  /** Share of the soft-target term in the loss, 0..1. */
  weight: number;
  /** Softmax temperature of the soft targets (and of the student in that term). */
  temperature: number;
}

/**
 * The teachers' mean soft targets for every image of `set` (`[set.n, classes]`), each teacher a
 * float ONNX model in onnxruntime-node (fake-quantized as it trained, like export scores it).
 */
export async function teacherTargets(
  teachers: string[],
  set: ImageSet,
  temperature: number,
  log: (line: string) => void = () => {},
): Promise<{ soft: Float32Array; classes: number }> {
  if (teachers.length === 0) throw new RangeError("Cannot distill as no teacher was given");
  checkTemperature(temperature);
  const idx = Array.from({ length: set.n }, (_, i) => i);
  let soft: Float32Array | undefined;
  let classes = 0;
  for (const dir of teachers) {
    const { session, spec, plan } = await checkpointFloatSession(dir, { classes });
    classes = spec.classes;
    const t0 = performance.now();
    const logits = await runNode(session, set, idx, plan, classes);
    await session.release();
    soft ??= new Float32Array(set.n * classes);
    addSoftmaxRows(logits, classes, temperature, soft, 1 / teachers.length);
    log(
      `teacher ${dir}: ${
        (100 * accuracyOf(logits, set.labels, idx, classes)).toFixed(2)
      }% of ${set.n} training images (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  return { soft: soft!, classes };
}

/** What a cached `teachers.f32` was made from. */
interface TargetsKey {
  teachers: { dir: string; sha256: string }[];
  temperature: number;
  images: number;
  classes: number;
}

/**
 * `teacherTargets`, cached in `out` (`teachers.f32` + `teachers.json`): a resumed run reuses the
 * file when the teachers' weights, T and the image count are unchanged, and recomputes otherwise.
 */
export async function cachedTeacherTargets(
  out: string,
  o: DistillOptions,
  set: ImageSet,
  log: (line: string) => void = () => {},
): Promise<{ soft: Float32Array; classes: number }> {
  const key: Omit<TargetsKey, "classes"> = {
    teachers: await Promise.all(o.teachers.map(async (dir) => ({
      dir,
      sha256: await sha256Hex(await Deno.readFile(`${dir}/weights.bin`)),
    }))),
    temperature: o.temperature,
    images: set.n,
  };
  try {
    const old = JSON.parse(await Deno.readTextFile(`${out}/teachers.json`)) as TargetsKey;
    const { classes, ...rest } = old;
    if (JSON.stringify(rest) === JSON.stringify(key)) {
      const bytes = await Deno.readFile(`${out}/teachers.f32`);
      if (bytes.byteLength === 4 * set.n * classes) {
        log(`soft targets: reused ${out}/teachers.f32`);
        return {
          soft: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
          classes,
        };
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) && !(e instanceof SyntaxError)) throw e;
  }
  const r = await teacherTargets(o.teachers, set, o.temperature, log);
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeFile(`${out}/teachers.f32`, new Uint8Array(r.soft.buffer));
  await Deno.writeTextFile(
    `${out}/teachers.json`,
    JSON.stringify({ ...key, classes: r.classes } satisfies TargetsKey, null, 2) + "\n",
  );
  return r;
}

/** The soft-target rows of images `idx`, `[idx.length, classes]`. */
export function gatherRows(
  soft: Float32Array,
  classes: number,
  idx: ArrayLike<number>,
): Float32Array {
  const out = new Float32Array(idx.length * classes);
  for (let i = 0; i < idx.length; i++) {
    const s = idx[i]! * classes;
    if (s + classes > soft.length) {
      throw new RangeError(
        `Cannot gather soft targets of image ${idx[i]} as they cover ${
          soft.length / classes
        } images`,
      );
    }
    out.set(soft.subarray(s, s + classes), i * classes);
  }
  return out;
}

/**
 * Teachers run on every training batch as augmented (`--distill-targets batch`). Fixed targets on
 * the un-augmented images carry little beyond the labels once the teachers have memorized their
 * training set (99.4, 97.8 and 95.3% of it for the three alpha 1.0 teachers); on augmented images
 * they are less certain, and that uncertainty is what the student learns from. Each teacher is a
 * float ONNX session with one intra-op thread (the training workers hold both cores; a spinning
 * thread pool would take their time), run while the workers compute the previous step.
 */
export class BatchTeachers {
  private constructor(
    private readonly sessions: ortNode.InferenceSession[],
    readonly classes: number,
    private readonly channels: number,
    private readonly temperature: number,
  ) {}

  /**
   * Loads the teachers; the student's batches must mean the same to them, so each teacher's
   * normalization (mean, std), fit and input channels must equal the student's.
   */
  static async load(
    teachers: string[],
    temperature: number,
    student: { mean: readonly number[]; std: readonly number[]; fit: string; channels: number },
  ): Promise<BatchTeachers> {
    if (teachers.length === 0) throw new RangeError("Cannot distill as no teacher was given");
    checkTemperature(temperature);
    const sessions: ortNode.InferenceSession[] = [];
    let classes = 0;
    try {
      for (const dir of teachers) {
        const { session, spec, plan } = await checkpointFloatSession(dir, { threads: 1, classes });
        sessions.push(session);
        if (
          spec.inputChannels !== student.channels || plan.fit !== student.fit ||
          !sameStats(plan.mean, student.mean) || !sameStats(plan.std, student.std)
        ) {
          throw new RangeError(
            `Cannot distill from ${dir} on training batches as its input (channels ${spec.inputChannels}, ` +
              `fit ${plan.fit}, mean ${plan.mean}, std ${plan.std}) differs from the student's ` +
              `(channels ${student.channels}, fit ${student.fit}, mean ${student.mean}, std ${student.std}); ` +
              `use --distill-targets fixed`,
          );
        }
        classes = spec.classes;
      }
    } catch (e) {
      await Promise.all(sessions.map((s) => s.release()));
      throw e;
    }
    return new BatchTeachers(sessions, classes, student.channels, temperature);
  }

  /**
   * The teachers' mean softmax(logits / T), `[n, classes]`, for `n` normalized NHWC images of
   * side `r` (the layout the training batches have).
   */
  async targets(nhwc: Float32Array, n: number, r: number): Promise<Float32Array> {
    const c = this.channels;
    const px = r * r;
    let x: Float32Array;
    if (c === 1) {
      x = nhwc.slice(0, n * px);
    } else {
      x = new Float32Array(n * c * px);
      for (let b = 0; b < n; b++) {
        for (let p = 0; p < px; p++) {
          for (let ch = 0; ch < c; ch++) x[(b * c + ch) * px + p] = nhwc[(b * px + p) * c + ch]!;
        }
      }
    }
    const soft = new Float32Array(n * this.classes);
    for (const session of this.sessions) {
      const res = await session.run({
        [INPUT_NAME]: new ortNode.Tensor("float32", x, [n, c, r, r]),
      });
      addSoftmaxRows(
        res[OUTPUT_NAME]!.data as Float32Array,
        this.classes,
        this.temperature,
        soft,
        1 / this.sessions.length,
      );
    }
    return soft;
  }

  async close(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.release()));
  }
}
