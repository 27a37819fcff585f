import { ExitCode, UserError } from '../errors.js';

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

/**
 * The largest duration any flag or config field accepts: 100 years. Larger values are typos, and past
 * about 275,000 years a Date built from them is "Invalid time value" deep inside a certificate.
 */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000;

export interface DurationBounds {
  /** Inclusive bounds in milliseconds; `max` defaults to MAX_DURATION_MS. */
  min?: number;
  max?: number;
}

/**
 * Parses a duration into milliseconds; throws a usage error (exit 2) naming `what` on bad input: code
 * BAD_DURATION for the syntax, DURATION_OUT_OF_RANGE for the bounds.
 */
export function parseDuration(text: string, what = 'duration', bounds: DurationBounds = {}): number {
  const total = parseDurationSyntax(text, what);
  const min = bounds.min ?? 0;
  const max = bounds.max ?? MAX_DURATION_MS;
  if (total < min || total > max) {
    throw new UserError(`${what} ${text.trim()} is out of range: it must be between ${formatDuration(min)} and ${formatDuration(max)}`, {
      hint: `pass a duration from ${formatDuration(min)} to ${formatDuration(max)}, e.g. ${formatDuration(Math.min(max, Math.max(min, 30_000)))}`,
      code: 'DURATION_OUT_OF_RANGE',
      exitCode: ExitCode.usage,
    });
  }
  return total;
}

function parseDurationSyntax(text: string, what: string): number {
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
    const bare = /^\d+(\.\d+)?$/.test(s);
    throw new UserError(`invalid ${what} "${text}": expected a duration such as 30s, 15m, 720h or 30d`, {
      hint: bare ? `add a unit: ${s}s for seconds, ${s}ms for milliseconds (ms, s, m, h, d)` : 'use a number followed by a unit (ms, s, m, h, d); combine units as in 1h30m',
      code: 'BAD_DURATION',
      exitCode: ExitCode.usage,
    });
  }
  return total;
}

/** Renders milliseconds the way Go prints durations (for messages and generated files). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000 && ms % 1 === 0) return `${ms}ms`;
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
