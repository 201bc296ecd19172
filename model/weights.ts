/**
 * Named float32 tensors on disk: the hand-off between the trainer and the exporter.
 *
 * Format: `<dir>/weights.json` = `{ "format": "mobilenet-weights/1", "tensors": [{ name, shape,
 * offset }] , "meta": {...} }` and `<dir>/weights.bin` = the float32 data, little-endian, each
 * tensor at `offset` bytes.
 *
 * Naming (keys are spec layer names from `model/spec.ts`; layouts are tfjs NHWC):
 * - `<layer>/kernel`: conv `[kh, kw, in, out]`, depthwise `[kh, kw, in, 1]`, fc `[in, out]`
 * - `<layer>/bias`: `[out]` (layers without batch norm: fc, V3 SE and head)
 * - `<layer>/bn/gamma`, `<layer>/bn/beta`, `<layer>/bn/moving_mean`, `<layer>/bn/moving_variance`
 * - SE: `<layer>/squeeze/kernel` `[C, S]`, `<layer>/squeeze/bias`, `<layer>/excite/kernel` `[S, C]`,
 *   `<layer>/excite/bias`
 * Batch-norm epsilon is `BN_EPSILON`.
 */

export const BN_EPSILON = 1e-3;
export const WEIGHTS_FORMAT = "mobilenet-weights/1";

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export type NamedTensors = Map<string, Tensor>;

interface WeightsJson {
  format: string;
  tensors: { name: string; shape: number[]; offset: number }[];
  meta?: Record<string, unknown>;
}

/** Serializes tensors to the JSON index and the binary blob. */
export function encodeWeights(
  tensors: NamedTensors,
  meta: Record<string, unknown> = {},
): { json: string; bin: Uint8Array } {
  let size = 0;
  const index: WeightsJson["tensors"] = [];
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new RangeError(
        `Cannot encode tensor ${name} as its shape [${t.shape}] holds ${n} values: data has ${t.data.length}`,
      );
    }
    index.push({ name, shape: t.shape, offset: size });
    size += n * 4;
  }
  const bin = new Uint8Array(size);
  const view = new DataView(bin.buffer);
  for (const entry of index) {
    const data = tensors.get(entry.name)!.data;
    for (let i = 0; i < data.length; i++) view.setFloat32(entry.offset + i * 4, data[i]!, true);
  }
  const json: WeightsJson = { format: WEIGHTS_FORMAT, tensors: index, meta };
  return { json: JSON.stringify(json, null, 1), bin };
}

/** Parses the JSON index and the binary blob back into tensors. */
export function decodeWeights(
  json: string,
  bin: Uint8Array,
): { tensors: NamedTensors; meta: Record<string, unknown> } {
  const parsed = JSON.parse(json) as WeightsJson;
  if (parsed.format !== WEIGHTS_FORMAT) {
    throw new TypeError(
      `Cannot read weights as format must be ${WEIGHTS_FORMAT}: current value is ${parsed.format}`,
    );
  }
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const tensors: NamedTensors = new Map();
  for (const { name, shape, offset } of parsed.tensors) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (offset + n * 4 > bin.byteLength) {
      throw new RangeError(
        `Cannot read tensor ${name} as it ends past the blob: ${
          offset + n * 4
        } > ${bin.byteLength}`,
      );
    }
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(offset + i * 4, true);
    tensors.set(name, { shape, data });
  }
  return { tensors, meta: parsed.meta ?? {} };
}

export async function saveWeights(
  dir: string,
  tensors: NamedTensors,
  meta: Record<string, unknown> = {},
): Promise<void> {
  const { json, bin } = encodeWeights(tensors, meta);
  await Deno.mkdir(dir, { recursive: true });
  // Write the blob first and the index last, each via rename, so a reader never sees a torn pair.
  await Deno.writeFile(`${dir}/weights.bin.tmp`, bin);
  await Deno.rename(`${dir}/weights.bin.tmp`, `${dir}/weights.bin`);
  await Deno.writeTextFile(`${dir}/weights.json.tmp`, json);
  await Deno.rename(`${dir}/weights.json.tmp`, `${dir}/weights.json`);
}

export async function loadWeights(
  dir: string,
): Promise<{ tensors: NamedTensors; meta: Record<string, unknown> }> {
  return decodeWeights(
    await Deno.readTextFile(`${dir}/weights.json`),
    await Deno.readFile(`${dir}/weights.bin`),
  );
}

/** Only the meta of a weights folder (reads `weights.json`, not the tensors). */
export async function loadWeightsMeta(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(`${dir}/weights.json`)).meta ?? {};
}

/** The weights folders a `--init` value names (one, or several comma-separated to average). */
export function initDirs(init: string): string[] {
  return init.split(",").map((d) => d.trim()).filter((d) => d !== "");
}
