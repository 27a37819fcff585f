import { EnvironmentError, isUserError } from '../errors.js';

/**
 * The one place an operating-system error (errno) becomes a message: the file system, or anything else
 * that fails with an errno, is the environment (exit 3), never a bug (exit 1). Call sites that know
 * better (a file the user named on the command line) map it themselves; everything else lands here,
 * at the latest in the CLI's last-resort handler.
 */
export interface SystemError extends Error {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/** An errno-style error from Node (code EACCES, ENOTDIR, ...), not one of Node's own ERR_* codes. */
export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && /^(E[A-Z0-9]+|EAI_[A-Z]+)$/.test((err as unknown as { code: string }).code);
}

interface Explanation {
  why: string;
  code: string;
  hint: string;
}

const OWNER_HINT = 'run as the user who owns the deployment directory (root if init ran as root), or pass --dir to a directory you can write';

const NETWORK_HINT = 'check that the service is running and reachable from this host (for Docker: is the daemon running? docker info)';

const EXPLAIN: Record<string, Explanation> = {
  EACCES: { why: 'permission denied', code: 'FS_PERMISSION_DENIED', hint: OWNER_HINT },
  EPERM: { why: 'operation not permitted', code: 'FS_PERMISSION_DENIED', hint: OWNER_HINT },
  ENOTDIR: { why: 'a part of the path is a file, not a directory', code: 'FS_NOT_A_DIRECTORY', hint: 'check the path: one of its parent components is a regular file' },
  EISDIR: { why: 'it is a directory', code: 'FS_IS_A_DIRECTORY', hint: 'name a file, not a directory' },
  EROFS: { why: 'the file system is read-only', code: 'FS_READ_ONLY', hint: 'use a writable directory, or remount the file system read-write' },
  ENOSPC: { why: 'no space left on the device', code: 'FS_NO_SPACE', hint: 'free some disk space and run the command again (an interrupted write is completed or rolled back by the next run)' },
  EDQUOT: { why: 'disk quota exceeded', code: 'FS_NO_SPACE', hint: 'free some space within your quota and run the command again' },
  ENOENT: { why: 'no such file or directory', code: 'FS_NOT_FOUND', hint: 'check the path (and --dir)' },
  ELOOP: { why: 'too many symbolic links', code: 'FS_PATH_INVALID', hint: 'check the path for a symbolic link loop' },
  ENAMETOOLONG: { why: 'the path is too long', code: 'FS_PATH_INVALID', hint: 'use a shorter path' },
  EMFILE: { why: 'too many open files', code: 'FS_LIMIT', hint: 'raise the open-files limit (ulimit -n) and run the command again' },
  ENFILE: { why: 'too many open files on the system', code: 'FS_LIMIT', hint: 'close other programs or raise the system limit, then run the command again' },
  EIO: { why: 'input/output error', code: 'FS_IO', hint: 'check the disk (dmesg) and run the command again' },
  ECONNREFUSED: { why: 'connection refused', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
  ECONNRESET: { why: 'connection reset', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
  ETIMEDOUT: { why: 'timed out', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
  EHOSTUNREACH: { why: 'host unreachable', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
  ENETUNREACH: { why: 'network unreachable', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
  ENOTFOUND: { why: 'name not found', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
  EAI_AGAIN: { why: 'name lookup failed', code: 'NETWORK_UNREACHABLE', hint: NETWORK_HINT },
};

const VERB: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create the directory',
  rename: 'replace',
  unlink: 'remove',
  rmdir: 'remove',
  chmod: 'set the mode of',
  fchmod: 'set the mode of',
  chown: 'change the owner of',
  fchown: 'change the owner of',
  lchown: 'change the owner of',
  stat: 'examine',
  lstat: 'examine',
  scandir: 'list',
  opendir: 'list',
  fsync: 'flush',
  copyfile: 'copy',
  connect: 'connect to',
  getaddrinfo: 'resolve',
};

/**
 * An EnvironmentError for an errno error; `action` and `file` say what we were doing when the caller
 * knows it better than the error does (write-then-rename reports the temp file, not the target).
 */
export function environmentErrorFor(err: SystemError, context: { action?: string; file?: string; hint?: string } = {}): EnvironmentError {
  const known = EXPLAIN[err.code];
  const action = context.action ?? (err.syscall ? VERB[err.syscall] ?? err.syscall : 'use');
  const address = (err as { address?: unknown; port?: unknown }).address;
  const file = context.file ?? err.path ?? (typeof address === 'string' ? `${address}${(err as { port?: unknown }).port ? `:${String((err as { port?: unknown }).port)}` : ''}` : undefined);
  const why = known?.why ?? err.code;
  const message = file ? `cannot ${action} ${file}: ${why}` : `${action} failed: ${why}`;
  return new EnvironmentError(message, context.hint ?? known?.hint ?? 'check the file system and run the command again', err, known?.code ?? 'FS_ERROR');
}

/** Rethrows anything as a UserError when it is an errno error; UserErrors and bugs pass through. */
export function asEnvironmentError(err: unknown, context: { action?: string; file?: string; hint?: string } = {}): unknown {
  if (isUserError(err) || !isSystemError(err)) return err;
  return environmentErrorFor(err, context);
}
