/**
 * How late the event loop runs: a timer is set every `intervalMs` and the delay past its due time
 * is the loop's lag. A busy loop delays everything equally: a new request waits that long before
 * the server sees it, and a finished answer waits that long before it is written. The scheduler
 * adds it to its deadline checks, so that an overloaded server refuses (cheaply) what it could
 * only answer late.
 *
 * The reading is the largest recent lag, fading by half every `halfLifeMs`: one slow turn of the
 * loop counts at once, and a recovered loop is trusted again within a few tens of milliseconds.
 * The probe costs one timer per interval and never keeps the process alive.
 */
export interface LoopLagOptions {
  /** Time between probes; default 2 ms. */
  intervalMs?: number;
  /** How fast a past lag fades; default 25 ms. */
  halfLifeMs?: number;
  /** Called with every probe's measured lag (ms), e.g. to feed a histogram. */
  onSample?: (lagMs: number) => void;
}

export class LoopLag {
  readonly #intervalMs: number;
  readonly #halfLifeMs: number;
  readonly #onSample: ((lagMs: number) => void) | undefined;
  #lag = 0;
  #at = performance.now();
  /** When the pending probe is due (Infinity when stopped). */
  #due = Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: LoopLagOptions = {}) {
    this.#intervalMs = opts.intervalMs ?? 2;
    this.#halfLifeMs = opts.halfLifeMs ?? 25;
    this.#onSample = opts.onSample;
    if (!(this.#intervalMs > 0) || !(this.#halfLifeMs > 0)) {
      throw new RangeError(
        `Cannot watch the event loop with intervalMs ${this.#intervalMs} and halfLifeMs ` +
          `${this.#halfLifeMs}: both must be > 0`,
      );
    }
    this.#arm();
  }

  /**
   * The loop's lag in ms (0 when it keeps time): the largest recent one, or, when the next probe
   * is overdue (the loop has not reached its timer yet, as right after a stall, when the requests
   * that waited through it are handled before the timer runs), how overdue it is.
   */
  get ms(): number {
    const now = performance.now();
    return Math.max(this.#decayed(now), this.#overdue(now));
  }

  /** Stops probing. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = Infinity;
  }

  /** Feeds one observed lag (what the probe does); for tests. */
  observe(lagMs: number, now = performance.now()): void {
    this.#lag = Math.max(lagMs, this.#decayed(now));
    this.#at = now;
  }

  #decayed(now: number): number {
    return this.#lag * 2 ** (-(now - this.#at) / this.#halfLifeMs);
  }

  /**
   * How late the pending probe is at `now` (also what it measures when it fires). Timers fire up
   * to about 1 ms after their due time on an idle loop: that much is not lag.
   */
  #overdue(now: number): number {
    return Math.max(0, now - this.#due - 1);
  }

  #arm(): void {
    this.#due = performance.now() + this.#intervalMs;
    const timer = setTimeout(() => {
      const now = performance.now();
      const lag = this.#overdue(now);
      this.observe(lag, now);
      this.#onSample?.(lag);
      this.#arm();
    }, this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
