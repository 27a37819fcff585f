import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { asEnvironmentError } from './fs-errors.js';

/**
 * Every file the tool writes goes through here: a temp file in the same directory (created O_EXCL,
 * 0600 whatever the umask), written, fsynced, given its final owner and mode, renamed over the target,
 * and the directory fsynced. An interrupted run leaves the old file or the new one, never half of one,
 * and a secret is never readable by others, not even for an instant.
 *
 * Temp files carry ONE pattern, `.<name>.<writer>-<pid>-<random>.mcp-tunnel.tmp`, so a later run can tell
 * its own leftovers from anything else and remove them (sweepStaleTemps), but only once their writer is
 * gone: `<writer>` names the host and PID namespace (the cert-renewer container writes into the same
 * data/ with PIDs of its own), so a PID is only judged by a process that shares its namespace; any other
 * leftover is removed once it is older than STALE_AFTER_MS (a write takes milliseconds).
 */
export interface WriteOptions {
  mode: number;
  /**
   * chown the file (root only). Without it, a file written by root takes the owner of its directory:
   * root editing a user's deployment must not leave files the user cannot read or replace.
   */
  owner?: { uid: number; gid: number };
}

export const TEMP_SUFFIX = '.mcp-tunnel.tmp';
export const STALE_AFTER_MS = 10 * 60_000;
const TEMP_NAME = /^\.(.+)\.([0-9a-f]{8})-(\d+)-([0-9a-f]{8})\.mcp-tunnel\.tmp$/;

/** This process's host + PID namespace, as 8 hex digits. */
export const WRITER_TAG = ((): string => {
  let ns = '';
  try {
    ns = readlinkSync('/proc/self/ns/pid');
  } catch {
    // no /proc (macOS): the host name alone tells this machine from others sharing the directory
  }
  return createHash('sha256').update(`${os.hostname()}|${ns}`).digest('hex').slice(0, 8);
})();

/** `<writer>-<pid>-<random>`: unique per call, and says who wrote it. */
export function writerStamp(): string {
  return `${WRITER_TAG}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${writerStamp()}${TEMP_SUFFIX}`);
}

/** The target a temp file was staged for, and its writer; undefined for any name not of our pattern. */
export function parseTempName(name: string): { target: string; writer: string; pid: number } | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? { target: m[1]!, writer: m[2]!, pid: Number(m[3]) } : undefined;
}

/** Whether a leftover's writer may still be at work: alive in our namespace, or too recent to judge. */
export function writerMayBeAlive(writer: string, pid: number, mtimeMs: number, now = Date.now()): boolean {
  if (now - mtimeMs > STALE_AFTER_MS) return false;
  if (writer !== WRITER_TAG) return true;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Creates `dir` (and its missing parents) with `mode`; when root, each new directory takes the owner
 * of the one it is created in. The mode of an existing directory is set too (callers rely on it).
 */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  const target = path.resolve(dir);
  try {
    const missing: string[] = [];
    for (let d = target; ; d = path.dirname(d)) {
      const st = await fs.stat(d).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (st) break;
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
    for (const d of missing) {
      await fs.mkdir(d, { mode }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      if (isRoot()) {
        const parent = await fs.stat(path.dirname(d));
        await fs.chown(d, parent.uid, parent.gid);
      }
    }
    await fs.chmod(target, mode);
  } catch (err) {
    throw asEnvironmentError(err, { action: 'create the directory', file: target });
  }
}

/**
 * Writes `data` to a new temp file beside `target` (complete, fsynced, final owner and mode) and returns
 * its path. The caller renames it into place (writeFileSafely) or hands it to a transaction.
 */
export async function stageFile(target: string, data: string | Buffer, options: WriteOptions): Promise<string> {
  const tmp = tempPathFor(target);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx', 0o600);
    await handle.writeFile(data);
    await handle.sync();
    const owner = options.owner ?? (isRoot() ? await directoryOwner(path.dirname(target)) : undefined);
    if (owner) await handle.chown(owner.uid, owner.gid);
    await handle.chmod(options.mode);
    await handle.close();
    handle = undefined;
    return tmp;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw asEnvironmentError(err, { action: 'write', file: target });
  }
}

async function directoryOwner(dir: string): Promise<{ uid: number; gid: number }> {
  const st = await fs.stat(dir);
  return { uid: st.uid, gid: st.gid };
}

/** One file, atomically (see the module comment). Missing parent directories are created 0755. */
export async function writeFileSafely(file: string, data: string | Buffer, options: WriteOptions): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  await ensureParent(dir);
  const tmp = await stageFile(file, data, options);
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw asEnvironmentError(err, { action: 'replace', file });
  }
  await fsyncDir(dir);
}

async function ensureParent(dir: string): Promise<void> {
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) await ensureDir(dir, 0o755);
}

/** Makes renames in `dir` durable. Best effort: the renewer cannot open a directory it may only traverse. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // the renames are done; only their durability across a power cut is left to the file system
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Removes our own temp files in `dirs` whose writer is gone (writerMayBeAlive), and nothing else: only
 * regular files whose name has the pattern above. A directory that does not exist or cannot be listed
 * is skipped. Returns the paths removed.
 */
export async function sweepStaleTemps(dirs: string[], now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const parsed = parseTempName(name);
      if (!parsed) continue;
      const file = path.join(dir, name);
      const st = await fs.lstat(file).catch(() => undefined);
      if (!st?.isFile() || writerMayBeAlive(parsed.writer, parsed.pid, st.mtimeMs, now)) continue;
      try {
        await fs.unlink(file);
        removed.push(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw asEnvironmentError(err, { action: 'remove the leftover temporary file', file });
      }
    }
  }
  return removed;
}

export async function readTextIfExists(file: string): Promise<string | undefined> {
  const buf = await readBufferIfExists(file);
  return buf?.toString('utf8');
}

export async function readBufferIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    const permission = code === 'EACCES' || code === 'EPERM';
    throw asEnvironmentError(err, { action: 'read', file, hint: permission ? 'check the file permissions (run as the user who ran init)' : undefined });
  }
}
