import dotenv from 'dotenv';
import { ValidationError } from '../errors.js';
import { readBufferIfExists } from './atomic-file.js';

/**
 * The deployment's .env: the file `docker compose` reads for interpolation, and so the one place
 * TUNNEL_TOKEN survives a reboot. Updates keep the user's own lines and comments in place.
 */
export function parseEnvFile(text: string): Record<string, string> {
  return dotenv.parse(text);
}

/**
 * .env as text, strictly: UTF-8, and no control characters but tab, CR and LF. Anything else is not a
 * file we may rewrite (decoding it leniently would turn its bytes into U+FFFD on the next write), so it
 * is refused with the line of the first offending byte.
 */
export function decodeEnvText(buf: Buffer, label = '.env'): string {
  const bad = firstNonTextByte(buf);
  if (bad === undefined) return buf.toString('utf8');
  let line = 1;
  for (let i = 0; i < bad; i++) if (buf[i] === 0x0a) line++;
  throw new ValidationError(
    `${label} is not UTF-8 text (line ${line}: byte 0x${buf[bad]!.toString(16).padStart(2, '0')}); nothing was changed`,
    `fix line ${line} of ${label} in an editor (or restore it from .env.previous); it must hold KEY=value lines only`,
    'ENV_NOT_TEXT',
  );
}

/** The deployment's .env, decoded strictly (decodeEnvText); undefined when it does not exist. */
export async function readEnvTextIfExists(file: string, label = '.env'): Promise<string | undefined> {
  const buf = await readBufferIfExists(file);
  return buf === undefined ? undefined : decodeEnvText(buf, label);
}

/** Offset of the first byte that is not part of well-formed UTF-8 text (or is a control character). */
function firstNonTextByte(buf: Buffer): number | undefined {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b < 0x80) {
      if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return i;
      if (b === 0x7f) return i;
      i++;
      continue;
    }
    // Well-formed sequences as in the Unicode standard, table 3-7 (no overlongs, no surrogates, <= U+10FFFF).
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      const [min, max] = k === 1 ? [lo, hi] : [0x80, 0xbf];
      if (c === undefined || c < min || c > max) return i;
    }
    i += need + 1;
  }
  return undefined;
}

const SAFE_VALUE = /^[A-Za-z0-9_./:+=@,-]*$/;

function renderValue(key: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new ValidationError(`the value for ${key} contains a line break`, 'values in .env must be single-line', 'ENV_VALUE_INVALID');
  if (SAFE_VALUE.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  throw new ValidationError(`the value for ${key} contains characters .env cannot hold safely`, 'remove quotes from the value', 'ENV_VALUE_INVALID');
}

export interface EnvEntry {
  key: string;
  value: string;
  /** Written above the line when the key is new. */
  comment?: string;
}

/**
 * Returns `existing` with each entry's value replaced where the key is already set (first occurrence)
 * and appended (with its comment) where it is not. Other lines are left exactly as they were.
 */
export function updateEnvFile(existing: string | undefined, entries: EnvEntry[]): string {
  const lines = existing === undefined || existing === '' ? [] : existing.replace(/\n$/, '').split('\n');
  const appended: string[] = [];
  for (const entry of entries) {
    const line = `${entry.key}=${renderValue(entry.key, entry.value)}`;
    const at = lines.findIndex((l) => new RegExp(`^\\s*(export\\s+)?${entry.key}\\s*=`).test(l));
    if (at >= 0) {
      lines[at] = line;
    } else {
      if (entry.comment) appended.push(...entry.comment.split('\n').map((c) => `# ${c}`));
      appended.push(line);
    }
  }
  const header = lines.length === 0 ? ['# Written by mcp-tunnel. Read by `docker compose` and `mcp-tunnel`. Keep it 0600: it holds the tunnel token.'] : [];
  return [...header, ...lines, ...appended].join('\n') + '\n';
}
