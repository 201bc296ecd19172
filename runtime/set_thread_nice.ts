/**
 * Sets the CPU priority of the calling thread: imported by the worker entry points only
 * (runtime/worker.ts, runtime/preprocess_worker.ts), never by the app, since `node:os` is not
 * available on every platform the app runs on (Cloudflare Workers without Node compatibility).
 *
 * Under overload the workers keep every core busy, and an HTTP thread at equal priority then
 * waits for its time slice before it can read a request, refuse it, or write an answer that is
 * already computed. On Linux `setpriority(PRIO_PROCESS, 0, n)` (what `node:os` `setPriority(0, n)`
 * calls) changes the calling thread only, not the whole process; raising one's own nice value
 * needs no privilege.
 */
import { getPriority, setPriority } from "node:os";

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
