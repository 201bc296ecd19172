/**
 * A compact, lossless form of the shipped int8 ONNX files for bundles whose size is limited
 * (Cloudflare Workers): `packModel` at build time, `unpackModel` at load time gives back the very
 * same bytes (the registry then checks their size and sha256 against the manifest, as for any file).
 *
 * Why: gzip saves little on int8 weights (a trained model's ONNX file gzips to about 80% of its
 * size), and less than their byte distribution allows. Each large int8 initializer is entropy coded
 * on its own (static order-0 rANS, one 14-bit frequency table per tensor), which comes close to
 * the order-0 entropy of each tensor (`deno task size:workers` prints both). Float32 and int32
 * initializers (scales, biases) are stored as byte planes (all first bytes, then all second bytes,
 * ...), which gzip compresses better than interleaved values. Everything else (the graph, names,
 * small tensors) stays as it is, for the upload's own gzip.
 *
 * Layout (varints are unsigned LEB128):
 *
 * ```
 * "MNPK" 0x01
 * varint onnxBytes, varint segments
 * per segment: varint gap (offset - previous segment's end), varint length, byte kind
 *   (kind 0: int8 rANS, kind 1: 4-byte planes)
 * varint restBytes, the file without its segments
 * kind-1 segments' planes, in segment order
 * per kind-0 segment: byte lo, byte hi (symbol = int8 value + 128), varint freq per symbol
 *   lo..hi (summing to 2^14), varint streamBytes
 * kind-0 segments' rANS streams, in segment order
 * ```
 *
 * @module
 */

const MAGIC = [0x4d, 0x4e, 0x50, 0x4b, 0x01]; // "MNPK" version 1
const SCALE_BITS = 14;
const M = 1 << SCALE_BITS;
/** The state stays in [2^22, 2^30): small integers for V8 in the decoder's loop. */
const RANS_L = 1 << 22;
/** Smaller int8 tensors (weight zero points, the first convolution) are left to gzip. */
const MIN_RANS = 4096;
/** ONNX TensorProto data types stored as planes: float32 (1), int32 (6). */
const PLANE_TYPES = new Set([1, 6]);
const INT8 = 3;

interface Segment {
  offset: number;
  length: number;
  kind: 0 | 1;
}

class Bytes {
  #buf = new Uint8Array(1 << 16);
  length = 0;
  #room(n: number) {
    if (this.length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
  }
  byte(b: number) {
    this.#room(1);
    this.#buf[this.length++] = b;
  }
  varint(v: number) {
    do {
      const b = v % 128;
      v = Math.floor(v / 128);
      this.byte(v > 0 ? b | 0x80 : b);
    } while (v > 0);
  }
  bytes(b: Uint8Array) {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  done(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

class Cursor {
  constructor(readonly buf: Uint8Array, public pos = 0, readonly end = buf.length) {}
  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new RangeError("a varint runs past the end");
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
      if (mul > 2 ** 63) throw new RangeError("a varint is longer than 10 bytes");
    }
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.end) throw new RangeError("a field runs past the end");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.take(8);
    else if (wire === 2) this.take(this.varint());
    else if (wire === 5) this.take(4);
    else throw new RangeError(`wire type ${wire} is not supported`);
  }
}

/** The raw_data payloads of the graph's initializers worth coding, in file order. */
function findSegments(onnx: Uint8Array): Segment[] {
  const out: Segment[] = [];
  const model = new Cursor(onnx);
  while (model.pos < model.end) {
    const key = model.varint();
    if (key !== (7 << 3 | 2)) { // ModelProto.graph
      model.skip(key & 7);
      continue;
    }
    const len = model.varint();
    const graph = new Cursor(onnx, model.pos, model.pos + len);
    model.pos += len;
    while (graph.pos < graph.end) {
      const gk = graph.varint();
      if (gk !== (5 << 3 | 2)) { // GraphProto.initializer
        graph.skip(gk & 7);
        continue;
      }
      const tl = graph.varint();
      const t = new Cursor(onnx, graph.pos, graph.pos + tl);
      graph.pos += tl;
      let type = 0;
      let raw: Segment | undefined;
      while (t.pos < t.end) {
        const tk = t.varint();
        if (tk === (2 << 3)) type = t.varint(); // TensorProto.data_type
        else if (tk === (9 << 3 | 2)) { // TensorProto.raw_data
          const n = t.varint();
          raw = { offset: t.pos, length: n, kind: 0 };
          t.take(n);
        } else t.skip(tk & 7);
      }
      if (!raw) continue;
      if (type === INT8 && raw.length >= MIN_RANS) out.push(raw);
      else if (PLANE_TYPES.has(type) && raw.length % 4 === 0 && raw.length >= 64) {
        out.push({ ...raw, kind: 1 });
      }
    }
  }
  return out;
}

/** Symbol counts scaled to sum to 2^14, every symbol present keeping at least 1. */
function normalize(counts: Uint32Array, n: number): Uint32Array {
  const f = new Uint32Array(256);
  let sum = 0;
  for (let s = 0; s < 256; s++) {
    if (counts[s] === 0) continue;
    f[s] = Math.max(1, Math.round(counts[s]! * M / n));
    sum += f[s]!;
  }
  // Take from or give to the most frequent symbols (the smallest relative change) until exact.
  const order = [...f.keys()].filter((s) => f[s]! > 0).sort((a, b) => f[b]! - f[a]!);
  for (let i = 0; sum !== M; i = (i + 1) % order.length) {
    const s = order[i]!;
    if (sum > M && f[s]! > 1) {
      f[s]!--;
      sum--;
    } else if (sum < M) {
      f[s]!++;
      sum++;
    }
  }
  return f;
}

function cumulative(f: Uint32Array): Uint32Array {
  const c = new Uint32Array(257);
  for (let s = 0; s < 256; s++) c[s + 1] = c[s]! + f[s]!;
  return c;
}

/** rANS-encodes bytes (as int8 values + 128) with the frequencies `f`. */
function ransEncode(data: Uint8Array, f: Uint32Array): Uint8Array {
  const cum = cumulative(f);
  const out = new Uint8Array(data.length + 16);
  let p = out.length;
  let x = RANS_L;
  for (let i = data.length - 1; i >= 0; i--) {
    const s = (data[i]! + 128) & 0xff;
    const fs = f[s]!;
    const xMax = ((RANS_L / M) * 256) * fs;
    while (x >= xMax) {
      out[--p] = x & 0xff;
      x = Math.floor(x / 256);
    }
    x = Math.floor(x / fs) * M + (x % fs) + cum[s]!;
  }
  for (let k = 0; k < 4; k++) {
    out[--p] = x & 0xff;
    x = Math.floor(x / 256);
  }
  // The decoder reads forward: the state's bytes first, most significant first.
  return out.slice(p);
}

function ransDecode(
  stream: Uint8Array,
  f: Uint32Array,
  out: Uint8Array,
): void {
  const cum = cumulative(f);
  // Per slot: the symbol, its frequency and slot - cumulative frequency (one lookup each).
  const sym = new Uint8Array(M);
  const freq = new Uint16Array(M);
  const bias = new Uint16Array(M);
  for (let s = 0; s < 256; s++) {
    for (let k = cum[s]!; k < cum[s + 1]!; k++) {
      sym[k] = s;
      freq[k] = f[s]!;
      bias[k] = k - cum[s]!;
    }
  }
  if (stream.length < 4) throw new RangeError("an rANS stream is shorter than its state");
  let x = (stream[0]! << 24) | (stream[1]! << 16) | (stream[2]! << 8) | stream[3]!;
  let p = 4;
  const n = stream.length;
  const mask = M - 1;
  for (let i = 0; i < out.length; i++) {
    const slot = x & mask;
    out[i] = sym[slot]! ^ 0x80; // symbol = value + 128, as a byte
    x = freq[slot]! * (x >>> SCALE_BITS) + bias[slot]!;
    while (x < RANS_L) {
      if (p >= n) throw new RangeError("an rANS stream ends early");
      x = (x << 8) | stream[p++]!;
    }
  }
  if (x !== RANS_L || p !== n) {
    throw new RangeError("an rANS stream does not end where it should (corrupt pack)");
  }
}

function toPlanes(b: Uint8Array): Uint8Array {
  const n = b.length / 4;
  const out = new Uint8Array(b.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 4; k++) out[k * n + i] = b[i * 4 + k]!;
  }
  return out;
}

function fromPlanes(p: Uint8Array, out: Uint8Array): void {
  const n = p.length / 4;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 4; k++) out[i * 4 + k] = p[k * n + i]!;
  }
}

/**
 * What a file's int8 weights cost at best, for the size report (`deno task size:workers`): their
 * bytes; the order-0 entropy of each coded tensor (the size no coder of independent values with one
 * distribution per tensor can beat); and, to show what modelling neighbours could add, the
 * empirical entropy of each value given its predecessor's magnitude (8 buckets of |previous| / 4,
 * a distribution per bucket and tensor, the tables' own cost left out, so optimistic). In bytes.
 */
export function int8Floor(onnx: Uint8Array): { bytes: number; entropy: number; context: number } {
  let bytes = 0;
  let bits = 0;
  let ctxBits = 0;
  const entropy = (counts: Uint32Array) => {
    let n = 0;
    for (const c of counts) n += c;
    let b = 0;
    for (const c of counts) if (c > 0) b -= c * Math.log2(c / n);
    return b;
  };
  for (const s of findSegments(onnx)) {
    if (s.kind !== 0) continue;
    const data = new Int8Array(onnx.buffer, onnx.byteOffset + s.offset, s.length);
    const counts = new Uint32Array(256);
    const byCtx = Array.from({ length: 8 }, () => new Uint32Array(256));
    let prev = 0;
    for (const v of data) {
      counts[v & 0xff]!++;
      byCtx[Math.min(7, Math.abs(prev) >> 2)]![v & 0xff]!++;
      prev = v;
    }
    bits += entropy(counts);
    for (const c of byCtx) ctxBits += entropy(c);
    bytes += s.length;
  }
  return { bytes, entropy: Math.ceil(bits / 8), context: Math.ceil(ctxBits / 8) };
}

/** True when `bytes` start like a pack (rather than an ONNX file). */
export function isModelPack(bytes: Uint8Array): boolean {
  return MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Packs an ONNX file; `unpackModel` of the result is byte for byte `onnx` (checked here before
 * returning, so a pack that would not restore the file is never written).
 */
export function packModel(onnx: Uint8Array): Uint8Array {
  let segs: Segment[];
  try {
    segs = findSegments(onnx);
  } catch (e) {
    throw new RangeError(
      `Cannot pack the model as it is not a readable ONNX file: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const out = new Bytes();
  MAGIC.forEach((b) => out.byte(b));
  out.varint(onnx.length);
  out.varint(segs.length);
  let end = 0;
  for (const s of segs) {
    out.varint(s.offset - end);
    out.varint(s.length);
    out.byte(s.kind);
    end = s.offset + s.length;
  }
  const rest = new Bytes();
  end = 0;
  for (const s of segs) {
    rest.bytes(onnx.subarray(end, s.offset));
    end = s.offset + s.length;
  }
  rest.bytes(onnx.subarray(end));
  out.varint(rest.length);
  out.bytes(rest.done());
  for (const s of segs) {
    if (s.kind === 1) out.bytes(toPlanes(onnx.subarray(s.offset, s.offset + s.length)));
  }
  const streams: Uint8Array[] = [];
  for (const s of segs) {
    if (s.kind !== 0) continue;
    const data = onnx.subarray(s.offset, s.offset + s.length);
    const counts = new Uint32Array(256);
    for (const v of data) counts[(v + 128) & 0xff]!++;
    const f = normalize(counts, data.length);
    let lo = 0;
    while (f[lo] === 0) lo++;
    let hi = 255;
    while (f[hi] === 0) hi--;
    out.byte(lo);
    out.byte(hi);
    for (let k = lo; k <= hi; k++) out.varint(f[k]!);
    const stream = ransEncode(data, f);
    out.varint(stream.length);
    streams.push(stream);
  }
  for (const st of streams) out.bytes(st);
  const packed = out.done();
  const back = unpackModel(packed);
  if (back.length !== onnx.length || back.some((b, i) => b !== onnx[i])) {
    throw new Error("Cannot pack the model as unpacking does not restore its bytes");
  }
  return packed;
}

/** The ONNX file a pack holds, byte for byte. Throws on a corrupt or truncated pack. */
export function unpackModel(pack: Uint8Array): Uint8Array {
  if (!isModelPack(pack)) {
    throw new RangeError("Cannot unpack the model as the bytes do not start with MNPK version 1");
  }
  try {
    const c = new Cursor(pack, MAGIC.length);
    const onnx = new Uint8Array(c.varint());
    const segs: Segment[] = [];
    let end = 0;
    for (let n = c.varint(); n > 0; n--) {
      const offset = end + c.varint();
      const length = c.varint();
      const kind = c.take(1)[0]!;
      if (kind > 1 || offset + length > onnx.length) throw new RangeError("a segment is invalid");
      segs.push({ offset, length, kind: kind as 0 | 1 });
      end = offset + length;
    }
    const rest = c.take(c.varint());
    let r = 0;
    end = 0;
    for (const s of segs) {
      onnx.set(rest.subarray(r, r + s.offset - end), end);
      r += s.offset - end;
      end = s.offset + s.length;
    }
    if (rest.length - r !== onnx.length - end) throw new RangeError("the rest has the wrong size");
    onnx.set(rest.subarray(r), end);
    for (const s of segs) {
      if (s.kind === 1) fromPlanes(c.take(s.length), onnx.subarray(s.offset, s.offset + s.length));
    }
    const tables: { s: Segment; f: Uint32Array; n: number }[] = [];
    for (const s of segs) {
      if (s.kind !== 0) continue;
      const [lo, hi] = c.take(2);
      const f = new Uint32Array(256);
      let sum = 0;
      for (let k = lo!; k <= hi!; k++) sum += f[k] = c.varint();
      if (sum !== M) throw new RangeError("a frequency table does not sum to 2^14");
      tables.push({ s, f, n: c.varint() });
    }
    for (const { s, f, n } of tables) {
      ransDecode(c.take(n), f, onnx.subarray(s.offset, s.offset + s.length));
    }
    if (c.pos !== pack.length) throw new RangeError("bytes follow the last stream");
    return onnx;
  } catch (e) {
    throw new RangeError(
      `Cannot unpack the model as the pack is corrupt or truncated: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
}
