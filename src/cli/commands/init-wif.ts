import fs from 'node:fs/promises';
import os from 'node:os';
import { input } from '@inquirer/prompts';
import { Option, type Command } from 'commander';
import {
  checkFileSource,
  commandSource,
  createTunnelsClient,
  DEFAULT_API_URL,
  DEFAULT_MAX_RETRIES,
  describeCertificates,
  fileSource,
  provisionTunnel,
  readStoredTunnelId,
  readWifSettings,
  validateApiUrl,
  validateDisplayName,
  validateFederationRuleId,
  validateOrganizationId,
  validateWorkspaceId,
  WIF_ENV_KEYS,
  withWifSettings,
  type IdentityTokenSource,
  type ProvisionEvent,
  type StoredWifSettings,
  type TunnelsClientOptions,
} from '../../anthropic/index.js';
import { parseEnvFile } from '../../bundle/env-file.js';
import { readExistingDeployment, type ExistingDeployment } from '../../bundle/existing.js';
import { applyInit, checkHttpsUpstreams, checkUpstreamsAllowed, deploymentPaths, planInit, type InitPlan, type InitSettings, type ProxyEngine } from '../../bundle/init.js';
import { containerIdentity, currentInvoker } from '../../bundle/ownership.js';
import { validateTunnelId } from '../../bundle/validate.js';
import { AbortedError, ValidationError } from '../../errors.js';
import { VERSION } from '../../version.js';
import { checkDir, checkSharedFlags, missing, resolveSharedSettings, type InitOptions } from '../init-inputs.js';
import { printPlan, printReplacementDiffs, printWritten } from '../init-report.js';
import { isInteractive } from '../interactive.js';
import { bold, printLine, printStep, printWarning } from '../output.js';
import * as wizard from '../prompts/init-wizard.js';

/**
 * `mcp-tunnel init --flow wif`: the programmatic flow. The tunnel, its domain and its token come from the
 * Tunnels API (Workload Identity Federation through @anthropic-ai/sdk, src/anthropic/); everything else is
 * the manual flow's planInit/applyInit, so both flows write the same files in the same layout.
 */
export interface WifInitOptions extends InitOptions {
  federationRuleId?: string;
  organizationId?: string;
  workspaceId?: string;
  identityTokenFile?: string;
  identityTokenCommand?: string;
  displayName?: string;
  apiUrl?: string;
}

/** The programmatic flow's flags on `init` (each with its env twin), and the flow remembered by a deployment. */
export function addWifOptions(init: Command): void {
  init
    .addOption(new Option('--federation-rule-id <id>', 'wif: federation rule (fdrl_...)').env('ANTHROPIC_FEDERATION_RULE_ID'))
    .addOption(new Option('--organization-id <uuid>', 'wif: organization ID (a UUID)').env('ANTHROPIC_ORGANIZATION_ID'))
    .addOption(new Option('--workspace-id <id>', 'wif: workspace (wrkspc_...), when the rule covers several').env('ANTHROPIC_WORKSPACE_ID'))
    .addOption(new Option('--identity-token-file <file>', 'wif: file holding the OIDC JWT, re-read on every exchange (or ANTHROPIC_IDENTITY_TOKEN)').env('ANTHROPIC_IDENTITY_TOKEN_FILE'))
    .addOption(new Option('--identity-token-command <cmd>', 'wif: program printing the OIDC JWT, run without a shell on every exchange').env('MCP_TUNNEL_IDENTITY_TOKEN_COMMAND'))
    .addOption(new Option('--display-name <name>', 'wif: name of a newly created tunnel').env('MCP_TUNNEL_DISPLAY_NAME'))
    .addOption(new Option('--api-url <url>', `wif: Anthropic API base URL (default ${DEFAULT_API_URL})`).env('MCP_TUNNEL_API_URL'))
    .addHelpText(
      'after',
      '\nProgrammatic flow (--flow wif): the tunnel (created, or attached with --tunnel-id), its CA registration and token come from the Tunnels API.\n' +
        'The settings are kept in .env, so re-running `mcp-tunnel init` (and `mcp-tunnel rotate-token`) needs no flags.',
    );
  // A deployment made with --flow wif stays wif: without an explicit --flow, the one in .env wins.
  init.hook('preAction', async (command) => {
    if (command.getOptionValueSource('flow') !== 'default') return;
    const dir = (command.opts() as { dir?: string }).dir ?? '.';
    const envText = await fs.readFile(deploymentPaths(dir).env, 'utf8').catch(() => undefined);
    if (readWifSettings(envText).flow === 'wif') command.setOptionValueWithSource('flow', 'wif', 'config');
  });
}

/** Test and operations knobs for the API client (not flags: nobody should need them day to day). */
export function apiTuning(): Pick<TunnelsClientOptions, 'maxRetries' | 'retryBaseDelayMs'> {
  const num = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new ValidationError(`${name} must be a whole number, got "${raw}"`, `unset ${name}`);
    return n;
  };
  return { maxRetries: num('MCP_TUNNEL_API_MAX_RETRIES') ?? DEFAULT_MAX_RETRIES, retryBaseDelayMs: num('MCP_TUNNEL_API_RETRY_BASE_MS') };
}

/**
 * Where the JWT comes from, in this order: --identity-token-file (ANTHROPIC_IDENTITY_TOKEN_FILE),
 * --identity-token-command, ANTHROPIC_IDENTITY_TOKEN, then what .env remembers.
 */
export function resolveIdentitySource(
  flags: { identityTokenFile?: string; identityTokenCommand?: string },
  stored: StoredWifSettings,
): IdentityTokenSource | undefined {
  if (flags.identityTokenFile && flags.identityTokenCommand) {
    throw new ValidationError('--identity-token-file and --identity-token-command are mutually exclusive', 'give the identity token one way only');
  }
  if (flags.identityTokenFile) return fileSource(flags.identityTokenFile, '--identity-token-file');
  if (flags.identityTokenCommand) return commandSource(flags.identityTokenCommand, '--identity-token-command');
  const value = process.env.ANTHROPIC_IDENTITY_TOKEN;
  if (value) return { kind: 'value', value, origin: 'ANTHROPIC_IDENTITY_TOKEN' };
  if (stored.identityTokenFile) return fileSource(stored.identityTokenFile, `${WIF_ENV_KEYS.identityTokenFile} in .env`);
  if (stored.identityTokenCommand) return commandSource(stored.identityTokenCommand, `${WIF_ENV_KEYS.identityTokenCommand} in .env`);
  return undefined;
}

interface WifSettings {
  apiUrl: string;
  federationRuleId: string;
  organizationId: string;
  workspaceId?: string;
  identity: IdentityTokenSource;
  tunnelId?: string;
  displayName: string;
  routes: InitSettings['routes'];
  allowedIps?: string[];
  engine: ProxyEngine;
  upstreamCaPem?: string;
}

async function gatherWifSettings(options: WifInitOptions, existing: ExistingDeployment, stored: StoredWifSettings, interactive: boolean): Promise<WifSettings> {
  for (const [flag, value] of [['--tunnel-domain', options.tunnelDomain], ['--tunnel-token-file', options.tunnelTokenFile], ['--tunnel-token-stdin', options.tunnelTokenStdin]] as const) {
    if (value) {
      throw new ValidationError(`${flag} is not used with --flow wif: the Tunnels API supplies the tunnel's domain and token`, `drop ${flag} (and its environment variable), or use --flow manual`);
    }
  }
  // Every flag is checked before any prompt or request.
  const apiUrl = validateApiUrl(options.apiUrl ?? stored.apiUrl ?? DEFAULT_API_URL);
  const flagRule = options.federationRuleId === undefined ? undefined : validateFederationRuleId(options.federationRuleId);
  const flagOrg = options.organizationId === undefined ? undefined : validateOrganizationId(options.organizationId);
  const workspaceRaw = options.workspaceId ?? stored.workspaceId;
  const workspaceId = workspaceRaw === undefined || workspaceRaw === '' ? undefined : validateWorkspaceId(workspaceRaw);
  const tunnelId = options.tunnelId === undefined ? undefined : validateTunnelId(options.tunnelId);
  const displayName = validateDisplayName(options.displayName ?? defaultDisplayName(options.dir));
  const flags = await checkSharedFlags(options);
  let identity = resolveIdentitySource(options, stored);

  const federationRuleId =
    flagRule ??
    (stored.federationRuleId !== undefined ? validateFederationRuleId(stored.federationRuleId) : undefined) ??
    (interactive ? validateFederationRuleId(await input({ message: 'Federation rule ID (fdrl_...):', validate: wizard.check(validateFederationRuleId) })) : undefined);
  if (!federationRuleId) missing('--federation-rule-id', 'ANTHROPIC_FEDERATION_RULE_ID', 'the federation rule (fdrl_...) from the Console');
  const organizationId =
    flagOrg ??
    (stored.organizationId !== undefined ? validateOrganizationId(stored.organizationId) : undefined) ??
    (interactive ? validateOrganizationId(await input({ message: 'Organization ID (UUID):', validate: wizard.check(validateOrganizationId) })) : undefined);
  if (!organizationId) missing('--organization-id', 'ANTHROPIC_ORGANIZATION_ID', 'the organization ID (a UUID) from the Console');
  if (!identity && interactive) {
    const file = await input({ message: 'File holding the OIDC identity token (JWT):' });
    identity = fileSource(file, 'the prompt');
  }
  if (!identity) {
    missing('--identity-token-file', 'ANTHROPIC_IDENTITY_TOKEN_FILE', 'where the OIDC identity token (JWT) comes from (or --identity-token-command, or ANTHROPIC_IDENTITY_TOKEN)');
  }
  await checkFileSource(identity);

  const { routes, allowedIps, engine } = await resolveSharedSettings(flags, options, existing, interactive);
  const upstreamCaPem = flags.upstreamCaPem;
  // planInit checks these again; here they fail before the first request.
  checkUpstreamsAllowed(routes, allowedIps);
  checkHttpsUpstreams(routes, {
    caFile: upstreamCaPem !== undefined ? 'given' : existing.upstreamTls?.caFile,
    includeSystemCas: options.upstreamSystemCas ?? existing.upstreamTls?.includeSystemCas,
  });
  return { apiUrl, federationRuleId, organizationId, workspaceId, identity, tunnelId, displayName, routes, allowedIps, engine, upstreamCaPem };
}

function defaultDisplayName(dir: string): string {
  const base = deploymentPaths(dir).dir.split('/').filter(Boolean).at(-1) ?? 'mcp-tunnel';
  return `mcp-tunnel ${base} on ${os.hostname()}`.slice(0, 255);
}

/** An env twin set to "" counts as not given. */
function blankToUndefined(options: WifInitOptions): WifInitOptions {
  const out = { ...options };
  for (const key of ['federationRuleId', 'organizationId', 'workspaceId', 'identityTokenFile', 'identityTokenCommand', 'displayName', 'apiUrl', 'tunnelId'] as const) {
    if (typeof out[key] === 'string' && out[key].trim() === '') out[key] = undefined;
  }
  return out;
}

export async function runInitWif(given: WifInitOptions): Promise<void> {
  const options = blankToUndefined(given);
  const interactive = isInteractive(options);
  await checkDir(options.dir);
  const paths = deploymentPaths(options.dir);
  const existing = await readExistingDeployment(paths);
  const stored = readWifSettings(existing.envText);
  const settings = await gatherWifSettings(options, existing, stored, interactive);

  // Decisions that need a person come before the first request.
  const storedTunnelId = await readStoredTunnelId(paths);
  let allowTunnelChange = Boolean(options.force);
  if (settings.tunnelId && storedTunnelId && settings.tunnelId !== storedTunnelId && !allowTunnelChange && interactive) {
    allowTunnelChange = await wizard.askConfirm(`Move this deployment from ${storedTunnelId} to ${settings.tunnelId}? (the CA is kept and registered there)`, false);
    if (!allowTunnelChange) throw new AbortedError('nothing was written');
  }
  if (!settings.tunnelId && !storedTunnelId && interactive && !options.yes) {
    if (!(await wizard.askConfirm(`Create a new tunnel "${settings.displayName}" in organization ${settings.organizationId}?`, true))) {
      throw new AbortedError('nothing was written', 'pass --tunnel-id to attach to an existing tunnel');
    }
  }

  const tuning = apiTuning();
  const federation = { federationRuleId: settings.federationRuleId, organizationId: settings.organizationId, workspaceId: settings.workspaceId };
  const client = createTunnelsClient({ ...federation, apiUrl: settings.apiUrl, identityToken: settings.identity, ...tuning });
  const now = new Date();
  const provisioned = await provisionTunnel({
    client,
    paths,
    apiUrl: settings.apiUrl,
    federation,
    tunnelId: settings.tunnelId,
    allowTunnelChange,
    displayName: settings.displayName,
    now,
    dataDirMode: containerIdentity(currentInvoker()).dataDirMode,
    ...tuning,
    onProgress: printProgress,
  });

  // The WIF settings ride along in .env (src/anthropic/settings.ts), written by the same plan.
  const envText = withWifSettings(existing.envText, {
    apiUrl: settings.apiUrl,
    ...federation,
    identityTokenFile: settings.identity.kind === 'file' ? settings.identity.path : undefined,
    identityTokenCommand: settings.identity.kind === 'command' ? settings.identity.command : undefined,
  });
  const initSettings: InitSettings = {
    dir: options.dir,
    tunnelId: provisioned.tunnel.id,
    tunnelDomain: provisioned.tunnel.domain,
    tunnelToken: provisioned.token.value,
    routes: settings.routes,
    allowedIps: settings.allowedIps,
    engine: settings.engine,
    baseImage: options.baseImage,
    upstreamCaPem: settings.upstreamCaPem,
    upstreamSystemCas: options.upstreamSystemCas,
    autoRenew: options.autoRenew ? true : undefined,
  };
  const plan = await planInit(initSettings, { ...existing, envText }, { now, invoker: currentInvoker(), version: VERSION });
  await confirmReplacements(plan, existing, options, interactive);
  const pending = plan.changes.filter((c) => c.status !== 'unchanged');
  if (interactive && !options.yes && pending.length > 0) {
    printPlan(plan);
    if (!(await wizard.askConfirm(`Write ${pending.length} file(s) to ${paths.dir}?`, true))) {
      throw new AbortedError('nothing else was written', `the tunnel and its CA are in place (data/tunnel-id, data/ca.*); re-run to finish`);
    }
  }
  await applyInit(plan);
  printResult(plan, initSettings, provisioned.ca.created, options);
}

/** Keys of .env the programmatic flow owns: a change to them alone is the flow doing its job. */
const API_MANAGED_ENV = new Set<string>(['TUNNEL_TOKEN', ...Object.values(WIF_ENV_KEYS)]);

/**
 * As in the manual flow, a file that would change is replaced only with --force or a yes. What the API
 * owns is exempt: the tunnel's ID, domain and current token (data/tunnel-*, TUNNEL_TOKEN and the WIF
 * settings in .env) are written because the API says so, which is the point of the programmatic flow.
 */
async function confirmReplacements(plan: InitPlan, existing: ExistingDeployment, options: WifInitOptions, interactive: boolean): Promise<void> {
  const apiManagedFiles = new Set([plan.paths.tunnelId, plan.paths.tunnelDomain, plan.paths.tunnelToken]);
  const replaced = plan.changes.filter((c) => {
    if (c.status !== 'replace' || apiManagedFiles.has(c.path)) return false;
    if (c.path === plan.paths.env) return !sameApartFrom(existing.envText ?? '', c.content, API_MANAGED_ENV);
    return true;
  });
  if (replaced.length > 0) printReplacementDiffs({ ...plan, changes: replaced });
  if (replaced.length === 0 || options.force) return;
  const list = replaced.map((c) => c.label).join(', ');
  if (!interactive) {
    throw new ValidationError(
      `${list} already exist${replaced.length === 1 ? 's' : ''} and would change; only the tunnel and its CA (data/tunnel-id, data/tunnel-domain, data/ca.*) were written`,
      'pass --force to replace (the CA is always kept), or --dir for a new deployment',
    );
  }
  if (!(await wizard.askConfirm(`Replace ${list}? (the CA is kept)`, false))) throw new AbortedError('nothing else was written', 'pass --force to replace without asking');
}

function sameApartFrom(a: string, b: string, ignored: Set<string>): boolean {
  const strip = (text: string): Record<string, string> => Object.fromEntries(Object.entries(parseEnvFile(text)).filter(([k]) => !ignored.has(k)));
  const x = strip(a);
  const y = strip(b);
  return Object.keys(x).length === Object.keys(y).length && Object.entries(x).every(([k, v]) => y[k] === v);
}

function printProgress(event: ProvisionEvent): void {
  switch (event.type) {
    case 'tunnel': {
      const t = event.tunnel;
      const what = {
        created: `created tunnel ${t.id}${t.displayName ? ` "${t.displayName}"` : ''}`,
        adopted: `found tunnel ${t.id}, created by a request whose answer was lost`,
        attached: `attached to tunnel ${t.id}`,
        reused: `tunnel ${t.id} (from data/tunnel-id)`,
      }[event.action];
      printStep(`${what}: ${t.domain}`);
      break;
    }
    case 'ca':
      printStep(`${event.action === 'created' ? 'created' : 'kept'} the CA data/ca.crt, SHA-256 fingerprint ${event.fingerprint}`);
      break;
    case 'certificate':
      printStep(
        event.action === 'registered'
          ? `registered the CA on the tunnel (${event.certificate.id})`
          : `the CA is already registered on the tunnel (${event.certificate.id}); not registered again`,
      );
      if (event.others.length) printLine(`  the tunnel also trusts: ${describeCertificates(event.others)}`);
      break;
    case 'token':
      printStep(`revealed the tunnel token (${event.tokenId})`);
      break;
  }
}

function printResult(plan: InitPlan, settings: InitSettings, caCreated: boolean, options: WifInitOptions): void {
  printWritten(plan);
  printLine();
  printLine(`Tunnel ${settings.tunnelId} (${settings.tunnelDomain}); CA ${caCreated ? 'created' : 'reused'}, fingerprint ${plan.ca.fingerprint}, registered on the tunnel`);
  printLine(`Server certificate for ${settings.tunnelDomain} and *.${settings.tunnelDomain}: ${plan.server.reason}, valid until ${plan.server.notAfter.toISOString()}`);
  printLine(`Engine: ${plan.engine}; containers run as ${plan.identity.uid}:${plan.identity.gid}`);
  if (plan.autoRenew) printLine('Certificate renewal: scheduled daily by the cert-renewer service (mcp-tunnel schedule-renewal --disable removes it)');
  if (plan.server.reason === 'domain-changed') printWarning('the tunnel domain changed: a new server certificate was issued');
  printLine();
  printLine(bold('Next:'));
  printLine(`  1. Start the stack:  cd ${plan.paths.dir} && docker compose up -d   (or: mcp-tunnel up --dir ${plan.paths.dir})`);
  printLine(`  2. Claude reaches:   ${settings.routes.map((r) => `https://${r.name}.${settings.tunnelDomain}/mcp`).join(', ')}`);
  printLine(`  3. Rotate the token: mcp-tunnel rotate-token --dir ${plan.paths.dir}   (the settings are in .env)`);
  if (options.printCa) {
    printLine();
    process.stdout.write(plan.ca.pair.certPem);
  }
}
