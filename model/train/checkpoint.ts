/**
 * Training checkpoints: the model's named tensors (the `model/weights.ts` format the exporter
 * reads) plus the optimizer's state and the loop's position, written so that a run killed at any
 * moment resumes from the last complete checkpoint.
 *
 * Layout of `<dir>`: `weights.json` / `weights.bin` (model; `meta.state` holds epoch, step, RNG
 * state and history) and `optimizer/weights.json` / `weights.bin` (`<param>/adam_m`,
 * `<param>/adam_v`, `<param>/sgd_momentum`; `meta.t` = Adam steps). A new checkpoint is written to
 * `<dir>.tmp`, then swapped in by renames (`<dir>` -> `<dir>.old`, `<dir>.tmp` -> `<dir>`).
 */
import { loadWeights, type NamedTensors, saveWeights } from "../weights.ts";
import type { ParamInfo } from "./mobilenet.ts";
import { Optimizer } from "./optim.ts";

/** Joins the trainable tensors into one vector (`infos` order). */
export function flatten(infos: ParamInfo[], w: NamedTensors): Float32Array {
  const size = infos.reduce((a, p) => a + p.size, 0);
  const out = new Float32Array(size);
  let o = 0;
  for (const p of infos) {
    const t = w.get(p.name);
    if (!t || t.data.length !== p.size) {
      throw new TypeError(
        `Cannot flatten weights as ${p.name} must hold ${p.size} values: current ${
          t ? t.data.length : "missing"
        }`,
      );
    }
    out.set(t.data, o);
    o += p.size;
  }
  return out;
}

/** Splits a vector back into named tensors (views into `flat`). */
export function unflatten(
  infos: ParamInfo[],
  flat: Float32Array,
  into: NamedTensors = new Map(),
): NamedTensors {
  let o = 0;
  for (const p of infos) {
    into.set(p.name, { shape: p.shape, data: flat.subarray(o, o + p.size) });
    o += p.size;
  }
  if (o !== flat.length) {
    throw new RangeError(
      `Cannot unflatten weights as the vector holds ${flat.length} values: ${o} expected`,
    );
  }
  return into;
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function saveCheckpoint(
  dir: string,
  weights: NamedTensors,
  trainable: ParamInfo[],
  opt: Optimizer,
  meta: Record<string, unknown>,
): Promise<void> {
  const tmp = `${dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await saveWeights(tmp, weights, meta);
  const os: NamedTensors = new Map();
  let o = 0;
  for (const p of trainable) {
    os.set(`${p.name}/adam_m`, { shape: p.shape, data: opt.m.subarray(o, o + p.size) });
    os.set(`${p.name}/adam_v`, { shape: p.shape, data: opt.v.subarray(o, o + p.size) });
    os.set(`${p.name}/sgd_momentum`, { shape: p.shape, data: opt.mom.subarray(o, o + p.size) });
    o += p.size;
  }
  await saveWeights(`${tmp}/optimizer`, os, { t: opt.t });
  if (await exists(dir)) {
    await Deno.remove(`${dir}.old`, { recursive: true }).catch(() => {});
    await Deno.rename(dir, `${dir}.old`);
  }
  await Deno.rename(tmp, dir);
  await Deno.remove(`${dir}.old`, { recursive: true }).catch(() => {});
}

export interface LoadedCheckpoint {
  weights: NamedTensors;
  opt: Optimizer;
  meta: Record<string, unknown>;
}

/** The complete checkpoint folder: `<dir>`, or `<dir>.old` when a swap was interrupted. */
export async function checkpointPath(dir: string): Promise<string | undefined> {
  for (const d of [dir, `${dir}.old`]) {
    if ((await exists(`${d}/weights.json`)) && (await exists(`${d}/optimizer/weights.json`))) {
      return d;
    }
  }
  return undefined;
}

/**
 * The last epoch a run folder records as finished: the largest `epoch` in `<out>/history.jsonl`,
 * counted only when `<out>/model/weights.json` exists (each epoch writes `model/` before its
 * history line); 0 when either is missing.
 */
export async function finishedEpochs(out: string): Promise<number> {
  if (!(await exists(`${out}/model/weights.json`))) return 0;
  let text: string;
  try {
    text = await Deno.readTextFile(`${out}/history.jsonl`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  let last = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const epoch = Number((JSON.parse(line) as { epoch?: unknown }).epoch);
    if (Number.isInteger(epoch) && epoch > last) last = epoch;
  }
  return last;
}

/** Loads `<dir>` (or `<dir>.old` when a swap was interrupted); undefined when neither exists. */
export async function loadCheckpoint(
  dir: string,
  trainable: ParamInfo[],
): Promise<LoadedCheckpoint | undefined> {
  const d = await checkpointPath(dir);
  if (d === undefined) return undefined;
  const { tensors, meta } = await loadWeights(d);
  const os = await loadWeights(`${d}/optimizer`);
  const size = trainable.reduce((a, p) => a + p.size, 0);
  const opt = new Optimizer(size);
  opt.t = Number(os.meta.t ?? 0);
  let o = 0;
  for (const p of trainable) {
    const get = (k: string) => {
      const t = os.tensors.get(`${p.name}/${k}`);
      if (!t || t.data.length !== p.size) {
        throw new TypeError(
          `Cannot load optimizer state as ${p.name}/${k} is missing or has the wrong size`,
        );
      }
      return t.data;
    };
    opt.m.set(get("adam_m"), o);
    opt.v.set(get("adam_v"), o);
    opt.mom.set(get("sgd_momentum"), o);
    o += p.size;
  }
  return { weights: tensors, opt, meta };
}
