import dotenv from 'dotenv';
import { ValidationError } from '../errors.js';

/**
 * The deployment's .env: the file `docker compose` reads for interpolation, and so the one place
 * TUNNEL_TOKEN survives a reboot. Updates keep the user's own lines and comments in place.
 */
export function parseEnvFile(text: string): Record<string, string> {
  return dotenv.parse(text);
}

const SAFE_VALUE = /^[A-Za-z0-9_./:+=@,-]*$/;

function renderValue(key: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new ValidationError(`the value for ${key} contains a line break`, 'values in .env must be single-line');
  if (SAFE_VALUE.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  throw new ValidationError(`the value for ${key} contains characters .env cannot hold safely`, 'remove quotes from the value');
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
