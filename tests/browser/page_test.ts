/**
 * The page in a real browser: headless Chromium loads GET / from the real server, a fixture is
 * uploaded through the file input, and the page shows the label the API gives for that image.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readLabels } from "../fixtures/fixtures.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";
import { browserMissing, launchBrowser, SHIPPED_MANIFEST, startServer } from "./harness.ts";

const missing = browserMissing();
const FIXTURE = "fmnist/png/t10k_00000.png";

/**
 * The shipped models on the project's engine (ready in a few seconds) when the checkout has them,
 * else the registry tests' tiny models on onnxruntime-web (the engine reads only MobileNet graphs).
 */
async function modelsEnv(): Promise<Record<string, string>> {
  try {
    await Deno.stat(SHIPPED_MANIFEST);
    return { BACKEND: "kernels-wasm" };
  } catch {
    return { MODELS_DIR: (await writeTinyArtifacts()).dir, BACKEND: "ort-wasm" };
  }
}

Deno.test({
  name: `GET / and /docs in headless Chromium: upload a fixture, see its label; send a request${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== null,
  // playwright-core keeps its pipe to the browser open until close(); the test closes it.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer(await modelsEnv());
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${server.base}/`);
      await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
      // The chart and the table list every shipped variant from /v1/models.
      const models = await (await fetch(`${server.base}/v1/models`)).json();
      const alphas = await page.$$eval("#alpha option", (os) => os.map((o) => Number(o.value)));
      assert.deepEqual(alphas, models.models.map((m: { alpha: number }) => m.alpha));

      const path = fileURLToPath(new URL(`../fixtures/data/${FIXTURE}`, import.meta.url));
      await page.setInputFiles("#file", path);
      await page.waitForSelector("#result[data-top]", { timeout: 15_000 });
      const shown = await page.$$eval("#result .bar", (bars) =>
        bars.map((b) => ({
          label: b.getAttribute("data-label"),
          width: b.querySelector(".fill")?.getAttribute("style") ?? "",
        })));

      // The same request the page sent, straight to the API.
      const alpha = await page.inputValue("#alpha");
      const beta = await page.inputValue("#beta");
      const backend = await page.inputValue("#backend");
      const form = new FormData();
      form.append("image", new Blob([await Deno.readFile(path)]), "x.png");
      const res = await fetch(
        `${server.base}/v1/classify?alpha=${alpha}&beta=${beta}&backend=${backend}`,
        { method: "POST", body: form },
      );
      const api = await res.json();
      assert.equal(res.status, 200);
      assert.deepEqual(
        shown.map((s) => s.label),
        api.predictions.map((p: { label: string }) => p.label),
      );
      assert.equal(shown[0]!.width, `width:${(100 * api.predictions[0].score).toFixed(1)}%`);
      const truth = await readLabels();
      console.log(
        `page shows ${shown[0]!.label} for ${FIXTURE} (true label ${
          truth.labelNames[truth.files[FIXTURE]!]
        }, model trained: ${api.model.trained})`,
      );
      await page.close();

      // The interactive API reference: every operation listed, and its form sends a real request.
      const docs = await browser.newPage();
      await docs.goto(`${server.base}/docs`);
      await docs.waitForSelector("details.op", { timeout: 15_000 });
      const ops = await docs.$$eval("details.op .path", (els) => els.map((e) => e.textContent));
      for (const path of ["/v1/classify", "/v1/cost", "/v1/models"]) {
        assert.ok(ops.includes(path), `${path} listed on /docs`);
      }
      const cost = docs.locator("details.op", { hasText: "/v1/cost" });
      await cost.locator("summary").click();
      await cost.locator('input[name="alpha"]').fill("0.5");
      await cost.locator('button[type="submit"]').click();
      await cost.locator(".status", { hasText: "200" }).waitFor({ timeout: 15_000 });
      // The page shows the status when the headers arrive and the body after it is read.
      await cost.locator("pre.out", { hasText: "}" }).waitFor({ timeout: 15_000 });
      const answer = JSON.parse(await cost.locator("pre.out").innerText());
      assert.equal(answer.model.alpha, 0.5);
      await docs.close();
    } finally {
      await browser.close();
      await server.stop();
    }
  },
});
