import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/deployment/duration.js';

describe('parseDuration', () => {
  it('reads Go durations and the friendly day unit', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('720h')).toBe(720 * 3_600_000);
    expect(parseDuration('1h30m')).toBe(90 * 60_000);
    expect(parseDuration('1.5h')).toBe(90 * 60_000);
    expect(parseDuration('30d')).toBe(30 * 86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('0')).toBe(0);
  });
  it.each(['', '30', '30 s', '-5m', 'h', '5x', '1h 30m'])('refuses %j with a hint', (bad) => {
    expect(() => parseDuration(bad, '--renew-before')).toThrow(/invalid --renew-before/);
  });
  it('formats as Go would', () => {
    expect(formatDuration(2160 * 3_600_000)).toBe('2160h');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(0)).toBe('0s');
  });
});

describe('duration bounds', () => {
  it('refuses absurd durations with one line and exit 2, not "Invalid time value"', () => {
    let caught: unknown;
    try {
      parseDuration('99999999999h', '--cert-duration');
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'DURATION_OUT_OF_RANGE', exitCode: 2 });
    expect((caught as Error).message).toMatch(/^--cert-duration 99999999999h is out of range/);
  });
  it('applies per-flag bounds and names a bare number as missing its unit', () => {
    expect(() => parseDuration('50ms', '--timeout', { min: 100, max: 60_000 })).toThrow(/between 100ms and 1m/);
    expect(parseDuration('3s', '--timeout', { min: 100, max: 60_000 })).toBe(3000);
    expect(() => parseDuration('10', '--timeout')).toThrow(expect.objectContaining({ code: 'BAD_DURATION', hint: expect.stringContaining('10s') }));
  });
});
