/**
 * Graceful shutdown on SIGTERM and SIGINT: stop accepting connections, let the requests in flight
 * finish (`Deno.HttpServer.shutdown()` waits for them), then run the closers (the scheduler drains
 * its queues and stops its workers) and exit 0. A second signal, or a drain longer than `graceMs`,
 * exits 1 at once.
 */

export interface ShutdownOptions {
  signals?: Deno.Signal[];
  /** Run in order once the server has stopped and drained. */
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
 * shutdownOnSignals(() => server, { closers: [() => scheduler.close()] });
 * const server = Deno.serve(app.fetch);
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
    log(line("shutting down: no new connections, finishing requests in flight", { signal }));
    const timer = setTimeout(() => {
      log(line(`requests still in flight after ${graceMs} ms: exiting`, { signal }));
      settle(1);
      exit(1);
    }, graceMs);
    let code = 0;
    try {
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
