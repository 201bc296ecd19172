import assert from "node:assert/strict";
import { createWasmInt8Kernels } from "../../../kernels/wasm/int8_kernels.ts";
import { loadInt8Wasm } from "../../../kernels/wasm/int8_wasm.ts";
import { generatedCases, runConformance } from "../int8/conformance.ts";

runConformance({ name: "wasm", kernels: async () => createWasmInt8Kernels(await loadInt8Wasm()) });

Deno.test("wasm int8 kernels free their scratch: memory stays flat over repeated calls", async () => {
  const wasm = await loadInt8Wasm();
  const kernels = createWasmInt8Kernels(wasm);
  const cases = generatedCases();
  for (const c of cases) c.run(kernels);
  const pages = wasm.memory.buffer.byteLength;
  const used = wasm.used;
  for (let i = 0; i < 5; i++) for (const c of cases) c.run(kernels);
  assert.equal(wasm.used, used);
  assert.equal(wasm.memory.buffer.byteLength, pages);
});
