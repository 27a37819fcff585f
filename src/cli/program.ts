import { createRequire } from 'node:module';
import { Command } from 'commander';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

/**
 * The command tree. Each command lives in its own module under commands/ and registers itself here;
 * add new commands to COMMANDS, in the order `--help` should list them.
 */
type Register = (program: Command) => void;
const COMMANDS: Register[] = [];

export function buildProgram(): Command {
  const program = new Command('mcp-tunnel')
    .description('Put private MCP servers behind an Anthropic MCP tunnel: credentials, compose bundle, proxy, checks.')
    .version(version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) });
  for (const register of COMMANDS) register(program);
  return program;
}
