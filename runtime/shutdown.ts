/**
 * Graceful shutdown on SIGTERM and SIGINT, in three steps:
 * 1. drain: requests already admitted run to the end; new ones are answered 503 with
 *    `Retry-After` and `Connection: close` (and `/readyz` says not ready), so that clients and load
 *    balancers go elsewhere;
 * 2. once nothing admitted is in flight, `Deno.HttpServer.shutdown()` closes the listener and the
 *    idle connections;
 * 3. the closers run (the scheduler finishes its queues and stops its workers), and the process
 *    exits 0.
 * A second signal, or a drain longer than `graceMs`, exits 1 at once.
 *
 * Why not `server.shutdown()` first: in Deno 2.9 it cuts the request bodies still being uploaded
 * ("BadResource: Cannot read request body as underlying resource unavailable"), so a request in
 * flight whose image has not fully arrived would fail. Draining first lets those finish.
 */

/** What the HTTP layer reads and updates: routes/drain.ts counts admitted requests here. */
export class DrainState {
  #inFlight = 0;
  #draining = false;
  #waiters: (() => void)[] = [];

  get draining(): boolean {
    return this.#draining;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Called when a request is admitted (not during the drain). */
  enter(): void {
    this.#inFlight++;
  }

  leave(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) { for (const w of this.#waiters.splice(0)) w(); }
  }

  /** Starts draining; resolves when no admitted request is left in flight. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }
}

export interface ShutdownOptions {
  signals?: Deno.Signal[];
  /** Counts the requests in flight; without it the server is shut down at once. */
  drain?: DrainState;
  /** Run in order once the server has stopped. */
  closers?: Array<() => Promise<void>>;
  /** Longest wait for the drain before giving up; default 30 s (Kubernetes' default grace). */
  graceMs?: number;
  log?: (line: string) => void;
  exit?: (code: number) => void;
}

export interface ShutdownHandle {
  /** Resolves with the exit code once shut down (after the signal). */
  done: Promise<number>;
  /** Stops listening for the signals. */
  remove(): void;
}

const line = (msg: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ time: new Date().toISOString(), level: "info", msg, ...extra });

/**
 * Installs the signal handlers. `server` is a function so that the handlers can be installed
 * before `Deno.serve` logs "listening": a signal sent right after that line must not kill the
 * process with the default action.
 *
 * @example
 * ```ts
 * const drain = new DrainState();
 * shutdownOnSignals(() => server, { drain, closers: [() => scheduler.close()] });
 * const server = Deno.serve(createApp({ drain }).fetch);
 * ```
 */
export function shutdownOnSignals(
  server: () => Deno.HttpServer,
  opts: ShutdownOptions = {},
): ShutdownHandle {
  const signals = opts.signals ?? ["SIGTERM", "SIGINT"];
  const log = opts.log ?? ((l: string) => console.log(l));
  const exit = opts.exit ?? ((code: number) => Deno.exit(code));
  const graceMs = opts.graceMs ?? 30_000;
  let started = false;
  let settle: (code: number) => void = () => {};
  const done = new Promise<number>((r) => (settle = r));

  const onSignal = (signal: Deno.Signal) => async () => {
    if (started) {
      log(line("second signal: exiting without waiting", { signal }));
      settle(1);
      exit(1);
      return;
    }
    started = true;
    log(
      line("shutting down: finishing requests in flight, refusing new ones", {
        signal,
        in_flight: opts.drain?.inFlight ?? null,
      }),
    );
    const timer = setTimeout(() => {
      log(line(`requests still in flight after ${graceMs} ms: exiting`, { signal }));
      settle(1);
      exit(1);
    }, graceMs);
    let code = 0;
    try {
      await opts.drain?.drain();
      await server().shutdown();
      for (const close of opts.closers ?? []) await close();
      log(line("stopped", { signal }));
    } catch (err) {
      log(JSON.stringify({ level: "error", msg: "shutdown failed", error: String(err) }));
      code = 1;
    }
    clearTimeout(timer);
    settle(code);
    exit(code);
  };
  const handlers = signals.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return {
    done,
    remove() {
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    },
  };
}
