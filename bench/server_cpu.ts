/**
 * Where the CPU goes while `deno task loadtest` drives the server: starts `main.ts` on 127.0.0.1,
 * runs bench/loadtest.ts against it (`--url`), and prints the CPU seconds of every server thread
 * (event loop, inference workers, V8's GC helpers), of the load client, of every other process
 * that ran meanwhile (other work on a shared machine), and how busy the whole machine was; then the
 * server-side latency histogram, the batch-size, queue-wait and inference-time histograms per
 * variant, and the scheduler's batch and rejection counters from /metrics.
 * Linux only (/proc). Run it inside bench/quiet.sh like every timing.
 *
 * @example
 * ```sh
 * bench/quiet.sh deno run -A bench/server_cpu.ts --concurrency 32 --alpha 0.25 --duration 4 --no-write
 * SERVER_ENV='{"MAX_BATCH":"8"}' bench/quiet.sh deno run -A bench/server_cpu.ts --overload --alpha 0.25 --duration 5 --no-write
 * ```
 * Arguments are bench/loadtest.ts's; `SERVER_ENV` (JSON) adds server environment and
 * `SERVER_DENO_ARGS` extra `deno run` flags (e.g. `--v8-flags=--max-semi-space-size=32`).
 */
import { machineCpuSeconds, waitReady } from "./load_client.ts";

const ROOT = new URL("../", import.meta.url);
const TICK = 100; // USER_HZ: /proc times are in 1/100 s
const port = 8100 + Math.floor(Math.random() * 800);

function times(stat: string): { name: string; cpu: number; children: number } {
  const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    name,
    cpu: (Number(f[11]) + Number(f[12])) / TICK,
    children: (Number(f[13]) + Number(f[14])) / TICK,
  };
}
const read = (path: string) => {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
};
function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
    const st = read(`/proc/${pid}/task/${e.name}/stat`);
    if (st) out.set(`${times(st).name}#${e.name}`, times(st).cpu);
  }
  return out;
}
function processes(): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const st = read(`/proc/${e.name}/stat`);
    const cmd = read(`/proc/${e.name}/cmdline`);
    if (st && cmd !== null) {
      out.set(`${e.name} ${cmd.replaceAll("\0", " ").slice(0, 90)}`, times(st).cpu);
    }
  }
  return out;
}

const extraArgs = Deno.env.get("SERVER_DENO_ARGS")?.split(" ").filter(Boolean) ?? [];
const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", ...extraArgs, new URL("main.ts", ROOT).pathname],
  env: { HOST: "127.0.0.1", PORT: String(port), ...JSON.parse(Deno.env.get("SERVER_ENV") ?? "{}") },
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const drained = (async () => {
  for await (const _ of server.stdout) { /* the server's log lines */ }
})();
await waitReady(`http://127.0.0.1:${port}`);

const procs0 = processes(), threads0 = threads(server.pid), machine0 = machineCpuSeconds();
const client = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("bench/loadtest.ts", ROOT).pathname,
    "--url",
    `http://127.0.0.1:${port}`,
    ...Deno.args,
  ],
  stdout: "piped",
}).spawn();
let clientCpu = 0;
const sampler = setInterval(() => {
  const st = read(`/proc/${client.pid}/stat`);
  if (st) clientCpu = times(st).cpu + times(st).children;
}, 100);
// Every second: how much of that second each side used (a run's phases differ: warm-up, closed
// loop, open loop), to see which thread is short of CPU when latency grows.
const timeline: string[] = [];
let last = {
  t: performance.now(),
  client: 0,
  ...split(threads(server.pid)),
  m: machineCpuSeconds(),
};
function split(th: Map<string, number>) {
  let main = 0, workers = 0, other = 0;
  for (const [k, v] of th) {
    if (k.startsWith("worker-") || k.startsWith("inference-")) workers += v;
    else if (k.startsWith("deno#") || k.startsWith("main#")) main += v;
    else other += v;
  }
  return { main, workers, other };
}
const ticker = setInterval(() => {
  let th: Map<string, number>;
  try {
    th = threads(server.pid);
  } catch {
    return;
  }
  const now = { t: performance.now(), client: clientCpu, ...split(th), m: machineCpuSeconds() };
  const dt = (now.t - last.t) / 1000;
  const pct = (v: number) => `${Math.round((v / dt) * 100)}%`.padStart(5);
  timeline.push(
    `  ${((now.t - t0) / 1000).toFixed(0).padStart(3)} s: main ${pct(now.main - last.main)} ` +
      `workers ${pct(now.workers - last.workers)} V8 helpers ${pct(now.other - last.other)} ` +
      `client ${pct(now.client - last.client)} machine ${pct(now.m.busy - last.m.busy)} of ${
        navigator.hardwareConcurrency * 100
      }%`,
  );
  last = now;
}, 1000);
const t0 = performance.now();
const out = await client.output();
clearInterval(sampler);
clearInterval(ticker);
const threads1 = threads(server.pid), machine1 = machineCpuSeconds(), procs1 = processes();
console.log(new TextDecoder().decode(out.stdout).trim());

const m = machine1;
console.log(
  `machine: busy ${(m.busy - machine0.busy).toFixed(2)} s of ${
    (m.total - machine0.total).toFixed(2)
  } s (${navigator.hardwareConcurrency} cores); load client ~${clientCpu.toFixed(2)} s`,
);
console.log("per second (CPU use of each part, 100% = one core):");
for (const l of timeline) console.log(l);
console.log("server threads (CPU s):");
for (
  const [k, v] of [...threads1].map(([k, v]) => [k, v - (threads0.get(k) ?? 0)] as const)
    .filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1])
) console.log(`  ${v.toFixed(2)}  ${k}`);
console.log("processes that used >= 0.2 s meanwhile:");
for (
  const [k, v] of [...procs1].map(([k, v]) => [k, v - (procs0.get(k) ?? 0)] as const)
    .filter(([, v]) => v >= 0.2).sort((a, b) => b[1] - a[1])
) console.log(`  ${v.toFixed(2)}  ${k}`);

const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const lines = metrics.split("\n");
/** A histogram's buckets from /metrics, per label set (without `le`), in exposition order. */
function histogram(name: string): Map<string, [string, number][]> {
  const series = new Map<string, [string, number][]>();
  for (const l of lines) {
    const b = l.match(new RegExp(`^${name}_bucket\\{(.*),le="([^"]+)"\\} (\\d+)`));
    if (!b) continue;
    const rows = series.get(b[1]!) ?? [];
    rows.push([b[2]!, Number(b[3])]);
    series.set(b[1]!, rows);
  }
  return series;
}
const durations = histogram("http_request_duration_seconds");
for (const status of ["200", "503", "429"]) {
  const buckets = [...durations].filter(([labels]) =>
    labels.startsWith(`route="/v1/classify",status="${status}"`)
  ).flatMap(([, rows]) => rows);
  const all = buckets.at(-1)?.[1] ?? 0;
  if (all > 0) {
    console.log(
      `server-side ${status} durations (${all}), cumulative: ` +
        buckets.slice(0, 6).map(([le, n]) => `<=${le} s ${(n / all * 100).toFixed(1)}%`).join(
          ", ",
        ),
    );
  }
}
// Batch sizes, queue waits and inference times per variant, since the server started (the
// load test's warm-up included): cumulative shares up to each bucket bound.
for (
  const name of [
    "scheduler_batch_size",
    "scheduler_queue_wait_seconds",
    "inference_duration_seconds",
  ]
) {
  for (const [labels, rows] of histogram(name)) {
    const all = rows.at(-1)?.[1] ?? 0;
    if (all === 0) continue;
    const shown = rows.filter(([le], i) => le !== "+Inf" && (i === 0 || rows[i - 1]![1] < all));
    console.log(
      `${name} {${labels}} (${all}), cumulative: ` +
        shown.map(([le, n]) => `<=${le} ${(n / all * 100).toFixed(1)}%`).join(", "),
    );
  }
}
for (const l of lines) {
  if (
    /^(scheduler_batch_size_(sum|count)|inference_duration_seconds_(sum|count)|scheduler_rejections_total|scheduler_deadline_missed_total)/
      .test(l)
  ) console.log(l);
}
server.kill("SIGTERM");
await server.status;
await drained;
