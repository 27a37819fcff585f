import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HOLDER_FILE,
  LOCK_DIR_NAME,
  LOCK_STALE_MS,
  LOCK_UPDATE_MS,
  acquireDeploymentLock,
  describeHolder,
  lockedError,
  parseHolder,
  tryDeploymentLock,
  type LockHolder,
} from '../../src/deployment/deployment-lock.js';
import { WRITER_TAG } from '../../src/deployment/atomic-file.js';
import { ExitCode } from '../../src/errors.js';

/**
 * The pure parts of the deployment lock, and the real lock (proper-lockfile on a temp directory) within
 * one process: what a second taker meets, what a stale lock becomes, what a release leaves behind. Two
 * real CLI processes meet in test/integration/deployment-lock.test.ts.
 */
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-lock-unit-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const newDeployment = (): string => {
  const dir = fs.mkdtempSync(path.join(work, 'dep-'));
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  return dir;
};
const HOLDER: LockHolder = { command: 'ca rotate', pid: 4242, hostname: 'host-a', startedAt: '2026-12-01T04:00:00.000Z' };

describe('holder file and error (pure)', () => {
  it('parses a holder file, and calls anything else an unknown holder', () => {
    expect(parseHolder(JSON.stringify(HOLDER))).toEqual(HOLDER);
    expect(parseHolder(undefined)).toBeUndefined();
    expect(parseHolder('{"command":"ca rot')).toBeUndefined();
    expect(parseHolder('{"command":"x","pid":"1","hostname":"h","startedAt":"t"}')).toBeUndefined();
  });

  it('names the holder, or says it is unknown', () => {
    expect(describeHolder(HOLDER)).toBe('mcp-tunnel ca rotate (pid 4242 on host-a, since 2026-12-01T04:00:00.000Z)');
    expect(describeHolder(undefined)).toBe('another mcp-tunnel command');
  });

  it('is one line, exit 3, DEPLOYMENT_LOCKED, with a hint naming --lock-timeout', () => {
    const err = lockedError('/srv/mcp', 30_000, HOLDER);
    expect(err.code).toBe('DEPLOYMENT_LOCKED');
    expect(err.exitCode).toBe(ExitCode.environment);
    expect(err.message).toBe('/srv/mcp is being changed by mcp-tunnel ca rotate (pid 4242 on host-a, since 2026-12-01T04:00:00.000Z) (waited 30s)');
    expect(err.message).not.toContain('\n');
    expect(err.hint).toContain('--lock-timeout');
    expect(lockedError('/srv/mcp', 0, undefined).message).toBe('/srv/mcp is being changed by another mcp-tunnel command');
  });

  it('refreshes well within the stale interval', () => {
    expect(LOCK_UPDATE_MS * 4).toBeLessThanOrEqual(LOCK_STALE_MS);
  });
});

describe('the lock on a real directory', () => {
  it('excludes a second taker, names the first, and leaves nothing behind once released', async () => {
    const dir = newDeployment();
    const lock = await acquireDeploymentLock(dir, { command: 'routes add', timeoutMs: 0 });
    const holder = parseHolder(fs.readFileSync(path.join(dir, 'data', LOCK_DIR_NAME, HOLDER_FILE), 'utf8'));
    expect(holder).toMatchObject({ command: 'routes add', pid: process.pid, hostname: os.hostname() });
    const second = await acquireDeploymentLock(dir, { command: 'config set', timeoutMs: 0 }).catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'DEPLOYMENT_LOCKED' });
    expect((second as Error).message).toContain(`mcp-tunnel routes add (pid ${process.pid}`);
    expect(await tryDeploymentLock(dir, 'status')).toBe('held');
    await lock.release();
    expect(fs.readdirSync(path.join(dir, 'data'))).toEqual([]);
    const again = await tryDeploymentLock(dir, 'status');
    expect(again).not.toBe('held');
    if (typeof again === 'object') await again.release();
  });

  it('waits a bounded time, says so once after a second, then fails', async () => {
    const dir = newDeployment();
    const lock = await acquireDeploymentLock(dir, { command: 'init', timeoutMs: 0 });
    const notices: (LockHolder | undefined)[] = [];
    const started = Date.now();
    const err = await acquireDeploymentLock(dir, { command: 'init', timeoutMs: 1_500, onWait: (h) => notices.push(h) }).catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect(err).toMatchObject({ code: 'DEPLOYMENT_LOCKED' });
    expect(waited).toBeGreaterThanOrEqual(1_500);
    expect(waited).toBeLessThan(4_000);
    expect(notices).toHaveLength(1);
    expect(notices[0]?.command).toBe('init');
    await lock.release();
  });

  it('gets the lock as soon as the holder releases it', async () => {
    const dir = newDeployment();
    const lock = await acquireDeploymentLock(dir, { command: 'renew-cert', timeoutMs: 0 });
    setTimeout(() => void lock.release(), 500);
    const started = Date.now();
    const next = await acquireDeploymentLock(dir, { command: 'renew-cert', timeoutMs: 10_000 });
    expect(Date.now() - started).toBeLessThan(2_000);
    await next.release();
  });

  it('takes over a lock whose holder stopped refreshing it (a crash), holder file and all', async () => {
    const dir = newDeployment();
    const lockDir = path.join(dir, 'data', LOCK_DIR_NAME);
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, HOLDER_FILE), JSON.stringify(HOLDER));
    const old = new Date(Date.now() - LOCK_STALE_MS - 5_000);
    fs.utimesSync(lockDir, old, old);
    const lock = await acquireDeploymentLock(dir, { command: 'routes add', timeoutMs: 0 });
    expect(parseHolder(fs.readFileSync(path.join(lockDir, HOLDER_FILE), 'utf8'))?.command).toBe('routes add');
    await lock.release();
    expect(fs.existsSync(lockDir)).toBe(false);
  });

  it('takes over at once from a holder of this PID namespace whose process is gone; waits for a live one', async () => {
    const dir = newDeployment();
    const lockDir = path.join(dir, 'data', LOCK_DIR_NAME);
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, HOLDER_FILE), JSON.stringify({ ...HOLDER, pid: gone, writer: WRITER_TAG }));
    const started = Date.now();
    const lock = await acquireDeploymentLock(dir, { command: 'init', timeoutMs: 0 });
    expect(Date.now() - started).toBeLessThan(1_000);
    await lock.release();

    // The same holder file naming a live process (this one, as another taker would see it): not taken.
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, HOLDER_FILE), JSON.stringify({ ...HOLDER, pid: process.pid, writer: WRITER_TAG }));
    await expect(acquireDeploymentLock(dir, { command: 'init', timeoutMs: 500 })).rejects.toMatchObject({ code: 'DEPLOYMENT_LOCKED' });
    fs.rmSync(lockDir, { recursive: true });
  });

  it('keeps a lock it holds past several refreshes (its own holder file does not count as someone else)', async () => {
    const dir = newDeployment();
    let compromised: Error | undefined;
    const lock = await acquireDeploymentLock(dir, { command: 'ca rotate', timeoutMs: 0, onCompromised: (e) => (compromised = e) });
    await new Promise((r) => setTimeout(r, LOCK_UPDATE_MS * 2 + 500));
    expect(compromised).toBeUndefined();
    expect(lock.compromised).toBe(false);
    await lock.release();
    expect(fs.existsSync(path.join(dir, 'data', LOCK_DIR_NAME))).toBe(false);
  }, 15_000);

  it('creates a missing data/ (a first init) and removes it again when it stayed empty; a read creates nothing', async () => {
    const dir = path.join(fs.mkdtempSync(path.join(work, 'fresh-')), 'deployment');
    expect(await tryDeploymentLock(dir, 'status')).toBe('absent');
    expect(fs.existsSync(dir)).toBe(false);
    const lock = await acquireDeploymentLock(dir, { command: 'init', timeoutMs: 0 });
    expect(fs.statSync(path.join(dir, 'data')).mode & 0o077).toBe(process.getuid?.() === 0 ? 0o011 : 0);
    await lock.release();
    expect(fs.existsSync(dir)).toBe(false);
  });
});
