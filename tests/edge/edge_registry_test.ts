import assert from "node:assert/strict";
import { EdgeRegistry } from "../../edge/edge_registry.ts";
import { compileInt8Module } from "../../kernels/wasm/int8_wasm.ts";
import { ModelRegistry } from "../../runtime/registry.ts";

const ARTIFACTS = new URL("../../model/artifacts/", import.meta.url);
const missing = await Deno.stat(new URL("manifest.json", ARTIFACTS)).then(
  () => null,
  () => "model/artifacts/ has no manifest",
);
const suffix = missing ? ` (skipped: ${missing})` : "";

/** The shipped models as a Workers bundle hands them over: parsed JSON and bytes. */
async function source() {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", ARTIFACTS)));
  const files: Record<string, Uint8Array> = {};
  for (const m of manifest.models as { file: string }[]) {
    files[m.file] = await Deno.readFile(new URL(m.file, ARTIFACTS));
  }
  return { manifest, files, kernels: await compileInt8Module(), warmupRuns: 1 };
}

Deno.test({
  name: `EdgeRegistry serves the shipped models from bytes as ModelRegistry does${suffix}`,
  ignore: missing !== null,
  async fn() {
    const edge = new EdgeRegistry(await source());
    const deno = await ModelRegistry.open({ backends: ["kernels-wasm"], warmupRuns: 1 });
    assert.equal(edge.ready(), false);
    await Promise.all([edge.load(), deno.load()]);
    try {
      assert.ok(edge.ready());
      assert.deepEqual(edge.alphas, deno.alphas);
      assert.equal(edge.defaultVariant.manifest.id, deno.defaultVariant.manifest.id);
      assert.deepEqual(edge.backendNames, ["kernels-wasm"]);
      for (const v of edge.variants) {
        const m = v.manifest;
        assert.deepEqual(v.resolution, deno.variantForAlpha(m.alpha)!.resolution);
        assert.ok(Object.keys(v.latencyMs["kernels-wasm"]!).length > 0, "warmed and timed");
        const n = m.inputChannels * v.resolution.base ** 2;
        const input = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
        const req = {
          model: m.id,
          backend: "kernels-wasm",
          input,
          shape: [1, m.inputChannels, v.resolution.base, v.resolution.base] as [
            number,
            number,
            number,
            number,
          ],
        };
        const [a, b] = [await edge.infer(req), await deno.infer(req)];
        assert.deepEqual([...a.logits], [...b.logits], `${m.id}: same logits`);
      }
    } finally {
      await deno.close();
    }
  },
});

Deno.test({
  name:
    `EdgeRegistry serves only the widths asked for and refuses a file that is not the manifest's${suffix}`,
  ignore: missing !== null,
  async fn() {
    const src = await source();
    const first = src.manifest.models[0] as { alpha: number; file: string; id: string };
    const only = new EdgeRegistry({ ...src, alphas: [first.alpha], warmupRuns: 0 });
    assert.deepEqual(only.alphas, [first.alpha]);

    const tampered = src.files[first.file]!.slice();
    tampered[tampered.length - 1]! ^= 1;
    const bad = new EdgeRegistry({ ...src, files: { ...src.files, [first.file]: tampered } });
    await assert.rejects(bad.load(), new RegExp(`sha256 of ${first.file}`));
    assert.equal(bad.ready(), false);
    assert.match(bad.reason(), /Models failed to load/);

    const absent = new EdgeRegistry({ ...src, files: {} });
    await assert.rejects(absent.load(), /is not in the bundle/);
    await assert.rejects(
      absent.infer({
        model: first.id,
        backend: "kernels-wasm",
        input: new Float32Array(1),
        shape: [1, 1, 1, 1],
      }),
      /not ready/,
    );
  },
});
