/**
 * CPU priority of the calling thread. Inference and decoding workers lower theirs (a higher nice
 * value) so that the thread serving HTTP wins the cores whenever both want them: under overload
 * the workers keep every core busy, and an HTTP thread at equal priority then waits for its time
 * slice before it can read a request, refuse it, or write an answer that is already computed.
 *
 * On Linux `setpriority(PRIO_PROCESS, 0, n)` (what `node:os` `setPriority(0, n)` calls) changes the
 * calling thread only, not the whole process. Raising one's own nice value needs no privilege.
 */
import { getPriority, setPriority } from "node:os";

/** Default nice value of the inference and preprocessing workers (0 = the HTTP thread's). */
export const DEFAULT_WORKER_NICE = 10;

/**
 * Sets the calling thread's nice value (0..19) and returns the value now in effect, or undefined
 * where the platform or the permissions do not allow it (the thread then runs as it was).
 */
export function setThisThreadNice(nice: number): number | undefined {
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) {
    throw new RangeError(
      `Cannot set a worker's nice value to ${nice} as it must be an integer in 0..19`,
    );
  }
  try {
    setPriority(0, nice);
    return getPriority(0);
  } catch {
    return undefined;
  }
}

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
