import assert from "node:assert/strict";
import { buildKernelsWasm } from "../../../kernels/wasm/build.ts";

const committed = await Deno.readFile(
  new URL("../../../kernels/wasm/kernels.wasm", import.meta.url),
);

Deno.test("kernels.wasm is reproduced byte for byte by rebuilding the AssemblyScript sources", async () => {
  // asc 0.28 output is deterministic: same sources and flags -> same bytes (~4 s on 2 cores).
  const rebuilt = await buildKernelsWasm();
  assert.equal(
    rebuilt.length,
    committed.length,
    "size differs: run `deno task build:wasm` and commit kernels.wasm",
  );
  assert.ok(
    rebuilt.every((b, i) => b === committed[i]),
    "bytes differ: run `deno task build:wasm` and commit kernels.wasm",
  );
});

Deno.test("kernels.wasm has zero imports and exports its memory and kernels", async () => {
  const module = await WebAssembly.compile(committed);
  assert.deepEqual(WebAssembly.Module.imports(module), []);
  const names = WebAssembly.Module.exports(module).map((e) => e.name).sort();
  assert.deepEqual(names, [
    "depthwise",
    "depthwise3x3Padded",
    "gatherColsS8",
    "gemmF32",
    "gemmS7",
    "gemmS7F32",
    "gemmU8",
    "globalAvgPool",
    "heapBase",
    "memory",
    "packDepthwiseWeightsI8",
    "packGemmWeightsI8",
    "packGemmWeightsS7",
    "packIm2col",
    "packIm2colS8",
    "packIm2colS8Padded",
    "packRows",
    "packRowsS8",
    "padInput",
    "quantizeInput",
    "requantize",
  ]);
});
