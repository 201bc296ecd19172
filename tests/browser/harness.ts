/**
 * What the browser test and the screenshot script share: the real server on 127.0.0.1 (a random
 * port) and Debian's Chromium driven by playwright-core, started with the flags FIELD_NOTES
 * ("Browser") lists: without the background-networking flags it floods the closed network.
 *
 * @module
 */
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why the browser test cannot run here, or null when it can. */
export function browserMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is missing (apt-get install chromium)`;
  }
}

const ROOT = new URL("../../", import.meta.url);
export const SHIPPED_MANIFEST = new URL("model/artifacts/manifest.json", ROOT);

export interface RunningServer {
  base: string;
  stop(): Promise<void>;
}

/**
 * Starts `main.ts` as its own process (`PORT=0`: the OS picks a free port, read back from the
 * "listening" log line) and waits until `/readyz` answers 200.
 */
export async function startServer(
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<RunningServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", "--allow-sys", "main.ts"],
    cwd: ROOT,
    env: { HOST: "127.0.0.1", PORT: "0", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let base = "";
  const deadline = Date.now() + timeoutMs;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await lines.cancel().catch(() => {});
    await child.status;
  };
  try {
    while (!base) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`The server exited before listening: ${buffered}`);
      buffered += value;
      const m = buffered.match(/"msg":"listening".*?"port":(\d+)/);
      if (m) base = `http://127.0.0.1:${m[1]}`;
    }
    // Keep draining the log so the child never blocks on a full pipe.
    (async () => {
      while (!(await lines.read().catch(() => ({ done: true }))).done) { /* discard */ }
    })();
    while (true) {
      const res = await fetch(`${base}/readyz`).catch(() => null);
      const ok = res?.status === 200;
      await res?.body?.cancel();
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`${base}/readyz not 200 within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, stop };
}

/** Headless Chromium with a fresh profile (playwright gives each launch its own). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
}
