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
import asc from "assemblyscript/asc";

const ROOT = new URL("../../", import.meta.url);
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
export async function buildKernelsWasm(): Promise<Uint8Array> {
  const root = decodeURIComponent(ROOT.pathname);
  let wasm: Uint8Array | undefined;
  const errors: string[] = [];
  const result = await asc.main(
    [SOURCE, ...ASC_FLAGS, "-o", "kernels.wasm"],
    {
      // asc passes the working directory as baseDir: resolve against the repository root instead.
      readFile: (name: string) => {
        try {
          return Deno.readTextFileSync(name.startsWith("/") ? name : `${root}${name}`);
        } catch {
          return null;
        }
      },
      writeFile: (name: string, contents: Uint8Array | string) => {
        if (name.endsWith("kernels.wasm") && typeof contents !== "string") wasm = contents;
      },
      listFiles: () => [],
      stdout: { write: (s: string | Uint8Array) => void s },
      stderr: {
        write: (s: string | Uint8Array) => {
          errors.push(typeof s === "string" ? s : new TextDecoder().decode(s));
        },
      },
      reportDiagnostic: (d: { message: string }) => void errors.push(d.message),
    } as Parameters<typeof asc.main>[1],
  );
  if (result.error || !wasm) {
    throw new TypeError(
      `Cannot build ${OUTPUT} as asc failed: ${result.error?.message ?? "no output"} ${
        errors.join("")
      }`,
    );
  }
  return wasm;
}

if (import.meta.main) {
  const bytes = await buildKernelsWasm();
  await Deno.writeFile(new URL(OUTPUT, ROOT), bytes);
  console.log(`wrote ${OUTPUT}: ${bytes.length} bytes`);
}
