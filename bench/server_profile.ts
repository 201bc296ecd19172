/**
 * A CPU profile of the server's event loop under load: starts `main.ts` with `--inspect` on
 * 127.0.0.1, takes a V8 CPU profile over the inspector protocol while bench/loadtest.ts drives it
 * (`--url`), writes the profile (open it in Chrome DevTools) and prints the functions by self and
 * by inclusive time. Samples are wall-clock on that thread: time it spent descheduled shows up in
 * whatever it was running (often an op such as `op_host_post_message`), so read CPU per thread
 * from bench/server_cpu.ts. Run it inside bench/quiet.sh like every timing.
 *
 * @example
 * ```sh
 * bench/quiet.sh deno run -A bench/server_profile.ts --concurrency 32 --alpha 0.25 --duration 5 --no-write
 * ```
 * Arguments are bench/loadtest.ts's; `PROFILE_OUT` names the .cpuprofile (default
 * /tmp/server.cpuprofile), `SERVER_ENV` (JSON) adds server environment.
 */
import { waitReady } from "./load_client.ts";

const ROOT = new URL("../", import.meta.url);
const port = 8100 + Math.floor(Math.random() * 800);
const inspect = port + 1000;
const outFile = Deno.env.get("PROFILE_OUT") ?? "/tmp/server.cpuprofile";

const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", `--inspect=127.0.0.1:${inspect}`, new URL("main.ts", ROOT).pathname],
  env: { HOST: "127.0.0.1", PORT: String(port), ...JSON.parse(Deno.env.get("SERVER_ENV") ?? "{}") },
  stdout: "piped",
  stderr: "piped",
}).spawn();
const drained = Promise.all([
  (async () => {
    for await (const _ of server.stdout) { /* log lines */ }
  })(),
  (async () => {
    for await (const _ of server.stderr) { /* inspector notices */ }
  })(),
]);
await waitReady(`http://127.0.0.1:${port}`);

const targets = await (await fetch(`http://127.0.0.1:${inspect}/json/list`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((ok) => (ws.onopen = ok));
let nextId = 0;
const waiting = new Map<number, (v: unknown) => void>();
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  waiting.get(m.id)?.(m.result);
  waiting.delete(m.id);
};
const send = <T>(method: string, params = {}) =>
  new Promise<T>((ok) => {
    const id = ++nextId;
    waiting.set(id, ok as (v: unknown) => void);
    ws.send(JSON.stringify({ id, method, params }));
  });
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 200 });
await send("Profiler.start");
const load = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("bench/loadtest.ts", ROOT).pathname,
    "--url",
    `http://127.0.0.1:${port}`,
    ...Deno.args,
  ],
}).output();
console.log(new TextDecoder().decode(load.stdout).trim());
const { profile } = await send<{ profile: Profile }>("Profiler.stop");
ws.close();
await Deno.writeTextFile(outFile, JSON.stringify(profile));
server.kill("SIGTERM");
await server.status;
await drained;

interface Profile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
profile.samples.forEach((s, i) => self.set(s, (self.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const label = (id: number) => {
  const f = byId.get(id)!.callFrame;
  const where = f.url.replace(/.*\/(node_modules|main)\//, "");
  return `${f.functionName || "(anonymous)"} ${where}${where ? `:${f.lineNumber + 1}` : ""}`;
};
const selfBy = new Map<string, number>(), inclusiveBy = new Map<string, number>();
let total = 0;
for (const [id, t] of self) {
  total += t;
  selfBy.set(label(id), (selfBy.get(label(id)) ?? 0) + t);
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
    const k = label(n);
    if (!seen.has(k)) inclusiveBy.set(k, (inclusiveBy.get(k) ?? 0) + t), seen.add(k);
  }
}
const top = (m: Map<string, number>, n: number) =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, t]) =>
    `${(t / total * 100).toFixed(1).padStart(5)}% ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`
  ).join("\n");
console.log(`profile: ${outFile}, ${(total / 1000).toFixed(0)} ms sampled`);
console.log(`by self time:\n${top(selfBy, 30)}`);
console.log(`by inclusive time:\n${top(inclusiveBy, 40)}`);
