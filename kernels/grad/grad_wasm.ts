/**
 * TypeScript side of kernels/grad/grad.wasm: loads the module (zero imports), manages its memory
 * by bump allocation from `heapBase()`, copies operands in and results out.
 *
 * Each entry point has the same contract as its plain TypeScript reference
 * (`depthwise_backprop_filter.ts`, `depthwise_backprop_input.ts`) or, for batch norm, as
 * `batchNormTrain` in model/train/mobilenet.ts followed by the activation.
 */
import type { ConvGeometry } from "./conv_geometry.ts";

export interface GradExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  dwBackpropFilter(
    x: number,
    dy: number,
    out: number,
    acc: number,
    tmp: number,
    n: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
  ): void;
  dwBackpropInput(
    dy: number,
    f: number,
    out: number,
    n: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
  ): void;
  pwBackpropFilter(
    x: number,
    dy: number,
    out: number,
    acc: number,
    tmp: number,
    m: number,
    cin: number,
    cout: number,
  ): void;
  pwForward(x: number, w: number, y: number, m: number, cin: number, cout: number): void;
  dwBackpropFilter3x3s1(
    x: number,
    dy: number,
    out: number,
    acc: number,
    zero: number,
    n: number,
    h: number,
    w: number,
    c: number,
  ): void;
  dwConv3x3s1(
    x: number,
    f: number,
    y: number,
    zero: number,
    n: number,
    h: number,
    w: number,
    c: number,
    flip: boolean,
  ): void;
  pwBackpropInput(
    dy: number,
    w: number,
    wt: number,
    dx: number,
    m: number,
    cin: number,
    cout: number,
  ): void;
  bnForward(
    x: number,
    gamma: number,
    beta: number,
    y: number,
    mean: number,
    invStd: number,
    acc: number,
    tmp: number,
    rows: number,
    c: number,
    eps: number,
    act: number,
  ): void;
  bnBackward(
    dy: number,
    x: number,
    mean: number,
    invStd: number,
    gamma: number,
    beta: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    acc: number,
    tmp: number,
    rows: number,
    c: number,
    act: number,
  ): void;
}

let compiled: WebAssembly.Module | undefined;

/** The compiled module; its one import is the memory it runs on (`env.memory`). */
function gradModule(): WebAssembly.Module {
  if (!compiled) {
    const bytes = Deno.readFileSync(new URL("./grad.wasm", import.meta.url));
    const m = new WebAssembly.Module(bytes);
    const imports = WebAssembly.Module.imports(m);
    if (imports.length !== 1 || imports[0]!.kind !== "memory") {
      throw new TypeError("Cannot load grad.wasm as its only import must be its memory");
    }
    compiled = m;
  }
  return compiled;
}

function instantiate(memory: WebAssembly.Memory): GradExports {
  const m = gradModule();
  const { module, name } = WebAssembly.Module.imports(m)[0]!;
  const ex = new WebAssembly.Instance(m, { [module]: { [name]: memory } }).exports;
  return { ...(ex as unknown as GradExports), memory };
}

let instance: GradExports | undefined;

/** The copy-in/copy-out instance on a memory of its own (plain typed arrays, any backend). */
function mod(): GradExports {
  if (!instance) instance = instantiate(new WebAssembly.Memory({ initial: 1 }));
  return instance;
}

/**
 * grad.wasm instantiated on another module's memory (tfjs's wasm backend heap), so the kernels
 * read and write tensors where they live: no copies in or out. Scratch space comes from that
 * module's `malloc` once and is reused (grown when a larger layer needs more).
 */
export class GradOnHeap {
  readonly k: GradExports;
  #malloc: (bytes: number) => number;
  #free: (ptr: number) => void;
  #raw = 0;
  #ptr = 0;
  #cap = 0;

  constructor(
    memory: WebAssembly.Memory,
    malloc: (bytes: number) => number,
    free: (ptr: number) => void,
  ) {
    this.k = instantiate(memory);
    this.#malloc = malloc;
    this.#free = free;
  }

  /** A 16-byte aligned scratch region of at least `bytes` bytes, valid until the next call. */
  scratch(bytes: number): number {
    if (bytes > this.#cap) {
      if (this.#raw) this.#free(this.#raw);
      const cap = Math.max(bytes, this.#cap * 2, 1 << 16);
      const raw = this.#malloc(cap + 16) >>> 0;
      if (!raw) throw new RangeError(`Cannot allocate ${cap} bytes of gradient kernel scratch`);
      this.#raw = raw;
      this.#ptr = (raw + 15) & ~15;
      this.#cap = cap;
    }
    return this.#ptr;
  }

  /** Offsets of consecutive 16-byte aligned scratch regions of the given byte sizes. */
  regions(sizes: number[]): number[] {
    let total = 0;
    for (const s of sizes) total += (s + 15) & ~15;
    let p = this.scratch(total);
    return sizes.map((s) => {
      const at = p;
      p += (s + 15) & ~15;
      return at;
    });
  }
}

/** Lays out regions of the given byte sizes (16-byte aligned), growing memory; returns offsets. */
function layout(sizes: number[]): number[] {
  const m = mod();
  let p = (m.heapBase() + 15) & ~15;
  const out: number[] = [];
  for (const s of sizes) {
    out.push(p);
    p += (s + 15) & ~15;
  }
  const need = p - m.memory.buffer.byteLength;
  if (need > 0) m.memory.grow(Math.ceil(need / 65536));
  return out;
}

function put(ptr: number, a: Float32Array): void {
  new Float32Array(mod().memory.buffer, ptr, a.length).set(a);
}

function view(ptr: number, len: number): Float32Array {
  return new Float32Array(mod().memory.buffer, ptr, len);
}

export function dwBackpropFilterWasm(
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeometry,
  out: Float32Array,
): void {
  const xl = g.n * g.h * g.w * g.cin;
  const dl = g.n * g.oh * g.ow * g.cin;
  const taps = g.kh * g.kw * g.cin;
  if (x.length < xl || dy.length < dl || out.length < taps) {
    throw new RangeError(
      `Cannot run depthwise backprop filter as buffers are too small for [${g.n},${g.h},${g.w},${g.cin}]`,
    );
  }
  const [px, pd, po, pa, pt] = layout([xl * 4, dl * 4, taps * 4, taps * 8, g.cin * 4]);
  put(px!, x.subarray(0, xl));
  put(pd!, dy.subarray(0, dl));
  mod().dwBackpropFilter(
    px!,
    pd!,
    po!,
    pa!,
    pt!,
    g.n,
    g.h,
    g.w,
    g.cin,
    g.oh,
    g.ow,
    g.kh,
    g.kw,
    g.sh,
    g.sw,
    g.pt,
    g.pl,
  );
  out.set(view(po!, taps));
}

export function dwBackpropInputWasm(
  dy: Float32Array,
  f: Float32Array,
  g: ConvGeometry,
  out: Float32Array,
): void {
  const xl = g.n * g.h * g.w * g.cin;
  const dl = g.n * g.oh * g.ow * g.cin;
  const taps = g.kh * g.kw * g.cin;
  if (out.length < xl || dy.length < dl || f.length < taps) {
    throw new RangeError(
      `Cannot run depthwise backprop input as buffers are too small for [${g.n},${g.h},${g.w},${g.cin}]`,
    );
  }
  const [pd, pf, po] = layout([dl * 4, taps * 4, xl * 4]);
  put(pd!, dy.subarray(0, dl));
  put(pf!, f.subarray(0, taps));
  mod().dwBackpropInput(
    pd!,
    pf!,
    po!,
    g.n,
    g.h,
    g.w,
    g.cin,
    g.oh,
    g.ow,
    g.kh,
    g.kw,
    g.sh,
    g.sw,
    g.pt,
    g.pl,
  );
  out.set(view(po!, xl));
}

/**
 * dL/dW of a 1x1 stride-1 convolution: `out[ci * cout + co] = sum_r x[r, ci] * dy[r, co]` over
 * the m = N*H*W rows (the filter layout `[1, 1, cin, cout]`).
 */
export function pwBackpropFilterWasm(
  x: Float32Array,
  dy: Float32Array,
  m: number,
  cin: number,
  cout: number,
  out: Float32Array,
): void {
  if (x.length < m * cin || dy.length < m * cout || out.length < cin * cout) {
    throw new RangeError(
      `Cannot run pointwise backprop filter as buffers are too small for ${m} rows of ${cin} -> ${cout}`,
    );
  }
  const total = cin * cout;
  const [px, pd, po, pa, pt] = layout([m * cin * 4, m * cout * 4, total * 4, total * 8, total * 4]);
  put(px!, x.subarray(0, m * cin));
  put(pd!, dy.subarray(0, m * cout));
  mod().pwBackpropFilter(px!, pd!, po!, pa!, pt!, m, cin, cout);
  out.set(view(po!, total));
}

/** Activation codes shared with the module. */
export const ACT = { none: 0, relu: 1, relu6: 2 } as const;

/**
 * Training batch norm + activation over `x` (rows x c). Returns views into module memory, valid
 * until the next call: copy them out (e.g. `tf.tensor(view)`) at once.
 */
export function bnForwardWasm(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  c: number,
  eps: number,
  act: number,
): { y: Float32Array; mean: Float32Array; invStd: Float32Array } {
  const size = x.length;
  const rows = size / c;
  if (!Number.isInteger(rows) || gamma.length !== c || beta.length !== c) {
    throw new RangeError(
      `Cannot run batch norm as ${size} values do not split into rows of ${c} channels`,
    );
  }
  const [px, pg, pb, py, pm, pi, pa, pt] = layout([
    size * 4,
    c * 4,
    c * 4,
    size * 4,
    c * 4,
    c * 4,
    c * 16,
    c * 8,
  ]);
  put(px!, x);
  put(pg!, gamma);
  put(pb!, beta);
  mod().bnForward(px!, pg!, pb!, py!, pm!, pi!, pa!, pt!, rows, c, eps, act);
  return { y: view(py!, size), mean: view(pm!, c), invStd: view(pi!, c) };
}

/**
 * Backward of `bnForwardWasm` (the activation's mask recomputed from x, so y is not needed);
 * returns views into module memory, valid until the next call.
 */
export function bnBackwardWasm(
  dy: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  c: number,
  act: number,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const size = x.length;
  const rows = size / c;
  if (!Number.isInteger(rows) || dy.length !== size || beta.length !== c) {
    throw new RangeError(
      `Cannot run batch norm backward as ${size} values do not split into rows of ${c} channels`,
    );
  }
  const [pdy, px, pm, pi, pg, pb, pdg, pdb, pa, pt] = layout([
    size * 4,
    size * 4,
    c * 4,
    c * 4,
    c * 4,
    c * 4,
    c * 4,
    c * 4,
    c * 16,
    c * 20,
  ]);
  put(pdy!, dy);
  put(px!, x);
  put(pm!, mean);
  put(pi!, invStd);
  put(pg!, gamma);
  put(pb!, beta);
  mod().bnBackward(pdy!, px!, pm!, pi!, pg!, pb!, pdy!, pdg!, pdb!, pa!, pt!, rows, c, act);
  return { dx: view(pdy!, size), dgamma: view(pdg!, c), dbeta: view(pdb!, c) };
}
