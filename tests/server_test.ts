/**
 * The real server: `main.ts` started as a process on 127.0.0.1 with a random port (PORT=0), asked
 * with the requests curl sends (curl itself where it is installed), then stopped with SIGTERM.
 * Its answers must equal the in-process app's for the same fixtures and models.
 */
import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import { DEFAULT_MODELS_DIR, ModelRegistry } from "../runtime/registry.ts";
import { labelledFixtures, readFixture } from "./fixtures/fixtures.ts";
import { writeTinyArtifacts } from "./runtime/tiny_artifacts.ts";

const ROOT = new URL("../", import.meta.url);
const MAX_BODY = 512 * 1024;
const opts = { sanitizeResources: false, sanitizeOps: false };

const shipped = await Deno.stat(`${DEFAULT_MODELS_DIR}manifest.json`).then(() => true, () => false);
const MODELS_DIR = shipped ? DEFAULT_MODELS_DIR : (await writeTinyArtifacts()).dir;
if (!shipped) {
  console.log("server tests use tiny test models: model/artifacts/ has no manifest.json");
}

const HAS_CURL = await new Deno.Command("curl", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success, () => false);
if (!HAS_CURL) {
  console.log("curl is not installed: the server tests send curl's requests with fetch");
}

interface Server {
  url: string;
  lines: string[];
  stop(): Promise<Deno.CommandStatus>;
  status: Promise<Deno.CommandStatus>;
}

/** Starts `main.ts` with PORT=0 and resolves once it logs the port it listens on. */
async function startServer(env: Record<string, string>): Promise<Server> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    cwd: ROOT,
    env: { HOST: "127.0.0.1", PORT: "0", MAX_BODY_BYTES: String(MAX_BODY), ...env },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: string[] = [];
  const listener: { onLine: ((l: string) => void) | null } = { onLine: null };
  const reading = (async () => {
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        listener.onLine?.(line);
      }
    }
  })();
  const port = await new Promise<number | null>((resolve) => {
    const check = (l: string) => {
      try {
        const j = JSON.parse(l);
        if (j.msg === "listening") resolve(j.port);
      } catch { /* not a log line */ }
    };
    listener.onLine = check;
    lines.forEach(check);
    proc.status.then(() => resolve(null));
  });
  // The exit status once every line the process wrote has been read (the log sink writes its
  // last lines right before exiting, so the process can end before the reader has them).
  const status = Promise.all([proc.status, reading]).then(([st]) => st);
  const server: Server = {
    url: `http://127.0.0.1:${port}`,
    lines,
    status,
    async stop() {
      try {
        proc.kill("SIGTERM");
      } catch { /* already exited */ }
      return await status;
    },
  };
  if (port === null) {
    throw new Error(`server exited before listening: ${lines.join("\n")}`);
  }
  return server;
}

async function waitReady(s: Server): Promise<number> {
  const statuses = new Set<number>();
  for (let i = 0; i < 600; i++) {
    const r = await fetch(`${s.url}/readyz`);
    await r.body?.cancel();
    statuses.add(r.status);
    if (r.status === 200) return i;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`server not ready after 30 s: ${s.lines.join("\n")}`);
}

/** Runs curl and returns status, headers and body. */
async function curl(args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "-S", "-D", "-", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const split = text.indexOf("\r\n\r\n");
  const head = text.slice(0, split);
  return {
    status: Number(head.split(" ")[1]),
    headers: head.toLowerCase(),
    body: text.slice(split + 4),
  };
}

const tmp = await Deno.makeTempDir({ prefix: "server_test_" });
const big = `${tmp}/big.bin`;
await Deno.writeFile(big, new Uint8Array(MAX_BODY + 4096).fill(7));
const pngPath = decodeURIComponent(
  new URL("fixtures/data/fmnist/png/t10k_00000.png", import.meta.url).pathname,
);
const photoPath = decodeURIComponent(
  new URL("fixtures/data/fmnist/photo/t10k_00000.jpg", import.meta.url).pathname,
);

Deno.test({
  ...opts,
  name:
    "real server on 127.0.0.1: ready after warm-up, answers curl's requests, refuses hostile ones",
  fn: async (t) => {
    const s = await startServer({ MODELS_DIR, ...(shipped ? {} : { BACKEND: "ort-wasm" }) });
    try {
      await waitReady(s);
      const models = await (await fetch(`${s.url}/v1/models`)).json();
      const alpha = models.models[0].alpha;

      await t.step("curl -F image=@photo.jpg classifies the multipart upload", async () => {
        const q = `${s.url}/v1/classify?alpha=${alpha}&beta=0.75`;
        const r = HAS_CURL
          ? await curl(["-F", `image=@${photoPath}`, q])
          : await fetchAsCurl(q, multipart(await Deno.readFile(photoPath)));
        assert.equal(r.status, 200, r.body);
        const body = JSON.parse(r.body);
        assert.equal(body.model.alpha, alpha);
        assert.equal(body.model.resolution, Math.round(0.75 * models.models[0].baseResolution));
        assert.equal(body.image.width, 1024);
        assert.match(r.headers, /server-timing: decode;dur=[0-9.]+,preprocess;dur=/);
      });

      await t.step(
        "curl --data-binary @shoe.png gives what the multipart upload of it gives",
        async () => {
          const q = `${s.url}/v1/classify?alpha=${alpha}`;
          const png = await Deno.readFile(pngPath);
          const raw = HAS_CURL
            ? await curl(["--data-binary", `@${pngPath}`, q])
            : await fetchAsCurl(q, { body: png, contentType: "application/x-www-form-urlencoded" });
          const multi = await fetchAsCurl(q, multipart(png));
          assert.equal(raw.status, 200, raw.body);
          assert.deepEqual(JSON.parse(raw.body).predictions, JSON.parse(multi.body).predictions);
        },
      );

      await t.step(
        "a body over MAX_BODY_BYTES gets 413 with and without Content-Length",
        async () => {
          const q = `${s.url}/v1/classify`;
          const withLength = HAS_CURL
            ? await curl(["--data-binary", `@${big}`, q])
            : await fetchAsCurl(q, { body: await Deno.readFile(big), contentType: "image/png" });
          assert.equal(withLength.status, 413, withLength.body);
          assert.match(
            JSON.parse(withLength.body).detail,
            new RegExp(`limit of ${MAX_BODY} bytes`),
          );
          const chunked = HAS_CURL
            ? await curl(["-H", "Transfer-Encoding: chunked", "--data-binary", `@${big}`, q])
            : await fetchStream(q, await Deno.readFile(big));
          assert.equal(chunked.status, 413, chunked.body);
        },
      );

      await t.step(
        "a PNG bomb, random bytes and a bad alpha get 413, 415, 400; then a photo gets 200",
        async () => {
          const bomb = await fetchAsCurl(`${s.url}/v1/classify`, {
            body: await readFixture("edge/bomb_16000x16000.png"),
            contentType: "image/png",
          });
          assert.equal(bomb.status, 413);
          const rnd = await fetchAsCurl(`${s.url}/v1/classify`, {
            body: await readFixture("edge/random.bin"),
            contentType: "application/octet-stream",
          });
          assert.equal(rnd.status, 415);
          const bad = await fetchAsCurl(
            `${s.url}/v1/classify?alpha=9`,
            multipart(await Deno.readFile(pngPath)),
          );
          assert.equal(bad.status, 400);
          assert.match(JSON.parse(bad.body).detail, /alpha must be one of the shipped widths/);
          const ok = await fetchAsCurl(
            `${s.url}/v1/classify`,
            multipart(await Deno.readFile(photoPath)),
          );
          assert.equal(ok.status, 200, ok.body);
        },
      );

      await t.step(
        "/metrics carries the HTTP thread's event-loop lag, sampled since start",
        async () => {
          const text = await (await fetch(`${s.url}/metrics`)).text();
          assert.match(text, /^# TYPE event_loop_lag_seconds histogram$/m);
          const count = Number(text.match(/^event_loop_lag_seconds_count (\S+)$/m)?.[1]);
          assert.ok(count > 0, `event_loop_lag_seconds_count ${count}`);
          const inf = Number(
            text.match(/^event_loop_lag_seconds_bucket\{le="\+Inf"\} (\S+)$/m)?.[1],
          );
          assert.equal(inf, count);
        },
      );

      await t.step("fixtures through the server get exactly the in-process answers", async () => {
        const registry = await ModelRegistry.open({ dir: MODELS_DIR, warmupRuns: 0 });
        await registry.load();
        const app = createApp({ readiness: registry, classify: { models: registry } });
        try {
          const files = [
            ...(await labelledFixtures("png")).slice(0, 8),
            ...(await labelledFixtures("jpeg")).slice(0, 4),
            ...(await labelledFixtures("photo")).slice(0, 4),
          ];
          for (const f of files) {
            const bytes = await readFixture(f.file);
            const q = `/v1/classify?alpha=${alpha}&topk=3`;
            const remote = await fetchAsCurl(`${s.url}${q}`, multipart(bytes));
            const local = await app.request(q, { method: "POST", body: new Uint8Array(bytes) });
            assert.equal(remote.status, 200, `${f.file}: ${remote.body}`);
            assert.deepEqual(
              JSON.parse(remote.body).predictions,
              (await local.json()).predictions,
              f.file,
            );
          }
        } finally {
          await registry.close();
        }
      });
    } finally {
      const status = await s.stop();
      assert.equal(status.code, 0, `server exit: ${s.lines.slice(-5).join("\n")}`);
    }
  },
});

Deno.test({
  ...opts,
  name:
    "real server exits with code 1 naming the file when a model's sha256 differs from the manifest",
  fn: async () => {
    const a = await writeTinyArtifacts({ alphas: [0.5], edit: (m) => (m.sha256 = "a".repeat(64)) });
    const s = await startServer({ MODELS_DIR: a.dir });
    const status = await s.status;
    assert.equal(status.code, 1);
    const err = s.lines.map((l) => JSON.parse(l)).find((j) => j.msg === "models failed to load");
    assert.match(
      err.error,
      /sha256 of mobilenet_v1_a0.5.onnx is [0-9a-f]{64}: the manifest says a{64}/,
    );
  },
});

function multipart(bytes: Uint8Array): { body: FormData } {
  const form = new FormData();
  form.append("image", new File([new Uint8Array(bytes)], "image"));
  return { body: form };
}

/** What curl sends: its user agent, Accept: *\/*, and a Content-Length. */
async function fetchAsCurl(
  url: string,
  o: { body: BodyInit | Uint8Array; contentType?: string },
): Promise<{ status: number; headers: string; body: string }> {
  const headers: Record<string, string> = { "user-agent": "curl/8.5.0", accept: "*/*" };
  if (o.contentType) headers["content-type"] = o.contentType;
  const body: BodyInit = o.body instanceof Uint8Array ? new Uint8Array(o.body) : o.body;
  const res = await fetch(url, { method: "POST", headers, body });
  return {
    status: res.status,
    headers: [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n"),
    body: await res.text(),
  };
}

/** A chunked upload without Content-Length. */
async function fetchStream(url: string, bytes: Uint8Array) {
  const stream = new ReadableStream<Uint8Array>({
    start(ctl) {
      for (let i = 0; i < bytes.length; i += 65536) ctl.enqueue(bytes.slice(i, i + 65536));
      ctl.close();
    },
  });
  const res = await fetch(url, { method: "POST", body: stream });
  return { status: res.status, headers: "", body: await res.text() };
}
