import os from 'node:os';
import { input } from '@inquirer/prompts';
import {
  checkFileSource,
  commandSource,
  createTunnelsClient,
  defaultApiUrl,
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
import { parseEnvFile } from '../../deployment/env-file.js';
import { readExistingDeployment, type ExistingDeployment } from '../../deployment/existing.js';
import { applyInit, checkHttpsUpstreams, checkUpstreamsAllowed, deploymentPaths, planInit, type InitPlan, type InitSettings, type ProxyEngine } from '../../deployment/init.js';
import { containerIdentity, currentInvoker } from '../../deployment/ownership.js';
import { validateTunnelId } from '../../deployment/validate.js';
import { AbortedError, ValidationError } from '../../errors.js';
import { VERSION } from '../../version.js';
import { checkDir, checkSharedFlags, initIsInteractive, MissingValues, resolveSharedSettings, type InitOptions } from '../init-inputs.js';
import { claudeUrls, nextSteps, printInitJson, printInitOutcome, printReplacementDiffs, printSummary } from '../init-report.js';
import { printLine, printReport, printStep } from '../output.js';
import * as wizard from '../prompts/init-wizard.js';
import { lockLate, stillEmpty } from '../command-lock.js';

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

/** Test and operations knobs for the API client (not flags: nobody should need them day to day). */
export function apiTuning(): Pick<TunnelsClientOptions, 'maxRetries' | 'retryBaseDelayMs'> {
  const num = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new ValidationError(`${name} must be a whole number, got "${raw}"`, `unset ${name}`, 'ENV_INTEGER_INVALID');
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
    throw new ValidationError('--identity-token-file and --identity-token-command are mutually exclusive', 'give the identity token one way only', 'FLAGS_CONFLICT');
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
  sampleServer?: boolean;
}

async function gatherWifSettings(options: WifInitOptions, existing: ExistingDeployment, stored: StoredWifSettings, interactive: boolean): Promise<WifSettings> {
  for (const [flag, value] of [['--tunnel-domain', options.tunnelDomain], ['--tunnel-token-file', options.tunnelTokenFile], ['--tunnel-token-stdin', options.tunnelTokenStdin]] as const) {
    if (value) {
      throw new ValidationError(`${flag} is not used with --flow wif: the Tunnels API supplies the tunnel's domain and token`, `drop ${flag} (and its environment variable), or use --flow manual`, 'FLOW_MISMATCH');
    }
  }
  // Every flag is checked before any prompt or request.
  const apiUrl = validateApiUrl(options.apiUrl ?? stored.apiUrl ?? defaultApiUrl());
  const flagRule = options.federationRuleId === undefined ? undefined : validateFederationRuleId(options.federationRuleId);
  const flagOrg = options.organizationId === undefined ? undefined : validateOrganizationId(options.organizationId);
  const workspaceRaw = options.workspaceId ?? stored.workspaceId;
  let workspaceId = workspaceRaw === undefined || workspaceRaw === '' ? undefined : validateWorkspaceId(workspaceRaw);
  let tunnelId = options.tunnelId === undefined ? undefined : validateTunnelId(options.tunnelId);
  const displayName = validateDisplayName(options.displayName ?? defaultDisplayName(options.dir));
  const flags = await checkSharedFlags(options);
  let identity = resolveIdentitySource(options, stored);

  const need = new MissingValues();
  const federationRuleId =
    flagRule ??
    (stored.federationRuleId !== undefined ? validateFederationRuleId(stored.federationRuleId) : undefined) ??
    (interactive ? validateFederationRuleId(await input({ message: 'Federation rule ID (fdrl_...):', validate: wizard.check(validateFederationRuleId) })) : undefined);
  if (!federationRuleId) need.add('--federation-rule-id', 'ANTHROPIC_FEDERATION_RULE_ID', 'the federation rule (fdrl_...) from the Console');
  const organizationId =
    flagOrg ??
    (stored.organizationId !== undefined ? validateOrganizationId(stored.organizationId) : undefined) ??
    (interactive ? validateOrganizationId(await input({ message: 'Organization ID (UUID):', validate: wizard.check(validateOrganizationId) })) : undefined);
  if (!organizationId) need.add('--organization-id', 'ANTHROPIC_ORGANIZATION_ID', 'the organization ID (a UUID) from the Console');
  // Asked (not required): a rule may name one workspace itself. Asked only for a new deployment.
  if (workspaceId === undefined && interactive && options.workspaceId === undefined && stored.federationRuleId === undefined) {
    workspaceId = await wizard.askWorkspaceId(undefined, validateWorkspaceId);
  }
  if (!identity && interactive) {
    const answer = await wizard.askIdentitySource(async (file) => checkFileSource(fileSource(file, 'the prompt')));
    identity = answer.kind === 'file' ? fileSource(answer.path, 'the prompt') : commandSource(answer.command, 'the prompt');
  }
  if (!identity) {
    need.add('--identity-token-file', 'ANTHROPIC_IDENTITY_TOKEN_FILE', 'where the OIDC identity token (JWT) comes from (or --identity-token-command, or ANTHROPIC_IDENTITY_TOKEN)');
  }
  if (identity) await checkFileSource(identity);
  // An existing tunnel or a new one: asked for a new deployment, never guessed (Enter must not create a second tunnel).
  if (tunnelId === undefined && interactive && !(await readStoredTunnelId(deploymentPaths(options.dir)))) {
    const choice = await wizard.askTunnelChoice();
    if (!choice.create) tunnelId = choice.tunnelId;
  }

  const { routes, allowedIps, engine, sampleServer } = await resolveSharedSettings(flags, options, existing, interactive, need);
  need.throwIfAny();
  const upstreamCaPem = flags.upstreamCaPem;
  // planInit checks these again; here they fail before the first request.
  checkUpstreamsAllowed(routes, allowedIps);
  checkHttpsUpstreams(routes, {
    caFile: upstreamCaPem !== undefined ? 'given' : existing.upstreamTls?.caFile,
    includeSystemCas: options.upstreamSystemCas ?? existing.upstreamTls?.includeSystemCas,
  });
  return { apiUrl, federationRuleId: federationRuleId!, organizationId: organizationId!, workspaceId, identity: identity!, tunnelId, displayName, routes, allowedIps, engine, upstreamCaPem, sampleServer };
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
  const interactive = initIsInteractive(options);
  await checkDir(options.dir);
  const paths = deploymentPaths(options.dir);
  const existing = await readExistingDeployment(paths);
  const stored = readWifSettings(existing.envText);
  const settings = await gatherWifSettings(options, existing, stored, interactive);

  // Every decision that needs a person comes before the first request, in ONE confirmation.
  const storedTunnelId = await readStoredTunnelId(paths);
  const moving = Boolean(settings.tunnelId && storedTunnelId && settings.tunnelId !== storedTunnelId);
  const tunnelLine = settings.tunnelId
    ? `${settings.tunnelId}${moving ? ` (moves this deployment from ${storedTunnelId}; the CA is kept and registered there)` : ''}`
    : storedTunnelId
      ? `${storedTunnelId} (from data/tunnel-id)`
      : `create a new tunnel "${settings.displayName}"`;
  const summary: Array<[string, string]> = [
    ['flow', 'programmatic (Workload Identity Federation)'],
    ['organization', settings.organizationId],
    ['workspace', settings.workspaceId ?? '(the federation rule\'s)'],
    ['federation rule', settings.federationRuleId],
    ['identity token', settings.identity.kind === 'file' ? `file ${settings.identity.path}` : settings.identity.kind === 'command' ? `command ${settings.identity.command}` : 'ANTHROPIC_IDENTITY_TOKEN'],
    ['tunnel', tunnelLine],
    ['routes', settings.routes.map((r) => `${r.name} -> ${r.url}`).join(', ')],
    ['engine', settings.engine],
    ['directory', paths.dir],
    ['API calls', `${settings.apiUrl}: token exchange, ${settings.tunnelId || storedTunnelId ? 'read the tunnel' : 'CREATE a tunnel'}, register the CA unless it is, reveal the token`],
  ];
  if (options.dryRun && options.json) {
    // Before any request the tunnel may not exist yet: its ID and domain are null then, and no file is planned.
    const tunnelId = settings.tunnelId ?? storedTunnelId ?? null;
    const tunnelDomain = tunnelId && !moving ? (existing.tunnelDomain ?? null) : null;
    printReport('init', {
      dir: paths.dir,
      dryRun: true,
      flow: 'wif',
      tunnelId,
      tunnelDomain,
      engine: settings.engine,
      files: [],
      urls: tunnelDomain ? claudeUrls({ routes: settings.routes, tunnelDomain }) : [],
      next: [],
      apiCalls: [
        `${settings.apiUrl}: token exchange`,
        tunnelId ? `read tunnel ${tunnelId}` : `create a tunnel "${settings.displayName}"`,
        'register the CA unless it is registered',
        'reveal the token',
      ],
    });
    return;
  }
  if (options.dryRun) {
    printSummary(summary);
    printLine('dry run: no API request was made and nothing was written');
    return;
  }
  let allowTunnelChange = Boolean(options.force);
  if (interactive) {
    printSummary(summary);
    const ok = await wizard.askConfirm(moving ? `Move the deployment to ${settings.tunnelId}, call the API and write the files?` : 'Call the Tunnels API and write the deployment?', !moving);
    if (!ok) throw new AbortedError('nothing was sent and nothing was written', settings.tunnelId || storedTunnelId ? undefined : 'pass --tunnel-id to attach to an existing tunnel');
    allowTunnelChange = allowTunnelChange || moving;
  }

  await lockLate(options.dir, options.lockTimeout, () => stillEmpty(paths));
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
    // --json: stdout holds the one report.
    onProgress: options.json ? undefined : printProgress,
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
    autoRenew: options.autoRenew,
    sampleServer: settings.sampleServer,
    caKeyType: options.caKey,
  };
  const plan = await planInit(initSettings, { ...existing, envText }, { now, invoker: currentInvoker(), version: VERSION });
  confirmReplacements(plan, existing, options);
  await applyInit(plan);
  const next = nextSteps(plan, initSettings, { extra: [`Rotate the token later: mcp-tunnel rotate-token --dir ${plan.paths.dir}   (the settings are in .env)`] });
  if (options.json) printInitJson(plan, initSettings, 'wif', false, next, { caReused: !provisioned.ca.created });
  else {
    const headline = `Tunnel ${initSettings.tunnelId} (${initSettings.tunnelDomain}); CA ${provisioned.ca.created ? 'created' : 'reused'}, fingerprint ${plan.ca.fingerprint}, registered on the tunnel`;
    printInitOutcome(plan, initSettings, headline, next, options.printCa);
  }
}

/** Keys of .env the programmatic flow owns: a change to them alone is the flow doing its job. */
const API_MANAGED_ENV = new Set<string>(['TUNNEL_TOKEN', ...Object.values(WIF_ENV_KEYS)]);

/**
 * As in the manual flow, a file that would change is replaced only with --force or a yes. What the API
 * owns is exempt: the tunnel's ID, domain and current token (data/tunnel-*, TUNNEL_TOKEN and the WIF
 * settings in .env) are written because the API says so, which is the point of the programmatic flow.
 */
function confirmReplacements(plan: InitPlan, existing: ExistingDeployment, options: WifInitOptions): void {
  const apiManagedFiles = new Set([plan.paths.tunnelId, plan.paths.tunnelDomain, plan.paths.tunnelToken]);
  const replaced = plan.changes.filter((c) => {
    if (c.status !== 'replace' || apiManagedFiles.has(c.path)) return false;
    if (c.path === plan.paths.env) return !sameApartFrom(existing.envText ?? '', c.content, API_MANAGED_ENV);
    return true;
  });
  if (replaced.length > 0 && !options.json) printReplacementDiffs({ ...plan, changes: replaced });
  if (replaced.length === 0 || options.force) return;
  // No second question after the API calls (the one confirmation came before them): a file that differs
  // is replaced only with --force, whoever runs init.
  const list = replaced.map((c) => c.label).join(', ');
  throw new ValidationError(
    `${list} already exist${replaced.length === 1 ? 's' : ''} and would change; only the tunnel and its CA (data/tunnel-id, data/tunnel-domain, data/ca.*) were written`,
    'pass --force to replace (the CA is always kept), or --dir for a new deployment',
    'FILES_WOULD_CHANGE',
  );
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

