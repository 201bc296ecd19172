/**
 * End-to-end latency of `POST /v1/classify` (in-process `app.request`, the server's own timing
 * split: decode, preprocess, inference, total) per shipped alpha, for a 28x28 PNG fixture and a
 * 4000x3000 JPEG made here, with onnxruntime-node (native) running the same preprocessed tensor in
 * the same process as the baseline for the inference column. Rounds alternate between the two
 * runtimes; medians are printed as a markdown table with the ort-web / native ratio.
 *
 *   deno run -A bench/e2e_bench.ts [--rounds N] [--threads N] [--write]
 *
 * `--write` also puts the table in docs/performance.md, between `<!-- e2e:start -->` and
 * `<!-- e2e:end -->` (the convention bench/loadtest.ts follows).
 *
 * onnxruntime-node is a bench and test dependency only: the server never imports it.
 */
import { encode as encodeJpeg } from "@jsquash/jpeg";
import * as ortNode from "onnxruntime-node";
import { createApp } from "../app.ts";
import { preprocessImage } from "../kernels/image/preprocess.ts";
import { ModelRegistry } from "../runtime/registry.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const rounds = arg("--rounds", 9);
const threads = arg("--threads", 1);

/** A 4000x3000 camera-like frame: gradient background, a dark object, mild noise (quality 90). */
async function bigJpeg(): Promise<Uint8Array> {
  const w = 4000, h = 3000;
  const rgba = new Uint8ClampedArray(w * h * 4);
  let seed = 7;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const noise = (seed >>> 28) - 8;
      const inside = (x - 2000) ** 2 / 1300 ** 2 + (y - 1500) ** 2 / 1100 ** 2 < 1;
      const base = inside ? 50 : 240 - y / 80;
      const i = 4 * (y * w + x);
      rgba[i] = base + noise, rgba[i + 1] = base + noise, rgba[i + 2] = base + noise;
      rgba[i + 3] = 255;
    }
  }
  const img = { data: rgba, width: w, height: h, colorSpace: "srgb" } as ImageData;
  return new Uint8Array(await encodeJpeg(img, { quality: 90 }));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const registry = await ModelRegistry.open({ numThreads: threads, warmupRuns: 2 });
await registry.load();
const app = createApp({ readiness: registry, classify: { models: registry } });

ortNode.env.logLevel = "error";
const native = new Map<string, ortNode.InferenceSession>();
for (const v of registry.variants) {
  native.set(
    v.manifest.id,
    await ortNode.InferenceSession.create(`${registry.dir}${v.manifest.file}`, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    }),
  );
}

const images: [string, Uint8Array][] = [
  [
    "28x28 PNG",
    await Deno.readFile(
      new URL("../tests/fixtures/data/fmnist/png/t10k_00000.png", import.meta.url),
    ),
  ],
  ["4000x3000 JPEG", await bigJpeg()],
];

const rows: string[] = [];
for (const [name, bytes] of images) {
  for (const alpha of registry.alphas) {
    const v = registry.variantForAlpha(alpha)!;
    const m = v.manifest;
    const res = m.baseResolution;
    const session = native.get(m.id)!;
    const pre = await preprocessImage(bytes, {
      resolution: res,
      channels: m.inputChannels as 1 | 3,
      mean: m.preprocessing.mean,
      std: m.preprocessing.std,
      invert: "auto",
    });
    const feeds = {
      [m.input.name]: new ortNode.Tensor("float32", pre.tensor, pre.shape),
    };
    await session.run(feeds); // warm the native session at this shape
    const t = { decode: [] as number[], preprocess: [] as number[], inference: [] as number[] };
    const total: number[] = [];
    const nativeMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which runtime goes first so neither always finds a warm cache.
      const order = r % 2 === 0 ? ["web", "node"] : ["node", "web"];
      for (const which of order) {
        if (which === "web") {
          const resp = await app.request(`/v1/classify?alpha=${alpha}`, {
            method: "POST",
            body: new Uint8Array(bytes),
          });
          const body = await resp.json();
          if (resp.status !== 200) throw new Error(`classify failed: ${JSON.stringify(body)}`);
          t.decode.push(body.timing_ms.decode);
          t.preprocess.push(body.timing_ms.preprocess);
          t.inference.push(body.timing_ms.inference);
          total.push(body.timing_ms.total);
        } else {
          const t0 = performance.now();
          await session.run(feeds);
          nativeMs.push(performance.now() - t0);
        }
      }
    }
    const inf = median(t.inference);
    const nat = median(nativeMs);
    rows.push(
      `| ${name} | ${alpha} | ${res} | ${median(t.decode).toFixed(2)} | ${
        median(t.preprocess).toFixed(2)
      } | ${inf.toFixed(2)} | ${median(total).toFixed(2)} | ${nat.toFixed(3)} | ${
        (inf / nat).toFixed(1)
      }x |`,
    );
  }
}

const header =
  `POST /v1/classify in-process, ${rounds} rounds, medians in ms; ort-wasm and onnxruntime-node ` +
  `with ${threads} thread(s), on ${navigator.hardwareConcurrency} cores, load average ` +
  `${Deno.loadavg()[0]!.toFixed(1)} at the end; models: ${
    registry.variants.map((v) => `${v.manifest.id}${v.manifest.trained ? "" : " (untrained)"}`)
      .join(", ")
  }. Command: \`deno run -A bench/e2e_bench.ts${
    Deno.args.length ? " " + Deno.args.join(" ") : ""
  }\`.`;
const table = [
  "| image | alpha | resolution | decode | preprocess | inference ort-wasm | total | inference onnxruntime-node | ort-wasm / node |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(`\n${header}\n\n${table}`);

if (Deno.args.includes("--write")) {
  await writeSection(
    "e2e",
    `## End-to-end classify latency (bench/e2e_bench.ts)\n\n${header}\n\n${table}\n`,
  );
}

await registry.close();
for (const s of native.values()) await s.release();

/** Replaces (or appends) the text between `<!-- name:start -->` and `<!-- name:end -->`. */
async function writeSection(name: string, body: string): Promise<void> {
  const doc = new URL("../docs/performance.md", import.meta.url);
  let text: string;
  try {
    text = await Deno.readTextFile(doc);
  } catch {
    text = "# Performance\n\nSections below are written by the benchmark scripts in bench/.\n";
  }
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i
    ? text.slice(0, i) + block + text.slice(j + end.length)
    : `${text.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(doc, text);
  // Keep the doc as `deno fmt` writes it, so `deno task ok` stays green after a bench run.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", doc.pathname] }).output();
}
