import nodeFs from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EnvironmentError } from '../errors.js';
import { formatDuration } from './duration.js';
import { WRITER_TAG, ensureDir, readTextIfExists, writerMayBeAlive } from './atomic-file.js';
import { parseEnvFile } from './env-file.js';
import { asEnvironmentError } from './fs-errors.js';
import { deploymentPaths } from './layout.js';
import { containerIdentity, currentInvoker, proxyContainerUser } from './ownership.js';

/**
 * One lock per deployment directory, so two mcp-tunnel commands never change the same deployment at once
 * (a cron renew-cert against a manual one, two `ca rotate`, the cert-renewer container against `init`).
 *
 * Built on proper-lockfile: the lock is a directory made with mkdir (atomic on every local filesystem and
 * on a bind-mounted volume), so it excludes processes on the host and in containers alike. A pid check
 * alone would not: the cert-renewer's pids live in another namespace. A crashed holder is detected by
 * the directory's mtime, which the holder refreshes every LOCK_UPDATE_MS; a lock not refreshed for
 * LOCK_STALE_MS is taken over. The clock compared is the one kernel's (host and containers share it). A
 * holder of our own PID namespace whose pid is gone is taken over at once (heldByTheDead).
 *
 * It lives in data/ because that is the one directory the cert-renewer container mounts. Its name starts
 * with a dot and says whose it is, so neither a credential scan nor Anthropic's setup component (which
 * knows only its own file names in data/) takes it for anything.
 */
export const LOCK_DIR_NAME = '.mcp-tunnel.lock';
/** Inside the lock directory: who holds it (command, pid, hostname, start time; never a secret). */
export const HOLDER_FILE = 'holder.json';
/**
 * A holder's event loop would have to stall for ~8s before its lock is taken from it; a holder of another
 * PID namespace (the renewer container) killed with SIGKILL delays the next command by at most this long.
 */
export const LOCK_STALE_MS = 10_000;
export const LOCK_UPDATE_MS = 2_000;
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/** A wait shorter than this is not worth a line on stderr. */
export const WAIT_NOTICE_AFTER_MS = 1_000;
const POLL_MS = 200;

export interface LockHolder {
  command: string;
  pid: number;
  hostname: string;
  startedAt: string;
  /** The holder's host + PID namespace (atomic-file.ts WRITER_TAG): its pid means something only there. */
  writer?: string;
}

export interface DeploymentLock {
  readonly path: string;
  /** Set when the lock was taken away (stale take-over after a long stall, or data/ removed by teardown). */
  readonly compromised: boolean;
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** What the holder file names, e.g. "routes add". */
  command: string;
  timeoutMs: number;
  /** Called once when the wait passes WAIT_NOTICE_AFTER_MS, with the holder if known. */
  onWait?: (holder: LockHolder | undefined) => void;
  /** Called if the lock is taken away while held. */
  onCompromised?: (err: Error) => void;
  now?: () => number;
}

export function lockDirFor(dir: string): string {
  return path.join(deploymentPaths(dir).dataDir, LOCK_DIR_NAME);
}

/**
 * The filesystem proper-lockfile works through. It removes its lock with rmdir (on release, on exit and
 * when it takes over a stale one): the holder file inside must go first, or rmdir fails with ENOTEMPTY and
 * a crashed holder blocks for ever. And the holder file is written right after mkdir, before
 * proper-lockfile records the directory's mtime: written later, it would change that mtime and the holder
 * would take its own lock for someone else's (ECOMPROMISED) at the first refresh.
 */
function lockFs(holder: () => LockHolder): object {
  return {
    ...nodeFs,
    mkdir: (dir: string, callback: (err: NodeJS.ErrnoException | null) => void): void => {
      nodeFs.mkdir(dir, (err) => {
        if (err) return callback(err);
        // Best effort: without it the lock still excludes, a waiter just cannot say who holds it.
        nodeFs.writeFile(path.join(dir, HOLDER_FILE), `${JSON.stringify(holder())}\n`, { mode: 0o644 }, () => callback(null));
      });
    },
    rmdir: (dir: string, callback: (err: NodeJS.ErrnoException | null) => void): void => {
      nodeFs.unlink(path.join(dir, HOLDER_FILE), () => nodeFs.rmdir(dir, callback));
    },
    rmdirSync: (dir: string): void => {
      try {
        nodeFs.unlinkSync(path.join(dir, HOLDER_FILE));
      } catch {
        // absent: nothing to clear before rmdir
      }
      nodeFs.rmdirSync(dir);
    },
  };
}

/** The holder file's content, or undefined when it is absent, half-written or not ours. */
export function parseHolder(text: string | undefined): LockHolder | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.command === 'string' && typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.startedAt === 'string') {
      return { command: v.command, pid: v.pid, hostname: v.hostname, startedAt: v.startedAt, ...(typeof v.writer === 'string' ? { writer: v.writer } : {}) };
    }
  } catch {
    // a holder between mkdir and its write, or a damaged file: unknown holder
  }
  return undefined;
}

export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'another mcp-tunnel command';
  return `mcp-tunnel ${holder.command} (pid ${holder.pid} on ${holder.hostname}, since ${holder.startedAt})`;
}

export function lockedError(dir: string, timeoutMs: number, holder: LockHolder | undefined): EnvironmentError {
  const waited = timeoutMs === 0 ? '' : ` (waited ${formatDuration(timeoutMs)})`;
  return new EnvironmentError(
    `${dir} is being changed by ${describeHolder(holder)}${waited}`,
    `retry when it is done, or wait longer with --lock-timeout (e.g. 5m); a crashed holder's lock frees itself within ${formatDuration(LOCK_STALE_MS)} (data/${LOCK_DIR_NAME})`,
    undefined,
    'DEPLOYMENT_LOCKED',
  );
}

export async function readHolder(lockDir: string): Promise<LockHolder | undefined> {
  return parseHolder(await fs.readFile(path.join(lockDir, HOLDER_FILE), 'utf8').catch(() => undefined));
}

/**
 * Run as root, data/ is root's and sticky once the cert-renewer is scheduled (auto-renew.ts): the renewer,
 * running as the containers' user, could not remove a lock root left behind by a crash, and would wait
 * for root's next command. Handing the lock to that user (the owner of data/tls.*, ownership.ts) lets it
 * take a stale lock over. Best effort: the lock excludes either way.
 */
async function handToContainerUser(dir: string, lockDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const paths = deploymentPaths(dir);
  const [envText, composeText] = await Promise.all([readTextIfExists(paths.env).catch(() => undefined), readTextIfExists(paths.compose).catch(() => undefined)]);
  if (envText === undefined && composeText === undefined) return;
  const user = proxyContainerUser(parseEnvFile(envText ?? ''), composeText);
  if (user.uid === 0) return;
  for (const p of [path.join(lockDir, HOLDER_FILE), lockDir]) await fs.chown(p, user.uid, user.gid).catch(() => undefined);
}

/**
 * A holder in our own PID namespace that is gone (kill -9, a crash) need not be waited out: its lock is
 * made stale at once (mtime set back), and proper-lockfile's own take-over removes it on the next try.
 * A holder in another namespace (the cert-renewer container, another host) cannot be judged by its pid:
 * its lock goes stale by itself, LOCK_STALE_MS after its last refresh. Once per holder, so a lock that
 * is not ours to judge is never backdated twice. Two waiters that find the same dead holder at the same
 * moment share the narrow window proper-lockfile's own stale take-over has (stat, then rmdir).
 */
async function heldByTheDead(lockDir: string, tookOver: Set<number>): Promise<boolean> {
  const holder = await readHolder(lockDir);
  if (holder?.writer !== WRITER_TAG || tookOver.has(holder.pid) || writerMayBeAlive(holder.writer, holder.pid, Date.now())) return false;
  tookOver.add(holder.pid);
  const longAgo = new Date(Date.now() - 2 * LOCK_STALE_MS);
  await fs.utimes(lockDir, longAgo, longAgo).catch(() => undefined);
  return true;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates data/ (and the deployment directory) when missing, with the modes init gives them (ownership.ts),
 * so a directory made for the lock is the one init expects; returns those it created, deepest first.
 */
async function makeMissingDirs(dataDir: string): Promise<string[]> {
  const created: string[] = [];
  const root = path.dirname(dataDir);
  for (const [d, mode] of [[root, 0o755], [dataDir, containerIdentity(currentInvoker()).dataDirMode]] as const) {
    const missing: string[] = [];
    for (let m = d; !nodeFs.existsSync(m) && path.dirname(m) !== m; m = path.dirname(m)) missing.push(m);
    if (missing.length === 0) continue;
    // ensureDir creates the missing parents too (with the same mode, as init would).
    await ensureDir(d, mode).catch((err: unknown) => {
      throw asEnvironmentError(err, { action: 'create', file: d });
    });
    created.unshift(...missing);
  }
  return created;
}

/**
 * Takes the deployment's lock, waiting up to `timeoutMs` for another holder (0: fail at once). Creates
 * data/ (and the directory) when missing, so two first `init`s exclude each other too; whatever it created
 * and is still empty at release is removed again, so a failed command leaves nothing behind.
 */
export async function acquireDeploymentLock(dir: string, options: AcquireOptions): Promise<DeploymentLock> {
  const now = options.now ?? Date.now;
  const lockDir = lockDirFor(dir);
  const dataDir = path.dirname(lockDir);
  const start = now();
  const deadline = start + options.timeoutMs;
  const created: string[] = [];
  let noticed = false;
  let missing = 0;
  const tookOver = new Set<number>();
  let compromised = false;
  // Loaded here, not at the top: every command imports this module for its flag, few take the lock.
  const { default: lockfile } = await import('proper-lockfile');
  for (;;) {
    let release: (() => Promise<void>) | undefined;
    try {
      release = await lockfile.lock(dataDir, {
        lockfilePath: lockDir,
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        fs: lockFs(() => ({ command: options.command, pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString(), writer: WRITER_TAG })),
        onCompromised: (err: Error) => {
          compromised = true;
          options.onCompromised?.(err);
        },
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && ++missing <= 3) {
        // No data/ yet (a first init), or teardown removed it meanwhile.
        created.push(...(await makeMissingDirs(dataDir)));
        continue;
      }
      if (code !== 'ELOCKED') throw asEnvironmentError(err, { action: 'create the lock', file: lockDir });
      if (await heldByTheDead(lockDir, tookOver)) continue;
      const t = now();
      if (t >= deadline) throw lockedError(deploymentPaths(dir).dir, options.timeoutMs, await readHolder(lockDir));
      if (!noticed && t - start >= WAIT_NOTICE_AFTER_MS) {
        noticed = true;
        options.onWait?.(await readHolder(lockDir));
      }
      await sleep(Math.min(POLL_MS, Math.max(1, deadline - t)));
      continue;
    }
    await handToContainerUser(dir, lockDir);
    let released = false;
    return {
      path: lockDir,
      get compromised() {
        return compromised;
      },
      async release(): Promise<void> {
        if (released) return;
        released = true;
        await release().catch((err: NodeJS.ErrnoException) => {
          // ERELEASED/ENOTACQUIRED: taken away already (compromised); ENOENT: teardown removed data/.
          if (!['ERELEASED', 'ENOTACQUIRED', 'ENOENT'].includes(err.code ?? '')) throw asEnvironmentError(err, { action: 'release the lock', file: lockDir });
        });
        for (const d of created) await fs.rmdir(d).catch(() => undefined);
      },
    };
  }
}

/**
 * For a command that does not change the deployment but may tidy it (recovery of an interrupted write):
 * the lock if it is free at once; 'held' when a live command holds it (its journals are live); 'absent'
 * when there is no data/ to lock (nothing is created for a read).
 */
export async function tryDeploymentLock(dir: string, command: string): Promise<DeploymentLock | 'held' | 'absent'> {
  if (!nodeFs.existsSync(path.dirname(lockDirFor(dir)))) return 'absent';
  try {
    return await acquireDeploymentLock(dir, { command, timeoutMs: 0 });
  } catch (err) {
    if (err instanceof EnvironmentError && err.code === 'DEPLOYMENT_LOCKED') return 'held';
    throw err;
  }
}
