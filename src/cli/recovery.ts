import type { Command } from 'commander';
import { recoverDeploymentDir, type RecoveryNote } from '../deployment/transaction.js';
import { isUserError } from '../errors.js';
import { printWarning } from './output.js';

/**
 * Before any command that works on a deployment directory: finish or roll back what an interrupted run
 * left there (deployment/transaction.ts), and say which. On stderr, so --json output stays clean.
 */
export async function recoverBeforeCommand(command: Command): Promise<void> {
  const opts = command.opts() as { dir?: unknown; out?: unknown };
  if (typeof opts.dir !== 'string') return;
  let notes: RecoveryNote[];
  try {
    notes = await recoverDeploymentDir(opts.dir, typeof opts.out === 'string' ? [opts.out] : []);
  } catch (err) {
    // Not this command's job to fail over: a read-only command still runs, a writing one meets the cause itself.
    if (!isUserError(err)) throw err;
    printWarning(`could not finish what an interrupted run left in ${opts.dir}: ${err.message}`);
    return;
  }
  for (const note of notes) printWarning(describe(note));
}

export function describe(note: RecoveryNote): string {
  switch (note.kind) {
    case 'completed':
      return `an earlier ${note.operation} was interrupted after it had everything on disk: completed it (${note.files.join(', ')})`;
    case 'incomplete':
      return `an earlier ${note.operation} was interrupted and could not be completed: ${note.files.join(', ')} changed since; check them (mcp-tunnel doctor)`;
    case 'unreadable':
      return `the journal of an interrupted write is damaged, so it was left alone: ${note.files.join(', ')}; check the deployment (mcp-tunnel doctor), then remove it`;
    case 'rolled-back':
      return `an earlier run was interrupted before it replaced anything: rolled it back (removed ${note.files.join(', ')})`;
  }
}
