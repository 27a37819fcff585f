import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the compiled CLI as a user would (npm test builds dist/ first), without a TTY and with CI set,
 * so it must never prompt. The environment is scrubbed of our own variables so the host cannot leak in.
 */
export async function runCli(args: string[], options: { env?: Record<string, string>; input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, CI: 'true', NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key.startsWith('MCP_TUNNEL_') || key === 'TUNNEL_TOKEN') delete env[key];
  const result = await execa(process.execPath, [CLI, ...args], {
    env: { ...env, ...options.env },
    extendEnv: false,
    input: options.input ?? '',
    cwd: options.cwd ?? REPO_ROOT,
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export interface TreeEntry {
  sha256: string;
  mode: number;
}

/** Every file under dir with its content hash and mode: two equal snapshots mean nothing was touched. */
export function snapshotTree(dir: string): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {};
  if (!fs.existsSync(dir)) return out;
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else {
        const stat = fs.statSync(p);
        out[path.relative(dir, p)] = { sha256: createHash('sha256').update(fs.readFileSync(p)).digest('hex'), mode: stat.mode & 0o777 };
      }
    }
  };
  walk(dir);
  return out;
}

/** A well-formed (but fake) tunnel token: base64 of {"a","t","s"}, as the Console hands out. */
export function fakeTunnelToken(seed = 'x'): string {
  return Buffer.from(JSON.stringify({ a: `account-${seed}`, t: `tunnel-${seed}`, s: Buffer.from(`secret-${seed}`).toString('base64') })).toString('base64');
}
