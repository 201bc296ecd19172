/** Reads ONNX node test data folders (`test_data_set_0/input_N.pb`, `output_N.pb`). */
import type { OnnxTensor as AnyTensor } from "../../../model/export/onnx_writer.ts";
import { readOnnxTensor } from "../../../runtime/engine/onnx_reader.ts";

/** A test tensor with number data (int64 test data is not used here). */
export type OnnxTensor = AnyTensor & { data: Float32Array | Uint8Array | Int8Array | Int32Array };

async function readAll(prefix: string): Promise<OnnxTensor[]> {
  const out: OnnxTensor[] = [];
  for (let i = 0;; i++) {
    try {
      const t = readOnnxTensor(await Deno.readFile(`${prefix}_${i}.pb`));
      if (t.data instanceof BigInt64Array) {
        throw new TypeError(`${prefix}_${i}.pb holds int64 data`);
      }
      out.push(t as OnnxTensor);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return out;
      throw e;
    }
  }
}

/** Reads `input_*.pb` and `output_*.pb` of one ONNX node test folder. */
export async function readOnnxTestCase(
  dir: string,
): Promise<{ inputs: OnnxTensor[]; outputs: OnnxTensor[] }> {
  return {
    inputs: await readAll(`${dir}/test_data_set_0/input`),
    outputs: await readAll(`${dir}/test_data_set_0/output`),
  };
}
