/**
 * `deno task loadtest`: bounded load against the classify service on 127.0.0.1, with the
 * project's own keep-alive load generator (bench/load_client.ts) or, for the closed-loop matrix,
 * wrk (`--client wrk`, Debian package `wrk` 4.1.0, driven through bench/wrk.ts; `--client own,wrk`
 * runs both, one after the other for each width, and the table says which client measured a row).
 *
 * Modes (all bounded in requests and time; they stop by themselves):
 * - default: p50/p95/p99, throughput and errors for each concurrency x width, written into
 *   docs/performance.md (between `<!-- loadtest:start -->` and `<!-- loadtest:end -->`) with an SVG
 *   chart (docs/loadtest.svg);
 * - `--p99-ms 20`: SLA mode for CI: exits 1 when any run's p99 is above the budget or any request
 *   failed (non-2xx, reset, hung);
 * - `--overload`: measures the sustainable rate at concurrency 32, then sends twice that rate with
 *   a deadline: accepted answers must meet it, refusals must come in under 5 ms, none lost;
 * - `--soak 200000`: that many requests at concurrency 32, sampling the server's resident memory.
 * `--repeat N` runs every row of the matrix N times and shows the run with the median p99 (every
 * run's p99 and throughput listed under the table), and `--overload` N times, one table row each:
 * on these 2 shared cores the same command swings by 30% from one run to the next.
 * `--overload` and `--soak` use the own client only (wrk has no fixed-rate open loop or request
 * count). wrk runs stop by `--duration` only (`--requests` does not apply), with `--wrk-threads`
 * threads (default 1, at most the concurrency). `--doc FILE` writes into FILE (charts beside it)
 * instead of docs/performance.md, e.g. to try `--write` on a copy.
 *
 * Without `--url` it starts `main.ts` itself on a free port (extra server environment with
 * `--server-env KEY=VALUE`), waits for /readyz, and stops it with SIGTERM at the end.
 *
 * @example
 * ```sh
 * deno task loadtest --concurrency 1,8,32,64 --alpha 0.25,1 --duration 10
 * deno task loadtest --concurrency 1,8,32 --alpha 0.25,1 --duration 5 --repeat 3
 * deno task loadtest --concurrency 32 --alpha 0.25 --p99-ms 20 --no-write
 * deno task loadtest --client wrk --concurrency 32 --alpha 0.25 --duration 5 --no-write
 * deno task loadtest --overload --alpha 0.25 --deadline-ms 20
 * deno task loadtest --soak 200000 --alpha 0.25
 * ```
 */
import {
  encodeRequest,
  latenciesWhere,
  type LoadResult,
  machineCpuSeconds,
  percentile,
  runLoad,
  spawnServer,
  waitReady,
} from "./load_client.ts";
import { lineChart } from "./svg_chart.ts";
import { runWrk, WRK_INSTALL, type WrkResult, wrkVersion } from "./wrk.ts";

const ROOT = new URL("../", import.meta.url);
// Where `--write` writes (`--doc FILE` moves all three: the charts go beside FILE).
let DOC = new URL("docs/performance.md", ROOT);
let SVG = new URL("docs/loadtest.svg", ROOT);
let SOAK_SVG = new URL("docs/loadtest_soak.svg", ROOT);
const FIXTURES = new URL("tests/fixtures/data/", ROOT);
/** Requests sent before each width's timed runs (and before the overload's sustainable run). */
const WARMUP_REQUESTS = 5000;

interface Args {
  url?: string;
  concurrency: number[];
  alpha: string[];
  beta: string;
  backend?: string;
  requests: number;
  durationS: number;
  /** Runs per row of the matrix; the row shows the run with the median p99. */
  repeat: number;
  p99Ms?: number;
  overload: boolean;
  deadlineMs: number;
  soak?: number;
  write: boolean;
  serverEnv: Record<string, string>;
  images: number;
  clients: Client[];
  wrkThreads: number;
  doc?: string;
}

/** Who measures a closed-loop run: the own client (bench/load_client.ts) or wrk. */
type Client = "own" | "wrk";

function parseArgs(argv: string[]): Args {
  const a: Args = {
    concurrency: [1, 8, 32, 64],
    alpha: [],
    beta: "1",
    requests: 30_000,
    durationS: 10,
    repeat: 1,
    overload: false,
    deadlineMs: 20,
    write: true,
    serverEnv: {},
    images: 200,
    clients: ["own"],
    wrkThreads: 1,
  };
  const need = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined) throw new RangeError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    switch (f) {
      case "--url":
        a.url = need(i++, f);
        break;
      case "--concurrency":
        a.concurrency = need(i++, f).split(",").map(Number);
        break;
      case "--alpha":
        a.alpha = need(i++, f).split(",");
        break;
      case "--beta":
        a.beta = need(i++, f);
        break;
      case "--backend":
        a.backend = need(i++, f);
        break;
      case "--requests":
        a.requests = Number(need(i++, f));
        break;
      case "--duration":
        a.durationS = Number(need(i++, f));
        break;
      case "--repeat":
        a.repeat = Number(need(i++, f));
        if (!Number.isInteger(a.repeat) || a.repeat < 1) {
          throw new RangeError(`--repeat must be a positive integer: current value is ${a.repeat}`);
        }
        break;
      case "--p99-ms":
        a.p99Ms = Number(need(i++, f));
        break;
      case "--overload":
        a.overload = true;
        break;
      case "--deadline-ms":
        a.deadlineMs = Number(need(i++, f));
        break;
      case "--soak":
        a.soak = Number(need(i++, f));
        break;
      case "--client": {
        const list = need(i++, f).split(",");
        for (const c of list) {
          if (c !== "own" && c !== "wrk") {
            throw new RangeError(`--client must be own, wrk or own,wrk: got ${c}`);
          }
        }
        a.clients = [...new Set(list)] as Client[];
        break;
      }
      case "--wrk-threads":
        a.wrkThreads = Number(need(i++, f));
        break;
      case "--images":
        a.images = Number(need(i++, f));
        break;
      case "--write": // the default, accepted to say so
        a.write = true;
        break;
      case "--doc": // write into this file (charts beside it) instead of docs/performance.md
        a.doc = need(i++, f);
        break;
      case "--no-write":
        a.write = false;
        break;
      case "--server-env": {
        const [k, ...v] = need(i++, f).split("=");
        a.serverEnv[k!] = v.join("=");
        break;
      }
      default:
        throw new RangeError(`Unknown flag ${f}: see the comment at the top of bench/loadtest.ts`);
    }
  }
  if (a.p99Ms !== undefined && !(a.p99Ms > 0)) throw new RangeError("--p99-ms must be > 0");
  if (a.concurrency.some((c) => !Number.isInteger(c) || c < 1 || c > 1024)) {
    throw new RangeError(`--concurrency must be integers in [1, 1024]: got ${a.concurrency}`);
  }
  if (!(a.requests >= 1 && a.requests <= 1_000_000)) {
    throw new RangeError("--requests must be in [1, 1000000]");
  }
  if (!(a.durationS > 0 && a.durationS <= 600)) {
    throw new RangeError("--duration must be in (0, 600]");
  }
  if (a.soak !== undefined && !(a.soak >= 1 && a.soak <= 2_000_000)) {
    throw new RangeError("--soak must be in [1, 2000000]");
  }
  if (!(Number.isInteger(a.wrkThreads) && a.wrkThreads >= 1 && a.wrkThreads <= 64)) {
    throw new RangeError("--wrk-threads must be an integer in [1, 64]");
  }
  if (a.clients.includes("wrk") && (a.overload || a.soak !== undefined)) {
    throw new RangeError(
      "--overload and --soak run on the own client only (wrk has no fixed-rate open loop or " +
        "request count): drop --client wrk",
    );
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// The server

interface Target {
  port: number;
  pid?: number;
  stop(): Promise<number | null>;
}

async function startServer(env: Record<string, string>): Promise<Target> {
  const s = await spawnServer(["run", "-A", new URL("main.ts", ROOT).pathname], env);
  await waitReady(`http://127.0.0.1:${s.port}`);
  return s;
}

function targetFromUrl(url: string): Target {
  const u = new URL(url);
  if (!["127.0.0.1", "localhost"].includes(u.hostname)) {
    throw new RangeError(`Cannot load-test ${u.hostname}: only 127.0.0.1 is allowed`);
  }
  return { port: Number(u.port || 80), stop: () => Promise.resolve(null) };
}

/** Resident set size of a process in bytes (Linux /proc). */
function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = status.match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/**
 * Share of all cores busy (not idle, not waiting for I/O) over `ms`, from /proc/stat; NaN where
 * there is none. Unlike the load average, which a training run paused seconds ago still raises
 * for a minute, it says whether anything else is using the cores now.
 */
async function cpuBusy(ms = 1000): Promise<number> {
  try {
    const a = machineCpuSeconds();
    await new Promise((r) => setTimeout(r, ms));
    const b = machineCpuSeconds();
    return (b.busy - a.busy) / Math.max(0.01, b.total - a.total);
  } catch {
    return NaN;
  }
}

function cpuModel(): string {
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.+)/);
    return m ? m[1]!.trim() : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

async function fixtureImages(n: number): Promise<Uint8Array[]> {
  const labels = JSON.parse(await Deno.readTextFile(new URL("labels.json", FIXTURES)));
  const files = Object.keys(labels.files).filter((f) => f.startsWith("fmnist/png/")).slice(0, n);
  if (files.length === 0) throw new Error("no PNG fixtures: run deno task fixtures");
  return await Promise.all(files.map((f) => Deno.readFile(new URL(f, FIXTURES))));
}

function classifyRequests(
  port: number,
  images: Uint8Array[],
  query: Record<string, string>,
  headers: Record<string, string> = {},
): Uint8Array[] {
  const qs = new URLSearchParams(query).toString();
  return images.map((img) =>
    encodeRequest(
      "POST",
      `/v1/classify?${qs}`,
      port,
      { "content-type": "image/png", ...headers },
      img,
    )
  );
}

async function servedAlphas(port: number): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/models`);
  const body = await res.json();
  const list = (body.models ?? body.variants ?? body) as { alpha: number }[];
  return [...new Set(list.map((m) => String(m.alpha)))];
}

// ---------------------------------------------------------------------------------------------
// Reporting

interface RunRow {
  client: string;
  alpha: string;
  beta: string;
  concurrency: number;
  sent: number;
  ok: number;
  errors: number;
  statuses: string;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** With `--repeat N`: p99 and throughput of every run of this row (the row is the median). */
  runs?: { p99: number; rps: number }[];
}

function summarize(alpha: string, beta: string, concurrency: number, r: LoadResult): RunRow {
  const ok = r.statusCounts.get(200) ?? 0;
  const lat = latenciesWhere(r, (s) => s === 200);
  return {
    client: "own",
    alpha,
    beta,
    concurrency,
    sent: r.sent,
    ok,
    errors: r.sent - ok,
    statuses: [...r.statusCounts].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(
      ", ",
    ) + (r.socketErrors ? `, reset: ${r.socketErrors}` : "") +
      (r.timeouts ? `, hung: ${r.timeouts}` : ""),
    rps: ok / r.durationS,
    p50: percentile(lat, 0.5),
    p95: percentile(lat, 0.95),
    p99: percentile(lat, 0.99),
    max: percentile(lat, 1),
  };
}

/**
 * A wrk run as a row. wrk counts answers by class, not by status: `ok` is every answer below 400
 * (the service answers a classification with 200 and a refusal or failure with 4xx/5xx), and its
 * latency percentiles are over every answer within the timeout, refusals included (none when
 * errors is 0). `requests` is answers plus connections that failed or hung.
 */
export function summarizeWrk(
  alpha: string,
  beta: string,
  concurrency: number,
  r: WrkResult,
  version: string,
): RunRow {
  const ok = r.answered - r.statusErrors;
  const sent = r.answered + r.socketErrors + r.timeouts;
  return {
    client: `wrk ${version}`,
    alpha,
    beta,
    concurrency,
    sent,
    ok,
    errors: sent - ok,
    statuses: `>= 400: ${r.statusErrors}, reset: ${r.socketErrors}, hung: ${r.timeouts}`,
    rps: ok / r.durationS,
    p50: r.p50,
    p95: r.p95,
    p99: r.p99,
    max: r.max,
  };
}

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : "n/a");
const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "n/a");
const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "n/a");

/**
 * The run with the median p99 (the lower middle one for an even count), carrying every run's p99
 * and throughput when there was more than one; errors add up over the runs, so that a failure in
 * any run shows.
 */
export function medianRun(runs: RunRow[]): RunRow {
  if (runs.length === 1) return runs[0]!;
  const sorted = [...runs].sort((x, y) => x.p99 - y.p99);
  const mid = sorted[(sorted.length - 1) >> 1]!;
  return {
    ...mid,
    errors: runs.reduce((n, r) => n + r.errors, 0),
    runs: runs.map((r) => ({ p99: r.p99, rps: r.rps })),
  };
}

/** One line per repeated row: every run's p99 and throughput, in run order. */
export function repeatsText(rows: RunRow[]): string {
  const lines = rows.filter((r) => r.runs).map((r) =>
    `- ${r.client}, alpha ${r.alpha}, c=${r.concurrency}: p99 ${
      r.runs!.map((x) => f1(x.p99)).join(" / ")
    } ms, ${r.runs!.map((x) => f0(x.rps)).join(" / ")} classifications/s`
  );
  return lines.length
    ? `Every run of each row (the table shows the one with the median p99; errors are summed over the runs):\n\n${
      lines.join("\n")
    }\n`
    : "";
}

export function table(rows: RunRow[]): string {
  let out =
    "| client | alpha | beta | concurrency | requests | ok | errors | classifications/s | p50 ms | p95 ms | p99 ms | max ms |\n" +
    "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const r of rows) {
    out +=
      `| ${r.client} | ${r.alpha} | ${r.beta} | ${r.concurrency} | ${r.sent} | ${r.ok} | ${r.errors} | ${
        f0(r.rps)
      } | ${f1(r.p50)} | ${f1(r.p95)} | ${f1(r.p99)} | ${f1(r.max)} |\n`;
  }
  return out;
}

/** Replaces (or appends) the text between `<!-- name:start -->` and `<!-- name:end -->`. */
async function writeSection(name: string, body: string): Promise<void> {
  let doc = "";
  try {
    doc = await Deno.readTextFile(DOC);
  } catch {
    doc = "# Performance\n\nSections below are written by the benchmark scripts in bench/.\n";
  }
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  doc = i >= 0 && j > i
    ? doc.slice(0, i) + block + doc.slice(j + end.length)
    : `${doc.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(DOC, doc);
  // The doc passes `deno fmt --check` (deno task ok): align the tables the way fmt does.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "-q", "--config", new URL("deno.json", ROOT).pathname, DOC.pathname],
  }).output();
}

const STARTED = new Date();

/** Who measured: the sentence on the client(s) in the setting paragraph. */
function clientText(a: Args, wrk: string | null): string {
  const own = `bench/load_client.ts (keep-alive HTTP/1.1, "own" in the table)`;
  const w = `wrk ${wrk ?? ""} (keep-alive HTTP/1.1, ${a.wrkThreads} thread${
    a.wrkThreads === 1 ? "" : "s"
  }, a Lua script from bench/wrk.ts)`;
  const names = a.clients.map((c) => (c === "own" ? own : w));
  return `Client: ${names.join(" and, for the rows marked wrk, ")} on the same machine, sharing ` +
    `its cores with the server; ${a.images} different 28x28 PNG fixtures sent in turn as raw bodies.`;
}

function setting(
  a: Args,
  before: { load: number; busy: number },
  loadAfter: number,
  wrk: string | null = null,
): string {
  const env = Object.entries(a.serverEnv).map(([k, v]) => `${k}=${v}`).join(" ");
  const contended = before.busy > 0.25;
  return [
    `Measured from ${STARTED.toISOString().slice(0, 16).replace("T", " ")} to ${
      new Date().toISOString().slice(11, 16)
    } UTC on ${cpuModel()}, ` +
    `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}. Server: \`main.ts\`` +
    (env ? ` with \`${env}\`` : " with default settings") +
    (a.backend ? `, backend ${a.backend}` : "") +
    (a.url
      ? ""
      : ", its log (a JSON line per request) piped to a separate `cat` process, as a log " +
        "collector would read it, so that the client does not pay for it") +
    `. ${clientText(a, wrk)}`,
    "",
    `CPU busy in the second before the run: ${
      (100 * before.busy).toFixed(0)
    }% of ${navigator.hardwareConcurrency} cores ` +
    `(load average, 1 min: ${before.load.toFixed(2)} before, ${loadAfter.toFixed(2)} after). ` +
    (contended
      ? "**Taken under contention**: other work (engineers' builds and tests, a training run) was " +
        "using the cores when the run started, so these numbers understate what the service does " +
        "on a quiet machine."
      : "The machine was quiet when the run started."),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Modes

async function matrix(
  a: Args,
  t: Target,
  images: Uint8Array[],
  wrk: string | null,
): Promise<RunRow[]> {
  const rows: RunRow[] = [];
  for (const alpha of a.alpha) {
    const query: Record<string, string> = { alpha, beta: a.beta };
    if (a.backend) query.backend = a.backend;
    const reqs = classifyRequests(t.port, images, query);
    const path = `/v1/classify?${new URLSearchParams(query)}`;
    // Warm-up: compiled code paths (V8 tiers wasm and JS up in the background after many calls)
    // and measured latency before the numbers count. 500 requests at 8 connections was too short:
    // whichever client ran second in a same-window A/B measured faster.
    await runLoad({
      port: t.port,
      requests: reqs,
      connections: Math.max(8, ...a.concurrency),
      maxRequests: WARMUP_REQUESTS,
      durationMs: 5000,
    });
    for (const c of a.concurrency) {
      for (const client of a.clients) {
        const runOnce = async (): Promise<RunRow> => {
          if (client === "wrk") {
            const r = await runWrk(
              { method: "POST", path, headers: { "content-type": "image/png" }, bodies: images },
              {
                port: t.port,
                connections: c,
                threads: a.wrkThreads,
                durationS: a.durationS,
                timeoutS: 10, // as the own client's
              },
            );
            return summarizeWrk(alpha, a.beta, c, r, wrk ?? "unknown version");
          }
          const r = await runLoad({
            port: t.port,
            requests: reqs,
            connections: c,
            maxRequests: a.requests,
            durationMs: a.durationS * 1000,
          });
          return summarize(alpha, a.beta, c, r);
        };
        const runs: RunRow[] = [];
        for (let k = 0; k < a.repeat; k++) {
          const row = await runOnce();
          runs.push(row);
          console.log(
            `${row.client}: alpha=${alpha} beta=${a.beta} c=${c}: ${f0(row.rps)}/s p50 ${
              f1(row.p50)
            } p95 ${f1(row.p95)} p99 ${f1(row.p99)} max ${f1(row.max)} ms, requests ${row.sent}, ` +
              `errors ${row.errors} (${row.statuses})`,
          );
        }
        rows.push(medianRun(runs));
      }
    }
  }
  return rows;
}

async function overload(a: Args, t: Target, images: Uint8Array[]) {
  const alpha = a.alpha[0]!;
  const query: Record<string, string> = { alpha, beta: a.beta };
  if (a.backend) query.backend = a.backend;
  const plain = classifyRequests(t.port, images, query);
  await runLoad({
    port: t.port,
    requests: plain,
    connections: 32,
    maxRequests: WARMUP_REQUESTS,
    durationMs: 5000,
  });
  const base = await runLoad({
    port: t.port,
    requests: plain,
    connections: 32,
    maxRequests: a.requests,
    durationMs: a.durationS * 1000,
  });
  const sustainable = (base.statusCounts.get(200) ?? 0) / base.durationS;
  const rate = 2 * sustainable;
  const withDeadline = classifyRequests(t.port, images, query, {
    "x-deadline-ms": String(a.deadlineMs),
  });
  const before = await serverCounts(t.port);
  const r = await runLoad({
    port: t.port,
    requests: withDeadline,
    connections: 256,
    maxRequests: Math.ceil(rate * a.durationS),
    durationMs: a.durationS * 1000,
    ratePerS: rate,
  });
  const after = await serverCounts(t.port);
  const loopLag = loopLagShare(before.loopLag, after.loopLag);
  const serverRefused = after.refusals.all - before.refusals.all;
  const within = (k: "halfMs" | "fiveMs") =>
    serverRefused > 0 ? (after.refusals[k] - before.refusals[k]) / serverRefused : NaN;
  const accepted = latenciesWhere(r, (s) => s === 200);
  const acceptedSent = latenciesWhere(r, (s) => s === 200, "sent");
  const isRefusal = (s: number) => s === 429 || s === 503;
  const refused = latenciesWhere(r, isRefusal);
  const refusedSent = latenciesWhere(r, isRefusal, "sent");
  const dropped = latenciesWhere(r, (s) => s === 504);
  let late = 0;
  for (const v of acceptedSent) if (v > a.deadlineMs) late++;
  const lost = r.socketErrors + r.timeouts;
  const other = r.latencies.length - accepted.length - refused.length - dropped.length;
  const res = {
    alpha,
    sustainable,
    rate,
    sent: r.sent,
    accepted: accepted.length,
    late,
    serverLate: after.deadlineMissed - before.deadlineMissed,
    acceptedP99: percentile(acceptedSent, 0.99),
    acceptedP99Intended: percentile(accepted, 0.99),
    refused: refused.length,
    refusedP99: percentile(refusedSent, 0.99),
    refusedMax: percentile(refusedSent, 1),
    refusedP99Intended: percentile(refused, 0.99),
    dropped: dropped.length,
    serverRefusedWithinHalfMs: within("halfMs"),
    serverRefusedWithin5Ms: within("fiveMs"),
    loopLag,
    lost,
    other,
    durationS: r.durationS,
  };
  console.log(JSON.stringify(res));
  return res;
}

type OverloadRun = Awaited<ReturnType<typeof overload>>;

/**
 * The overload targets for one run: no accepted (200) answer the client saw after its deadline,
 * refusals under 5 ms at the 99th percentile, none lost or answered otherwise. A batch that ends
 * after a request's deadline (serverLate) has that request answered 504 at the deadline: it is
 * not a late answer.
 */
export function overloadMet(
  o: Pick<OverloadRun, "late" | "lost" | "other" | "refusedP99">,
): boolean {
  return o.late === 0 && o.lost === 0 && o.other === 0 && !(o.refusedP99 >= 5);
}

/** The overload section: one table row per run (`--repeat N`), and whether every run met. */
export function overloadText(
  a: Pick<Args, "beta" | "deadlineMs">,
  runs: OverloadRun[],
): string {
  const o = runs[0]!;
  const rows = runs.map((r, i) =>
    `| ${i + 1} | ${f0(r.sustainable)} | ${
      f0(r.rate)
    } | ${r.sent} | ${r.accepted} | ${r.late} / ${r.serverLate} | ${
      f1(r.acceptedP99)
    } | ${r.refused} | ${f1(r.refusedP99)} (${f1(r.refusedP99Intended)}) | ${f1(r.refusedMax)} | ${
      pct(r.serverRefusedWithinHalfMs)
    } | ${r.dropped} | ${r.lost} | ${r.other} | ${
      r.loopLag.probes > 0
        ? `${r.loopLag.over5Ms} / ${r.loopLag.over20Ms} of ${r.loopLag.probes}`
        : "n/a"
    } |`
  );
  const met = runs.filter(overloadMet).length;
  return `alpha ${o.alpha}, beta ${a.beta}. Each run measures the sustainable rate (closed loop, ` +
    `concurrency 32), then sends twice that as an open loop for ${
      o.durationS.toFixed(1)
    } s, each request with \`X-Deadline-Ms: ${a.deadlineMs}\`. ` +
    `Latency is counted from the moment the client wrote the request; in brackets, from the time ` +
    `the open loop meant to send it (wrk2's correction: it adds the client's own lateness, large ` +
    `when the client is starved of CPU). "Late 200s" counts accepted answers the client saw after ` +
    `the deadline; "past the deadline" is the server's count (\`scheduler_deadline_missed_total\`) ` +
    `of requests whose batch ended after their deadline, which the server answered 504 at the ` +
    `deadline (they are among the 504s), never with a late 200. "Server <= 0.5 ms": the share of ` +
    `refusals the server answered within 0.5 ms of its handler's start ` +
    `(\`http_request_duration_seconds\`); the rest of a refusal's latency is spent before the ` +
    `handler runs and after it answers (Deno's HTTP layer, the event loop, the client). "Loop ` +
    `stalls": the server's event-loop probes (a 2 ms timer, \`event_loop_lag_seconds\`) that ran ` +
    `more than 5 / 20 ms late; every request arriving during a stall waits for it, refusals ` +
    `included (docs/scheduler.md, Limits).\n\n` +
    `| run | sustainable /s | offered /s | sent | accepted (200) | late 200s (client) / past the deadline (server) | accepted p99 ms | refused (429/503) | refusal p99 ms | refusal max ms | server <= 0.5 ms | dropped (504) | lost or hung | other | loop stalls > 5 / > 20 ms |\n` +
    `|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n` +
    rows.join("\n") + "\n\n" +
    `Targets: no accepted answer after its deadline, refusals under 5 ms, none lost: **${
      met === runs.length ? "met" : "missed"
    }** (${met} of ${runs.length} run${runs.length === 1 ? "" : "s"} met them).`;
}

/** What the overload run reads from the server's /metrics before and after the load (one scrape). */
interface ServerCounts {
  /** `scheduler_deadline_missed_total`, all variants: batches that ended after a deadline. */
  deadlineMissed: number;
  /**
   * 429/503 answers to POST /v1/classify, all and those answered within 0.5 ms and 5 ms of the
   * handler's start (`http_request_duration_seconds` buckets): the part of a refusal's latency
   * that is the server's, without the client's or the network's.
   */
  refusals: { all: number; halfMs: number; fiveMs: number };
  /** `event_loop_lag_seconds`: cumulative count per bucket bound (s). */
  loopLag: Map<string, number>;
}

async function serverCounts(port: number): Promise<ServerCounts> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let deadlineMissed = 0;
  for (const m of text.matchAll(/^scheduler_deadline_missed_total\{[^}]*\} (\S+)$/gm)) {
    deadlineMissed += Number(m[1]);
  }
  const refusals = { all: 0, halfMs: 0, fiveMs: 0 };
  for (
    const m of text.matchAll(
      /^http_request_duration_seconds_bucket\{route="\/v1\/classify",status="(?:429|503)"[^}]*le="([^"]+)"\} (\S+)$/gm,
    )
  ) {
    const n = Number(m[2]);
    if (m[1] === "+Inf") refusals.all += n;
    else if (m[1] === "0.0005") refusals.halfMs += n;
    else if (m[1] === "0.005") refusals.fiveMs += n;
  }
  const loopLag = new Map<string, number>();
  for (const m of text.matchAll(/^event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
    loopLag.set(m[1]!, Number(m[2]));
  }
  return { deadlineMissed, refusals, loopLag };
}

/** The lag probes of one run: how many, and how many ran more than 5 and 20 ms late. */
export interface LoopLagShare {
  probes: number;
  over5Ms: number;
  over20Ms: number;
}

function loopLagShare(before: Map<string, number>, after: Map<string, number>): LoopLagShare {
  const d = (le: string) => (after.get(le) ?? NaN) - (before.get(le) ?? 0);
  const probes = d("+Inf");
  return { probes, over5Ms: probes - d("0.005"), over20Ms: probes - d("0.02") };
}

async function soak(a: Args, t: Target, images: Uint8Array[]) {
  if (t.pid === undefined) throw new RangeError("--soak measures memory: run it without --url");
  const pid = t.pid;
  const alpha = a.alpha[0]!;
  const query: Record<string, string> = { alpha, beta: a.beta };
  if (a.backend) query.backend = a.backend;
  const reqs = classifyRequests(t.port, images, query);
  const total = a.soak!;
  // Warm-up: 5% of the requests, so that the baseline is taken once allocations have settled.
  await runLoad({
    port: t.port,
    requests: reqs,
    connections: 32,
    maxRequests: Math.ceil(total * 0.05),
    durationMs: 600_000,
  });
  const samples: [number, number][] = [];
  const t0 = performance.now();
  const sample = () => samples.push([(performance.now() - t0) / 1000, rssOf(pid)]);
  sample();
  const timer = setInterval(sample, 1000);
  const r = await runLoad({
    port: t.port,
    requests: reqs,
    connections: 32,
    maxRequests: total,
    durationMs: 1_800_000,
  });
  clearInterval(timer);
  sample();
  const baseline = samples[0]![1];
  const rss = samples.map(([, v]) => v);
  const maxRss = Math.max(...rss);
  const res = {
    alpha,
    sent: r.sent,
    ok: r.statusCounts.get(200) ?? 0,
    errors: r.sent - (r.statusCounts.get(200) ?? 0),
    rps: (r.statusCounts.get(200) ?? 0) / r.durationS,
    p99: percentile(latenciesWhere(r, (s) => s === 200), 0.99),
    baselineMiB: baseline / 2 ** 20,
    endMiB: rss[rss.length - 1]! / 2 ** 20,
    maxMiB: maxRss / 2 ** 20,
    growth: (maxRss - baseline) / baseline,
    durationS: r.durationS,
  };
  console.log(JSON.stringify(res));
  return { res, samples };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const a = parseArgs(Deno.args);
  let wrk: string | null = null;
  if (a.clients.includes("wrk")) {
    wrk = await wrkVersion();
    if (wrk === null) {
      console.error(
        `--client wrk needs wrk (Debian package wrk 4.1.0), which is not on PATH: install it with ` +
          `\`${WRK_INSTALL}\`, or run without --client wrk (the own client).`,
      );
      Deno.exit(2);
    }
  }
  if (a.doc !== undefined) {
    DOC = new URL(a.doc, `file://${Deno.cwd()}/`);
    SVG = new URL("loadtest.svg", DOC);
    SOAK_SVG = new URL("loadtest_soak.svg", DOC);
  }
  const before = { load: loadAverage(), busy: await cpuBusy() };
  const t = a.url ? targetFromUrl(a.url) : await startServer(a.serverEnv);
  let failed = false;
  try {
    if (a.alpha.length === 0) a.alpha = await servedAlphas(t.port);
    const images = await fixtureImages(a.images);
    if (a.overload) {
      const runs: OverloadRun[] = [];
      for (let k = 0; k < a.repeat; k++) runs.push(await overload(a, t, images));
      const ok = runs.every(overloadMet);
      failed = !ok;
      if (a.write) {
        await writeSection(
          "loadtest-overload",
          `### Overload (generated by \`deno task loadtest --overload\`)\n\n` +
            `${setting(a, before, loadAverage())}\n\n` + overloadText(a, runs),
        );
      }
    } else if (a.soak !== undefined) {
      const { res: s, samples } = await soak(a, t, images);
      const ok = s.growth <= 0.1 && s.errors === 0;
      failed = !ok;
      if (a.write) {
        const points: [number, number][] = samples.map(([x, v]) => [x, v / 2 ** 20]);
        await Deno.writeTextFile(
          SOAK_SVG,
          lineChart([{
            title: `Server RSS during ${s.sent.toLocaleString("en-US")} requests`,
            yLabel: "RSS (MiB)",
            series: [{ name: `alpha ${s.alpha}`, points }],
          }], { xLabel: "seconds" }),
        );
        await writeSection(
          "loadtest-soak",
          `### Soak (generated by \`deno task loadtest --soak ${a.soak}\`)\n\n` +
            `${setting(a, before, loadAverage())}\n\n` +
            `alpha ${s.alpha}, concurrency 32: ${s.sent.toLocaleString("en-US")} requests in ${
              s.durationS.toFixed(0)
            } s (${f0(s.rps)}/s, p99 ${
              f1(s.p99)
            } ms, ${s.errors} errors). Server resident memory ` +
            `after warm-up ${s.baselineMiB.toFixed(1)} MiB, highest ${
              s.maxMiB.toFixed(1)
            } MiB, at the end ` +
            `${s.endMiB.toFixed(1)} MiB: growth ${(s.growth * 100).toFixed(1)}% ` +
            `(target: within 10%, **${
              ok ? "met" : "missed"
            }**).\n\n![RSS during the soak](loadtest_soak.svg)`,
        );
      }
    } else {
      const rows = await matrix(a, t, images, wrk);
      if (a.p99Ms !== undefined) {
        for (const r of rows) {
          if (!(r.p99 <= a.p99Ms) || r.errors > 0) {
            console.error(
              `SLA missed (${r.client}): alpha=${r.alpha} concurrency=${r.concurrency}: p99 ${
                f1(r.p99)
              } ms ` +
                `(budget ${a.p99Ms} ms), ${r.errors} errors`,
            );
            failed = true;
          }
        }
        if (!failed) console.log(`SLA met: every run's p99 <= ${a.p99Ms} ms and no errors`);
      }
      if (a.write) {
        const alphas = [...new Set(rows.map((r) => r.alpha))];
        const clients = [...new Set(rows.map((r) => r.client))];
        const series = (pick: (r: RunRow) => number) =>
          alphas.flatMap((al) =>
            clients.map((cl) => ({
              name: clients.length > 1 ? `alpha ${al} (${cl})` : `alpha ${al}`,
              points: rows.filter((r) => r.alpha === al && r.client === cl).map((r) =>
                [r.concurrency, pick(r)] as [number, number]
              ),
            }))
          );
        await Deno.writeTextFile(
          SVG,
          lineChart([
            { title: "Throughput", yLabel: "classifications/s", series: series((r) => r.rps) },
            {
              title: "p99 latency",
              yLabel: "ms",
              series: series((r) => r.p99),
              ...(a.p99Ms ? { reference: { y: a.p99Ms, label: `SLA ${a.p99Ms} ms` } } : {}),
            },
          ], { xLabel: "concurrency (connections)", logX: true }),
        );
        await writeSection(
          "loadtest",
          `## Under load (generated by \`deno task loadtest${
            a.clients.includes("wrk") ? ` --client ${a.clients.join(",")}` : ""
          }\`)\n\n` +
            `${setting(a, before, loadAverage(), wrk)}\n\n` +
            (a.repeat > 1
              ? `Each row: ${a.repeat} runs, the one with the median p99 shown. `
              : "") +
            `Each run: at most ${
              a.requests.toLocaleString("en-US")
            } requests or ${a.durationS} s (wrk: ${a.durationS} s), ` +
            `after a ${WARMUP_REQUESTS}-request warm-up per width (own client, at the highest concurrency). The client column ` +
            `says who measured a row. Own client: latency percentiles are over the 200 answers; ` +
            `errors are every other answer (429/503/504, a reset connection or none in 10 s)` +
            (a.clients.includes("wrk")
              ? `. wrk: percentiles are over every answer, errors are answers >= 400 (wrk counts ` +
                `answers by class, not status), socket errors and requests without an answer in ` +
                `10 s`
              : "") +
            `.\n\n` +
            table(rows) + "\n" + repeatsText(rows) +
            `\n![Throughput and p99 by concurrency](loadtest.svg)`,
        );
      }
    }
  } finally {
    const code = await t.stop();
    if (code !== null && code !== 0) {
      console.error(`the server exited with ${code} after SIGTERM`);
      failed = true;
    }
  }
  if (failed) Deno.exit(1);
}

if (import.meta.main) await main();
