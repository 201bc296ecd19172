import assert from "node:assert/strict";
import { writeTinyArtifacts } from "./tiny_artifacts.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const PNG = await Deno.readFile(
  new URL("../fixtures/data/fmnist/png/t10k_00000.png", import.meta.url),
);
// Small models so that the server is ready in a second or two.
const art = await writeTinyArtifacts();

/** Starts `main.ts` on a free port; resolves with its port once it logs "listening". */
async function startServer(env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: {
      PORT: "0",
      HOST: "127.0.0.1",
      MODELS_DIR: art.dir,
      BACKEND: "ort-wasm",
      WORKERS: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const waiters: Array<() => void> = [];
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const l = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          lines.push(JSON.parse(l));
        } catch {
          lines.push({ raw: l });
        }
        waiters.splice(0).forEach((w) => w());
      }
    }
  })();
  const waitFor = async (msg: string) => {
    for (let i = 0; i < 600; i++) {
      const hit = lines.find((l) => l.msg === msg);
      if (hit) return hit;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    throw new Error(`server never logged "${msg}": ${JSON.stringify(lines)}`);
  };
  const listening = await waitFor("listening");
  await waitFor("models ready");
  return { child, port: listening.port as number, lines, waitFor, pump };
}

Deno.test("main.ts on SIGTERM answers in full every request it began, then closes the port and exits 0", async () => {
  const { child, port, lines, pump } = await startServer();
  const base = `http://127.0.0.1:${port}`;
  assert.equal(await fetch(`${base}/healthz`).then((r) => r.text()), '{"status":"ok"}');
  const sent = Array.from(
    { length: 40 },
    (_, i) =>
      fetch(`${base}/v1/cost?alpha=${[0.25, 0.5, 0.75, 1][i % 4]}`).then(
        async (r) => ({ status: r.status, body: await r.json() }),
        (err: Error) => ({ status: 0, body: `${err.message}: ${String(err.cause)}` }),
      ),
  );
  await Promise.race(sent); // the server is answering
  child.kill("SIGTERM");
  const answers = await Promise.all(sent);
  const status = await child.status;
  await pump;
  assert.equal(status.code, 0);
  // A request is answered in full (200), refused whole during the drain (503, shutting_down), or
  // never read (its connection closes before the request is taken, which HTTP clients retry);
  // never a 500 or a cut answer.
  const answered = answers.filter((a) => a.status !== 0);
  assert.ok(answered.some((a) => a.status === 200));
  for (const a of answered) {
    if (a.status === 503) assert.equal(a.body.reason, "shutting_down");
    else {
      assert.equal(a.status, 200);
      assert.ok(a.body.totals.macs > 0);
    }
  }
  for (const a of answers.filter((a) => a.status === 0)) {
    assert.match(a.body, /connection closed before message completed|Connection refused|reset/i);
  }
  const msgs = lines.map((l) => l.msg);
  assert.ok(msgs.includes("shutting down: finishing requests in flight, refusing new ones"));
  assert.equal(msgs.at(-1), "stopped");
  // One JSON log line per answered request, each with its request id.
  const requests = lines.filter((l) => l.msg === "request");
  assert.equal(requests.length, answered.length + 1);
  assert.ok(requests.every((l) => typeof l.request_id === "string"));
  await assert.rejects(fetch(`${base}/healthz`), "the port is closed after shutdown");
});

Deno.test("main.ts on SIGTERM finishes a classification still uploading, refusing new requests with 503 meanwhile", async () => {
  const { child, port, lines, pump } = await startServer();
  const base = `http://127.0.0.1:${port}`;
  // The body arrives in two parts; the second only after the signal.
  let firstPulled: () => void = () => {};
  const pulled = new Promise<void>((r) => (firstPulled = r));
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const half = PNG.length >> 1;
  let step = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (step++ === 0) {
        c.enqueue(PNG.slice(0, half));
        return;
      }
      firstPulled();
      await released;
      c.enqueue(PNG.slice(half));
      c.close();
    },
  });
  const uploading = fetch(`${base}/v1/classify?alpha=0.25`, {
    method: "POST",
    body,
    headers: { "content-type": "image/png" },
  });
  await pulled;
  await new Promise((r) => setTimeout(r, 300)); // the server has the headers: the request is in flight
  child.kill("SIGTERM");
  for (let i = 0; i < 100 && !lines.some((l) => String(l.msg).startsWith("shutting down")); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const refused = await fetch(`${base}/v1/cost`);
  assert.equal(refused.status, 503, "a new request during the drain is refused");
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.equal((await refused.json()).reason, "shutting_down");
  release();
  const res = await uploading;
  assert.equal(res.status, 200);
  const answer = await res.json();
  assert.equal(answer.predictions.length, 5);
  assert.equal(answer.model.alpha, 0.25);
  const status = await child.status;
  await pump;
  assert.equal(status.code, 0);
  assert.equal(lines.at(-1)?.msg, "stopped");
});

Deno.test("main.ts exits 0 on SIGINT too", async () => {
  const { child, pump } = await startServer();
  child.kill("SIGINT");
  const status = await child.status;
  await pump;
  assert.equal(status.code, 0);
});

Deno.test("shutdown tests clean up their models directory", async () => {
  await Deno.remove(art.dir, { recursive: true });
});
