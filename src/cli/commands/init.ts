import { Command, Option } from 'commander';
import { AbortedError, ValidationError } from '../../errors.js';
import { readExistingDeployment, type ExistingDeployment } from '../../bundle/existing.js';
import { applyInit, deploymentPaths, planInit, type InitPlan, type InitSettings } from '../../bundle/init.js';
import { currentInvoker } from '../../bundle/ownership.js';
import { validateDomain, validateTunnelId } from '../../bundle/validate.js';
import { VERSION } from '../../version.js';
import { checkDir, checkSharedFlags, missing, resolveSharedSettings, type InitOptions } from '../init-inputs.js';
import { printPlan, printReplacementDiffs, printWritten } from '../init-report.js';
import { isInteractive } from '../interactive.js';
import { bold, printLine, printWarning } from '../output.js';
import { readTokenFromSources } from '../token-input.js';
import * as wizard from '../prompts/init-wizard.js';
import { addWifOptions, runInitWif } from './init-wif.js';

/** Repeatable flags also read from one env var holding a comma-separated list. */
const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

export function registerInit(program: Command): void {
  const init = program
    .command('init')
    .description('Create or update a deployment directory: compose.yaml, .env, config/, data/ (CA and server certificate)')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--flow <flow>', 'credential flow').choices(['manual', 'wif']).env('MCP_TUNNEL_FLOW').default('manual'))
    .addOption(new Option('--tunnel-id <id>', 'tunnel ID from the Console (tnl_...)').env('MCP_TUNNEL_TUNNEL_ID'))
    .addOption(new Option('--tunnel-domain <domain>', 'tunnel domain from the Console (<8 chars>.tunnel.anthropic.com)').env('MCP_TUNNEL_TUNNEL_DOMAIN'))
    .addOption(new Option('--tunnel-token-file <file>', 'read the tunnel token from FILE (or set TUNNEL_TOKEN)').env('MCP_TUNNEL_TOKEN_FILE'))
    .option('--tunnel-token-stdin', 'read the tunnel token from standard input')
    .addOption(new Option('--route <name=url>', 'route NAME.<domain> to URL (http(s)://host:port); repeatable').env('MCP_TUNNEL_ROUTES').argParser(collect).default([]))
    .addOption(new Option('--proxy <engine>', 'proxy engine (default: official, or what the directory uses)').choices(['official', 'builtin']).env('MCP_TUNNEL_PROXY'))
    .addOption(new Option('--allowed-ip <cidr>', 'IPv4 range upstreams may use; repeatable; replaces the default private ranges').env('MCP_TUNNEL_ALLOWED_IPS').argParser(collect).default([]))
    .addOption(new Option('--upstream-ca-file <file>', 'CA bundle (PEM) that signs https upstreams; copied to data/upstream-ca.crt').env('MCP_TUNNEL_UPSTREAM_CA_FILE'))
    .addOption(new Option('--upstream-system-cas', 'also trust the system CAs for https upstreams').env('MCP_TUNNEL_UPSTREAM_SYSTEM_CAS'))
    .addOption(new Option('--base-image <image>', 'builtin engine: base image for the local build (node >= 22)').env('MCP_TUNNEL_BASE_IMAGE'))
    .addOption(new Option('--non-interactive', 'never prompt; fail naming the missing flag (implied without a TTY or under CI)').env('MCP_TUNNEL_NON_INTERACTIVE'))
    .option('--force', 'replace existing files that differ without asking (the CA is always kept)')
    .option('-y, --yes', 'do not ask for the final confirmation')
    .option('--print-ca', 'print the CA certificate PEM to register in the Console')
    .addOption(new Option('--auto-renew', 'add the cert-renewer service: renews the server certificate daily (see schedule-renewal)').env('MCP_TUNNEL_AUTO_RENEW'))
    .addHelpText('after', '\nThe token never travels on the command line: use --tunnel-token-file, --tunnel-token-stdin or TUNNEL_TOKEN.')
    .action(async (options: InitOptions) => runInit(options));
  addWifOptions(init);
}

async function runInit(options: InitOptions): Promise<void> {
  if (options.flow === 'wif') return runInitWif(options);
  const interactive = isInteractive(options);
  await checkDir(options.dir);
  const paths = deploymentPaths(options.dir);
  const existing = await readExistingDeployment(paths);
  const settings = await gatherSettings(options, existing, interactive);
  const plan = await planInit(settings, existing, { now: new Date(), invoker: currentInvoker(), version: VERSION });
  await confirmReplacements(plan, options, interactive);
  const pending = plan.changes.filter((c) => c.status !== 'unchanged');
  if (interactive && !options.yes && pending.length > 0) {
    printPlan(plan);
    if (!(await wizard.askConfirm(`Write ${pending.length} file(s) to ${paths.dir}?`, true))) throw new AbortedError('nothing was written');
  }
  await applyInit(plan);
  printResult(plan, settings, options);
}

async function gatherSettings(options: InitOptions, existing: ExistingDeployment, interactive: boolean): Promise<InitSettings> {
  // Validate every flag before any prompt, so a typo fails at once rather than after the wizard.
  const flagId = options.tunnelId === undefined ? undefined : validateTunnelId(options.tunnelId);
  const flagDomain = options.tunnelDomain === undefined ? undefined : validateDomain(options.tunnelDomain);
  const flags = await checkSharedFlags(options);
  const token = await readTokenFromSources(options);

  const tunnelId = flagId ?? (interactive ? await wizard.askTunnelId(existing.tunnelId) : existing.tunnelId && validateTunnelId(existing.tunnelId));
  if (!tunnelId) missing('--tunnel-id', 'MCP_TUNNEL_TUNNEL_ID', 'the tunnel ID (tnl_...) from the Console');
  const tunnelDomain =
    flagDomain ?? (interactive ? await wizard.askTunnelDomain(existing.tunnelDomain) : existing.tunnelDomain && validateDomain(existing.tunnelDomain));
  if (!tunnelDomain) missing('--tunnel-domain', 'MCP_TUNNEL_TUNNEL_DOMAIN', 'the tunnel domain from the Console');
  const tunnelToken = token ?? existing.tunnelToken ?? (interactive ? await wizard.askTunnelToken() : undefined);
  if (!tunnelToken) missing('--tunnel-token-file', 'TUNNEL_TOKEN', 'the tunnel token from the Console (or --tunnel-token-stdin)');

  const { routes, allowedIps, engine } = await resolveSharedSettings(flags, options, existing, interactive);
  return { dir: options.dir, tunnelId, tunnelDomain, tunnelToken, routes, allowedIps, engine, baseImage: options.baseImage, upstreamCaPem: flags.upstreamCaPem, upstreamSystemCas: options.upstreamSystemCas, autoRenew: options.autoRenew ? true : undefined };
}

/** Files the user (or an earlier run) wrote are never replaced without a yes or --force. */
async function confirmReplacements(plan: InitPlan, options: InitOptions, interactive: boolean): Promise<void> {
  const replaced = plan.changes.filter((c) => c.status === 'replace');
  if (replaced.length > 0) printReplacementDiffs(plan);
  if (replaced.length === 0 || options.force) return;
  const list = replaced.map((c) => c.label).join(', ');
  if (!interactive) {
    throw new ValidationError(`${list} already exist${replaced.length === 1 ? 's' : ''} and would change; nothing was written`, 'pass --force to replace (the CA is always kept), or --dir for a new deployment');
  }
  if (!(await wizard.askConfirm(`Replace ${list}? (the CA is kept)`, false))) throw new AbortedError('nothing was written', 'pass --force to replace without asking');
}

function printResult(plan: InitPlan, settings: InitSettings, options: InitOptions): void {
  printWritten(plan);
  printLine();
  printLine(`CA: ${plan.ca.reused ? 'reused' : 'created'} data/ca.crt, SHA-256 fingerprint ${plan.ca.fingerprint}`);
  printLine(`Server certificate for ${settings.tunnelDomain} and *.${settings.tunnelDomain}: ${plan.server.reason}, valid until ${plan.server.notAfter.toISOString()}`);
  printLine(`Engine: ${plan.engine}; containers run as ${plan.identity.uid}:${plan.identity.gid}`);
  if (plan.autoRenew) printLine('Certificate renewal: scheduled daily by the cert-renewer service (mcp-tunnel schedule-renewal --disable removes it)');
  if (plan.server.reason === 'domain-changed') printWarning('the tunnel domain changed: a new server certificate was issued');
  printLine();
  printLine(bold('Next:'));
  if (!plan.ca.reused) {
    printLine(`  1. Register the CA in the Console (tunnel ${settings.tunnelId} → CA certificates → upload):`);
    printLine(`       ${plan.paths.caCert}${options.printCa ? '' : '   (print it with --print-ca)'}`);
  } else {
    printLine(`  1. The CA is unchanged: if it is already registered for ${settings.tunnelId}, nothing to do.`);
  }
  printLine(`  2. Start the stack:  cd ${plan.paths.dir} && docker compose up -d   (or: mcp-tunnel up --dir ${plan.paths.dir})`);
  printLine(`  3. Claude reaches:   ${settings.routes.map((r) => `https://${r.name}.${settings.tunnelDomain}/mcp`).join(', ')}`);
  if (options.printCa) {
    printLine();
    process.stdout.write(plan.ca.pair.certPem);
  }
}
