import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, parseTempName, stageFile, sweepStaleTemps, writeFileSafely, writerMayBeAlive, writerStamp, type WriteOptions } from './atomic-file.js';
import { asEnvironmentError } from './fs-errors.js';
import { deploymentPaths } from './layout.js';

/**
 * Several files that only make sense together (the CA pair, the server pair and its rollback copy,
 * .env with data/tunnel-token) are replaced as one transaction, with a redo journal:
 *  1. every new content is staged beside its target (atomic-file.ts: complete, fsynced, final mode);
 *  2. the journal, naming each target, its staged file and the content's SHA-256, is written
 *     atomically: this is the commit point;
 *  3. the staged files are renamed over their targets in order (removals unlink), then the journal goes.
 * Killed before 2, nothing was replaced: the next run removes the staged files (rolled back). Killed
 * after, every new content is on disk: the next run finishes the renames (completed). Either way the
 * next run says which (recoverDeployment).
 *
 * The journal lives in the directory that holds every target (paths in it are relative to it and never
 * leave it), so the cert-renewer container, which mounts only data/, sees the journals of its own
 * transactions and no others.
 */
export type TransactionChange = { path: string; content: string | Buffer; options: WriteOptions } | { path: string; remove: true };

interface JournalEntry {
  target: string;
  staged?: string;
  sha256?: string;
  remove?: true;
}

interface Journal {
  version: 1;
  operation: string;
  entries: JournalEntry[];
}

const JOURNAL_NAME = /^\.mcp-tunnel-txn\.([0-9a-f]{8})-(\d+)-([0-9a-f]{8})\.json$/;
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

function inside(root: string, file: string): string {
  const rel = path.relative(root, path.resolve(file));
  if (rel === '' || rel.split(path.sep)[0] === '..' || path.isAbsolute(rel)) throw new Error(`${file} is outside the transaction directory ${root}`);
  return rel;
}

export interface TransactionHooks {
  /**
   * Called after each step ('staged' per file, 'committed', 'applied' per rename). Tests kill the process
   * here (SIGKILL) to prove that every interruption point is completed or rolled back by the next run.
   */
  onStep?: (step: 'staged' | 'committed' | 'applied', index: number) => void;
}

/** Replaces `changes` as one transaction (module comment); `operation` names it in recovery notes. */
export async function writeFilesTogether(root: string, operation: string, changes: TransactionChange[], hooks: TransactionHooks = {}): Promise<void> {
  const dir = path.resolve(root);
  const entries: JournalEntry[] = [];
  const staged: string[] = [];
  try {
    for (const change of changes) {
      const target = inside(dir, change.path);
      if ('remove' in change) {
        entries.push({ target, remove: true });
        continue;
      }
      const tmp = await stageFile(change.path, change.content, change.options);
      staged.push(tmp);
      entries.push({ target, staged: inside(dir, tmp), sha256: sha256(change.content) });
      hooks.onStep?.('staged', staged.length - 1);
    }
  } catch (err) {
    for (const tmp of staged) await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (entries.length === 0) return;
  if (entries.length === 1 && staged.length === 1) {
    // One file needs no journal: its rename is atomic on its own.
    await fs.rename(staged[0]!, path.join(dir, entries[0]!.target)).catch(async (err: unknown) => {
      await fs.unlink(staged[0]!).catch(() => undefined);
      throw asEnvironmentError(err, { action: 'replace', file: path.join(dir, entries[0]!.target) });
    });
    await fsyncDir(path.dirname(path.join(dir, entries[0]!.target)));
    return;
  }
  const journalFile = path.join(dir, `.mcp-tunnel-txn.${writerStamp()}.json`);
  const journal: Journal = { version: 1, operation, entries };
  try {
    await writeFileSafely(journalFile, `${JSON.stringify(journal)}\n`, { mode: 0o600 });
  } catch (err) {
    for (const tmp of staged) await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  // Committed: from here on a failure leaves the journal for the next run to finish.
  hooks.onStep?.('committed', 0);
  await applyJournal(dir, journal, (i) => hooks.onStep?.('applied', i));
  await fs.unlink(journalFile).catch((err: unknown) => {
    throw asEnvironmentError(err, { action: 'remove', file: journalFile });
  });
  await fsyncDir(dir);
}

/** Renames (or removes) every entry; returns the targets it could not bring to the journal's content. */
async function applyJournal(dir: string, journal: Journal, onApplied?: (index: number) => void): Promise<string[]> {
  const failed: string[] = [];
  const dirs = new Set<string>();
  for (const [index, entry] of journal.entries.entries()) {
    if (index > 0) onApplied?.(index - 1);
    const target = path.join(dir, entry.target);
    dirs.add(path.dirname(target));
    try {
      if (entry.remove) {
        await fs.unlink(target).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        continue;
      }
      const staged = path.join(dir, entry.staged!);
      const content = await fs.readFile(staged).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (content !== undefined && sha256(content) === entry.sha256) {
        // ENOENT: another run recovering the same journal renamed it first; the check below settles it.
        const renamed = await fs.rename(staged, target).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return false;
            throw err;
          },
        );
        if (renamed) continue;
      }
      // Already renamed by the interrupted run (or a concurrent recovery)?
      const current = await fs.readFile(target).catch(() => undefined);
      if (current === undefined || sha256(current) !== entry.sha256) failed.push(entry.target);
    } catch (err) {
      throw asEnvironmentError(err, { action: 'complete the interrupted write of', file: target });
    }
  }
  if (journal.entries.length > 0) onApplied?.(journal.entries.length - 1);
  for (const d of dirs) await fsyncDir(d);
  return failed;
}

function validJournal(value: unknown): value is Journal {
  const j = value as Journal | null;
  const safe = (p: unknown): boolean => typeof p === 'string' && p !== '' && !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..');
  return (
    !!j &&
    j.version === 1 &&
    typeof j.operation === 'string' &&
    Array.isArray(j.entries) &&
    j.entries.every(
      (e) =>
        safe(e.target) &&
        (e.remove === true ||
          (safe(e.staged) &&
            typeof e.sha256 === 'string' &&
            path.dirname(e.staged!) === path.dirname(e.target) &&
            parseTempName(path.basename(e.staged!))?.target === path.basename(e.target))),
    )
  );
}

export interface RecoveryNote {
  kind: 'completed' | 'incomplete' | 'rolled-back' | 'unreadable';
  /** The interrupted command (completed/incomplete). */
  operation?: string;
  /** Relative to the directory recovered: the files replaced, or the temp files removed. */
  files: string[];
}

/**
 * Finishes what an interrupted run left in `dir` and the subdirectories given: journals whose writer is
 * gone are completed (or reported incomplete when a staged file has vanished), then our own stale temp
 * files are removed (a write that had not been committed: rolled back). Someone else's files are never
 * touched. `journalDirs` are where journals may live (the deployment directory and data/);
 * `tempDirs` every directory we write temp files into.
 */
export async function recoverDeployment(base: string, journalDirs: string[], tempDirs: string[], now = Date.now()): Promise<RecoveryNote[]> {
  const notes: RecoveryNote[] = [];
  const root = path.resolve(base);
  const rel = (p: string): string => path.relative(root, p) || p;
  for (const dir of journalDirs) {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const m = JOURNAL_NAME.exec(name);
      if (!m) continue;
      const file = path.join(dir, name);
      const st = await fs.lstat(file).catch(() => undefined);
      if (!st?.isFile() || writerMayBeAlive(m[1]!, Number(m[2]), st.mtimeMs, now)) continue;
      let journal: unknown;
      try {
        journal = JSON.parse(await fs.readFile(file, 'utf8'));
      } catch (err) {
        // Gone: another run finished it a moment ago.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        if (!(err instanceof SyntaxError)) throw asEnvironmentError(err, { action: 'read the journal of an interrupted write', file }) as Error;
      }
      if (!validJournal(journal)) {
        // Journals are written atomically, so this one was damaged or edited: not ours to act on; say so.
        notes.push({ kind: 'unreadable', files: [rel(file)] });
        continue;
      }
      const failed = await applyJournal(dir, journal);
      await fs.unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw asEnvironmentError(err, { action: 'remove', file });
      });
      await fsyncDir(dir);
      const files = journal.entries.map((e) => rel(path.join(dir, e.target)));
      notes.push(failed.length === 0 ? { kind: 'completed', operation: journal.operation, files } : { kind: 'incomplete', operation: journal.operation, files: failed.map((f) => rel(path.join(dir, f))) });
    }
  }
  const removed = await sweepStaleTemps(tempDirs, now);
  if (removed.length > 0) notes.push({ kind: 'rolled-back', files: removed.map(rel) });
  return notes;
}

/** recoverDeployment over a deployment directory's own places (plus `extraTempDirs`, e.g. export's --out). */
export async function recoverDeploymentDir(dir: string, extraTempDirs: string[] = []): Promise<RecoveryNote[]> {
  const paths = deploymentPaths(dir);
  return recoverDeployment(
    paths.dir,
    [paths.dir, paths.dataDir],
    [paths.dir, paths.dataDir, paths.configDir, paths.buildDir, path.join(paths.dir, 'helm'), ...extraTempDirs.map((d) => path.resolve(d))],
  );
}
