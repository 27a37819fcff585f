import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/bundle/duration.js';

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
