/**
 * `deno task build:workers [--alphas=0.25,0.5] [--models=packed|onnx|assets]`: the Cloudflare
 * Workers bundle.
 *
 * 1. Writes `edge/workers/entry.js`, which imports the kernels `.wasm` (CompiledWasm), the
 *    manifest (JSON) and the shipped models, and hands them to `createWorker` (`edge/worker.ts`).
 *    The models are packed (`edge/model_pack.ts`, unpacked to the same bytes at load) and bundled
 *    by default; `--models=onnx` bundles the ONNX files as they are, `--models=assets` keeps them
 *    (packed) outside the script as static assets. `--alphas` keeps only some widths (the Worker
 *    serves only those).
 * 2. Bundles it with wrangler (`wrangler deploy --dry-run --outdir edge/workers/dist`), the same
 *    bundling `wrangler dev` and `wrangler deploy` do.
 * 3. Measures the upload: every module's size raw and gzipped (computed here, level 9, and the
 *    figure wrangler prints), the static assets, and what each source contributes to the bundled
 *    JavaScript (esbuild's metafile). `deno task size:workers` (`edge/workers_size.ts`) runs every
 *    configuration and writes the tables into docs/deployment.md.
 *
 * wrangler runs on the Node.js that `edge/workers/package.json` pins (wrangler needs >= 22.12):
 * `npm ci --prefix edge/workers` installs both from the npm registry.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { packModel } from "./model_pack.ts";

const ROOT = new URL("../", import.meta.url);
export const WORKERS_DIR = new URL("edge/workers/", ROOT);
const ARTIFACTS = new URL("model/artifacts/", ROOT);
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
 * How the Worker carries the models:
 * - `packed` (default): in the script, in their compact form (`edge/model_pack.ts`, Data modules
 *   under `edge/workers/models/`), unpacked to the very ONNX bytes when the models load;
 * - `onnx`: in the script, the ONNX files as they are (the size to compare with);
 * - `assets`: outside the script, packed, as Workers static assets (`edge/workers/assets/models/`,
 *   uploaded beside the script, 25 MiB per file), read through the `ASSETS` binding when the
 *   models load.
 */
export const MODEL_MODES = ["packed", "onnx", "assets"] as const;
export type ModelMode = typeof MODEL_MODES[number];

/**
 * Writes `entry.js`, importing the shipped manifest and exactly the models of the widths served
 * (all, or those in `alphas`), carried as `mode` says; packs them where the mode needs it. Returns
 * the model files served.
 */
export async function writeEntry(alphas?: number[], mode: ModelMode = "packed"): Promise<string[]> {
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
  // Generated folders: emptied on every build, so no model of an earlier build rides along.
  const packDir = new URL("models/", WORKERS_DIR);
  const assetDir = new URL("assets/", WORKERS_DIR);
  for (const d of [packDir, assetDir]) {
    await Deno.remove(d, { recursive: true }).catch(() => {});
    await Deno.mkdir(d, { recursive: true });
  }
  // wrangler wants the assets folder to hold something; this note is all it serves in the other
  // modes (the Worker runs first for every request, so it is never reachable).
  await Deno.writeTextFile(
    new URL("README.txt", assetDir),
    "Written by edge/build_workers.ts: the models, packed, when built with --models=assets.\n",
  );
  const target = mode === "assets" ? new URL("models/", assetDir) : packDir;
  if (mode !== "onnx") {
    await Deno.mkdir(target, { recursive: true });
    for (const m of models) {
      const onnx = await Deno.readFile(new URL(m.file, ARTIFACTS));
      await Deno.writeFile(new URL(`${m.file}.mnpk`, target), packModel(onnx));
    }
  }
  const file = (m: ManifestJson["models"][number], i: number) =>
    mode === "onnx"
      ? `m${i}`
      : mode === "packed"
      ? `packed(m${i})`
      : `packedAsset(() => assets, ${JSON.stringify(`models/${m.file}.mnpk`)})`;
  const lines = [
    "// Written by edge/build_workers.ts (deno task build:workers): do not edit.",
    `// Models: ${mode}.`,
    `import { createWorker${
      mode === "packed" ? ", packed" : mode === "assets" ? ", packedAsset" : ""
    } } from "../worker.ts";`,
    'import kernels from "../../kernels/wasm/kernels.wasm";',
    'import manifest from "../../model/artifacts/manifest.json";',
    ...(mode === "assets"
      ? []
      : models.map((m, i) =>
        mode === "onnx"
          ? `import m${i} from "../../model/artifacts/${m.file}";`
          : `import m${i} from "./models/${m.file}.mnpk";`
      )),
    "",
    ...(mode === "assets" ? ["let assets;", ""] : []),
    `${mode === "assets" ? "const worker =" : "export default"} createWorker({`,
    "  manifest,",
    "  files: {",
    ...models.map((m, i) => `    ${JSON.stringify(m.file)}: ${file(m, i)},`),
    "  },",
    "  kernels,",
    ...(alphas ? [`  alphas: ${JSON.stringify(alphas)},`] : []),
    '  dir: "model/artifacts/",',
    "});",
    "",
    ...(mode === "assets"
      ? [
        "export default {",
        "  fetch(request, env) {",
        "    assets ??= env.ASSETS;",
        "    return worker.fetch(request);",
        "  },",
        "};",
        "",
      ]
      : []),
  ];
  await Deno.writeTextFile(new URL("entry.js", WORKERS_DIR), lines.join("\n"));
  return models.map((m) => m.file);
}

export interface BundleReport {
  mode: ModelMode;
  /** The script's modules, as uploaded (the size Cloudflare's script limit applies to). */
  files: { name: string; bytes: number; gzip: number }[];
  total: { bytes: number; gzip: number };
  /** Static assets uploaded beside the script (the packed models with `--models=assets`). */
  assets: { name: string; bytes: number; gzip: number }[];
  /** wrangler's own "Total Upload: ... / gzip: ..." line. */
  wrangler: string;
  models: string[];
  /** The bundled JavaScript (entry.js) by source: bytes each contributes to the minified file. */
  js: { source: string; bytes: number }[];
}

const gzip9 = (b: Uint8Array) => gzipSync(b, { level: 9 }).length;

/** What a module path in esbuild's metafile belongs to: an npm package, or a project folder. */
export function sourceOf(path: string): string {
  const npm = path.match(/node_modules\/\.deno\/([^/]+)\/node_modules\/(.*)$/) ??
    path.match(/node_modules\/()((?:@[^/]+\/)?[^/]+.*)$/);
  if (npm) {
    const pkg = npm[1] ? npm[1].replace(/\+/, "/") : npm[2]!.split("/").slice(0, 2).join("/");
    // zod's error messages in 60-odd languages: kept whole by the namespace import.
    return /\/zod\/v4\/locales\//.test(path) ? `npm:${pkg} (locales)` : `npm:${pkg}`;
  }
  const local = path.replace(/^(\.\.\/)+/, "");
  const parts = local.split("/");
  return parts.length > 2 ? `${parts[0]}/${parts[1]}/` : local;
}

/** Bundles with wrangler into edge/workers/dist and measures every module uploaded. */
export async function bundle(alphas?: number[], mode: ModelMode = "packed"): Promise<BundleReport> {
  const tools = wranglerTools();
  if ("missing" in tools) throw new Error(`Cannot bundle for Workers: ${tools.missing}`);
  const models = await writeEntry(alphas, mode);
  const dist = new URL("dist/", WORKERS_DIR);
  await Deno.remove(dist, { recursive: true }).catch(() => {});
  const out = await new Deno.Command(tools.node, {
    args: [
      tools.wrangler,
      "deploy",
      "--dry-run",
      "--outdir",
      "dist",
      "--metafile",
      "dist/meta.json",
    ],
    cwd: WORKERS_DIR,
    env: WRANGLER_ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrangler could not bundle the Worker:\n${text}`);
  const files: BundleReport["files"] = [];
  for await (const e of Deno.readDir(dist)) {
    // The source map, wrangler's README and the build metadata are not uploaded.
    if (!e.isFile || /\.map$|^README\.md$|^meta\.json$/.test(e.name)) continue;
    const bytes = await Deno.readFile(new URL(e.name, dist));
    files.push({ name: e.name, bytes: bytes.length, gzip: gzip9(bytes) });
  }
  files.sort((a, b) => b.bytes - a.bytes);
  const total = files.reduce((t, f) => ({ bytes: t.bytes + f.bytes, gzip: t.gzip + f.gzip }), {
    bytes: 0,
    gzip: 0,
  });
  const assets: BundleReport["assets"] = [];
  if (mode === "assets") {
    const dir = new URL("assets/models/", WORKERS_DIR);
    for await (const e of Deno.readDir(dir)) {
      const bytes = await Deno.readFile(new URL(e.name, dir));
      assets.push({ name: e.name, bytes: bytes.length, gzip: gzip9(bytes) });
    }
    assets.sort((a, b) => b.bytes - a.bytes);
  }
  const meta = JSON.parse(await Deno.readTextFile(new URL("meta.json", dist))) as {
    outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
  };
  const bySource = new Map<string, number>();
  for (const [name, o] of Object.entries(meta.outputs)) {
    if (!name.endsWith(".js")) continue;
    for (const [path, v] of Object.entries(o.inputs)) {
      const k = sourceOf(path);
      bySource.set(k, (bySource.get(k) ?? 0) + v.bytesInOutput);
    }
  }
  const js = [...bySource].map(([source, bytes]) => ({ source, bytes }))
    .filter((x) => x.bytes > 0).sort((a, b) => b.bytes - a.bytes);
  const line = text.match(/Total Upload:[^\n]*/)?.[0] ?? "(wrangler printed no total)";
  return { mode, files, total, assets, wrangler: line.trim(), models, js };
}

export const MB = (n: number): string => (n / 1e6).toFixed(2);
export const num = (n: number): string => n.toLocaleString("en-US");
/** A module's name without the content hash wrangler prefixes. */
export const label = (name: string): string => name.replace(/^[0-9a-f]{40}-/, "");

/** The per-module table of one build. */
export function modulesTable(r: BundleReport): string[] {
  return [
    "| module | bytes | gzip -9 |",
    "| --- | ---: | ---: |",
    ...r.files.map((f) => `| ${label(f.name)} | ${num(f.bytes)} | ${num(f.gzip)} |`),
    `| **script total** | **${num(r.total.bytes)}** (${MB(r.total.bytes)} MB) | **${
      num(r.total.gzip)
    }** (${MB(r.total.gzip)} MB) |`,
    ...(r.assets.length
      ? [
        ...r.assets.map((f) =>
          `| static asset \`models/${f.name}\` | ${num(f.bytes)} | ${num(f.gzip)} |`
        ),
      ]
      : []),
  ];
}

if (import.meta.main) {
  const arg = (name: string) =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const alphas = arg("alphas")?.split(",").map(Number);
  const mode = (arg("models") ?? "packed") as ModelMode;
  if (!MODEL_MODES.includes(mode)) {
    throw new RangeError(`Cannot build with --models=${mode}: it must be one of ${MODEL_MODES}`);
  }
  const r = await bundle(alphas, mode);
  for (const f of [...r.files, ...r.assets]) console.log(`${label(f.name)}\t${f.bytes}\t${f.gzip}`);
  console.log(
    `script: ${r.total.bytes} bytes, ${r.total.gzip} gzipped (${
      MB(r.total.gzip)
    } MB) for ${r.models.length} models (${mode}); ${r.wrangler}`,
  );
  if (r.assets.length) {
    const a = r.assets.reduce((t, f) => t + f.bytes, 0);
    console.log(`static assets: ${a} bytes (${MB(a)} MB), uploaded beside the script`);
  }
  console.log("entry.js by source (bytes in the minified output):");
  for (const x of r.js.slice(0, 15)) console.log(`  ${String(x.bytes).padStart(8)}  ${x.source}`);
  console.log(
    "(deno task size:workers measures every configuration and updates docs/deployment.md)",
  );
}
