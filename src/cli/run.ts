import { CommanderError, type Command } from 'commander';
import { environmentErrorFor, isSystemError } from '../deployment/fs-errors.js';
import { ExitCode, isUserError } from '../errors.js';
import { releaseHeldLock } from './held-lock.js';
import { printError } from './output.js';

/**
 * The one place errors become output: a UserError is one line and a hint; anything else is a bug and
 * says so (the stack only with MCP_TUNNEL_DEBUG=1). Ctrl-C at a prompt exits 130 without a trace.
 */
export async function runCli(program: Command, argv: string[]): Promise<void> {
  // `mcp-tunnel --help | head` closes the pipe early: that is the reader's choice, not a failure.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  try {
    await program.parseAsync(normaliseArgv(argv));
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  } finally {
    // A command that failed skipped the postAction hook: free the deployment for the next one now.
    await releaseHeldLock();
  }
}

/**
 * The official image takes `-config FILE`; commander only knows `--config`. `-V` (the version before -v
 * was) keeps working.
 */
function normaliseArgv(argv: string[]): string[] {
  return argv.map((arg, i) => {
    if (i >= 2 && (arg === '-config' || arg.startsWith('-config='))) return `-${arg}`;
    if (i === 2 && arg === '-V') return '--version';
    return arg;
  });
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its message (help, version, unknown option); keep its verdict.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
    return ExitCode.usage;
  }
  // An errno error nobody wrapped is still the environment's doing (permissions, a file in the path, a
  // read-only or full disk): exit 3 with its one line, not the bug report.
  const userError = isSystemError(err) ? environmentErrorFor(err) : err;
  if (isUserError(userError)) {
    printError(userError.message, userError.hint);
    return userError.exitCode;
  }
  if (err instanceof Error && err.name === 'ExitPromptError') {
    printError('aborted');
    return ExitCode.aborted;
  }
  const message = err instanceof Error ? err.message : String(err);
  printError(`unexpected failure: ${message}`, 'this is a bug in mcp-tunnel; rerun with MCP_TUNNEL_DEBUG=1 and report the output');
  if (process.env.MCP_TUNNEL_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return ExitCode.failure;
}
