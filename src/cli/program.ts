import { Command } from 'commander';
import { VERSION as version } from '../version.js';
import { registerInit } from './commands/init.js';
import { registerProxy } from './commands/proxy.js';
import { registerHealth } from './commands/health.js';
import { registerProbe } from './commands/probe.js';
import { registerDemo } from './commands/demo.js';
import { registerRotateToken } from './commands/rotate-token.js';
import { registerUp } from './commands/up.js';
import { registerDown } from './commands/down.js';
import { registerStatus } from './commands/status.js';
import { registerLogs } from './commands/logs.js';
import { registerRenewCert } from './commands/renew-cert.js';
import { registerScheduleRenewal } from './commands/schedule-renewal.js';
import { registerRoutes } from './commands/routes.js';
import { registerDoctor } from './commands/doctor.js';
import { registerRevoke } from './commands/revoke.js';
import { registerExport } from './commands/export.js';

/**
 * The command tree. Each command lives in its own module under commands/ and registers itself here;
 * add new commands to COMMANDS, in the order `--help` should list them.
 */
type Register = (program: Command) => void;
const COMMANDS: Register[] = [registerInit, registerUp, registerDown, registerStatus, registerLogs, registerProxy, registerHealth, registerRotateToken, registerRenewCert, registerScheduleRenewal, registerRoutes, registerDoctor, registerRevoke, registerExport, registerProbe, registerDemo];

export function buildProgram(): Command {
  const program = new Command('mcp-tunnel')
    .description('Put private MCP servers behind an Anthropic MCP tunnel: credentials, compose bundle, proxy, checks.')
    .version(version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    // Set before the subcommands are added: commander copies it to each of them.
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}
