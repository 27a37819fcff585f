import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  acquireDeploymentLock,
  describeHolder,
  tryDeploymentLock,
  type DeploymentLock,
} from '../deployment/deployment-lock.js';
import { formatDuration, parseDuration } from '../deployment/duration.js';
import { EnvironmentError, isUserError } from '../errors.js';
import { expectLateLock, setHeldLock, takeLateLockExpectation } from './held-lock.js';
import { printNote, printVerbose, printWarning } from './output.js';

/**
 * Which commands change the deployment, and so hold its lock (deployment/deployment-lock.ts) from before
 * the recovery of an interrupted run until the command ends: the one list, keyed by command path, with
 * the options under which they only read. Every other command is read-only and never waits for it.
 * renew-cert --every holds it for each run rather than for its whole life (withDeploymentLock).
 * 'late': a first init (the directory does not exist yet) takes it only once everything is confirmed, just
 * before its first API request or write (lockLate): taken earlier, the lock itself would create the
 * directory while the wizard is still asking, and nothing may be written before the one confirmation.
 */
const LOCKING: Readonly<Record<string, (opts: Record<string, unknown>) => boolean | 'late'>> = {
  init: (o) => (o.dryRun === true ? false : typeof o.dir === 'string' && !existsSync(o.dir) ? 'late' : true),
  'rotate-token': () => true,
  'renew-cert': (o) => o.every === undefined,
  'schedule-renewal': () => true,
  'ca rotate': (o) => o.dryRun !== true,
  'routes add': () => true,
  'routes remove': () => true,
  'config set': () => true,
  'config unset': () => true,
  images: (o) => o.proxy !== undefined || o.cloudflared !== undefined,
  teardown: () => true,
};

export const LOCK_TIMEOUT_ENV = 'MCP_TUNNEL_LOCK_TIMEOUT';

/** "routes add", "init": how LOCKING and the holder file name a command. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Gives every command that takes the lock its --lock-timeout flag (and env twin), in one place. */
export function addLockTimeoutOptions(program: Command): void {
  const walk = (c: Command): void => {
    if (LOCKING[commandPath(c)] && !c.options.some((o) => o.long === '--lock-timeout')) {
      c.addOption(
        new Option('--lock-timeout <duration>', 'how long to wait while another mcp-tunnel command changes this deployment (0: fail at once)')
          .env(LOCK_TIMEOUT_ENV)
          .default(formatDuration(DEFAULT_LOCK_TIMEOUT_MS)),
      );
    }
    for (const sub of c.commands) walk(sub);
  };
  walk(program);
}

function lockTimeoutMs(opts: Record<string, unknown>): number {
  const raw = typeof opts.lockTimeout === 'string' ? opts.lockTimeout : formatDuration(DEFAULT_LOCK_TIMEOUT_MS);
  return parseDuration(raw, '--lock-timeout');
}

async function acquire(dir: string, command: string, timeoutMs: number): Promise<DeploymentLock> {
  return acquireDeploymentLock(dir, {
    command,
    timeoutMs,
    onWait: (holder) => printNote(`waiting for another mcp-tunnel command on this deployment (up to ${formatDuration(timeoutMs)}): ${describeHolder(holder)}...`),
    onCompromised: (err) => printVerbose(`the deployment lock was lost while held: ${err.message}`),
  });
}

/**
 * The preAction hook of every command: a command that changes the deployment takes its lock, then
 * finishes (or rolls back) what an interrupted earlier run left (cli/recovery.ts) under it. A read-only
 * command does that tidying only when the lock is free at once: a held lock means the journals it would
 * find are a live command's, not an interrupted one's.
 */
export async function lockBeforeCommand(action: Command): Promise<void> {
  const opts = action.opts<Record<string, unknown>>();
  if (typeof opts.dir !== 'string') return;
  const { recoverBeforeCommand } = await import('./recovery.js');
  const name = commandPath(action);
  const policy = LOCKING[name];
  if (policy) {
    const timeoutMs = lockTimeoutMs(opts);
    const when = policy(opts);
    // Nothing exists yet, so nothing can need recovering; the command calls lockLate itself.
    if (when === 'late') {
      expectLateLock(true);
      return;
    }
    if (when) {
      let held: DeploymentLock;
      try {
        held = await acquire(opts.dir, name, timeoutMs);
      } catch (err) {
        // A --dir that cannot hold a lock (a path through a regular file, no permission, a read-only disk)
        // cannot be written either: the command meets the cause itself, in its own words and exit code.
        if (!isUserError(err) || err.code === 'DEPLOYMENT_LOCKED') throw err;
        printVerbose(`no deployment lock: ${err.message}`);
        await recoverBeforeCommand(action);
        return;
      }
      setHeldLock(() => held.release().catch((err: unknown) => printWarning(`could not release the deployment lock: ${err instanceof Error ? err.message : String(err)}`)));
      await recoverBeforeCommand(action);
      return;
    }
  }
  let probe: DeploymentLock | 'held' | 'absent';
  try {
    probe = await tryDeploymentLock(opts.dir, name);
  } catch (err) {
    // Cannot even look (permissions): the recovery meets the same cause and says so, as it did before.
    if (!isUserError(err)) throw err;
    probe = 'absent';
  }
  if (probe === 'held') {
    printVerbose('another mcp-tunnel command is changing this deployment: reading it as it is');
    return;
  }
  try {
    await recoverBeforeCommand(action);
  } finally {
    if (probe !== 'absent') await probe.release();
  }
}

/**
 * The lock of a first init, taken after its confirmation (see LOCKING). Another command may have made a
 * deployment in the directory while this one was asking: `unchanged` says whether what was planned on is
 * still what is there, checked under the lock, and the run stops with nothing written if it is not.
 */
export async function lockLate(dir: string, lockTimeout: string | undefined, unchanged: () => Promise<boolean>): Promise<void> {
  if (!takeLateLockExpectation()) return;
  let held: DeploymentLock;
  try {
    held = await acquire(dir, 'init', lockTimeoutMs({ lockTimeout }));
  } catch (err) {
    // As in lockBeforeCommand: a directory that cannot hold a lock cannot be written either, and the
    // write says why in its own words.
    if (!isUserError(err) || err.code === 'DEPLOYMENT_LOCKED') throw err;
    printVerbose(`no deployment lock: ${err.message}`);
    return;
  }
  setHeldLock(() => held.release().catch((err: unknown) => printWarning(`could not release the deployment lock: ${err instanceof Error ? err.message : String(err)}`)));
  if (!(await unchanged())) {
    throw new EnvironmentError(
      `another command created a deployment in ${dir} while init was waiting; nothing was written`,
      'run init again: it reuses what is there now',
      undefined,
      'DEPLOYMENT_CHANGED_MEANWHILE',
    );
  }
}

/** Whether `dir` has no deployment yet: what a first init planned on (lockLate's check). */
export async function stillEmpty(paths: { env: string; dataDir: string }): Promise<boolean> {
  const { readdir } = await import('node:fs/promises');
  if (existsSync(paths.env)) return false;
  const entries = await readdir(paths.dataDir).catch(() => [] as string[]);
  return entries.every((name) => name.startsWith('.mcp-tunnel'));
}

/** For a command that changes the deployment in runs (renew-cert --every): the lock around one run. */
export async function withDeploymentLock<T>(dir: string, command: string, lockTimeout: string | undefined, run: () => Promise<T>): Promise<T> {
  const lock = await acquire(dir, command, lockTimeoutMs({ lockTimeout }));
  try {
    return await run();
  } finally {
    await lock.release();
  }
}
