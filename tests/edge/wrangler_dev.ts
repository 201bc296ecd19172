/**
 * Runs `wrangler dev --local --ip 127.0.0.1` (local workerd, no login, no network) for tests, and
 * stops it with its node and workerd children, by process id.
 *
 * @module
 */
import { WORKERS_DIR, WRANGLER_ENV, wranglerTools } from "../../edge/build_workers.ts";

export interface WranglerDev {
  base: string;
  /** What wrangler and the Worker printed so far (console.error of unhandled errors included). */
  log(): string;
  stop(): Promise<void>;
}

/** Every descendant of `pid`, children before grandchildren, read from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      // Field 4 (after the parenthesised command, which may hold spaces) is the parent id.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(e.name), ppid);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const next = [...parent].filter(([, pp]) => frontier.includes(pp)).map(([p]) => p);
    out.push(...next);
    frontier = next;
  }
  return out;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function startWranglerDev(timeoutMs = 45_000): Promise<WranglerDev> {
  const tools = wranglerTools();
  if ("missing" in tools) throw new Error(tools.missing);
  const port = freePort();
  const inspector = freePort();
  const child = new Deno.Command(tools.node, {
    args: [
      tools.wrangler,
      "dev",
      "--local",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspector),
      "--show-interactive-dev-session=false",
    ],
    cwd: WORKERS_DIR,
    env: WRANGLER_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) log += chunk;
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]).catch(() => {});
  const stop = async () => {
    const pids = descendants(child.pid).reverse();
    for (const p of [...pids, child.pid]) {
      try {
        Deno.kill(p, "SIGTERM");
      } catch { /* gone */ }
    }
    await child.status;
    // A grandchild that kept a pipe open must not hold the test: give the drain 5 s at most.
    await Promise.race([drained, new Promise((r) => setTimeout(r, 5_000))]);
    // workerd may outlive the SIGTERM briefly: make sure none of ours is left.
    for (const p of pids) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch { /* gone */ }
    }
  };
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (!/Ready on http/.test(log)) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev was not ready within ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, stop, log: () => log };
}
