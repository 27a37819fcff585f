import { describe, expect, it } from 'vitest';
import { runRenewalLoop, sleepUntil, SLEEP_SLICE_MS } from '../../src/ops/renew-loop.js';

/** The scheduled renewal loop on a fake clock: cadence, retry after failure, bounded sleeps, clean stop. */
function fakeClock() {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleeps,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
  };
}

describe('runRenewalLoop', () => {
  it('runs at once, then every period, in bounded slices; stops when aborted', async () => {
    const clock = fakeClock();
    const controller = new AbortController();
    const runs: number[] = [];
    await runRenewalLoop({
      everyMs: 24 * 3_600_000,
      signal: controller.signal,
      now: clock.now,
      sleep: clock.sleep,
      runOnce: async () => {
        runs.push(clock.now());
        if (runs.length === 3) controller.abort();
        return 'not-needed';
      },
      onResult: () => undefined,
      onError: () => undefined,
    });
    expect(runs.length).toBe(3);
    expect(runs[1]! - runs[0]!).toBe(24 * 3_600_000);
    expect(runs[2]! - runs[1]!).toBe(24 * 3_600_000);
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(SLEEP_SLICE_MS);
  });

  it('retries sooner after a failure and reports it', async () => {
    const clock = fakeClock();
    const controller = new AbortController();
    const runs: number[] = [];
    const errors: string[] = [];
    await runRenewalLoop({
      everyMs: 24 * 3_600_000,
      retryMs: 3_600_000,
      signal: controller.signal,
      now: clock.now,
      sleep: clock.sleep,
      runOnce: async () => {
        runs.push(clock.now());
        if (runs.length === 1) throw new Error('disk full');
        controller.abort();
        return 'renewed';
      },
      onResult: () => undefined,
      onError: (err, next) => errors.push(`${(err as Error).message} ${next.getTime() - clock.now()}`),
    });
    expect(errors).toEqual(['disk full 3600000']);
    expect(runs[1]! - runs[0]!).toBe(3_600_000);
  });

  it('a wall-clock jump (suspend) ends the wait early; an abort ends it at once', async () => {
    let t = 0;
    const controller = new AbortController();
    let slices = 0;
    await sleepUntil(10 * 60_000, controller.signal, () => t, async (ms) => {
      slices++;
      t += slices === 1 ? 9 * 60_000 + ms : ms; // the host slept through most of it
    });
    expect(slices).toBeLessThanOrEqual(2);
    controller.abort();
    const started = Date.now();
    await sleepUntil(Date.now() + 3_600_000, controller.signal);
    expect(Date.now() - started).toBeLessThan(100);
  });
});
