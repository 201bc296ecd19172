/**
 * Where a refusal's latency goes under overload: the same open-loop load (bench/load_client.ts,
 * fixed rate, 256 connections) against
 * 1. a null server (a bare `Deno.serve` that reads the body and answers a fixed 503 problem):
 *    the floor that this client and Deno's HTTP layer set on this machine;
 * 2. the service, every request refused at the door (`X-Deadline-Ms: 0.001`): the refusal path
 *    alone, no inference;
 * 3. the service at the same rate with a real deadline (`--deadline-ms`, default 20): refusals
 *    beside accepted work, as in `deno task loadtest --overload`.
 * Prints the client-observed latency (from the write) by status for each. Run it inside
 * bench/quiet.sh like every timing. `--only` also takes null-server variants (null-lag,
 * null-workers, null-heap, null-all, null-body: see NULL_VARIANTS); `--trace-gc` adds each
 * server's GC pauses, `--v8-flags a,b` passes V8 flags to the servers.
 *
 * @example
 * ```sh
 * bench/quiet.sh deno run -A bench/overload_probe.ts --rate 6000 --duration 4
 * ```
 */
import {
  encodeRequest,
  latenciesWhere,
  percentile,
  runLoad,
  spawnServer,
  waitReady,
} from "./load_client.ts";

const ROOT = new URL("../", import.meta.url);
const args = Deno.args;
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const rate = Number(flag("--rate", "6000"));
const durationS = Number(flag("--duration", "4"));
const deadlineMs = flag("--deadline-ms", "20");
const alpha = flag("--alpha", "0.25");
const only = flag("--only", "null,refuse,mixed").split(",");
/** `--trace-gc`: the service runs with V8's --trace-gc and the probe sums its pauses. */
const traceGc = args.includes("--trace-gc");
/** `--v8-flags a,b`: V8 flags for the service (e.g. GC settings), beside `--trace-gc`'s. */
const v8Flags = [...(traceGc ? ["--trace-gc"] : []), ...flag("--v8-flags", "").split(",")]
  .filter((f) => f !== "");
/** The `deno` argument that passes them (none without flags). */
const v8Arg = v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : [];
const gcLines: string[] = [];
/** `--log-null`: the service's stdout (its log lines) goes to /dev/null instead of a pipe. */
const logNull = args.includes("--log-null");

/**
 * The null server; `PROBE_LAG=1` adds the service's event-loop probe (runtime/loop_lag.ts),
 * `PROBE_WORKERS=n` n idle module workers, `PROBE_HEAP_MB=m` about m MB of small live objects
 * (the service's heap is larger than a bare server's): to find which of them slows answers.
 */
const NULL_SERVER = `
const env = (k) => Deno.env.get(k);
if (env("PROBE_LAG") === "1") {
  const { LoopLag } = await import(${JSON.stringify(new URL("runtime/loop_lag.ts", ROOT).href)});
  globalThis.lag = new LoopLag();
}
const workers = [];
for (let i = 0; i < Number(env("PROBE_WORKERS") ?? 0); i++) {
  workers.push(new Worker("data:application/javascript,self.onmessage=()=>{}", { type: "module" }));
}
const keep = [];
for (let i = 0; i < Number(env("PROBE_HEAP_MB") ?? 0) * 10000; i++) keep.push({ i, s: "x" + i });
globalThis.keep = keep;
const body = JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503,
  detail: "x".repeat(200), reason: "deadline_unmeetable", instance: "/v1/classify" });
Deno.serve({ hostname: "127.0.0.1", port: Number(env("PORT") ?? 0),
  onListen: ({ port }) => console.log("port " + port) },
  async (req) => {
    if (env("PROBE_TOUCH_BODY") === "1") req.body; // turns the body into a ReadableStream
    await req.arrayBuffer();
    return new Response(body, { status: 503, headers: { "content-type": "application/problem+json",
      "retry-after": "1", "x-request-id": crypto.randomUUID() } });
  });
`;

/** The null server variants `--only` may name, with their environment. */
const NULL_VARIANTS: Record<string, Record<string, string>> = {
  "null": {},
  "null-lag": { PROBE_LAG: "1" },
  "null-workers": { PROBE_WORKERS: "3" },
  "null-heap": { PROBE_HEAP_MB: "150" },
  "null-all": { PROBE_LAG: "1", PROBE_WORKERS: "3", PROBE_HEAP_MB: "150" },
  // Reads `req.body` before `req.arrayBuffer()`, as hono's bodyLimit did (routes/body_limit.ts).
  "null-body": { PROBE_TOUCH_BODY: "1" },
};

async function spawn(args: string[], env: Record<string, string> = {}) {
  if (logNull) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const child = new Deno.Command(Deno.execPath(), {
      args,
      env: { HOST: "127.0.0.1", PORT: String(port), ...env },
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    await waitReady(`http://127.0.0.1:${port}`);
    return {
      port,
      pid: child.pid,
      async stop() {
        child.kill("SIGTERM");
        await child.status;
      },
    };
  }
  return await spawnServer(
    args,
    env,
    traceGc
      ? (l) => {
        if (/ms: (Scavenge|Mark-Compact|Minor Mark)/.test(l)) gcLines.push(l);
      }
      : undefined,
  );
}

const labels = JSON.parse(
  await Deno.readTextFile(new URL("tests/fixtures/data/labels.json", ROOT)),
);
const files = Object.keys(labels.files).filter((f) => f.startsWith("fmnist/png/")).slice(0, 200);
const images = await Promise.all(
  files.map((f) => Deno.readFile(new URL(`tests/fixtures/data/${f}`, ROOT))),
);
const requests = (port: number, deadline: string) =>
  images.map((img) =>
    encodeRequest(
      "POST",
      `/v1/classify?alpha=${alpha}&beta=1`,
      port,
      { "content-type": "image/png", "x-deadline-ms": deadline },
      img,
    )
  );

/** CPU seconds of every thread of a process (Linux /proc), by thread name. */
function threadCpu(pid: number | "self"): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const st = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
      const name = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      const key = name.startsWith("V8 ") || name.startsWith("tokio") ? name : `${name}#${e.name}`;
      out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch { /* the thread ended */ }
  }
  return out;
}
function cpuSince(before: Map<string, number>, after: Map<string, number>, s: number): string {
  return [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v >= 0.02 * s).sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${Math.round((v / s) * 100)}%`).join(", ");
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "n/a");
async function probe(name: string, port: number, deadline: string, pid: number) {
  const reqs = requests(port, deadline);
  await runLoad({ port, requests: reqs, connections: 8, maxRequests: 500, durationMs: 3000 });
  const server0 = threadCpu(pid), client0 = threadCpu("self");
  const r = await runLoad({
    port,
    requests: reqs,
    connections: 256,
    maxRequests: Math.ceil(rate * durationS),
    durationMs: durationS * 1000,
    ratePerS: rate,
  });
  const parts = [...r.statusCounts].sort((a, b) => a[0] - b[0]).map(([s, n]) => {
    const lat = latenciesWhere(r, (x) => x === s, "sent");
    return `${s}: ${n} p50 ${f1(percentile(lat, 0.5))} p90 ${f1(percentile(lat, 0.9))} p99 ${
      f1(percentile(lat, 0.99))
    } max ${f1(percentile(lat, 1))} ms`;
  });
  const server1 = threadCpu(pid), client1 = threadCpu("self");
  const gc = gcLines.splice(0);
  console.log(
    `${name}: ${rate}/s offered, ${r.sent} sent in ${r.durationS.toFixed(1)} s; ${
      parts.join("; ")
    }; reset ${r.socketErrors}, hung ${r.timeouts}`,
  );
  console.log(`  server CPU (100% = one core): ${cpuSince(server0, server1, r.durationS)}`);
  console.log(`  client CPU: ${cpuSince(client0, client1, r.durationS)}`);
  if (traceGc) {
    // "[pid:0x..] 1234 ms: Scavenge 12.3 (14.0) -> 11.1 (15.0) MB, pooled: 0 MB, 1.23 / 0.00 ms"
    const byKind = new Map<string, number[]>();
    for (const l of gc) {
      const m = l.match(
        /ms: (Scavenge|Mark-Compact|Minor Mark-Sweep)[^,]*,.*?([\d.]+) \/ [\d.]+ ms/,
      );
      if (m) (byKind.get(m[1]!) ?? byKind.set(m[1]!, []).get(m[1]!)!).push(Number(m[2]));
    }
    for (const [k, v] of byKind) {
      console.log(
        `  GC ${k}: ${v.length} pauses, total ${v.reduce((a, b) => a + b, 0).toFixed(1)} ms, ` +
          `max ${Math.max(...v).toFixed(1)} ms`,
      );
    }
    if (byKind.size === 0) console.log(`  GC: ${gc.length} trace lines, e.g. ${gc[0] ?? "none"}`);
  }
}

for (const [name, env] of Object.entries(NULL_VARIANTS)) {
  if (!only.includes(name)) continue;
  const s = await spawn([
    "eval",
    ...v8Arg,
    NULL_SERVER,
  ], env);
  await probe(`${name} server`, s.port, deadlineMs, s.pid);
  await s.stop();
}
if (only.includes("refuse") || only.includes("mixed")) {
  const s = await spawn([
    "run",
    "-A",
    ...v8Arg,
    new URL("main.ts", ROOT).pathname,
  ]);
  await waitReady(`http://127.0.0.1:${s.port}`);
  if (only.includes("refuse")) await probe("service, all refused", s.port, "0.001", s.pid);
  if (only.includes("mixed")) {
    await probe(`service, deadline ${deadlineMs} ms`, s.port, deadlineMs, s.pid);
  }
  await s.stop();
}
