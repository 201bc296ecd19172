/**
 * A tiny reader for ONNX `TensorProto` files (the `input_N.pb` / `output_N.pb` of ONNX's node test
 * data): just the fields those files use. Field numbers from onnx/onnx.proto: dims = 1,
 * data_type = 2, float_data = 4, int32_data = 5, int64_data = 7, name = 8, raw_data = 9.
 */

export interface OnnxTensor {
  name: string;
  dims: number[];
  /** ONNX TensorProto.DataType: 1 float, 2 uint8, 3 int8, 6 int32, 7 int64. */
  dataType: number;
  data: Float32Array | Uint8Array | Int8Array | Int32Array;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) {
        throw new RangeError("Cannot read TensorProto as a varint runs past the end");
      }
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  }
  bytes(): Uint8Array {
    const len = this.varint();
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
}

function packedOrSingle(
  r: Reader,
  wire: number,
  read: (r: Reader) => number,
  into: number[],
): void {
  if (wire === 2) {
    const sub = new Reader(r.bytes());
    while (sub.pos < sub.buf.length) into.push(read(sub));
  } else {
    into.push(read(r));
  }
}

/** Decodes one serialized TensorProto. */
export function readOnnxTensor(bytes: Uint8Array): OnnxTensor {
  const r = new Reader(bytes);
  const dims: number[] = [];
  const floats: number[] = [];
  const ints: number[] = [];
  let dataType = 0;
  let name = "";
  let raw: Uint8Array | undefined;
  while (r.pos < bytes.length) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) packedOrSingle(r, wire, (x) => x.varint(), dims);
    else if (field === 2) dataType = r.varint();
    else if (field === 4) {
      packedOrSingle(r, wire, (x) => {
        const v = new DataView(x.buf.buffer, x.buf.byteOffset + x.pos, 4).getFloat32(0, true);
        x.pos += 4;
        return v;
      }, floats);
    } else if (field === 5 || field === 7) packedOrSingle(r, wire, (x) => x.varint() | 0, ints);
    else if (field === 8) name = new TextDecoder().decode(r.bytes());
    else if (field === 9) raw = r.bytes().slice();
    else if (wire === 0) r.varint();
    else if (wire === 2) r.bytes();
    else if (wire === 5) r.pos += 4;
    else if (wire === 1) r.pos += 8;
    else {throw new RangeError(
        `Cannot read TensorProto as field ${field} has unknown wire type ${wire}`,
      );}
  }
  const count = dims.reduce((a, b) => a * b, 1);
  let data: OnnxTensor["data"];
  switch (dataType) {
    case 1:
      data = raw ? new Float32Array(raw.buffer, 0, count) : Float32Array.from(floats);
      break;
    case 2:
      data = raw ? raw.subarray(0, count) : Uint8Array.from(ints);
      break;
    case 3:
      data = raw ? new Int8Array(raw.buffer, 0, count) : Int8Array.from(ints);
      break;
    case 6:
      data = raw ? new Int32Array(raw.buffer, 0, count) : Int32Array.from(ints);
      break;
    default:
      throw new RangeError(
        `Cannot read TensorProto ${name} as data type ${dataType} is not supported`,
      );
  }
  if (data.length !== count) {
    throw new RangeError(
      `Cannot read TensorProto ${name} as it holds ${data.length} values for dims [${
        dims.join(",")
      }]`,
    );
  }
  return { name, dims, dataType, data };
}

/** Reads `input_*.pb` and `output_*.pb` of one ONNX node test folder. */
export async function readOnnxTestCase(
  dir: string,
): Promise<{ inputs: OnnxTensor[]; outputs: OnnxTensor[] }> {
  const set = `${dir}/test_data_set_0`;
  const inputs: OnnxTensor[] = [];
  const outputs: OnnxTensor[] = [];
  for (let i = 0;; i++) {
    try {
      inputs.push(readOnnxTensor(await Deno.readFile(`${set}/input_${i}.pb`)));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) break;
      throw e;
    }
  }
  for (let i = 0;; i++) {
    try {
      outputs.push(readOnnxTensor(await Deno.readFile(`${set}/output_${i}.pb`)));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) break;
      throw e;
    }
  }
  return { inputs, outputs };
}
