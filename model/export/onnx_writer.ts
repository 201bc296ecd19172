/**
 * The project's own ONNX writer (and reader): a plain TypeScript description of a model, encoded
 * to and decoded from ONNX protobuf bytes with protobufjs and the schema in `onnx_proto.ts`.
 *
 * @example
 * const bytes = encodeModel({
 *   irVersion: 7, opsets: [{ domain: "", version: 13 }], producerName: "x", producerVersion: "1",
 *   graph: { name: "g", nodes: [{ opType: "Relu", name: "r", inputs: ["x"], outputs: ["y"] }],
 *     initializers: [], inputs: [{ name: "x", elemType: DataType.FLOAT, shape: ["n", 4] }],
 *     outputs: [{ name: "y", elemType: DataType.FLOAT, shape: ["n", 4] }] },
 * });
 */
import { ModelProtoType } from "./onnx_proto.ts";

/** ONNX `TensorProto.DataType` values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
} as const;
export type DataTypeValue = typeof DataType[keyof typeof DataType];

export type TensorData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

export interface OnnxTensor {
  name: string;
  dataType: DataTypeValue;
  dims: number[];
  data: TensorData;
}

/** One attribute value; the key says the ONNX attribute type. */
export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attrs?: Record<string, Attr>;
}

/** A graph input or output: element type and shape, a string for a symbolic dimension. */
export interface ValueInfo {
  name: string;
  elemType: DataTypeValue;
  shape?: (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Record<string, string>;
  graph: OnnxGraph;
}

const ATTR_TYPE = { f: 1, i: 2, s: 3, floats: 6, ints: 7 } as const;

function elementCount(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function rawBytes(t: OnnxTensor): Uint8Array {
  const n = elementCount(t.dims);
  if (n !== t.data.length) {
    throw new RangeError(
      `Cannot encode tensor ${t.name} as its dims [${t.dims}] hold ${n} values: data has ${t.data.length}`,
    );
  }
  const expected: Record<DataTypeValue, string> = {
    [DataType.FLOAT]: "Float32Array",
    [DataType.UINT8]: "Uint8Array",
    [DataType.INT8]: "Int8Array",
    [DataType.INT32]: "Int32Array",
    [DataType.INT64]: "BigInt64Array",
  };
  if (t.data.constructor.name !== expected[t.dataType]) {
    throw new TypeError(
      `Cannot encode tensor ${t.name} as data type ${t.dataType} needs ${
        expected[t.dataType]
      }: current data is ${t.data.constructor.name}`,
    );
  }
  // ONNX raw_data is little-endian; typed arrays are little-endian on every platform Deno runs on.
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
}

function valueInfoToProto(v: ValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: v.elemType,
        ...(v.shape
          ? {
            shape: {
              dim: v.shape.map((
                d,
              ) => (typeof d === "string" ? { dim_param: d } : { dim_value: d })),
            },
          }
          : {}),
      },
    },
  };
}

function attrToProto(name: string, a: Attr): Record<string, unknown> {
  if ("i" in a) return { name, type: ATTR_TYPE.i, i: a.i };
  if ("f" in a) return { name, type: ATTR_TYPE.f, f: a.f };
  if ("s" in a) return { name, type: ATTR_TYPE.s, s: new TextEncoder().encode(a.s) };
  if ("ints" in a) return { name, type: ATTR_TYPE.ints, ints: a.ints };
  return { name, type: ATTR_TYPE.floats, floats: a.floats };
}

/** Encodes a model description to ONNX protobuf bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const g = model.graph;
  const obj = {
    ir_version: model.irVersion,
    opset_import: model.opsets.map((o) => ({ domain: o.domain, version: o.version })),
    producer_name: model.producerName,
    producer_version: model.producerVersion,
    ...(model.docString ? { doc_string: model.docString } : {}),
    metadata_props: Object.entries(model.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        name: n.name,
        op_type: n.opType,
        input: n.inputs,
        output: n.outputs,
        ...(n.domain ? { domain: n.domain } : {}),
        attribute: Object.entries(n.attrs ?? {}).map(([k, a]) => attrToProto(k, a)),
      })),
      initializer: g.initializers.map((t) => ({
        name: t.name,
        data_type: t.dataType,
        dims: t.dims,
        raw_data: rawBytes(t),
      })),
      input: g.inputs.map(valueInfoToProto),
      output: g.outputs.map(valueInfoToProto),
    },
  };
  const err = ModelProtoType.verify(obj);
  if (err) throw new TypeError(`Cannot encode ONNX model as the message is invalid: ${err}`);
  return ModelProtoType.encode(ModelProtoType.fromObject(obj)).finish();
}

// --- reading ---------------------------------------------------------------------------------

interface TensorProtoObj {
  name?: string;
  data_type?: number;
  dims?: number[];
  raw_data?: Uint8Array;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: number[];
}

function tensorFromProto(t: TensorProtoObj): OnnxTensor {
  const dims = (t.dims ?? []).map(Number);
  const n = elementCount(dims);
  const type = (t.data_type ?? 0) as DataTypeValue;
  const raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : undefined;
  // protobufjs may hand out a Node Buffer view into a shared pool, whose slice() does not copy.
  let copy: ArrayBuffer | undefined;
  if (raw) {
    const c = new Uint8Array(raw.length);
    c.set(raw);
    copy = c.buffer;
  }
  let data: TensorData;
  switch (type) {
    case DataType.FLOAT:
      data = copy ? new Float32Array(copy) : Float32Array.from(t.float_data ?? []);
      break;
    case DataType.UINT8:
      data = copy ? new Uint8Array(copy) : Uint8Array.from(t.int32_data ?? []);
      break;
    case DataType.INT8:
      data = copy ? new Int8Array(copy) : Int8Array.from(t.int32_data ?? []);
      break;
    case DataType.INT32:
      data = copy ? new Int32Array(copy) : Int32Array.from(t.int32_data ?? []);
      break;
    case DataType.INT64:
      data = copy
        ? new BigInt64Array(copy)
        : BigInt64Array.from((t.int64_data ?? []).map((v) => BigInt(v)));
      break;
    default:
      throw new TypeError(
        `Cannot read tensor ${t.name} as data type ${type} is not supported: supported are ${
          Object.values(DataType).join(", ")
        }`,
      );
  }
  if (data.length !== n) {
    throw new RangeError(
      `Cannot read tensor ${t.name} as dims [${dims}] need ${n} values: found ${data.length}`,
    );
  }
  return { name: t.name ?? "", dataType: type, dims, data };
}

interface AttrProtoObj {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

function attrFromProto(a: AttrProtoObj): Attr | undefined {
  switch (a.type) {
    case ATTR_TYPE.f:
      return { f: a.f ?? 0 };
    case ATTR_TYPE.i:
      return { i: Number(a.i ?? 0) };
    case ATTR_TYPE.s:
      return { s: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case ATTR_TYPE.floats:
      return { floats: a.floats ?? [] };
    case ATTR_TYPE.ints:
      return { ints: (a.ints ?? []).map(Number) };
    default:
      return undefined; // tensor and graph attributes are not needed by this project
  }
}

interface ValueInfoObj {
  name?: string;
  type?: {
    tensor_type?: {
      elem_type?: number;
      shape?: { dim?: { dim_value?: number; dim_param?: string }[] };
    };
  };
}

function valueInfoFromProto(v: ValueInfoObj): ValueInfo {
  const tt = v.type?.tensor_type;
  const info: ValueInfo = { name: v.name ?? "", elemType: (tt?.elem_type ?? 0) as DataTypeValue };
  if (tt?.shape) {
    info.shape = (tt.shape.dim ?? []).map((d) =>
      d.dim_param !== undefined ? d.dim_param : Number(d.dim_value ?? 0)
    );
  }
  return info;
}

/** Decodes ONNX protobuf bytes into a model description (the subset this project uses). */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const msg = ModelProtoType.decode(bytes);
  // deno-lint-ignore no-explicit-any
  const o = ModelProtoType.toObject(msg, { longs: Number, enums: Number, arrays: true }) as any;
  const g = o.graph ?? {};
  const metadata: Record<string, string> = {};
  for (const e of o.metadata_props ?? []) metadata[e.key ?? ""] = e.value ?? "";
  return {
    irVersion: Number(o.ir_version ?? 0),
    opsets: (o.opset_import ?? []).map((s: { domain?: string; version?: number }) => ({
      domain: s.domain ?? "",
      version: Number(s.version ?? 0),
    })),
    producerName: o.producer_name ?? "",
    producerVersion: o.producer_version ?? "",
    ...(o.doc_string ? { docString: o.doc_string } : {}),
    metadata,
    graph: {
      name: g.name ?? "",
      nodes: (g.node ?? []).map((n: {
        name?: string;
        op_type?: string;
        input?: string[];
        output?: string[];
        domain?: string;
        attribute?: AttrProtoObj[];
      }) => {
        const attrs: Record<string, Attr> = {};
        for (const a of n.attribute ?? []) {
          const v = attrFromProto(a);
          if (v) attrs[a.name ?? ""] = v;
        }
        const node: OnnxNode = {
          opType: n.op_type ?? "",
          name: n.name ?? "",
          inputs: n.input ?? [],
          outputs: n.output ?? [],
          attrs,
        };
        if (n.domain) node.domain = n.domain;
        return node;
      }),
      initializers: (g.initializer ?? []).map(tensorFromProto),
      inputs: (g.input ?? []).map(valueInfoFromProto),
      outputs: (g.output ?? []).map(valueInfoFromProto),
    },
  };
}
