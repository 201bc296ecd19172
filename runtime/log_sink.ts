/**
 * Buffered, asynchronous log output for the request path. `console.log` writes each line with a
 * blocking `write(2)` on the event loop's thread: at thousands of requests a second that is a
 * large share of the thread's time, and it stalls every request behind a slow log reader. This
 * sink collects lines and writes them in one asynchronous write some milliseconds later.
 *
 * When more than `maxBufferedBytes` wait (the reader cannot keep up), they are written
 * synchronously, as `console.log` would have, so memory stays bounded and the reader's pace becomes
 * the server's. Lines keep their order. Only while one write is stuck (a reader that stopped
 * reading) and four times that much waits are new lines dropped, and a line saying how many
 * follows. Call {@link LogSink.close} before exiting.
 */

export interface LogWriter {
  write(p: Uint8Array): Promise<number>;
  writeSync(p: Uint8Array): number;
}

export interface LogSinkOptions {
  /** Where the lines go; default `Deno.stdout`. */
  out?: LogWriter;
  /**
   * How long a line may wait for the next write; default 50 ms (each write wakes the reader, so
   * fewer, larger writes cost less). 64 KiB of waiting lines are written at once.
   */
  flushMs?: number;
  /** Buffered text above which writing turns synchronous; default 4 MiB. */
  maxBufferedBytes?: number;
}

const encoder = new TextEncoder();
/** Buffered text (UTF-16 units) that is written without waiting for the timer. */
const FLUSH_CHARS = 64 * 1024;

export class LogSink {
  readonly #out: LogWriter;
  readonly #flushMs: number;
  readonly #maxBuffered: number;
  #lines: string[] = [];
  /** Length of the buffered text in UTF-16 units (a cheap bound on its bytes / 3). */
  #chars = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The write in progress, if any; the next one starts after it. */
  #writing: Promise<void> | null = null;
  #dropped = 0;

  constructor(opts: LogSinkOptions = {}) {
    this.#out = opts.out ?? Deno.stdout;
    this.#flushMs = opts.flushMs ?? 50;
    this.#maxBuffered = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
  }

  /** Queues one line (a newline is added). Bound, so it can be handed around as a function. */
  readonly log = (line: string): void => {
    if (this.#chars * 3 > this.#maxBuffered) {
      // The reader is behind: write what waits now, on this thread (backpressure). Never beside
      // an asynchronous write in progress: two writers could interleave their bytes in the pipe.
      if (this.#writing === null) this.#writeSync();
      else if (this.#chars * 3 > 4 * this.#maxBuffered) {
        this.#dropped++;
        return;
      }
    }
    this.#lines.push(line);
    this.#chars += line.length + 1;
    if (this.#chars >= FLUSH_CHARS && this.#writing === null) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#flush();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, this.#flushMs);
  };

  /** Writes everything buffered and resolves once it has been written. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    // Two rounds at most: the write in progress, then what waited behind it (lines logged while
    // closing do not keep it from finishing).
    if (this.#writing !== null) await this.#writing;
    this.#flush();
    if (this.#writing !== null) await this.#writing;
  }

  #take(): Uint8Array {
    if (this.#dropped > 0) {
      this.#lines.push(JSON.stringify({
        time: new Date().toISOString(),
        level: "warn",
        msg: "log lines dropped: the log reader stopped reading",
        count: this.#dropped,
      }));
      this.#dropped = 0;
    }
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    this.#chars = 0;
    return encoder.encode(text);
  }

  #writeSync(): void {
    let bytes = this.#take();
    while (bytes.length > 0) bytes = bytes.subarray(this.#out.writeSync(bytes));
  }

  #flush(): void {
    if (this.#writing !== null || this.#lines.length === 0) return;
    const bytes = this.#take();
    this.#writing = (async () => {
      try {
        let rest = bytes;
        while (rest.length > 0) rest = rest.subarray(await this.#out.write(rest));
      } catch {
        // The reader has gone (closed pipe): nothing more can be written; drop the lines.
        this.#lines = [];
        this.#chars = 0;
      } finally {
        this.#writing = null;
        // Lines that arrived during the write go out next.
        if (this.#lines.length > 0) {
          this.#timer ??= setTimeout(() => {
            this.#timer = undefined;
            this.#flush();
          }, 0);
        }
      }
    })();
  }
}
