/**
 * Compiles one AssemblyScript source to .wasm bytes in memory with the pinned compiler
 * (`assemblyscript/asc` in deno.json). Paths are relative to the repository root, so the output
 * does not depend on where the checkout lives; shared by kernels/wasm/build.ts and
 * kernels/grad/build.ts.
 */
import asc from "assemblyscript/asc";

export const REPO_ROOT = new URL("../", import.meta.url);

/** Compiles `source` with `flags` and returns the bytes of `output` (a repo-relative path). */
export async function compileAssemblyScript(
  source: string,
  output: string,
  flags: readonly string[],
): Promise<Uint8Array> {
  const root = decodeURIComponent(REPO_ROOT.pathname);
  const outName = output.slice(output.lastIndexOf("/") + 1);
  let wasm: Uint8Array | undefined;
  const errors: string[] = [];
  const result = await asc.main(
    [source, ...flags, "-o", outName],
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
        if (name.endsWith(outName) && typeof contents !== "string") wasm = contents;
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
      `Cannot build ${output} as asc failed: ${result.error?.message ?? "no output"} ${
        errors.join("")
      }`,
    );
  }
  return wasm;
}
