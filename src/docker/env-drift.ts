import fs from 'node:fs/promises';
import path from 'node:path';
import { parseEnvFile } from '../deployment/env-file.js';

/**
 * compose interpolates ${VAR} from the shell first and .env second, so a variable exported in the shell
 * (TUNNEL_TOKEN, as the official docs teach) silently wins over .env: after a token rotation cloudflared
 * would restart with the revoked token. Values are never reported, only names (they may be secrets).
 */
export interface EnvDrift {
  /** The variable set in both places with different values. */
  name: string;
  /** One line for the user. */
  message: string;
  /** The fix. */
  hint: string;
}

/** Variables .env sets that the process environment overrides with another value. Pure. */
export function envDrift(fileEnv: Readonly<Record<string, string>>, processEnv: NodeJS.ProcessEnv): EnvDrift[] {
  const drifts: EnvDrift[] = [];
  for (const [name, value] of Object.entries(fileEnv)) {
    const shell = processEnv[name];
    if (shell === undefined || shell === value) continue;
    drifts.push({
      name,
      message: `${name} in your shell differs from .env and wins over it (docker compose and mcp-tunnel read the shell first)`,
      hint: `unset ${name} (then .env applies), or put the new value in .env`,
    });
  }
  return drifts;
}

/** envDrift for a deployment directory's .env (nothing when it has none or cannot be read). */
export async function readEnvDrift(dir: string, processEnv: NodeJS.ProcessEnv = process.env): Promise<EnvDrift[]> {
  const text = await fs.readFile(path.join(path.resolve(dir), '.env'), 'utf8').catch(() => undefined);
  if (text === undefined) return [];
  let parsed: Record<string, string>;
  try {
    parsed = parseEnvFile(text);
  } catch {
    return [];
  }
  return envDrift(parsed, processEnv);
}
