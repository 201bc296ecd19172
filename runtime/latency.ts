/**
 * Measured latency of one model variant: an exponentially weighted moving average (reacts within a
 * few batches) and percentiles over a rolling window of the last samples (what deadline decisions
 * and `alpha=auto` read). Samples are milliseconds.
 */

export interface LatencySnapshot {
  /** Samples seen since start (not only those in the window). */
  count: number;
  /** EWMA in ms; NaN before the first sample. */
  ewmaMs: number;
  /** 50th and 95th percentile over the rolling window, NaN before the first sample. */
  p50Ms: number;
  p95Ms: number;
}

/** Smoothing factor of the EWMA: each new sample weighs 20%, so ~10 samples dominate. */
export const EWMA_ALPHA = 0.2;

export class LatencyStats {
  readonly #window: Float64Array;
  #next = 0;
  #filled = 0;
  #count = 0;
  #ewma = NaN;
  #sorted: Float64Array | null = null;

  constructor(windowSize = 256) {
    if (!Number.isInteger(windowSize) || windowSize < 1) {
      throw new RangeError(
        `Cannot create latency stats as the window must be a positive integer: current value is ${windowSize}`,
      );
    }
    this.#window = new Float64Array(windowSize);
  }

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(
        `Cannot record a latency sample as it must be a finite non-negative number: current value is ${ms}`,
      );
    }
    this.#window[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#window.length;
    if (this.#filled < this.#window.length) this.#filled++;
    this.#count++;
    this.#ewma = Number.isNaN(this.#ewma) ? ms : this.#ewma + EWMA_ALPHA * (ms - this.#ewma);
    this.#sorted = null;
  }

  get count(): number {
    return this.#count;
  }

  get ewmaMs(): number {
    return this.#ewma;
  }

  /** Nearest-rank percentile over the window (q in [0, 1]); NaN with no samples. */
  quantile(q: number): number {
    if (this.#filled === 0) return NaN;
    // Sorting 256 numbers is cheap, and it is redone only after new samples arrive.
    if (this.#sorted === null) this.#sorted = this.#window.slice(0, this.#filled).sort();
    const rank = Math.min(this.#filled - 1, Math.max(0, Math.ceil(q * this.#filled) - 1));
    return this.#sorted[rank]!;
  }

  snapshot(): LatencySnapshot {
    return {
      count: this.#count,
      ewmaMs: this.#ewma,
      p50Ms: this.quantile(0.5),
      p95Ms: this.quantile(0.95),
    };
  }
}
