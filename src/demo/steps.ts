import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { UserError } from '../errors.js';
import { runProbe } from '../probe/index.js';
import type { DemoResult, DemoStep, RunDemoOptions } from './types.js';

/** The throwaway tunnel domain: under .localhost, which never resolves off this machine (RFC 6761). */
export const DEMO_DOMAIN = 'demo.tunnel.localhost';
export const DEMO_ROUTE = 'hello';

const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * What both demos (loopback and --docker) share: timed steps recorded as they finish, abort at step
 * boundaries, the probe with its `hello` call, and the closing cleanup step. Each demo owns only its setup
 * and its teardown.
 */
export class DemoRun {
  readonly result: DemoResult = { ok: false, steps: [], proxyLog: [], cleanedUp: false };
  private cleanupStarted = 0;

  constructor(private readonly opts: RunDemoOptions) {}

  record(step: DemoStep): void {
    this.result.steps.push(step);
    this.opts.onStep?.(step);
  }

  checkAbort(): void {
    const signal = this.opts.signal;
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
  }

  get aborted(): boolean {
    return Boolean(this.opts.signal?.aborted);
  }

  /** Runs one step; a failure is recorded (unless the run was aborted) and rethrown. */
  async step<T>(step: string, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> {
    this.checkAbort();
    const t0 = performance.now();
    try {
      const v = await fn();
      this.record({ step, ok: true, ms: round(performance.now() - t0), detail: detail(v) });
      return v;
    } catch (err) {
      if (!this.aborted) {
        const message = err instanceof Error ? err.message : String(err);
        this.record({ step, ok: false, ms: round(performance.now() - t0), detail: message });
        this.result.failure = { step, message, hint: err instanceof UserError ? err.hint : undefined };
      }
      throw err;
    }
  }

  /** The probe through the demo's proxy, then `hello`. Returns false (failure recorded) when a step failed. */
  async probe(proxyUrl: string, caCertFile: string): Promise<boolean> {
    this.checkAbort();
    const probe = await runProbe({
      route: DEMO_ROUTE,
      proxyUrl,
      domain: DEMO_DOMAIN,
      caPem: fs.readFileSync(caCertFile, 'utf8'),
      caSource: 'the demo CA',
      timeoutMs: this.opts.timeoutMs,
      signal: this.opts.signal,
      callTool: { name: 'hello', args: { name: this.opts.name ?? 'world' } },
      onStep: (s) => this.record({ ...s }),
    });
    this.result.probe = probe;
    if (!probe.ok) {
      const f = probe.failure;
      this.result.failure = f ? { step: f.step, message: f.message, hint: f.hint, layer: f.layer } : { step: 'probe', message: 'the probe failed' };
      return false;
    }
    this.result.greeting = probe.toolCall?.text;
    this.result.ok = true;
    return true;
  }

  /** A failure already recorded is the answer; anything else (or an abort) propagates. */
  settle(err: unknown): DemoResult {
    if (this.aborted || !this.result.failure) throw err;
    return this.result;
  }

  startCleanup(): void {
    this.cleanupStarted = performance.now();
  }

  /** Settles cleanedUp and records the cleanup step (when there was anything to clean); a leftover fails the run. */
  finishCleanup(problems: string[], leftover: string | undefined, done: string, hint: string, recordStep = true): void {
    this.result.cleanedUp = problems.length === 0 && leftover === undefined;
    if (!this.result.cleanedUp) {
      this.result.ok = false;
      this.result.failure ??= { step: 'cleanup', message: `the demo could not clean up: ${problems.join('; ') || `${leftover} is still there`}`, hint };
    }
    if (recordStep && !this.aborted) {
      this.record({ step: 'cleanup', ok: this.result.cleanedUp, ms: round(performance.now() - this.cleanupStarted), detail: this.result.cleanedUp ? done : `incomplete: ${problems.join('; ')}` });
    }
  }
}
