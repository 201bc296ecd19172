/**
 * The nice value of the worker threads (`WORKER_NICE`): inference and decoding workers lower
 * their CPU priority so that the thread serving HTTP wins the cores whenever both want them (see
 * runtime/set_thread_nice.ts, which the worker entry points import; this module stays free of
 * `node:os` so that the app's import graph bundles for Cloudflare Workers without Node APIs).
 */

/** Default nice value of the inference and preprocessing workers (0 = the HTTP thread's). */
export const DEFAULT_WORKER_NICE = 10;

/** `WORKER_NICE` (0..19; default {@link DEFAULT_WORKER_NICE}), checked at startup. */
export function workerNiceFromEnv(
  env: { get(key: string): string | undefined } = Deno.env,
): number {
  const raw = env.get("WORKER_NICE");
  if (raw === undefined || raw === "") return DEFAULT_WORKER_NICE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 19) {
    throw new RangeError(
      `Cannot start as WORKER_NICE must be an integer in 0..19 (0: workers at the HTTP thread's priority): current value is ${raw}`,
    );
  }
  return n;
}
