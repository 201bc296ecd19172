/**
 * `deno task check:deploy`: runs the Deno Deploy entry (`edge/deno_deploy.ts`) with exactly the
 * permissions Deploy grants an app that needs nothing else, `--allow-net --allow-read=<repo>`
 * (no env, no write, no run, no FFI, no sys), then classifies a fixture and asks for its cost
 * through real HTTP. Exits non-zero on any failure, printing what failed.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);
const REPO = decodeURIComponent(ROOT.pathname).replace(/\/$/, "");
export const DEPLOY_FIXTURE = "fmnist/png/t10k_00000.png";

export interface DeployCheck {
  /** The exact command line the server ran with. */
  command: string[];
  classify: { status: number; top: string; model: string; backend: string };
  cost: { status: number; macs: number };
  page: number;
  ms: number;
}

export async function checkDeploy(timeoutMs = 90_000): Promise<DeployCheck> {
  const t0 = performance.now();
  const args = [
    "run",
    "--allow-net",
    `--allow-read=${REPO}`,
    "--no-prompt",
    "edge/deno_deploy.ts",
    "0",
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO,
    clearEnv: true,
    // Deno itself needs to find its cache; the app gets no env permission either way.
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errText = new Response(child.stderr).text();
  let log = "";
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await out.cancel().catch(() => {});
    await child.status;
  };
  try {
    const deadline = Date.now() + timeoutMs;
    let base = "";
    while (!base) {
      const { value, done } = await out.read();
      if (done) {
        await child.status;
        throw new Error(`the server exited before listening:\n${log}\n${await errText}`);
      }
      log += value;
      const m = log.match(/"msg":"listening".*?"port":(\d+)/);
      if (m) base = `http://127.0.0.1:${m[1]}`;
    }
    (async () => {
      while (true) {
        const r = await out.read().catch(() => ({ done: true, value: "" }));
        if (r.done) break;
        log += r.value;
      }
    })();
    while (true) {
      const res = await fetch(`${base}/readyz`).catch(() => null);
      const status = res?.status;
      await res?.body?.cancel();
      if (status === 200) break;
      if (Date.now() > deadline) {
        throw new Error(`/readyz did not answer 200 within ${timeoutMs} ms:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const image = await Deno.readFile(new URL(`tests/fixtures/data/${DEPLOY_FIXTURE}`, ROOT));
    const form = new FormData();
    form.append("image", new Blob([image]), "fixture.png");
    const res = await fetch(`${base}/v1/classify?topk=3`, { method: "POST", body: form });
    const body = await res.json();
    if (res.status !== 200) {
      throw new Error(`POST /v1/classify answered ${res.status}: ${JSON.stringify(body)}`);
    }
    const costRes = await fetch(`${base}/v1/cost?alpha=${body.model.alpha}`);
    const cost = await costRes.json();
    if (costRes.status !== 200) {
      throw new Error(`GET /v1/cost answered ${costRes.status}: ${JSON.stringify(cost)}`);
    }
    const pageRes = await fetch(`${base}/`);
    await pageRes.body?.cancel();
    return {
      command: ["deno", ...args],
      classify: {
        status: res.status,
        top: body.predictions[0].label,
        model: body.model.id,
        backend: body.model.backend,
      },
      cost: { status: costRes.status, macs: cost.totals.macs },
      page: pageRes.status,
      ms: Math.round(performance.now() - t0),
    };
  } finally {
    await stop();
  }
}

if (import.meta.main) {
  try {
    const r = await checkDeploy();
    console.log(`ran: ${r.command.join(" ")}`);
    console.log(
      `POST /v1/classify ${r.classify.status}: ${r.classify.top} (${r.classify.model} on ${r.classify.backend}); ` +
        `GET /v1/cost ${r.cost.status}: ${r.cost.macs} MACs; GET / ${r.page}; ${r.ms} ms in all`,
    );
    console.log("deploy check passed");
  } catch (e) {
    console.error(`deploy check failed: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
