import assert from "node:assert/strict";
import { createGemmPlan } from "../../../kernels/int8/gemm.ts";
import { quantizeNchwToNhwc } from "../../../kernels/int8/quantize_linear.ts";
import { createWasmInt8Kernels } from "../../../kernels/wasm/int8_kernels.ts";
import { packGemm } from "../../../kernels/wasm/int8_layers.ts";
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

Deno.test("wasm GEMM layers take the 7-bit relaxed-dot path when the weights lie in -64..64", async () => {
  const wasm = await loadInt8Wasm();
  const n = 6;
  const k = 10;
  const plan = (weights: Int8Array) =>
    createGemmPlan([4, k], {
      weights,
      outChannels: n,
      weightScales: new Float32Array(n).fill(0.01),
      bias: new Int32Array(n),
      inScale: 0.02,
      inZeroPoint: 3,
      outScale: 0.1,
      outZeroPoint: 5,
      output: "uint8",
    });
  const w = new Int8Array(n * k).map((_, i) => (i * 37) % 127 - 63);
  w[0] = 64; // channel 0: +64 only (sign flipped)
  w[k + 3] = -64; // channel 1: -64 only
  assert.equal(packGemm(wasm, plan(w)).path, "s7");
  const both = w.slice();
  both[5] = -64; // channel 0 now holds +64 and -64: an extra column
  assert.equal(packGemm(wasm, plan(both)).path, "s7");
  const wide = w.slice();
  wide[7] = 65; // outside the 7-bit range
  assert.equal(packGemm(wasm, plan(wide)).path, "i16");
});

Deno.test("wasm quantizeInput equals the reference QuantizeLinear (NCHW -> NHWC), edge values included", async () => {
  const wasm = await loadInt8Wasm();
  const scale = 0.0125;
  const edges = [
    NaN,
    Infinity,
    -Infinity,
    0,
    -0,
    1e30,
    -1e30,
    0.5 * scale,
    1.5 * scale,
    -2.5 * scale,
  ];
  for (const [n, c, h, w] of [[1, 1, 28, 28], [2, 3, 5, 7], [1, 1, 3, 5], [3, 1, 4, 4]] as const) {
    for (const zp of [0, 37, 128, 255]) {
      let seed = n * 1000 + c * 100 + h + zp;
      const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
      const x = Float32Array.from(
        { length: n * c * h * w },
        (_, i) =>
          i < edges.length ? edges[i]! : (rand() * 2 - 1) * 4 + Math.round(rand() * 8) * scale / 2,
      );
      const want = quantizeNchwToNhwc(x, [n, c, h, w], { scale, zeroPoint: zp });
      const mark = wasm.mark();
      const src = wasm.put(x);
      const dst = wasm.alloc(x.length);
      wasm.exports.quantizeInput(src, n, c, h * w, scale, zp, dst);
      assert.deepEqual(wasm.u8(dst, x.length).slice(), want, `[${n},${c},${h},${w}] zp ${zp}`);
      wasm.release(mark);
    }
  }
});
