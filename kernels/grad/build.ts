/**
 * Builds kernels/grad/grad.wasm from kernels/grad/assembly/grad.ts (AssemblyScript, pinned in
 * deno.json as `assemblyscript/asc`): -O3, stub runtime (TypeScript owns the memory), SIMD, no
 * assertions, `--use abort=` so that the only import is the memory (`--importMemory`: the kernels
 * run on tfjs's wasm heap, see grad_wasm.ts `GradOnHeap`).
 *
 * `deno run -A kernels/grad/build.ts` writes the file; `buildGradWasm()` returns the bytes (the
 * test compares them with the committed module).
 */
import { compileAssemblyScript, REPO_ROOT as ROOT } from "../asc_build.ts";

export const SOURCE = "kernels/grad/assembly/grad.ts";
export const OUTPUT = "kernels/grad/grad.wasm";
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
  "--importMemory",
] as const;

/** Compiles the kernels and returns the .wasm bytes. */
export function buildGradWasm(): Promise<Uint8Array> {
  return compileAssemblyScript(SOURCE, OUTPUT, ASC_FLAGS);
}

if (import.meta.main) {
  const bytes = await buildGradWasm();
  await Deno.writeFile(new URL(OUTPUT, ROOT), bytes);
  console.log(`wrote ${OUTPUT}: ${bytes.length} bytes`);
}
