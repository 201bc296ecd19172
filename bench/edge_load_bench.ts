/**
 * What packing the models (`edge/model_pack.ts`) costs the first request of a Workers isolate:
 * per shipped model, the median time to unpack it and to hash it (sha256, which the registry does
 * either way), and the whole EdgeRegistry load (check, engine load; no warm-up) of all widths from
 * packed and from plain bytes. In Deno on this machine, as a stand-in for workerd (same V8).
 *
 *   bench/quiet.sh deno run -A bench/edge_load_bench.ts [--rounds 5]
 *
 * @module
 */
import { EdgeRegistry, type ModelBytes } from "../edge/edge_registry.ts";
import { packModel, unpackModel } from "../edge/model_pack.ts";
import { compileInt8Module } from "../kernels/wasm/int8_wasm.ts";
import { sha256Hex } from "../model/export/manifest.ts";

const i = Deno.args.indexOf("--rounds");
const rounds = i >= 0 ? Number(Deno.args[i + 1]) : 5;
const ARTIFACTS = new URL("../model/artifacts/", import.meta.url);
const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS))) as {
  models: { file: string }[];
};
const kernels = await compileInt8Module();

async function median(f: () => unknown): Promise<number> {
  const t: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

const onnx: Record<string, Uint8Array> = {};
const packs: Record<string, Uint8Array> = {};
console.log(`model\tunpack ms\tsha256 ms (median of ${rounds})`);
for (const m of manifest.models) {
  onnx[m.file] = await Deno.readFile(new URL(m.file, ARTIFACTS));
  const pack = packs[m.file] = packModel(onnx[m.file]!);
  const unpack = await median(() => unpackModel(pack));
  const sha = await median(() => sha256Hex(onnx[m.file]!));
  console.log(`${m.file}\t${unpack.toFixed(1)}\t${sha.toFixed(1)}`);
}

async function load(files: () => Record<string, ModelBytes>): Promise<number> {
  return await median(async () => {
    const r = new EdgeRegistry({ manifest, files: files(), kernels, warmupRuns: 0 });
    await r.load();
    await r.close();
  });
}
const plain = await load(() => onnx);
const packed = await load(() =>
  Object.fromEntries(Object.entries(packs).map(([k, p]) => [k, () => unpackModel(p)]))
);
console.log(
  `EdgeRegistry.load(), all ${manifest.models.length} widths, no warm-up (median of ${rounds}): ` +
    `plain bytes ${plain.toFixed(0)} ms, packed ${packed.toFixed(0)} ms`,
);
