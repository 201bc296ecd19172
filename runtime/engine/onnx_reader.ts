/**
 * A small, dependency-free ONNX reader for the engine: decodes the `ModelProto` fields an
 * inference graph uses into the same `OnnxModel` description as model/export/onnx_writer.ts.
 *
 * Why not the exporter's protobufjs decoder: importing and running protobufjs costs tens of
 * milliseconds at start-up, and the engine's cold-start budget (process start to first answer) is
 * 150 ms; edge bundles also stay smaller. Field numbers are those of onnx/onnx.proto (ONNX 1.12);
 * unknown fields are skipped. Tensor payloads are views into the file's bytes where alignment
 * allows (no copy).
 */
import type {
  Attr,
  DataTypeValue,
  OnnxModel,
  OnnxNode,
  OnnxTensor,
  TensorData,
  ValueInfo,
} from "../../model/export/onnx_writer.ts";

const TEXT = new TextDecoder();

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  get done(): boolean {
    return this.pos >= this.end;
  }
  /** A varint as a signed 64-bit value converted to a number (exact up to 2^53). */
  varint(): number {
    let lo = 0;
    let shift = 0;
    const start = this.pos;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined || this.pos > this.end) {
        throw new RangeError("Cannot read the ONNX file as a varint runs past the end");
      }
      if (shift < 49) lo += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) break;
      if (shift > 70) {
        throw new RangeError("Cannot read the ONNX file as a varint is longer than 10 bytes");
      }
    }
    if (shift <= 49) return lo;
    // Long varint: negative int64 values (sign-extended to 10 bytes) or very large ones.
    let v = 0n;
    for (let i = this.pos - 1; i >= start; i--) v = (v << 7n) | BigInt(this.buf[i]! & 0x7f);
    return Number(BigInt.asIntN(64, v));
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.end) {
      throw new RangeError("Cannot read the ONNX file as a field runs past the end");
    }
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  sub(): Reader {
    const len = this.varint();
    const r = new Reader(this.buf, this.pos, this.pos + len);
    if (r.end > this.end) {
      throw new RangeError("Cannot read the ONNX file as a message runs past the end");
    }
    this.pos += len;
    return r;
  }
  string(): string {
    const b = this.bytes();
    // Names are short ASCII: building them directly avoids a TextDecoder call per string, which
    // dominated model loading.
    if (b.length <= 64) {
      let ascii = true;
      for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) ascii = false;
      if (ascii) return String.fromCharCode(...b);
    }
    return TEXT.decode(b);
  }
  float(): number {
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new RangeError(`Cannot read the ONNX file as wire type ${wire} is not supported`);
  }
  /** Repeated scalar, packed (wire 2) or one value (other wires). */
  repeated(wire: number, read: (r: Reader) => number, into: number[]): void {
    if (wire === 2) {
      const s = this.sub();
      while (!s.done) into.push(read(s));
    } else {
      into.push(read(this));
    }
  }
}

function readTensor(r: Reader): OnnxTensor {
  const dims: number[] = [];
  const floats: number[] = [];
  const ints: number[] = [];
  let dataType = 0;
  let name = "";
  let raw: Uint8Array | undefined;
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) r.repeated(wire, (x) => x.varint(), dims);
    else if (field === 2) dataType = r.varint();
    else if (field === 4) r.repeated(wire, (x) => x.float(), floats);
    else if (field === 5 || field === 7) r.repeated(wire, (x) => x.varint(), ints);
    else if (field === 8) name = r.string();
    else if (field === 9) raw = r.bytes();
    else if (field === 14 && wire === 0 && r.varint() === 1) {
      throw new TypeError(`Cannot read tensor ${name} as its data is stored outside the ONNX file`);
    } else r.skip(wire);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const view = <T>(
    ctor: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number },
  ): T => {
    const bytes = raw!;
    // copy when misaligned (new Uint8Array copies; Node Buffer's slice() would not)
    const aligned = bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0 ? bytes : new Uint8Array(bytes);
    if (aligned.byteLength < count * ctor.BYTES_PER_ELEMENT) {
      throw new RangeError(
        `Cannot read tensor ${name} as its raw data holds fewer than ${count} values`,
      );
    }
    return new ctor(aligned.buffer, aligned.byteOffset, count);
  };
  let data: TensorData;
  switch (dataType) {
    case 1:
      data = raw ? view(Float32Array) : Float32Array.from(floats);
      break;
    case 2:
      data = raw ? view(Uint8Array) : Uint8Array.from(ints);
      break;
    case 3:
      data = raw ? view(Int8Array) : Int8Array.from(ints);
      break;
    case 6:
      data = raw ? view(Int32Array) : Int32Array.from(ints);
      break;
    case 7:
      data = raw ? view(BigInt64Array) : BigInt64Array.from(ints, (v) => BigInt(v));
      break;
    default:
      throw new TypeError(
        `Cannot read tensor ${name} as data type ${dataType} is not supported: supported are float32 (1), uint8 (2), int8 (3), int32 (6), int64 (7)`,
      );
  }
  if (data.length !== count) {
    throw new RangeError(
      `Cannot read tensor ${name} as it holds ${data.length} values for dims [${dims.join(",")}]`,
    );
  }
  return { name, dataType: dataType as DataTypeValue, dims, data };
}

function readAttr(r: Reader): [string, Attr | undefined] {
  let name = "";
  let type = 0;
  let f: number | undefined;
  let i: number | undefined;
  let s: string | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) name = r.string();
    else if (field === 20) type = r.varint();
    else if (field === 2) f = r.float();
    else if (field === 3) i = r.varint();
    else if (field === 4) s = r.string();
    else if (field === 7) r.repeated(wire, (x) => x.float(), floats);
    else if (field === 8) r.repeated(wire, (x) => x.varint(), ints);
    else r.skip(wire);
  }
  // ONNX AttributeType: 1 FLOAT, 2 INT, 3 STRING, 6 FLOATS, 7 INTS (others are not used here)
  switch (type) {
    case 1:
      return [name, { f: f ?? 0 }];
    case 2:
      return [name, { i: i ?? 0 }];
    case 3:
      return [name, { s: s ?? "" }];
    case 6:
      return [name, { floats }];
    case 7:
      return [name, { ints }];
    default:
      return [name, undefined];
  }
}

function readNode(r: Reader): OnnxNode {
  const node: OnnxNode = { opType: "", name: "", inputs: [], outputs: [], attrs: {} };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) node.inputs.push(r.string());
    else if (field === 2) node.outputs.push(r.string());
    else if (field === 3) node.name = r.string();
    else if (field === 4) node.opType = r.string();
    else if (field === 7) node.domain = r.string();
    else if (field === 5) {
      const [name, a] = readAttr(r.sub());
      if (a) node.attrs![name] = a;
    } else r.skip(wire);
  }
  return node;
}

function readValueInfo(r: Reader): ValueInfo {
  const info: ValueInfo = { name: "", elemType: 1 as DataTypeValue };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    if (field === 1) info.name = r.string();
    else if (field === 2) {
      const t = r.sub(); // TypeProto
      while (!t.done) {
        const k = t.varint();
        if (Math.floor(k / 8) !== 1) {
          t.skip(k & 7);
          continue;
        }
        const tt = t.sub(); // TypeProto.Tensor
        while (!tt.done) {
          const k2 = tt.varint();
          const f2 = Math.floor(k2 / 8);
          if (f2 === 1) info.elemType = tt.varint() as DataTypeValue;
          else if (f2 === 2) {
            const shape: (number | string)[] = [];
            const sh = tt.sub(); // TensorShapeProto
            while (!sh.done) {
              const k3 = sh.varint();
              if (Math.floor(k3 / 8) !== 1) {
                sh.skip(k3 & 7);
                continue;
              }
              const d = sh.sub(); // Dimension
              let dim: number | string = 0;
              while (!d.done) {
                const k4 = d.varint();
                const f4 = Math.floor(k4 / 8);
                if (f4 === 1) dim = d.varint();
                else if (f4 === 2) dim = d.string();
                else d.skip(k4 & 7);
              }
              shape.push(dim);
            }
            info.shape = shape;
          } else tt.skip(k2 & 7);
        }
      }
    } else r.skip(key & 7);
  }
  return info;
}

/** Decodes ONNX protobuf bytes (the subset inference needs). */
export function readOnnxModel(bytes: Uint8Array): OnnxModel {
  const r = new Reader(bytes);
  const model: OnnxModel = {
    irVersion: 0,
    opsets: [],
    producerName: "",
    producerVersion: "",
    metadata: {},
    graph: { name: "", nodes: [], initializers: [], inputs: [], outputs: [] },
  };
  let sawGraph = false;
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1) model.irVersion = r.varint();
    else if (field === 2) model.producerName = r.string();
    else if (field === 3) model.producerVersion = r.string();
    else if (field === 8) {
      const s = r.sub();
      const op = { domain: "", version: 0 };
      while (!s.done) {
        const k = s.varint();
        if (Math.floor(k / 8) === 1) op.domain = s.string();
        else if (Math.floor(k / 8) === 2) op.version = s.varint();
        else s.skip(k & 7);
      }
      model.opsets.push(op);
    } else if (field === 14) {
      const s = r.sub();
      let k = "";
      let v = "";
      while (!s.done) {
        const kk = s.varint();
        if (Math.floor(kk / 8) === 1) k = s.string();
        else if (Math.floor(kk / 8) === 2) v = s.string();
        else s.skip(kk & 7);
      }
      model.metadata![k] = v;
    } else if (field === 7) {
      sawGraph = true;
      const g = r.sub();
      while (!g.done) {
        const k = g.varint();
        const f = Math.floor(k / 8);
        if (f === 1) model.graph.nodes.push(readNode(g.sub()));
        else if (f === 2) model.graph.name = g.string();
        else if (f === 5) model.graph.initializers.push(readTensor(g.sub()));
        else if (f === 11) model.graph.inputs.push(readValueInfo(g.sub()));
        else if (f === 12) model.graph.outputs.push(readValueInfo(g.sub()));
        else g.skip(k & 7);
      }
    } else r.skip(wire);
  }
  if (!sawGraph) {
    throw new TypeError("Cannot read the ONNX file as it has no graph (is it an ONNX model?)");
  }
  return model;
}

/** Decodes one serialized `TensorProto` (e.g. ONNX test data `input_0.pb`). */
export function readOnnxTensor(bytes: Uint8Array): OnnxTensor {
  return readTensor(new Reader(bytes));
}
