/**
 * A small HTTP/1.1 load generator on raw keep-alive TCP connections (the approach of wrk): the
 * requests are encoded once, each connection writes one and reads its answer, so that the client
 * costs little CPU on a 2-core machine it shares with the server. Two modes:
 * - closed loop: `connections` requests in flight at all times (concurrency);
 * - open loop: a fixed total rate; latency counts from the intended send time, so a client that
 *   falls behind does not hide server latency (coordinated omission, as wrk2 corrects it).
 * Only 127.0.0.1 / localhost targets are accepted.
 */

export interface LoadSpec {
  port: number;
  /** Raw requests (from `encodeRequest`), sent in turn. */
  requests: Uint8Array[];
  connections: number;
  /** Stops after this many requests... */
  maxRequests: number;
  /** ...or after this long, whichever comes first. */
  durationMs: number;
  /** Open loop: total requests per second across all connections. */
  ratePerS?: number;
  /** A request without an answer after this is counted as hung and its connection reopened. */
  timeoutMs?: number;
}

export interface LoadResult {
  sent: number;
  /** Answers by HTTP status. */
  statusCounts: Map<number, number>;
  /** Latency in ms of every answered request, and the status of each (same index). */
  latencies: Float64Array;
  /**
   * Latency from the moment the request was written, whatever its intended time: what the server
   * took, without the client's own lateness (equal to `latencies` in closed loop).
   */
  sentLatencies: Float64Array;
  statuses: Uint16Array;
  /** Connection-level failures (reset, closed mid-answer) and requests without answer in time. */
  socketErrors: number;
  timeouts: number;
  durationS: number;
  /** Answers per second. */
  throughput: number;
}

const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encodes one HTTP/1.1 request with a body (or none) for 127.0.0.1. */
export function encodeRequest(
  method: string,
  path: string,
  port: number,
  headers: Record<string, string> = {},
  body?: Uint8Array,
): Uint8Array {
  let head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: keep-alive\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (body) head += `content-length: ${body.length}\r\n`;
  head += "\r\n";
  const h = enc.encode(head);
  if (!body) return h;
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

function indexOf(buf: Uint8Array, end: number, pat: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= end - pat.length; i++) {
    for (let j = 0; j < pat.length; j++) if (buf[i + j] !== pat[j]) continue outer;
    return i;
  }
  return -1;
}

/** Reads HTTP/1.1 answers from one connection, keeping what arrives past the current one. */
class ResponseReader {
  #buf = new Uint8Array(64 * 1024);
  #len = 0;
  constructor(readonly conn: Deno.TcpConn) {}

  async #fill(): Promise<boolean> {
    if (this.#len === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    const n = await this.conn.read(this.#buf.subarray(this.#len));
    if (n === null) return false;
    this.#len += n;
    return true;
  }

  #consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  /** Set by `next()` when the answer said `Connection: close`: open a new connection. */
  closing = false;

  /** The status of the next answer, its body read and discarded; null if the peer closed. */
  async next(): Promise<number | null> {
    let headEnd: number;
    while ((headEnd = indexOf(this.#buf, this.#len, CRLF2)) < 0) {
      if (!(await this.#fill())) return null;
    }
    const head = dec.decode(this.#buf.subarray(0, headEnd)).toLowerCase();
    const status = Number(head.slice(9, 12));
    this.closing = /\r\nconnection: *close/.test(head);
    let rest = headEnd + 4;
    const cl = head.match(/\r\ncontent-length: *(\d+)/);
    if (cl) {
      const total = rest + Number(cl[1]);
      while (this.#len < total) if (!(await this.#fill())) return null;
      this.#consume(total);
      return status;
    }
    if (/\r\ntransfer-encoding: *chunked/.test(head)) {
      for (;;) {
        let lineEnd: number;
        while ((lineEnd = indexOf(this.#buf, this.#len, CRLF2.subarray(0, 2), rest)) < 0) {
          if (!(await this.#fill())) return null;
        }
        const size = parseInt(dec.decode(this.#buf.subarray(rest, lineEnd)), 16);
        const next = lineEnd + 2 + size + 2;
        while (this.#len < next) if (!(await this.#fill())) return null;
        rest = next;
        if (size === 0) break;
      }
      this.#consume(rest);
      return status;
    }
    this.#consume(rest); // no body (204, 304)
    return status;
  }
}

async function writeAll(conn: Deno.TcpConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one bounded load; never more than `maxRequests` requests, never longer than the duration. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (spec.requests.length === 0) throw new RangeError("Cannot run a load without requests");
  const timeoutMs = spec.timeoutMs ?? 10_000;
  const latencies = new Float64Array(spec.maxRequests);
  const sentLatencies = new Float64Array(spec.maxRequests);
  const statuses = new Uint16Array(spec.maxRequests);
  const statusCounts = new Map<number, number>();
  let answered = 0;
  let issued = 0;
  let socketErrors = 0;
  let timeouts = 0;
  const interval = spec.ratePerS ? 1000 / spec.ratePerS : 0;
  const connect = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: spec.port });
    conn.setNoDelay(true);
    return conn;
  };
  // Every connection is open before the clock starts: the run measures requests, not handshakes.
  const initial = await Promise.all(Array.from({ length: spec.connections }, connect));
  const start = performance.now();
  const stopAt = start + spec.durationMs;

  // One watchdog for every connection instead of a timer per request (a timer costs the client
  // two ops per request, on the cores it shares with the server): a request without an answer
  // after timeoutMs has its connection closed, which ends its read.
  const inFlight: { conn: Deno.TcpConn | null; since: number; timedOut: boolean }[] = [];
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const f of inFlight) {
      if (f.conn && now - f.since > timeoutMs) {
        f.timedOut = true;
        try {
          f.conn.close();
        } catch { /* already closed */ }
        f.conn = null;
      }
    }
  }, Math.min(100, timeoutMs / 4));

  const worker = async (first: Deno.TcpConn) => {
    const flight = { conn: null as Deno.TcpConn | null, since: 0, timedOut: false };
    inFlight.push(flight);
    let conn: Deno.TcpConn | null = first;
    let reader: ResponseReader | null = new ResponseReader(first);
    try {
      while (issued < spec.maxRequests && performance.now() < stopAt) {
        if (interval && start + issued * interval > stopAt) break;
        const k = issued++;
        let sendAt = performance.now();
        let writtenAt = sendAt;
        if (interval) {
          const target = start + k * interval;
          if (target > sendAt + 1) await sleep(target - sendAt);
          sendAt = target; // open loop: latency from the intended send time (wrk2)
        }
        if (!conn || !reader) {
          try {
            conn = await connect();
          } catch {
            socketErrors++;
            continue;
          }
          reader = new ResponseReader(conn);
        }
        const c: Deno.TcpConn = conn;
        let status: number | null = null;
        writtenAt = performance.now();
        flight.timedOut = false;
        flight.since = writtenAt;
        flight.conn = c;
        try {
          await writeAll(c, spec.requests[k % spec.requests.length]!);
          status = await reader.next();
        } catch {
          status = null;
        }
        flight.conn = null;
        const timedOut = flight.timedOut;
        if (status === null) {
          if (timedOut) timeouts++;
          else socketErrors++;
          if (!timedOut) {
            try {
              c.close();
            } catch { /* already closed */ }
          }
          conn = null;
          reader = null;
          continue;
        }
        const end = performance.now();
        latencies[answered] = end - sendAt;
        sentLatencies[answered] = end - writtenAt;
        statuses[answered] = status;
        answered++;
        statusCounts.set(status, (statusCounts.get(status) ?? 0) + 1);
        if (reader.closing) {
          // The server ends this connection after the answer (HTTP/1.1 Connection: close).
          try {
            c.close();
          } catch { /* already closed */ }
          conn = null;
          reader = null;
        }
      }
    } finally {
      try {
        conn?.close();
      } catch { /* already closed */ }
    }
  };
  try {
    await Promise.all(initial.map(worker));
  } finally {
    clearInterval(watchdog);
  }
  const durationS = (performance.now() - start) / 1000;
  return {
    sent: Math.min(issued, spec.maxRequests),
    statusCounts,
    latencies: latencies.slice(0, answered),
    sentLatencies: sentLatencies.slice(0, answered),
    statuses: statuses.slice(0, answered),
    socketErrors,
    timeouts,
    durationS,
    throughput: answered / durationS,
  };
}

/** Nearest-rank percentile (q in [0, 1]) of unsorted samples; NaN when empty. */
export function percentile(samples: Float64Array, q: number): number {
  if (samples.length === 0) return NaN;
  const s = samples.slice().sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** The latencies of answers whose status passes `keep` (from the intended or the actual send). */
export function latenciesWhere(
  r: LoadResult,
  keep: (status: number) => boolean,
  from: "intended" | "sent" = "intended",
): Float64Array {
  const src = from === "sent" ? r.sentLatencies : r.latencies;
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) if (keep(r.statuses[i]!)) out.push(src[i]!);
  return Float64Array.from(out);
}

/**
 * The machine's CPU time in seconds since boot, all cores summed, from the first line of
 * /proc/stat (USER_HZ = 100): `busy` is all but idle and I/O wait. Linux only; throws elsewhere.
 */
export function machineCpuSeconds(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0) / 100;
  return { busy: total - (f[3]! + f[4]!) / 100, total };
}

/** A server process started by `spawnServer`. */
export interface SpawnedServer {
  port: number;
  pid: number;
  /** SIGTERM, then its exit code once its stdout is drained. */
  stop(): Promise<number | null>;
}

/**
 * Starts `deno <args>` on 127.0.0.1 and resolves with its port.
 *
 * Without `onLine` the server's stdout (a JSON log line per request) goes to a pipe that a
 * separate `cat` process drains, as a log collector would, so that the load client, which runs
 * in the calling process on the same cores, spends nothing on it: drained here instead, the log
 * cost the client's event loop enough to add ~5 ms to the server's p99 at concurrency 32
 * (4,557 and 4,782/s, p99 25.7 and 26.8 ms, against 5,450 and 4,950/s, p99 21.2 and 21.2 ms, in
 * one quiet window). The port is picked here (`PORT`), and the server is ready for
 * {@link waitReady} once it listens. `bash` runs the server with `exec`, so `pid` is the server's.
 *
 * With `onLine` (a caller that reads the server's output, e.g. `--trace-gc` lines) the server gets
 * `PORT=0` and its stdout is read here: the port from its `"msg":"listening"` line (or `port N`
 * for plain scripts), then each later line goes to `onLine`.
 */
export async function spawnServer(
  args: string[],
  env: Record<string, string> = {},
  onLine?: (line: string) => void,
): Promise<SpawnedServer> {
  if (!onLine) return await spawnWithSeparateLogs(args, env);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { HOST: "127.0.0.1", PORT: "0", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let port = 0;
  let found: () => void = () => {};
  const listening = new Promise<void>((r) => (found = r));
  const drain = (async () => {
    let buf = "";
    const text = new TextDecoder();
    for await (const chunk of child.stdout) {
      buf += text.decode(chunk, { stream: true });
      if (port) {
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (const l of lines) onLine(l);
        continue;
      }
      const m = buf.match(/"msg":"listening"[^\n]*"port":(\d+)/) ?? buf.match(/port (\d+)/);
      if (m) {
        port = Number(m[1]);
        buf = buf.slice(buf.indexOf("\n", m.index!) + 1 || buf.length);
        found();
      }
    }
  })();
  const exited = child.status.then((s) => {
    if (!port) throw new Error(`the server exited with ${s.code} before listening`);
  });
  await Promise.race([listening, exited]);
  return {
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      const s = await child.status;
      await drain;
      return s.code;
    },
  };
}

/** A free port on 127.0.0.1 (free when asked: the caller binds it right after). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function spawnWithSeparateLogs(
  args: string[],
  env: Record<string, string>,
): Promise<SpawnedServer> {
  const port = freePort();
  const child = new Deno.Command("bash", {
    // exec: the server replaces bash (same pid); its stdout is the pipe into `cat`.
    args: ["-c", 'exec "$0" "$@" > >(exec cat > /dev/null)', Deno.execPath(), ...args],
    env: { HOST: "127.0.0.1", PORT: String(port), ...env },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // Listening is checked by connecting; a server that exits first is an error.
  let exitedWith: number | null = null;
  const status = child.status.then((s) => (exitedWith = s.code));
  for (let i = 0;; i++) {
    if (exitedWith !== null) {
      throw new Error(`the server exited with ${exitedWith} before listening`);
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => null);
    if (conn) {
      conn.close();
      break;
    }
    if (i > 1200) throw new Error(`the server did not listen on port ${port} within 2 minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await status;
      return exitedWith;
    },
  };
}

/** Polls `${base}/readyz` every 500 ms until it answers 200; throws after 5 minutes. */
export async function waitReady(base: string): Promise<void> {
  for (let i = 0;; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => null);
    const ok = res?.status === 200;
    await res?.body?.cancel();
    if (ok) return;
    if (i > 600) throw new Error("the server did not become ready within 5 minutes");
    await new Promise((r) => setTimeout(r, 500));
  }
}
