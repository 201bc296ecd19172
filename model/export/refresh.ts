/**
 * Keeps model/artifacts in step with the trainer's runs: for each alpha, the best run under
 * model/train/runs/ is exported and evaluated, unless the manifest already ships exactly that
 * checkpoint. Best: one file serves every beta, so a run that recorded test accuracy at several
 * resolutions (multi-resolution training, `history[-1].testAccuracyByResolution`) beats one that
 * recorded only its base resolution (single-resolution runs measured 10-63% below beta 1); among
 * runs covering as many resolutions, the higher mean test accuracy over them wins.
 * Stand-ins (`"trained": false`) are replaced as soon as a trained run of their alpha exists.
 *
 * @example
 * deno run -A model/export/refresh.ts            # export + eval what changed
 * deno run -A model/export/refresh.ts --dry-run  # only say what would change
 * deno run -A model/export/refresh.ts --watch 600  # check every 10 minutes until stopped
 * deno run -A model/export/refresh.ts --max-qmax 0.5=7,0.75=3,1=3
 *
 * `--max-qmax alpha=Q,...`: for those widths only runs trained quantization-aware with weights in
 * -Q..Q or narrower (`train.ts --weight-qmax`) are candidates (float-trained runs count as 64),
 * so the Workers bundle's size budget (issue 7) decides the weight range, accuracy the run.
 */
import { parseExportArgs, runExport } from "./export.ts";
import { readManifest, sha256Hex } from "./manifest.ts";
import { loadWeightsMeta } from "../weights.ts";

export interface RunCandidate {
  dir: string;
  alpha: number;
  testAccuracy: number;
  /** Resolutions the trainer recorded test accuracy at (1 for single-resolution runs). */
  resolutionsCovered: number;
  /** Mean recorded test accuracy over those resolutions (= testAccuracy for single-resolution). */
  meanAccuracy: number;
  epochs: number;
  weightsSha256: string;
  /** Weight range the run trained for (`meta.weightQmax`; 64, the export's default, when none). */
  weightQmax: number;
}

/** Finds every `<runs>/<run>/model` checkpoint with its recorded accuracy. */
export async function listRuns(runsDir: string): Promise<RunCandidate[]> {
  const out: RunCandidate[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(runsDir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    const dir = `${runsDir}/${e.name}/model`;
    let meta: Record<string, unknown>;
    try {
      meta = await loadWeightsMeta(dir);
    } catch {
      continue; // no finished epoch yet
    }
    // A finished epoch's accuracy, else a mid-epoch snapshot's (`train.ts --snapshot`), else an
    // average's (`train.ts --epochs 0 --init A,B,..`).
    const snapshot = meta.snapshot as { testAccuracy?: unknown } | undefined;
    const average = meta.average as
      | { testAccuracy?: unknown; testAccuracyByResolution?: Record<string, number> }
      | undefined;
    const acc = Array.isArray(meta.testAccuracy) && meta.testAccuracy.length > 0
      ? meta.testAccuracy.at(-1)
      : snapshot?.testAccuracy ?? average?.testAccuracy;
    if (meta.arch !== "mobilenet_v1" || typeof meta.alpha !== "number" || typeof acc !== "number") {
      continue;
    }
    const last = Array.isArray(meta.history) ? meta.history.at(-1) : undefined;
    const byRes = Object.values(
      (last as { testAccuracyByResolution?: Record<string, number> } | undefined)
        ?.testAccuracyByResolution ?? average?.testAccuracyByResolution ?? {},
    ).filter((a) => typeof a === "number");
    out.push({
      dir,
      alpha: meta.alpha,
      testAccuracy: acc,
      resolutionsCovered: Math.max(1, byRes.length),
      meanAccuracy: byRes.length ? byRes.reduce((a, b) => a + b, 0) / byRes.length : acc,
      epochs: Number(meta.epochs ?? 0),
      weightQmax: typeof meta.weightQmax === "number" ? meta.weightQmax : 64,
      weightsSha256: await sha256Hex(await Deno.readFile(`${dir}/weights.bin`)),
    });
  }
  return out;
}

/**
 * The best run per alpha: most resolutions covered, then the highest mean accuracy over them.
 */
export function bestPerAlpha(
  runs: RunCandidate[],
  maxQmax: Map<number, number> = new Map(),
): Map<number, RunCandidate> {
  const best = new Map<number, RunCandidate>();
  for (const r of runs) {
    if (r.weightQmax > (maxQmax.get(r.alpha) ?? 64)) continue;
    const b = best.get(r.alpha);
    if (
      !b || r.resolutionsCovered > b.resolutionsCovered ||
      (r.resolutionsCovered === b.resolutionsCovered && r.meanAccuracy > b.meanAccuracy)
    ) best.set(r.alpha, r);
  }
  return best;
}

/** Parses `--max-qmax 0.5=7,1=3` into alpha -> largest allowed weight range. */
export function parseMaxQmax(v: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of v.split(",")) {
    const [a, q] = part.split("=").map(Number);
    if (!Number.isFinite(a) || !Number.isInteger(q) || q! < 1 || q! > 64) {
      throw new RangeError(
        `Cannot parse --max-qmax as each entry must be alpha=Q with Q an integer in 1..64: current entry is ${part}`,
      );
    }
    out.set(a!, q!);
  }
  return out;
}

async function refreshOnce(
  artifacts: string,
  runsDir: string,
  dryRun: boolean,
  maxQmax: Map<number, number>,
): Promise<string[]> {
  const manifest = await readManifest(`${artifacts}/manifest.json`);
  const changed: string[] = [];
  for (const [alpha, run] of bestPerAlpha(await listRuns(runsDir), maxQmax)) {
    const shipped = manifest.models.find((m) => m.alpha === alpha);
    if (
      shipped && shipped.trained && shipped.source.checkpoint === run.dir &&
      shipped.source.weightsSha256 === run.weightsSha256
    ) continue;
    console.log(
      `alpha ${alpha}: ${run.dir} (epoch ${run.epochs}, trainer's test accuracy ${
        (100 * run.testAccuracy).toFixed(2)
      }%, mean ${
        (100 * run.meanAccuracy).toFixed(2)
      }% over ${run.resolutionsCovered} resolutions) replaces ${
        shipped ? `${shipped.id} from ${shipped.source.checkpoint}` : "nothing"
      }`,
    );
    if (dryRun) continue;
    const argv = ["--checkpoint", run.dir, "--out", artifacts];
    const entry = await runExport(parseExportArgs(argv), `deno task export ${argv.join(" ")}`);
    changed.push(entry.id);
  }
  if (changed.length > 0) {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./eval.ts", import.meta.url).pathname,
        "--artifacts",
        artifacts,
        "--ids",
        changed.join(","),
      ],
    });
    const { code } = await cmd.spawn().status;
    if (code !== 0) throw new RangeError(`Cannot finish the refresh as eval exited with ${code}`);
  }
  return changed;
}

if (import.meta.main) {
  const argv = Deno.args.filter((a) => a !== "--");
  const dryRun = argv.includes("--dry-run");
  const w = argv.indexOf("--watch");
  const every = w >= 0 ? Number(argv[w + 1] ?? 600) : 0;
  const q = argv.indexOf("--max-qmax");
  const maxQmax = q >= 0 ? parseMaxQmax(argv[q + 1] ?? "") : new Map<number, number>();
  for (;;) {
    const changed = await refreshOnce("model/artifacts", "model/train/runs", dryRun, maxQmax);
    console.log(changed.length ? `refreshed ${changed.join(", ")}` : "artifacts are up to date");
    if (!every) break;
    await new Promise((r) => setTimeout(r, every * 1000));
  }
}
