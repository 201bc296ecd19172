/**
 * `deno task build:workers [--alphas=0.25,0.5] [--no-docs]`: the Cloudflare Workers bundle.
 *
 * 1. Writes `edge/workers/entry.js`, which imports the kernels `.wasm` (CompiledWasm), the
 *    manifest (JSON) and each shipped ONNX file (Data) and hands them to `createWorker`
 *    (`edge/worker.ts`). `--alphas` keeps only some widths (the Worker serves only those).
 * 2. Bundles it with wrangler (`wrangler deploy --dry-run --outdir edge/workers/dist`), the same
 *    bundling `wrangler dev` and `wrangler deploy` do.
 * 3. Measures the upload: every module's size raw and gzipped (computed here, level 9, and the
 *    figure wrangler prints), and writes the table into docs/deployment.md between the
 *    `workers-bundle` markers unless `--no-docs`.
 *
 * wrangler runs on the Node.js that `edge/workers/package.json` pins (wrangler needs >= 22.12):
 * `npm ci --prefix edge/workers` installs both from the npm registry.
 *
 * @module
 */
import { gzipSync } from "node:zlib";

const ROOT = new URL("../", import.meta.url);
export const WORKERS_DIR = new URL("edge/workers/", ROOT);
const ARTIFACTS = new URL("model/artifacts/", ROOT);
const DOCS = new URL("docs/deployment.md", ROOT);
const path = (u: URL) => decodeURIComponent(u.pathname);

/** The pinned Node.js and wrangler, or the reason they cannot be used. */
export function wranglerTools(): { node: string; wrangler: string } | { missing: string } {
  const node = path(new URL("node_modules/node/bin/node", WORKERS_DIR));
  const wrangler = path(new URL("node_modules/wrangler/bin/wrangler.js", WORKERS_DIR));
  for (const f of [node, wrangler]) {
    try {
      Deno.statSync(f);
    } catch {
      return { missing: `${f} is missing (run: npm ci --prefix edge/workers)` };
    }
  }
  return { node, wrangler };
}

/** Environment for wrangler: no metrics, no fetch of Cloudflare's request metadata (closed net). */
export const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  NO_COLOR: "1",
};

interface ManifestJson {
  models: { id: string; alpha: number; file: string }[];
  [k: string]: unknown;
}

/**
 * Writes `entry.js`, importing the shipped manifest and exactly the ONNX files of the widths served
 * (all, or those in `alphas`). Returns the model files bundled.
 */
export async function writeEntry(alphas?: number[]): Promise<string[]> {
  const manifest = JSON.parse(
    await Deno.readTextFile(new URL("manifest.json", ARTIFACTS)),
  ) as ManifestJson;
  const models = alphas ? manifest.models.filter((m) => alphas.includes(m.alpha)) : manifest.models;
  if (models.length === 0) {
    throw new RangeError(
      `Cannot build the Workers bundle as no shipped model has alpha in ${alphas?.join(", ")}: ` +
        `shipped are ${manifest.models.map((m) => m.alpha).join(", ")}`,
    );
  }
  const lines = [
    "// Written by edge/build_workers.ts (deno task build:workers): do not edit.",
    'import { createWorker } from "../worker.ts";',
    'import kernels from "../../kernels/wasm/kernels.wasm";',
    'import manifest from "../../model/artifacts/manifest.json";',
    ...models.map((m, i) => `import m${i} from "../../model/artifacts/${m.file}";`),
    "",
    "export default createWorker({",
    "  manifest,",
    "  files: {",
    ...models.map((m, i) => `    ${JSON.stringify(m.file)}: m${i},`),
    "  },",
    "  kernels,",
    ...(alphas ? [`  alphas: ${JSON.stringify(alphas)},`] : []),
    '  dir: "model/artifacts/",',
    "});",
    "",
  ];
  await Deno.writeTextFile(new URL("entry.js", WORKERS_DIR), lines.join("\n"));
  return models.map((m) => m.file);
}

export interface BundleReport {
  files: { name: string; bytes: number; gzip: number }[];
  total: { bytes: number; gzip: number };
  /** wrangler's own "Total Upload: ... / gzip: ..." line. */
  wrangler: string;
  models: string[];
}

/** Bundles with wrangler into edge/workers/dist and measures every module uploaded. */
export async function bundle(alphas?: number[]): Promise<BundleReport> {
  const tools = wranglerTools();
  if ("missing" in tools) throw new Error(`Cannot bundle for Workers: ${tools.missing}`);
  const models = await writeEntry(alphas);
  const dist = new URL("dist/", WORKERS_DIR);
  await Deno.remove(dist, { recursive: true }).catch(() => {});
  const out = await new Deno.Command(tools.node, {
    args: [tools.wrangler, "deploy", "--dry-run", "--outdir", "dist"],
    cwd: WORKERS_DIR,
    env: WRANGLER_ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrangler could not bundle the Worker:\n${text}`);
  const files: BundleReport["files"] = [];
  for await (const e of Deno.readDir(dist)) {
    // The source map and wrangler's README are not uploaded.
    if (!e.isFile || e.name.endsWith(".map") || e.name === "README.md") continue;
    const bytes = await Deno.readFile(new URL(e.name, dist));
    files.push({ name: e.name, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  files.sort((a, b) => b.bytes - a.bytes);
  const total = files.reduce((t, f) => ({ bytes: t.bytes + f.bytes, gzip: t.gzip + f.gzip }), {
    bytes: 0,
    gzip: 0,
  });
  const line = text.match(/Total Upload:[^\n]*/)?.[0] ?? "(wrangler printed no total)";
  return { files, total, wrangler: line.trim(), models };
}

const MB = (n: number) => (n / 1e6).toFixed(2);

/** The docs table for a report. */
export function reportMarkdown(r: BundleReport, command: string): string {
  const label = (name: string) => name.replace(/^[0-9a-f]{40}-/, "");
  return [
    `Measured by \`${command}\` (${new Date().toISOString().slice(0, 10)}):`,
    "",
    "| module | bytes | gzip -9 |",
    "| --- | ---: | ---: |",
    ...r.files.map((f) =>
      `| ${label(f.name)} | ${f.bytes.toLocaleString("en-US")} | ${
        f.gzip.toLocaleString("en-US")
      } |`
    ),
    `| **total** | **${r.total.bytes.toLocaleString("en-US")}** (${MB(r.total.bytes)} MB) | **${
      r.total.gzip.toLocaleString("en-US")
    }** (${MB(r.total.gzip)} MB) |`,
    "",
    `wrangler's own figure: \`${r.wrangler}\`.`,
  ].join("\n");
}

const START = "<!-- workers-bundle:start -->";
const END = "<!-- workers-bundle:end -->";

/** Replaces the text between the markers in docs/deployment.md (which must have them). */
export async function writeReportToDocs(markdown: string, marker = "all"): Promise<void> {
  const doc = await Deno.readTextFile(DOCS);
  const start = START.replace("start", `${marker}:start`);
  const end = END.replace("end", `${marker}:end`);
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) {
    throw new RangeError(`Cannot update ${path(DOCS)} as it lacks the markers ${start} ... ${end}`);
  }
  await Deno.writeTextFile(
    DOCS,
    doc.slice(0, i + start.length) + "\n" + markdown + "\n" + doc.slice(j),
  ); // Keep the page as `deno fmt` writes it (the tables are aligned), so `deno task ok` stays green.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path(DOCS)] }).output();
}

if (import.meta.main) {
  const arg = Deno.args.find((a) => a.startsWith("--alphas="));
  const alphas = arg ? arg.slice("--alphas=".length).split(",").map(Number) : undefined;
  const r = await bundle(alphas);
  const command = `deno task build:workers${arg ? ` ${arg}` : ""}`;
  for (const f of r.files) console.log(`${f.name}\t${f.bytes}\t${f.gzip}`);
  console.log(
    `total ${r.total.bytes} bytes, ${r.total.gzip} gzipped (${
      MB(r.total.gzip)
    } MB) for ${r.models.length} models; ${r.wrangler}`,
  );
  if (!Deno.args.includes("--no-docs")) {
    await writeReportToDocs(reportMarkdown(r, command), alphas ? "subset" : "all");
    console.log(`wrote the table into ${path(DOCS)}`);
  }
}
