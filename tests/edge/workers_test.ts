/**
 * The Cloudflare Workers build in local workerd (`wrangler dev --local`) answers classify and cost
 * exactly as the Deno app does for the same requests, with the models packed in the script and
 * with them packed as static assets: same predictions (scores to the last bit),
 * same model, same cost, same problem answers. Only timings differ (and the served-models source
 * line, which names the directory the models were read from).
 */
import assert from "node:assert/strict";
import { wranglerTools, writeEntry } from "../../edge/build_workers.ts";
import { createApp } from "../../app.ts";
import { servedCostDefaults } from "../../routes/models.ts";
import { ModelRegistry } from "../../runtime/registry.ts";
import { readFixture } from "../fixtures/fixtures.ts";
import { startWranglerDev } from "./wrangler_dev.ts";

const manifest = new URL("../../model/artifacts/manifest.json", import.meta.url);
const tools = wranglerTools();
const missing = "missing" in tools
  ? tools.missing
  : await Deno.stat(manifest).then(() => null, () => "model/artifacts/ has no manifest");

const FIXTURES = [
  "fmnist/png/t10k_00000.png",
  "fmnist/jpeg/t10k_00001.jpg",
  "fmnist/photo/t10k_00002.jpg",
  "edge/alpha.webp",
  "edge/animated.gif",
];

type Json = Record<string, unknown>;

/** Fails with `what` instead of waiting forever (CI must never hang on this test). */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** fetch with a deadline: a wedged workerd fails the test with the URL. */
function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
}

function withoutTimings(body: Json): Json {
  const { timing_ms: _t, ...rest } = body;
  return rest;
}

function withoutSource(body: Json): Json {
  const model = { ...(body.model as Json) };
  delete model.defaultsFrom;
  return { ...body, model };
}

// Both ways of carrying the models: packed in the script (the default build) and packed as static
// assets beside it. Either way the Worker must unpack the very ONNX files the Deno app serves.
for (const mode of ["packed", "assets"] as const) {
  Deno.test({
    name:
      `the Workers build (models ${mode}) in local workerd answers classify and cost as the Deno app does${
        missing ? ` (skipped: ${missing})` : ""
      }`,
    ignore: missing !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await writeEntry(undefined, mode);
      const registry = await ModelRegistry.open({ backends: ["kernels-wasm"], warmupRuns: 1 });
      const deno = createApp({
        readiness: registry,
        costDefaults: servedCostDefaults(registry)!,
        classify: { models: registry },
      });
      const [dev] = await within(
        120_000,
        "starting wrangler dev and loading the models",
        Promise.all([startWranglerDev(), registry.load()]),
      );
      try {
        await within(
          240_000,
          "comparing the answers",
          (async () => {
            const alphas = registry.alphas;
            const requests: { path: string; body?: Uint8Array<ArrayBuffer>; name?: string }[] = [];
            for (const [i, f] of FIXTURES.entries()) {
              const alpha = alphas[i % alphas.length];
              const beta = [1, 0.75, 0.5][i % 3];
              requests.push({
                path: `/v1/classify?alpha=${alpha}&beta=${beta}&topk=10`,
                body: (await readFixture(f)).slice(),
                name: f,
              });
            }
            requests.push(
              { path: "/v1/classify?alpha=0.3" },
              { path: "/v1/classify", body: new TextEncoder().encode("not an image at all") },
            );
            let classified = 0;
            for (const r of requests) {
              const init = () => {
                if (!r.body) return { method: "POST", body: new Uint8Array([0xff, 0xd8, 0xff]) };
                const form = new FormData();
                form.append("image", new Blob([r.body]), r.name ?? "upload");
                return { method: "POST", body: form };
              };
              const a = await deno.request(r.path, init());
              const b = await get(`${dev.base}${r.path}`, init());
              const [ja, jb] = [await a.json(), await b.json()];
              assert.equal(b.status, a.status, `${r.path} ${r.name ?? ""}: ${JSON.stringify(jb)}`);
              if (a.status === 200) {
                assert.deepEqual(withoutTimings(jb), withoutTimings(ja), `${r.path} ${r.name}`);
                assert.equal(jb.model.backend, "kernels-wasm");
                classified++;
              } else {
                assert.deepEqual({ ...jb, instance: 0 }, { ...ja, instance: 0 }, r.path);
              }
            }
            for (
              const q of [
                "alpha=0.25&beta=0.5",
                "alpha=1",
                "arch=mobilenet_v2&beta=0.75",
                "alpha=3",
              ]
            ) {
              const a = await deno.request(`/v1/cost?${q}`);
              const b = await get(`${dev.base}/v1/cost?${q}`);
              const [ja, jb] = [await a.json(), await b.json()];
              assert.equal(b.status, a.status, q);
              assert.deepEqual(
                a.status === 200 ? withoutSource(jb) : jb,
                a.status === 200 ? withoutSource(ja) : ja,
                q,
              );
            }
            // The same API description, generated from the same schemas and variants.
            assert.deepEqual(
              await (await get(`${dev.base}/openapi.json`)).json(),
              await (await deno.request("/openapi.json")).json(),
            );
            const raw = await get(`${dev.base}/v1/classify?alpha=${alphas[0]}`, {
              method: "POST",
              body: (await readFixture(FIXTURES[0]!)).slice(),
            });
            assert.equal(raw.status, 200, "a raw image body");
            await raw.body?.cancel();
            assert.equal((await get(`${dev.base}/metrics`)).status, 501);
            const models = await (await get(`${dev.base}/v1/models`)).json();
            assert.deepEqual(models.backends, ["kernels-wasm"]);
            assert.equal((await get(`${dev.base}/`)).status, 200);
          })(),
        );
      } finally {
        await within(30_000, "stopping wrangler dev", dev.stop());
        await within(30_000, "closing the registry", registry.close());
      }
    },
  });
}
