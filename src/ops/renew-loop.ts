/**
 * `renew-cert --every 24h`: the in-process schedule the cert-renewer service runs (the equivalent of the
 * Helm chart's daily CronJob). A run happens at once, then every `everyMs`; after a failed run the next
 * attempt comes sooner (`retryMs`). Sleeps are bounded slices against a wall-clock deadline, so a host
 * that was suspended catches up when it wakes instead of waiting a full period more, and an abort
 * (SIGTERM from `docker stop`) ends the loop within one slice at most (immediately, in practice).
 */

export const MIN_EVERY_MS = 60_000;
export const MAX_EVERY_MS = 7 * 86_400_000;
/** After a failure, try again after this long (or the period, if shorter). */
export const DEFAULT_RETRY_MS = 3_600_000;
/** The longest single sleep. */
export const SLEEP_SLICE_MS = 60_000;

export interface RenewalLoopOptions<T> {
  everyMs: number;
  retryMs?: number;
  signal: AbortSignal;
  /** One renewal; a rejection is reported through onError and retried after retryMs. */
  runOnce: () => Promise<T>;
  onResult: (result: T, next: Date) => void;
  onError: (err: unknown, next: Date) => void;
  /** Test seams. */
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Resolves after `ms` or as soon as `signal` aborts (never rejects). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Sleeps until the wall clock reaches `deadline` (in slices), or the signal aborts. */
export async function sleepUntil(deadline: number, signal: AbortSignal, now: () => number = Date.now, sleep = abortableSleep): Promise<void> {
  while (!signal.aborted) {
    const left = deadline - now();
    if (left <= 0) return;
    await sleep(Math.min(left, SLEEP_SLICE_MS), signal);
  }
}

/** Runs until the signal aborts; resolves then (the caller exits 0). */
export async function runRenewalLoop<T>(options: RenewalLoopOptions<T>): Promise<void> {
  const now = options.now ?? Date.now;
  const retryMs = Math.min(options.retryMs ?? DEFAULT_RETRY_MS, options.everyMs);
  while (!options.signal.aborted) {
    let wait = options.everyMs;
    try {
      const result = await options.runOnce();
      if (options.signal.aborted) return;
      options.onResult(result, new Date(now() + wait));
    } catch (err) {
      if (options.signal.aborted) return;
      wait = retryMs;
      options.onError(err, new Date(now() + wait));
    }
    await sleepUntil(now() + wait, options.signal, now, options.sleep);
  }
}
