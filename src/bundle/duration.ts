import { ValidationError } from '../errors.js';

/**
 * Go's time.ParseDuration grammar ("30s", "1h30m", "720h", "1.5h"), because the proxy config and the
 * documented flags (--renew-before 720h) use it. "d" (24h) is accepted as a friendly extra.
 * Strict on purpose: "30 s", "30", "-5m" are errors, not guesses.
 */
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const PART = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d)/y;

/** Parses a duration into milliseconds; throws ValidationError naming `what` on bad input. */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (s === '0') return 0;
  let total = 0;
  let pos = 0;
  PART.lastIndex = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (!m) break;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = PART.lastIndex;
  }
  if (s.length === 0 || pos !== s.length) {
    throw new ValidationError(
      `invalid ${what} "${text}": expected a duration such as 30s, 15m, 720h or 30d`,
      'use a number followed by a unit (ms, s, m, h, d); combine units as in 1h30m',
    );
  }
  return total;
}

/** Renders milliseconds the way Go prints durations (for messages and generated files). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (s) parts.push(`${s}s`);
  return parts.join('');
}
