/**
 * Builds kernels/grad/grad.wasm from kernels/grad/assembly/grad.ts (AssemblyScript, pinned in
 * deno.json as `assemblyscript/asc`): -O3, stub runtime (TypeScript owns the memory), SIMD, no
 * assertions, `--use abort=` for zero imports.
 *
 * `deno run -A kernels/grad/build.ts` writes the file; `buildGradWasm()` returns the bytes (the
 * test compares them with the committed module).
 */
import asc from "assemblyscript/asc";

const ROOT = new URL("../../", import.meta.url);
export const SOURCE = "kernels/grad/assembly/grad.ts";
export const OUTPUT = "kernels/grad/grad.wasm";
export const ASC_FLAGS = [
  "-O3",
  "--runtime",
  "stub",
  "--enable",
  "simd",
  "--noAssert",
  "--use",
  "abort=",
] as const;

export async function buildGradWasm(): Promise<Uint8Array> {
  const root = decodeURIComponent(ROOT.pathname);
  let wasm: Uint8Array | undefined;
  const errors: string[] = [];
  const result = await asc.main(
    [SOURCE, ...ASC_FLAGS, "-o", "grad.wasm"],
    {
      readFile: (name: string) => {
        try {
          return Deno.readTextFileSync(name.startsWith("/") ? name : `${root}${name}`);
        } catch {
          return null;
        }
      },
      writeFile: (name: string, contents: Uint8Array | string) => {
        if (name.endsWith("grad.wasm") && typeof contents !== "string") wasm = contents;
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
    throw new Error(
      `Cannot build ${OUTPUT} as asc failed: ${result.error?.message ?? "no output"} ${
        errors.join("")
      }`,
    );
  }
  return wasm;
}

if (import.meta.main) {
  const bytes = await buildGradWasm();
  await Deno.writeFile(new URL(OUTPUT, ROOT), bytes);
  console.log(`wrote ${OUTPUT}: ${bytes.length} bytes`);
}
