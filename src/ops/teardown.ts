import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { deploymentPaths } from '../deployment/layout.js';
import { EnvironmentError, ExitCode, UserError, ValidationError } from '../errors.js';

/**
 * The end of a deployment (the docs' teardown: stop, archive, remove the stored credentials). This module
 * is the last step only: what holds a secret goes (data/: CA key, server key, tunnel token; .env and
 * .env.previous: the token), what holds none stays (compose.yaml, config/, and logs/, the evidence).
 */
export interface TeardownTarget {
  /** Relative to the deployment directory. */
  label: string;
  path: string;
  kind: 'dir' | 'file';
}

/**
 * Teardown deletes `.env` and `data/`: only in a directory init (or Anthropic's guide) made, which keeps its
 * compose file and proxy config after a teardown, so a re-run is still accepted.
 */
export function requireTeardownTarget(dir: string): void {
  const p = deploymentPaths(dir);
  if (existsSync(p.compose) || existsSync(p.proxyConfig)) return;
  throw new ValidationError(
    `${p.dir} is not a deployment (no compose file, no config/mcp-proxy.yaml): nothing was stopped or deleted`,
    'pass --dir to the directory mcp-tunnel init wrote (or set MCP_TUNNEL_DIR)',
    'DEPLOYMENT_NOT_FOUND',
  );
}

export async function secretsToRemove(dir: string): Promise<TeardownTarget[]> {
  const p = deploymentPaths(dir);
  const candidates: TeardownTarget[] = [
    { label: 'data/', path: p.dataDir, kind: 'dir' },
    { label: '.env', path: p.env, kind: 'file' },
    { label: '.env.previous', path: p.envPrevious, kind: 'file' },
  ];
  const present: TeardownTarget[] = [];
  for (const c of candidates) {
    const st = await fs.lstat(c.path).catch(() => undefined);
    if (st) present.push(c);
  }
  return present;
}

/** What the confirmation must be: the compose project name, which the operator sees in status and ps. */
export function checkTeardownConfirmation(expected: string, typed: string | undefined): void {
  if (typed !== undefined && typed.trim() === expected) return;
  throw new UserError(typed === undefined ? 'teardown deletes the credentials and needs a confirmation' : `"${typed.trim()}" is not this deployment's project (${expected}); nothing was removed`, {
    hint: `type the project name when asked, or pass --yes in a script`,
    code: 'TEARDOWN_NOT_CONFIRMED',
    exitCode: typed === undefined ? ExitCode.usage : ExitCode.aborted,
  });
}

export async function removeSecrets(targets: readonly TeardownTarget[]): Promise<string[]> {
  const removed: string[] = [];
  for (const t of targets) {
    try {
      await fs.rm(t.path, { recursive: t.kind === 'dir', force: true });
    } catch (err) {
      throw new EnvironmentError(`cannot remove ${t.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, `remove it by hand: rm -rf ${t.path}`, err, 'TEARDOWN_REMOVE_FAILED');
    }
    removed.push(t.label);
  }
  return removed;
}

