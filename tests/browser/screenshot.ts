/**
 * Writes docs/screenshot.png: the page in headless Chromium after classifying a photo-like
 * fixture, served by the real server with the shipped models. `deno task screenshot`.
 */
import { fileURLToPath } from "node:url";
import { browserMissing, launchBrowser, startServer } from "./harness.ts";

const FIXTURE = "fmnist/photo/t10k_00000.jpg";
const OUT = new URL("../../docs/screenshot.png", import.meta.url);

const missing = browserMissing();
if (missing) {
  console.error(`Cannot take the screenshot: ${missing}`);
  Deno.exit(1);
}
const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`${server.base}/`);
  await page.waitForSelector("body[data-ready=true]");
  await page.setInputFiles(
    "#file",
    fileURLToPath(new URL(`../fixtures/data/${FIXTURE}`, import.meta.url)),
  );
  await page.waitForSelector("#result[data-top]");
  await page.waitForTimeout(300); // the cost line arrives just after the predictions
  await page.screenshot({ path: fileURLToPath(OUT), fullPage: true });
  console.log(`wrote ${fileURLToPath(OUT)} (${FIXTURE})`);
} finally {
  await browser.close();
  await server.stop();
}
