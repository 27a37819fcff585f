import { Command, Option } from 'commander';
import { VERSION as version } from '../version.js';
import { releaseHeldLock } from './held-lock.js';
import { installConventions } from './conventions.js';
import type { ProgramContext } from './program-context.js';

/**
 * The command tree. Each command lives in its own module under commands/ and is imported only when it
 * runs: the modules pull in heavy libraries (dockerode, the Anthropic and MCP SDKs, inquirer), and a CLI
 * that loads all of them for `--help` or a container health check starts ten times slower.
 * Add new commands here, in the order `--help` lists them, with the one-line summary it shows.
 */
type Register = (program: Command, context: ProgramContext) => void;
interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Register>;
}

const COMMANDS: CommandEntry[] = [
  { name: 'init', summary: 'create or update a deployment directory (compose.yaml, .env, config/, data/)', load: async () => (await import('./commands/init.js')).registerInit },
  { name: 'up', summary: 'start the stack and wait until the tunnel is connected', load: async () => (await import('./commands/up.js')).registerUp },
  { name: 'down', summary: "stop and remove the stack's containers and network", load: async () => (await import('./commands/down.js')).registerDown },
  { name: 'status', summary: 'containers, health, tunnel connections, routes, certificate expiry', load: async () => (await import('./commands/status.js')).registerStatus },
  { name: 'logs', summary: "the stack's logs, each line prefixed with its service", load: async () => (await import('./commands/logs.js')).registerLogs },
  { name: 'proxy', summary: 'run the builtin proxy with the official proxy config file', load: async () => (await import('./commands/proxy.js')).registerProxy },
  { name: 'health', summary: "check the builtin proxy's readiness (the container HEALTHCHECK)", load: async () => (await import('./commands/health.js')).registerHealth },
  { name: 'rotate-token', summary: 'replace the tunnel token, then recreate cloudflared', load: async () => (await import('./commands/rotate-token.js')).registerRotateToken },
  { name: 'renew-cert', summary: 'issue a new server certificate with the existing CA when it nears expiry', load: async () => (await import('./commands/renew-cert.js')).registerRenewCert },
  { name: 'schedule-renewal', summary: 'add (or --disable) the daily cert-renewer service', load: async () => (await import('./commands/schedule-renewal.js')).registerScheduleRenewal },
  { name: 'ca', summary: 'rotate the CA without downtime (ca rotate)', load: async () => (await import('./commands/ca.js')).registerCa },
  { name: 'tunnel', summary: "show the tunnel: id, domain, token, certificate slots vs the local CA (tunnel show)", load: async () => (await import('./commands/tunnel.js')).registerTunnel },
  { name: 'routes', summary: 'list, add or remove routes, then restart the proxy', load: async () => (await import('./commands/routes.js')).registerRoutes },
  { name: 'doctor', summary: 'check a deployment for every documented failure, each with its fix', load: async () => (await import('./commands/doctor.js')).registerDoctor },
  { name: 'revoke', summary: 'breach response: archive the tunnel and list what else to do', load: async () => (await import('./commands/revoke.js')).registerRevoke },
  { name: 'config', summary: 'get, set or unset a proxy setting (validated, comments kept), then restart the proxy', load: async () => (await import('./commands/config.js')).registerConfig },
  { name: 'images', summary: 'show the pinned image digests; move a pin to another digest', load: async () => (await import('./commands/images.js')).registerImages },
  { name: 'teardown', summary: 'end a deployment: down (logs saved), optional revoke, remove the secrets', load: async () => (await import('./commands/teardown.js')).registerTeardown },
  { name: 'export', summary: 'export the deployment for another platform (helm)', load: async () => (await import('./commands/export.js')).registerExport },
  { name: 'probe', summary: "play Anthropic's side locally: WebSocket, inner TLS, MCP initialize, tools/list", load: async () => (await import('./commands/probe.js')).registerProbe },
  { name: 'connect', summary: 'how Claude uses the tunnel: URLs, a ready Messages API request, Managed Agents steps', load: async () => (await import('./commands/connect.js')).registerConnect },
  { name: 'completion', summary: 'print a shell completion script: completion bash|zsh|fish', load: async () => (await import('./commands/completion.js')).registerCompletion },
  { name: 'demo', summary: 'see a tunnel work on this machine: no account, no Docker, no network', load: async () => (await import('./commands/demo.js')).registerDemo },
];

/** An unknown --...token... flag is someone putting a secret on the command line: say where it goes instead. */
function secretFlagHint(commanderError: string): string {
  const flag = /unknown option '(--[\w-]*token[\w-]*)'/i.exec(commanderError)?.[1];
  if (!flag) return '';
  return /identity|jwt/i.test(flag)
    ? 'hint: an identity token never travels on the command line: use --identity-token-file FILE, --identity-token-command CMD or the ANTHROPIC_IDENTITY_TOKEN environment variable\n'
    : 'hint: a token never travels on the command line: use --tunnel-token-file FILE, --tunnel-token-stdin or the TUNNEL_TOKEN environment variable\n';
}

/** The command a command line asks for: the first word that is not a top-level option (`help X` asks for X). */
function requestedCommand(argv: string[]): CommandEntry | undefined {
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return COMMANDS.find((c) => c.name === name);
}

/** The whole command tree with every command loaded: for `completion` and for the tests of the conventions. */
export async function buildFullProgram(): Promise<Command> {
  return buildProgram(['node', 'mcp-tunnel'], true);
}

export async function buildProgram(argv: string[], loadAll = false): Promise<Command> {
  const program = new Command('mcp-tunnel')
    .description('Put private MCP servers behind an Anthropic MCP tunnel: credentials, compose bundle, proxy, checks.')
    .version(version, '-v, --version')
    .addOption(new Option('-q, --quiet', 'print only results and errors (no progress, no warnings)').env('MCP_TUNNEL_QUIET'))
    .addOption(new Option('--verbose', 'print more detail (and the stack trace of an unexpected failure)').env('MCP_TUNNEL_VERBOSE'))
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str + secretFlagHint(str)) })
    // Set before the subcommands are added: commander copies it to each of them.
    .exitOverride();
  installConventions(program);
  // After the conventions (--quiet applies to the wait notice): a command that changes the deployment takes
  // its lock; any command on a deployment directory then finishes (or rolls back) an interrupted earlier run.
  program.hook('preAction', async (_program, action) => (await import('./command-lock.js')).lockBeforeCommand(action));
  program.hook('postAction', async () => releaseHeldLock());
  const wanted = requestedCommand(argv);
  for (const entry of COMMANDS) {
    if (entry === wanted || loadAll) (await entry.load())(program, { buildFullProgram });
    // The others only need to be listed by --help (and recognised as known by commander).
    else program.command(entry.name).summary(entry.summary).allowUnknownOption().helpOption(false);
  }
  // Only a loaded command has options (`--help` alone loads none, and not the lock's code either).
  if (wanted || loadAll) (await import('./command-lock.js')).addLockTimeoutOptions(program);
  return program;
}
