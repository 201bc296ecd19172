/**
 * Builds kernels/wasm/kernels.wasm from the AssemblyScript sources in kernels/wasm/assembly/.
 *
 * `deno task build:wasm` writes the file; `buildKernelsWasm()` returns the bytes without writing
 * (the reproducibility test compares them with the committed module). The compiler is pinned in
 * deno.json (`assemblyscript/asc`), and the source path is passed relative to the repository root
 * so that the output does not depend on where the checkout lives.
 *
 * Flags: -O3, the stub runtime (no GC, no allocator: TypeScript owns the memory), SIMD and
 * relaxed SIMD on (used only where the result is exact, see assembly/int8.ts), no assertions, and `--use abort=` so that the module has zero imports.
 */
import { compileAssemblyScript, REPO_ROOT as ROOT } from "../asc_build.ts";

export const SOURCE = "kernels/wasm/assembly/int8.ts";
export const OUTPUT = "kernels/wasm/kernels.wasm";
export const ASC_FLAGS = [
  "-O3",
  "--runtime",
  "stub",
  "--enable",
  "simd",
  "--enable",
  "relaxed-simd",
  "--noAssert",
  "--use",
  "abort=",
] as const;

/** Compiles the kernels and returns the .wasm bytes. */
export function buildKernelsWasm(): Promise<Uint8Array> {
  return compileAssemblyScript(SOURCE, OUTPUT, ASC_FLAGS);
}

if (import.meta.main) {
  const bytes = await buildKernelsWasm();
  await Deno.writeFile(new URL(OUTPUT, ROOT), bytes);
  console.log(`wrote ${OUTPUT}: ${bytes.length} bytes`);
}
