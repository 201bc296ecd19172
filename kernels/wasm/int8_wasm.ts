/**
 * Loader and memory manager for kernels/wasm/kernels.wasm (AssemblyScript int8 SIMD kernels).
 *
 * The module has zero imports and no allocator: this class owns its memory through a bump arena
 * (`alloc` / `mark` / `release`). Every buffer gets 16 bytes of slack because the kernels read
 * 8 bytes at a time at channel tails. Growing the memory detaches earlier typed-array views, so
 * views are always made fresh from `memory.buffer` (`u8()`, `i16()`, ...), never kept.
 *
 * Packing (done once per layer, at load) turns the reference plans of kernels/int8/ into the
 * layouts that the kernels document in kernels/wasm/assembly/int8.ts.
 */

/** The raw exports of kernels.wasm (pointers are byte offsets into `memory`). */
export interface Int8WasmExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  packGemmWeightsI8(src: number, n: number, k: number, kp: number, dst: number): void;
  packDepthwiseWeightsI8(src: number, c: number, taps: number, dst: number): void;
  packRows(
    src: number,
    m: number,
    k: number,
    ldsrc: number,
    zp: number,
    dst: number,
    kp: number,
  ): void;
  packIm2col(
    src: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    padT: number,
    padL: number,
    oh: number,
    ow: number,
    zp: number,
    dst: number,
    kp: number,
  ): void;
  gemmU8(
    a: number,
    m: number,
    kp: number,
    w: number,
    n: number,
    bias: number,
    mult: number,
    outZp: number,
    lo: number,
    hi: number,
    out: number,
    ldo: number,
  ): void;
  gemmF32(
    a: number,
    m: number,
    kp: number,
    w: number,
    n: number,
    bias: number,
    scale: number,
    out: number,
  ): void;
  depthwise(
    src: number,
    n: number,
    h: number,
    w: number,
    c: number,
    k: number,
    stride: number,
    padT: number,
    padL: number,
    oh: number,
    ow: number,
    inZp: number,
    wts: number,
    bias: number,
    mult: number,
    outZp: number,
    lo: number,
    hi: number,
    dst: number,
    zrow: number,
    biasIn: number,
  ): void;
  globalAvgPool(
    src: number,
    n: number,
    hw: number,
    c: number,
    inZp: number,
    mult: number,
    outZp: number,
    lo: number,
    hi: number,
    dst: number,
  ): void;
  packGemmWeightsS7(
    src: number,
    n: number,
    k: number,
    kq: number,
    dst: number,
    signs: number,
    sums: number,
  ): number;
  gatherColsS8(
    src: number,
    m: number,
    ldsrc: number,
    cols: number,
    e: number,
    dst: number,
    kq: number,
    k: number,
    corr: number,
  ): void;
  packRowsS8(
    src: number,
    m: number,
    k: number,
    ldsrc: number,
    dst: number,
    kq: number,
    corr: number,
  ): void;
  packIm2colS8(
    src: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    padT: number,
    padL: number,
    oh: number,
    ow: number,
    zp: number,
    dst: number,
    kq: number,
    corr: number,
  ): void;
  depthwise3x3Padded(
    src: number,
    n: number,
    ph: number,
    pw: number,
    c: number,
    stride: number,
    oh: number,
    ow: number,
    wts: number,
    biasIn: number,
    mult: number,
    outZp: number,
    lo: number,
    hi: number,
    dst: number,
  ): void;
  quantizeInput(
    src: number,
    n: number,
    c: number,
    hw: number,
    scale: number,
    zp: number,
    dst: number,
  ): void;
  padInput(
    src: number,
    n: number,
    h: number,
    w: number,
    c: number,
    padT: number,
    padL: number,
    ph: number,
    pw: number,
    zp: number,
    dst: number,
    flip: number,
  ): void;
  packIm2colS8Padded(
    src: number,
    n: number,
    ph: number,
    pw: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    oh: number,
    ow: number,
    dst: number,
    kq: number,
    corr: number,
  ): void;
  gemmS7(
    a: number,
    m: number,
    kq: number,
    w: number,
    n: number,
    bias: number,
    corr: number,
    mult: number,
    outZp: number,
    lo: number,
    hi: number,
    out: number,
    ldo: number,
  ): void;
  gemmS7F32(
    a: number,
    m: number,
    kq: number,
    w: number,
    n: number,
    bias: number,
    corr: number,
    scale: number,
    out: number,
  ): void;
  requantize(
    src: number,
    m: number,
    c: number,
    bias: number,
    mult: number,
    outZp: number,
    lo: number,
    hi: number,
    dst: number,
  ): void;
}

const PAGE = 65536;
/** Bytes every allocation gets past its end (channel-tail over-reads of 8 bytes). */
export const SLACK = 16;
const ALIGN = 16;

/** Rounds up to a multiple of `m`. */
export const roundUp = (v: number, m: number): number => Math.ceil(v / m) * m;

const EXPORT_NAMES = [
  "heapBase",
  "packGemmWeightsI8",
  "packDepthwiseWeightsI8",
  "packRows",
  "packIm2col",
  "gemmU8",
  "gemmF32",
  "depthwise",
  "globalAvgPool",
  "requantize",
  "packGemmWeightsS7",
  "packRowsS8",
  "packIm2colS8",
  "gemmS7",
  "gemmS7F32",
  "padInput",
  "packIm2colS8Padded",
  "quantizeInput",
  "gatherColsS8",
  "depthwise3x3Padded",
] as const;

/** Weights packed for `gemmS7` (7-bit weights on the relaxed int8 dot product). */
export interface PackedS7 {
  /** Packed weights. */
  readonly ptr: number;
  /** k rounded up to a multiple of 4 (bytes per packed row). */
  readonly kq: number;
  /** Folded per-channel bias (padded to 8): s * bias + (128 - inZp) * sum(s * w) + 8192 k. */
  readonly bias: number;
  /** Per-channel multipliers (or float scales) times the channel sign s (padded to 8). */
  readonly mult: number;
  /**
   * Extra columns (see `gatherColsS8` in assembly/int8.ts): the input columns they copy (int32
   * pointer) and how many; the packed rows hold k + extraCount columns.
   */
  readonly extra: number;
  readonly extraCount: number;
}

/** One instance of the kernels module and its memory. */
export class Int8Wasm {
  readonly exports: Int8WasmExports;
  readonly memory: WebAssembly.Memory;
  #top: number;
  readonly #base: number;

  constructor(instance: WebAssembly.Instance) {
    const ex = instance.exports as Record<string, unknown>;
    for (const name of EXPORT_NAMES) {
      if (typeof ex[name] !== "function") {
        throw new TypeError(`Cannot use the int8 kernels module as it does not export ${name}()`);
      }
    }
    if (!(ex.memory instanceof WebAssembly.Memory)) {
      throw new TypeError("Cannot use the int8 kernels module as it does not export its memory");
    }
    this.exports = ex as unknown as Int8WasmExports;
    this.memory = ex.memory;
    this.#base = roundUp(this.exports.heapBase(), ALIGN);
    this.#top = this.#base;
  }

  /** Bytes currently allocated from the arena. */
  get used(): number {
    return this.#top - this.#base;
  }

  /** Allocates `bytes` (16-byte aligned, with slack), growing memory when needed. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0) {
      throw new RangeError(
        `Cannot allocate wasm memory as the size must be a non-negative integer: current value is ${bytes}`,
      );
    }
    const ptr = this.#top;
    const end = ptr + roundUp(bytes + SLACK, ALIGN);
    const have = this.memory.buffer.byteLength;
    // Grow geometrically: each grow may copy the whole memory, so many small grows cost O(n^2).
    if (end > have) {
      this.memory.grow(Math.max(Math.ceil((end - have) / PAGE), Math.ceil(have / PAGE / 2), 16));
    }
    this.#top = end;
    return ptr;
  }

  /** The current arena top, for `release`. */
  mark(): number {
    return this.#top;
  }

  /** Frees everything allocated after `mark` (the memory stays, ready for reuse). */
  release(mark: number): void {
    if (mark < this.#base || mark > this.#top) {
      throw new RangeError(
        `Cannot release wasm memory to ${mark}: arena is [${this.#base}, ${this.#top}]`,
      );
    }
    this.#top = mark;
  }

  u8(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, len);
  }
  i16(ptr: number, len: number): Int16Array {
    return new Int16Array(this.memory.buffer, ptr, len);
  }
  i32(ptr: number, len: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, len);
  }
  f32(ptr: number, len: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, len);
  }

  /** Copies `data` into a new allocation; returns its pointer. */
  put(data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array): number {
    const ptr = this.alloc(data.byteLength);
    this.u8(ptr, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    return ptr;
  }

  /** Int32 values padded with zeros to a multiple of 8 entries. */
  putPaddedI32(values: ArrayLike<number>): number {
    const a = new Int32Array(roundUp(Math.max(values.length, 1), 8));
    for (let i = 0; i < values.length; i++) a[i] = values[i]!;
    return this.put(a);
  }

  /** Float32 values padded with zeros to a multiple of 8 entries. */
  putPaddedF32(values: ArrayLike<number>): number {
    const a = new Float32Array(roundUp(Math.max(values.length, 1), 8));
    for (let i = 0; i < values.length; i++) a[i] = values[i]!;
    return this.put(a);
  }

  /**
   * Packs `[n, k]` weights (already minus zero point, int16 range) for `gemmU8` / `gemmF32`;
   * returns the pointer and the padded row length kp. Output channel o goes to block o >> 3,
   * lane o & 7; k index p to pair p >> 1, slot p & 1 (see gemmU8 in assembly/int8.ts).
   */
  packGemmWeights(weights: Int32Array, n: number, k: number): { ptr: number; kp: number } {
    const kp = roundUp(k, 2);
    const packed = new Int16Array(Math.ceil(n / 8) * 8 * kp);
    for (let o = 0; o < n; o++) {
      const lane = o & 7;
      const base = (o >> 3) * 8 * kp + (lane >> 2) * 8 + (lane & 3) * 2;
      const row = o * k;
      for (let p = 0; p < k; p++) packed[base + (p >> 1) * 16 + (p & 1)] = weights[row + p]!;
    }
    return { ptr: this.put(packed), kp };
  }

  /**
   * Packs symmetric int8 `[n, k]` weights (zero point 0) in wasm: the fast path at model load.
   */
  packGemmWeightsInt8(weights: Int8Array, n: number, k: number): { ptr: number; kp: number } {
    const kp = roundUp(k, 2);
    const dst = this.alloc(Math.ceil(n / 8) * 8 * kp * 2);
    const mark = this.mark();
    const src = this.put(weights);
    this.exports.packGemmWeightsI8(src, n, k, kp, dst);
    this.release(mark);
    return { ptr: dst, kp };
  }

  /**
   * Packs symmetric int8 `[n, k]` weights for `gemmS7` when the weights lie in -64..64; undefined
   * otherwise (nothing is left allocated). A channel holding both +64 and -64 gets extra columns
   * (`extraCount`, filled by `gatherColsS8` at run time) unless `allowExtra` is false (then
   * undefined). `bias` is the int32 bias, `mult` the per-channel multipliers (or float scales),
   * `inZp` the input zero point, all folded as `gemmS7` expects.
   */
  packGemmWeightsS7(
    weights: Int8Array,
    n: number,
    k: number,
    bias: ArrayLike<number>,
    mult: ArrayLike<number>,
    inZp: number,
    allowExtra = true,
  ): PackedS7 | undefined {
    const first = this.#packS7(weights, n, k, bias, mult, inZp);
    if (first !== 2) return first;
    if (!allowExtra) return undefined;
    // Channels holding both +64 and -64: each +64 becomes 63 plus weight 1 in an extra column
    // that copies the same input column (one extra column per distinct input column).
    const both: number[] = [];
    const cols = new Set<number>();
    for (let o = 0; o < n; o++) {
      const row = weights.subarray(o * k, (o + 1) * k);
      if (row.includes(64) && row.includes(-64)) {
        both.push(o);
        row.forEach((v, p) => v === 64 && cols.add(p));
      }
    }
    const extra = [...cols].sort((a, b) => a - b);
    const k2 = k + extra.length;
    const w2 = new Int8Array(n * k2);
    for (let o = 0; o < n; o++) w2.set(weights.subarray(o * k, (o + 1) * k), o * k2);
    for (const o of both) {
      extra.forEach((p, j) => {
        if (w2[o * k2 + p] === 64) {
          w2[o * k2 + p] = 63;
          w2[o * k2 + k + j] = 1;
        }
      });
    }
    const packed = this.#packS7(w2, n, k2, bias, mult, inZp);
    if (packed === 2 || !packed) return undefined;
    return { ...packed, extra: this.put(Int32Array.from(extra)), extraCount: extra.length };
  }

  /** packGemmWeightsS7 without extra columns; 2 when a channel holds both +64 and -64. */
  #packS7(
    weights: Int8Array,
    n: number,
    k: number,
    bias: ArrayLike<number>,
    mult: ArrayLike<number>,
    inZp: number,
  ): PackedS7 | undefined | 2 {
    const kq = roundUp(k, 4);
    const start = this.mark();
    const dst = this.alloc(Math.ceil(n / 8) * 8 * kq);
    const mark = this.mark();
    const src = this.put(weights);
    const signs = this.alloc(n * 4);
    const sums = this.alloc(n * 4);
    const status = this.exports.packGemmWeightsS7(src, n, k, kq, dst, signs, sums);
    if (status !== 1) {
      this.release(start);
      return status === 2 ? 2 : undefined;
    }
    const sg = this.i32(signs, n).slice();
    const sm = this.i32(sums, n).slice();
    this.release(mark);
    const b = new Int32Array(roundUp(Math.max(n, 1), 8));
    const m = new Float32Array(b.length);
    for (let o = 0; o < n; o++) {
      const s = sg[o]!;
      // int32 wrap-around is harmless: the true accumulator fits int32, and the sum is modular
      b[o] = s * bias[o]! + (128 - inZp) * sm[o]! + 8192 * k;
      m[o] = s * mult[o]!;
    }
    return { ptr: dst, kq, bias: this.put(b), mult: this.put(m), extra: 0, extraCount: 0 };
  }

  /** Packs symmetric int8 depthwise weights `[c, k*k]` in wasm. */
  packDepthwiseWeightsInt8(weights: Int8Array, c: number, k: number): number {
    const taps = k * k;
    const dst = this.alloc(Math.ceil(c / 8) * Math.ceil(taps / 2) * 16 * 2);
    const mark = this.mark();
    const src = this.put(weights);
    this.exports.packDepthwiseWeightsI8(src, c, taps, dst);
    this.release(mark);
    return dst;
  }

  /** Packs depthwise weights `[c, k*k]` (minus zero point) for `depthwise`. */
  packDepthwiseWeights(weights: Int32Array, c: number, k: number): number {
    const taps = k * k;
    const pairs = Math.ceil(taps / 2);
    const packed = new Int16Array(Math.ceil(c / 8) * pairs * 16);
    for (let ch = 0; ch < c; ch++) {
      const lane = ch & 7;
      const base = (ch >> 3) * pairs * 16 + (lane >> 2) * 8 + (lane & 3) * 2;
      for (let t = 0; t < taps; t++) {
        packed[base + (t >> 1) * 16 + (t & 1)] = weights[ch * taps + t]!;
      }
    }
    return this.put(packed);
  }
}

let cachedModule: WebAssembly.Module | undefined;

/**
 * Compiles (once per process) kernels.wasm next to this file. Synchronously: the module is a few
 * KB, and a synchronous compile does not wait for background compile threads, which on a busy
 * machine cost tens of milliseconds of cold start.
 */
export function compileInt8Module(): WebAssembly.Module {
  if (!cachedModule) {
    const bytes = Deno.readFileSync(new URL("./kernels.wasm", import.meta.url));
    cachedModule = new WebAssembly.Module(bytes);
  }
  return cachedModule;
}

/**
 * Instantiates the kernels with their own memory. Pass a precompiled module where compiling from
 * bytes is not allowed (Cloudflare Workers: `import m from "./kernels.wasm"`).
 */
export function loadInt8Wasm(module?: WebAssembly.Module): Promise<Int8Wasm> {
  try {
    return Promise.resolve(
      new Int8Wasm(new WebAssembly.Instance(module ?? compileInt8Module(), {})),
    );
  } catch (e) {
    return Promise.reject(e);
  }
}
