import { AbortedError, ValidationError } from '../../errors.js';
import { readExistingDeployment, type ExistingDeployment } from '../../deployment/existing.js';
import { applyInit, deploymentPaths, planInit, type InitPlan, type InitSettings } from '../../deployment/init.js';
import { currentInvoker } from '../../deployment/ownership.js';
import { validateDomain, validateTunnelId } from '../../deployment/validate.js';
import { VERSION } from '../../version.js';
import { checkDir, checkSharedFlags, initIsInteractive, MissingValues, resolveSharedSettings, type InitOptions } from '../init-inputs.js';
import { nextSteps, printInitJson, printInitOutcome, printPlan, printReplacementDiffs, printSummary } from '../init-report.js';
import { printLine } from '../output.js';
import { readTokenFromSources } from '../token-input.js';
import * as wizard from '../prompts/init-wizard.js';
import { runInitWif } from './init-wif.js';
import { lockLate, stillEmpty } from '../command-lock.js';

/**
 * What `mcp-tunnel init` does (the manual flow here; the programmatic one in init-wif.ts). Loaded only
 * when init runs, so `init --help` does not load the PKI, the prompts or the Anthropic SDK.
 */
export async function runInit(options: InitOptions): Promise<void> {
  const interactive = initIsInteractive(options);
  await checkDir(options.dir);
  const paths = deploymentPaths(options.dir);
  const existing = await readExistingDeployment(paths);
  // The flow comes first: a new deployment in a terminal is asked, the programmatic flow offered first.
  if (options.flowOpen && interactive && !existing.tunnelId) options.flow = await wizard.askFlow('wif');
  if (options.flow === 'wif') return runInitWif(options);

  const settings = await gatherSettings(options, existing, interactive);
  const plan = await planInit(settings, existing, { now: new Date(), invoker: currentInvoker(), version: VERSION });
  const replaced = plan.changes.filter((c) => c.status === 'replace');
  const pending = plan.changes.filter((c) => c.status !== 'unchanged');
  const next = nextSteps(plan, settings, { registerCa: registerCaStep(plan, settings, options) });
  // A change to a file that exists is shown before anything is written; --json keeps stdout one document.
  if (replaced.length > 0 && !options.json) printReplacementDiffs(plan);

  if (options.dryRun) {
    if (options.json) printInitJson(plan, settings, 'manual', true, next);
    else {
      printPlan(plan);
      printLine('dry run: nothing was written');
    }
    return;
  }
  if (replaced.length > 0 && !options.force && !interactive) {
    const list = replaced.map((c) => c.label).join(', ');
    throw new ValidationError(`${list} already exist${replaced.length === 1 ? 's' : ''} and would change; nothing was written`, 'pass --force to replace (the CA is always kept), or --dir for a new deployment', 'FILES_WOULD_CHANGE');
  }
  if (interactive && pending.length > 0) {
    printSummary(
      [
        ['flow', 'manual'],
        ['tunnel', `${settings.tunnelId} (${settings.tunnelDomain})`],
        ['routes', settings.routes.map((r) => `${r.name} -> ${r.url}`).join(', ')],
        ['engine', settings.engine],
      ],
      plan,
    );
    const replaceNote = replaced.length && !options.force ? ` (replaces ${replaced.map((c) => c.label).join(', ')}; the CA is kept)` : '';
    if (!(await wizard.askConfirm(`Write ${pending.length} file(s) to ${paths.dir}${replaceNote}?`, replaceNote === ''))) {
      throw new AbortedError('nothing was written', replaceNote ? 'pass --force to replace without asking' : undefined);
    }
  }
  await lockLate(options.dir, options.lockTimeout, () => stillEmpty(paths));
  await applyInit(plan);
  if (options.json) printInitJson(plan, settings, 'manual', false, next);
  else printInitOutcome(plan, settings, `CA: ${plan.ca.reused ? 'reused' : 'created'} data/ca.crt, SHA-256 fingerprint ${plan.ca.fingerprint}`, next, options.printCa);
}

async function gatherSettings(options: InitOptions, existing: ExistingDeployment, interactive: boolean): Promise<InitSettings> {
  // Validate every flag before any prompt, so a typo fails at once rather than after the wizard.
  const flagId = options.tunnelId === undefined ? undefined : validateTunnelId(options.tunnelId);
  const flagDomain = options.tunnelDomain === undefined ? undefined : validateDomain(options.tunnelDomain);
  const flags = await checkSharedFlags(options);
  const token = await readTokenFromSources(options);
  const need = new MissingValues();

  const tunnelId = flagId ?? (interactive ? await wizard.askTunnelId(existing.tunnelId) : existing.tunnelId && validateTunnelId(existing.tunnelId));
  if (!tunnelId) need.add('--tunnel-id', 'MCP_TUNNEL_TUNNEL_ID', 'the tunnel ID (tnl_...) from the Console');
  const tunnelDomain =
    flagDomain ?? (interactive ? await wizard.askTunnelDomain(existing.tunnelDomain) : existing.tunnelDomain && validateDomain(existing.tunnelDomain));
  if (!tunnelDomain) need.add('--tunnel-domain', 'MCP_TUNNEL_TUNNEL_DOMAIN', 'the tunnel domain from the Console');
  const tunnelToken = token ?? existing.tunnelToken ?? (interactive ? await wizard.askTunnelToken() : undefined);
  if (!tunnelToken) need.add('--tunnel-token-file', 'TUNNEL_TOKEN', 'the tunnel token from the Console (or --tunnel-token-stdin)');

  const { routes, allowedIps, engine, sampleServer } = await resolveSharedSettings(flags, options, existing, interactive, need);
  need.throwIfAny();
  return {
    dir: options.dir,
    tunnelId: tunnelId!,
    tunnelDomain: tunnelDomain!,
    tunnelToken: tunnelToken!,
    routes,
    allowedIps,
    engine,
    baseImage: options.baseImage,
    upstreamCaPem: flags.upstreamCaPem,
    upstreamSystemCas: options.upstreamSystemCas,
    autoRenew: options.autoRenew,
    sampleServer,
    caKeyType: options.caKey,
  };
}

function registerCaStep(plan: InitPlan, settings: InitSettings, options: InitOptions): string {
  if (plan.ca.reused) return `The CA is unchanged: if it is already registered for ${settings.tunnelId}, nothing to do.`;
  return `Register the CA in the Console (tunnel ${settings.tunnelId} -> CA certificates -> upload): ${plan.paths.caCert}${options.printCa ? '' : '   (print it with --print-ca)'}`;
}

