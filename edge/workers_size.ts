/**
 * `deno task size:workers [--no-docs]`: what the Cloudflare Workers upload weighs, in every way the
 * build can carry the models, for the models in model/artifacts/ now (rerun it after replacing
 * them: trained int8 weights compress differently from an untrained stand-in's).
 *
 * Builds, one after the other (`edge/build_workers.ts`, wrangler's own bundling):
 * - all widths, models packed in the script (the default build);
 * - all widths, the ONNX files in the script as they are (what packing saves);
 * - all widths, models packed as static assets beside the script;
 * - all but the widest width, packed in the script.
 *
 * and, per model, the ONNX file and its pack raw and gzipped, and the order-0 entropy of its int8
 * weights: the least any coder of independent values with one distribution per tensor can store
 * them in. It prints everything and, unless `--no-docs`, writes it into docs/deployment.md between
 * the `workers-size` markers. It leaves edge/workers/ built as `deno task build:workers` does.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import {
  bundle,
  type BundleReport,
  label,
  MB,
  modulesTable,
  num,
  WORKERS_DIR,
} from "./build_workers.ts";
import { int8Floor, packModel } from "./model_pack.ts";

const ROOT = new URL("../", import.meta.url);
const ARTIFACTS = new URL("model/artifacts/", ROOT);
const DOCS = new URL("docs/deployment.md", ROOT);
/** Cloudflare's script limit on the free plan, gzipped (the paid plans allow 10 MB). */
export const FREE_LIMIT = 3_000_000;

const gzip9 = (b: Uint8Array) => gzipSync(b, { level: 9 }).length;
const pct = (a: number, b: number) => `${(100 * a / b).toFixed(1)}%`;

interface ModelRow {
  file: string;
  alpha: number;
  onnx: number;
  onnxGzip: number;
  pack: number;
  packGzip: number;
  int8: number;
  floor: number;
  context: number;
}

async function modelRows(): Promise<ModelRow[]> {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS))) as {
    models: { file: string; alpha: number }[];
  };
  const rows: ModelRow[] = [];
  for (const m of manifest.models) {
    const onnx = await Deno.readFile(new URL(m.file, ARTIFACTS));
    const pack = packModel(onnx);
    const f = int8Floor(onnx);
    rows.push({
      file: m.file,
      alpha: m.alpha,
      onnx: onnx.length,
      onnxGzip: gzip9(onnx),
      pack: pack.length,
      packGzip: gzip9(pack),
      int8: f.bytes,
      floor: f.entropy,
      context: f.context,
    });
  }
  return rows.sort((a, b) => a.alpha - b.alpha);
}

function summaryRow(what: string, r: BundleReport): string {
  const assets = r.assets.reduce((t, f) => t + f.bytes, 0);
  return `| ${what} | ${num(r.total.gzip)} (${MB(r.total.gzip)} MB) | ${
    r.wrangler.replace(/^Total Upload:\s*/, "")
  } | ${assets ? `${num(assets)} (${MB(assets)} MB)` : "none"} | ${
    r.total.gzip < FREE_LIMIT ? "yes" : "**no**"
  } |`;
}

export async function measure(): Promise<string> {
  const date = new Date().toISOString().slice(0, 10);
  const rows = await modelRows();
  const alphas = rows.map((r) => r.alpha);
  const narrower = alphas.slice(0, -1);
  const onnx = await bundle(undefined, "onnx");
  const assets = await bundle(undefined, "assets");
  const subset = narrower.length ? await bundle(narrower, "packed") : undefined;
  // Last, so edge/workers/ is left as the default build.
  const packed = await bundle(undefined, "packed");
  const sum = (f: (r: ModelRow) => number) => rows.reduce((t, r) => t + f(r), 0);
  const packedModels = sum((r) => r.packGzip);
  const rest = packed.total.gzip - packedModels;
  const floor = sum((r) => r.floor);
  const jsTotal = packed.js.reduce((t, x) => t + x.bytes, 0);
  const entry = packed.files.find((f) => f.name === "entry.js");
  const wasm = packed.files.filter((f) => f.name.endsWith(".wasm"));
  return [
    `Measured by \`deno task size:workers\` (${date}; models: ${
      rows.map((r) => r.file).join(", ")
    }). Script gzip is gzip -9 of each uploaded module, summed; wrangler's own figure beside it.`,
    "",
    "| build | script, gzip -9 | wrangler's figure (raw / gzip) | static assets | script under 3 MB |",
    "| --- | ---: | ---: | ---: | :---: |",
    summaryRow("`--models=onnx`: all widths, ONNX files in the script", onnx),
    summaryRow("**default**: all widths, packed in the script", packed),
    summaryRow("`--models=assets`: all widths, packed as static assets", assets),
    ...(subset
      ? [summaryRow(`\`--alphas=${narrower.join(",")}\`: packed in the script`, subset)]
      : []),
    "",
    "Per model: the ONNX file, its pack (`edge/model_pack.ts`; it unpacks to the same bytes), and",
    "the order-0 entropy of the int8 weights it codes (no coder of independent values with one",
    "distribution per tensor stores them in less), and their entropy given the previous weight's",
    "magnitude (8 buckets, a distribution per bucket and tensor, tables not counted: what a coder",
    "modelling neighbours could reach at best):",
    "",
    "| model | ONNX | ONNX gzip -9 | pack | pack gzip -9 | int8 weights | their order-0 entropy | given the previous |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.file} | ${num(r.onnx)} | ${num(r.onnxGzip)} (${pct(r.onnxGzip, r.onnx)}) | ${
        num(r.pack)
      } | ${num(r.packGzip)} (${pct(r.packGzip, r.onnxGzip)} of ONNX gzip) | ${num(r.int8)} | ${
        num(r.floor)
      } (${pct(r.floor, r.int8)}) | ${num(r.context)} (${pct(r.context, r.floor)} of order-0) |`
    ),
    `| **all** | ${num(sum((r) => r.onnx))} | ${num(sum((r) => r.onnxGzip))} | ${
      num(sum((r) => r.pack))
    } | ${num(packedModels)} | ${num(sum((r) => r.int8))} | ${num(floor)} | ${
      num(sum((r) => r.context))
    } |`,
    "",
    `With every width in the script, the code and codecs take ${num(rest)} bytes gzipped and the`,
    `int8 weights alone have an order-0 entropy of ${num(floor)} bytes: ${
      rest + floor < FREE_LIMIT
        ? `together ${num(rest + floor)}, under 3 MB.`
        : `together at least ${num(rest + floor)} (${
          MB(rest + floor)
        } MB) for any such coder, over the free plan's 3 MB.`
    }`,
    "",
    "The default build, module by module:",
    "",
    ...modulesTable(packed),
    "",
    `The bundled JavaScript (entry.js, ${num(entry?.bytes ?? 0)} bytes minified, ${
      num(entry?.gzip ?? 0)
    } gzipped) by source, in bytes of the minified file (esbuild's metafile; gzip is not split`,
    `by source). The ${wasm.length} WebAssembly modules take ${
      num(wasm.reduce((t, f) => t + f.gzip, 0))
    } bytes gzipped (${wasm.map((f) => label(f.name)).join(", ")}).`,
    "",
    "| source | bytes | share |",
    "| --- | ---: | ---: |",
    ...packed.js.filter((x) => x.bytes >= 5000).map((x) =>
      `| ${x.source} | ${num(x.bytes)} | ${pct(x.bytes, jsTotal)} |`
    ),
    `| everything else (${packed.js.filter((x) => x.bytes < 5000).length} sources) | ${
      num(packed.js.filter((x) => x.bytes < 5000).reduce((t, x) => t + x.bytes, 0))
    } | ${
      pct(packed.js.filter((x) => x.bytes < 5000).reduce((t, x) => t + x.bytes, 0), jsTotal)
    } |`,
  ].join("\n");
}

const START = "<!-- workers-size:start -->";
const END = "<!-- workers-size:end -->";

/** Replaces the text between the markers in docs/deployment.md (which must have them). */
export async function writeToDocs(markdown: string): Promise<void> {
  const doc = await Deno.readTextFile(DOCS);
  const i = doc.indexOf(START);
  const j = doc.indexOf(END);
  if (i < 0 || j < i) {
    throw new RangeError(
      `Cannot update ${DOCS.pathname} as it lacks the markers ${START} ... ${END}`,
    );
  }
  await Deno.writeTextFile(
    DOCS,
    doc.slice(0, i + START.length) + "\n\n" + markdown + "\n\n" + doc.slice(j),
  );
  // Keep the page as `deno fmt` writes it (the tables are aligned), so `deno task ok` stays green.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", DOCS.pathname] }).output();
}

if (import.meta.main) {
  const text = await measure();
  console.log(text);
  if (!Deno.args.includes("--no-docs")) {
    await writeToDocs(text);
    console.log(`\nwrote the tables into ${DOCS.pathname}`);
  }
  console.log(`edge/workers/ holds the default build (${WORKERS_DIR.pathname})`);
}
