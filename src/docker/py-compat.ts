/**
 * Small pieces of Python behaviour docker-compose 1.29 (a Python program) relies on, reproduced exactly so
 * that what we compute from a compose file is what docker-compose computes from it:
 * - pythonJsonDumps: `json.dumps(obj, sort_keys=True, separators=(',', ':'))` (ensure_ascii) -> the config hash;
 * - composeTimeparse: compose's vendored pytimeparse (Go-like durations) -> nanoseconds, stop timeouts;
 * - shlexSplit: `shlex.split` (POSIX mode) -> how docker-py turns a string `command` into argv.
 */

/** A JSON value as Python's json module would see it: tuples are arrays, None is null. */
export type PyJson = null | boolean | number | string | PyJson[] | { [key: string]: PyJson };

function pyString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (code >= 0x20 && code <= 0x7e) out += ch;
    else if (code > 0xffff) {
      // ensure_ascii writes astral characters as a surrogate pair
      const v = code - 0x10000;
      out += `\\u${(0xd800 | (v >> 10)).toString(16).padStart(4, '0')}\\u${(0xdc00 | (v & 0x3ff)).toString(16).padStart(4, '0')}`;
    } else out += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

function pyNumber(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
  return String(n);
}

/** Python's sort order for str keys: by code point (JS sorts by UTF-16 unit; equal for the BMP). */
function byCodePoint(a: string, b: string): number {
  const ca = [...a];
  const cb = [...b];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i]!.codePointAt(0)! - cb[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

/** `json.dumps(value, sort_keys=True, separators=(',', ':'))`. */
export function pythonJsonDumps(value: PyJson): string {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return pyNumber(value);
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(',')}]`;
  const keys = Object.keys(value).sort(byCodePoint);
  return `{${keys.map((k) => `${pyString(k)}:${pythonJsonDumps(value[k]!)}`).join(',')}}`;
}

// --- compose/timeparse.py --------------------------------------------------------------------------------

const TIMEFORMAT = /^\s*(?:(?<hours>[\d.]+)h)?(?:(?<mins>[\d.]+)m)?(?:(?<secs>[\d.]+)s)?(?:(?<milli>[\d.]+)ms)?(?:(?<micro>[\d.]+)(?:us|µs))?(?:(?<nano>[\d.]+)ns)?\s*$/i;
const MULTIPLIERS = {
  hours: 60 * 60,
  mins: 60,
  secs: 1,
  milli: 1.0 / 1000,
  micro: 1.0 / 1000.0 / 1000,
  nano: 1.0 / 1000.0 / 1000.0 / 1000.0,
} as const;

/** Seconds (int or float, as Python would have it), or undefined when compose could not parse it either. */
export function composeTimeparse(text: string): number | undefined {
  const m = TIMEFORMAT.exec(text);
  if (!m || m[0].trim() === '') return undefined;
  let sum = 0;
  for (const key of ['hours', 'mins', 'secs', 'milli', 'micro', 'nano'] as const) {
    const v = m.groups?.[key];
    if (v === undefined) continue;
    const n = /^\d+$/.test(v) ? Number.parseInt(v, 10) : Number.parseFloat(v);
    if (Number.isNaN(n)) return undefined; // Python's float('1.2.3') raises: compose fails the file
    sum += MULTIPLIERS[key] * n;
  }
  return sum;
}

/** compose's parse_nanoseconds_int: int(seconds / 1e-9) with Python's float arithmetic. */
export function composeNanoseconds(text: string): number | undefined {
  const s = composeTimeparse(text);
  return s === undefined ? undefined : Math.trunc(s / MULTIPLIERS.nano);
}

// --- shlex.split (posix=True, no comments) ---------------------------------------------------------------

/** Splits like Python's shlex.split: quotes group, backslash escapes, no variable or glob expansion. */
export function shlexSplit(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new SyntaxError('No closing quotation');
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new SyntaxError('No closing quotation');
        const c = text[i]!;
        if (c === '"') break;
        if (c === '\\' && i + 1 < text.length && (text[i + 1] === '"' || text[i + 1] === '\\')) {
          word += text[i + 1];
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) throw new SyntaxError('No escaped character');
      word += text[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
