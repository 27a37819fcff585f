import type { Command, Option } from 'commander';
import { ExitCode, UserError } from '../errors.js';
import { setOutputLevel } from './output.js';

/**
 * The conventions every command shares (docs/cli-conventions.md), applied in one place: a preAction hook
 * on the root program runs this before any command's action.
 */

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/**
 * A boolean from the environment: 1/0, true/false, yes/no (and on/off), any case. Empty means "not set".
 * Anything else is a usage error: a flag that silently means the opposite of what was written (as
 * MCP_TUNNEL_AUTO_RENEW=false once turned auto-renew on) is worse than a refusal.
 */
export function parseBooleanEnv(name: string, raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase();
  if (v === '') return undefined;
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new UserError(`${name}=${raw} is not a boolean`, { hint: `set ${name} to 1, true or yes to turn it on, 0, false or no to turn it off (or unset it)`, code: 'BAD_BOOLEAN_ENV', exitCode: ExitCode.usage });
}

const isBooleanOption = (o: Option): boolean => !o.required && !o.optional;

/**
 * commander sets a boolean option from its env twin when the variable merely exists, whatever its value
 * (and turns a negated option off the same way). Re-read those values strictly.
 */
export function applyEnvBooleans(command: Command): void {
  for (let c: Command | null = command; c; c = c.parent) {
    for (const option of c.options as Option[]) {
      if (!option.envVar || !isBooleanOption(option)) continue;
      const key = option.attributeName();
      if (c.getOptionValueSource(key) !== 'env') continue;
      const parsed = parseBooleanEnv(option.envVar, process.env[option.envVar] ?? '');
      if (parsed === undefined) c.setOptionValueWithSource(key, option.negate ? true : undefined, 'default');
      else c.setOptionValueWithSource(key, option.negate ? !parsed : parsed, 'env');
    }
  }
}

/** -q/--quiet and --verbose live on the root program; every command honours them through output.ts. */
export function applyOutputLevel(root: Command): void {
  const opts = root.opts<{ quiet?: boolean; verbose?: boolean }>();
  if (opts.quiet && opts.verbose) {
    throw new UserError('--quiet and --verbose contradict each other', { hint: 'pass one of them (or neither)', code: 'QUIET_AND_VERBOSE', exitCode: ExitCode.usage });
  }
  if (opts.verbose) {
    setOutputLevel('verbose');
    // A bug's stack trace (run.ts) is part of "verbose".
    process.env.MCP_TUNNEL_DEBUG = '1';
  } else if (opts.quiet) setOutputLevel('quiet');
}

export function installConventions(program: Command): void {
  program.hook('preAction', (root, action) => {
    applyEnvBooleans(action);
    applyOutputLevel(root);
  });
}
