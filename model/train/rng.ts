/**
 * A small seeded random generator (sfc32) whose whole state fits in four 32-bit words, so a
 * checkpoint can store it and a resumed run draws exactly the numbers the killed run would have.
 */
export class Rng {
  #s: Uint32Array;

  constructor(seed: number | readonly number[]) {
    if (typeof seed === "number") {
      if (!Number.isFinite(seed)) {
        throw new RangeError(
          `Cannot seed Rng as the seed must be finite: current value is ${seed}`,
        );
      }
      this.#s = new Uint32Array([0x9e3779b9, 0x243f6a88, 0xb7e15162, seed >>> 0]);
      for (let i = 0; i < 15; i++) this.nextU32();
    } else {
      if (seed.length !== 4) {
        throw new TypeError(
          `Cannot restore Rng as the state must have 4 words: current length is ${seed.length}`,
        );
      }
      this.#s = new Uint32Array(seed);
    }
  }

  /** The state to store; `new Rng(state)` continues the same stream. */
  state(): number[] {
    return Array.from(this.#s);
  }

  nextU32(): number {
    const s = this.#s;
    const t = (((s[0]! + s[1]!) >>> 0) + s[3]!) >>> 0;
    s[3] = (s[3]! + 1) >>> 0;
    s[0] = s[1]! ^ (s[1]! >>> 9);
    s[1] = (s[2]! + (s[2]! << 3)) >>> 0;
    s[2] = ((s[2]! << 21) | (s[2]! >>> 11)) >>> 0;
    s[2] = (s[2]! + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }
}
