import assert from "node:assert/strict";
import { int8Floor, isModelPack, packModel, unpackModel } from "../../edge/model_pack.ts";
import { EdgeRegistry } from "../../edge/edge_registry.ts";
import { packed } from "../../edge/worker.ts";
import { compileInt8Module } from "../../kernels/wasm/int8_wasm.ts";
import { sha256Hex } from "../../model/export/manifest.ts";

const ARTIFACTS = new URL("../../model/artifacts/", import.meta.url);
const manifest = await Deno.readTextFile(new URL("manifest.json", ARTIFACTS)).then(
  (t) => JSON.parse(t) as { models: { file: string; sha256: string; alpha: number }[] },
  () => null,
);
const suffix = manifest ? "" : " (skipped: model/artifacts/ has no manifest)";

Deno.test({
  name: `packModel: every shipped model unpacks to the very same bytes, and is smaller${suffix}`,
  ignore: !manifest,
  async fn() {
    for (const m of manifest!.models) {
      const onnx = await Deno.readFile(new URL(m.file, ARTIFACTS));
      const pack = packModel(onnx);
      assert.ok(isModelPack(pack) && !isModelPack(onnx));
      const back = unpackModel(pack);
      assert.equal(await sha256Hex(back), m.sha256, m.file);
      assert.ok(pack.length < onnx.length, `${m.file}: ${pack.length} < ${onnx.length}`);
      const floor = int8Floor(onnx);
      assert.ok(floor.bytes > 0 && floor.entropy <= floor.bytes, m.file);
    }
  },
});

Deno.test("packModel: a file with no initializers round-trips; corrupt packs are refused", () => {
  const bare = new Uint8Array([0x08, 0x08]); // ModelProto { ir_version: 8 }
  assert.deepEqual(unpackModel(packModel(bare)), bare);
  const notOnnx = new TextEncoder().encode("not an ONNX graph at all");
  assert.throws(() => packModel(notOnnx), /not a readable ONNX file/);
  assert.throws(() => unpackModel(notOnnx), /do not start with MNPK/);
});

Deno.test({
  name: `packModel: a flipped or truncated byte in a model's pack is refused${suffix}`,
  ignore: !manifest,
  async fn() {
    const m = manifest!.models[0]!;
    const pack = packModel(await Deno.readFile(new URL(m.file, ARTIFACTS)));
    assert.throws(() => unpackModel(pack.subarray(0, pack.length - 1)), /corrupt or truncated/);
    // A flipped byte either fails to decode or decodes to other bytes, which the sha256 catches.
    const flipped = pack.slice();
    flipped[flipped.length - 100]! ^= 0x55;
    let other: Uint8Array | undefined;
    try {
      other = unpackModel(flipped);
    } catch (e) {
      assert.match(String(e), /corrupt or truncated/);
    }
    if (other) assert.notEqual(await sha256Hex(other), m.sha256);
  },
});

Deno.test({
  name:
    `EdgeRegistry loads packed models (files given as loaders) and checks what they give${suffix}`,
  ignore: !manifest,
  async fn() {
    const m = manifest!.models[0]!;
    const onnx = await Deno.readFile(new URL(m.file, ARTIFACTS));
    const pack = packModel(onnx);
    const kernels = await compileInt8Module();
    const ok = new EdgeRegistry({
      manifest,
      files: { [m.file]: packed(pack.slice().buffer) },
      kernels,
      alphas: [m.alpha],
      warmupRuns: 0,
    });
    await ok.load();
    assert.ok(ok.ready());
    await ok.close();
    const broken = new EdgeRegistry({
      manifest,
      files: { [m.file]: () => Promise.reject(new Error("the asset answered 404")) },
      kernels,
      alphas: [m.alpha],
      warmupRuns: 0,
    });
    await assert.rejects(broken.load(), /cannot be read from the bundle: the asset answered 404/);
    assert.match(broken.reason(), /the asset answered 404/);
  },
});
