import { input } from '@inquirer/prompts';
import { Command, Option } from 'commander';
import { checkFileSource, createTunnelsClient, defaultApiUrl, WIF_ENV_KEYS } from '../../anthropic/index.js';
import { AbortedError, ValidationError } from '../../errors.js';
import { archiveTunnel, checkConfirmation, consoleArchiveSteps, detachStep, readRevokeContext, remainingSteps, stopStep, type RevokeContext } from '../../ops/revoke.js';
import { stackRunning } from '../../ops/stack.js';
import { isInteractive } from '../interactive.js';
import { resolveIdentitySource } from './init-wif.js';
import { bold, printLine, printReport, printStep, printWarning } from '../output.js';

export interface RevokeOptions {
  dir: string;
  yes?: boolean;
  tunnelId?: string;
  flow?: 'manual' | 'wif';
  identityTokenFile?: string;
  identityTokenCommand?: string;
  nonInteractive?: boolean;
  json?: boolean;
}

const HELP = `
Breach response, in order:
  1. mcp-tunnel down --timeout 0          stop the stack at once (do this first; logs are saved to logs/)
  2. detach the servers from Claude        (Managed Agents, mcp_servers in Messages API calls)
  3. mcp-tunnel revoke                     archive the tunnel (irreversible)
  4. contact Anthropic support; 5. rotate the credentials your MCP servers accept;
  6. review the saved logs; then mcp-tunnel teardown deletes data/ and .env
Programmatic flow (MCP_TUNNEL_FLOW=wif in .env): archives through the Tunnels API after you type the tunnel ID
(non-interactive: --yes --tunnel-id <the ID in data/tunnel-id>). Manual flow: prints what to click in the Console.
--tunnel-id deliberately has no environment variable: the confirmation must be typed for this run.`;

export function registerRevoke(program: Command): void {
  program
    .command('revoke')
    .description('Breach response: archive the tunnel (API in the wif flow, Console steps in the manual flow) and list what else to do')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .option('-y, --yes', 'do not ask; needs --tunnel-id naming this deployment\'s tunnel')
    .option('--tunnel-id <id>', 'the tunnel ID, as the confirmation (must equal data/tunnel-id)')
    .addOption(new Option('--flow <flow>', 'credential flow (default: MCP_TUNNEL_FLOW in .env, else manual)').choices(['manual', 'wif']))
    .addOption(new Option('--identity-token-file <file>', 'wif: file holding the OIDC JWT (default: .env)').env('ANTHROPIC_IDENTITY_TOKEN_FILE'))
    .option('--identity-token-command <command>', 'wif: command printing the OIDC JWT (default: .env)')
    .addOption(new Option('--non-interactive', 'never prompt (implied with --json)').env('MCP_TUNNEL_NON_INTERACTIVE'))
    .addOption(new Option('--json', 'print what was done and what is left to do as JSON (docs/json.md: revoke); implies --non-interactive').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', HELP)
    .action(async (options: RevokeOptions) => {
      const outcome = await runRevoke(options, options.json === true);
      if (options.json) printReport('revoke', outcome);
    });
}


/** What revoke did, for a caller that reports it as JSON (teardown --revoke --json). */
export interface RevokeOutcome {
  flow: 'manual' | 'wif';
  tunnelId: string | null;
  /** wif: when the tunnel was archived (by this run, or before it: alreadyArchived). manual: null, the Console archives it. */
  archivedAt: string | null;
  alreadyArchived: boolean;
  /** What is left to do, in order. */
  next: string[];
}

/** quiet: print nothing on stdout (the caller reports the outcome); a prompt is then never shown either. */
export async function runRevoke(options: RevokeOptions, quiet = false): Promise<RevokeOutcome> {
  const say = (f: () => void): void => {
    if (!quiet) f();
  };
  const ctx = await readRevokeContext(options.dir);
  const flow = options.flow ?? ctx.flow;
  const dir = ctx.paths.dir;

  const stack = await stackRunning(dir);
  if (stack.running) printWarning(`the stack is still running. Step one of a breach response: ${stopStep(dir)}`);

  if (flow === 'manual') {
    const steps = [stopStep(dir), detachStep(), ...consoleArchiveSteps(ctx).slice(0, 1), ...remainingSteps(dir)];
    say(() => {
      printLine(bold(`Breach response for ${ctx.tunnelId ?? 'this tunnel'} (manual flow: the Console archives it)`));
      steps.forEach((s, i) => printLine(`  ${i + 1}. ${s}`));
      printLine(`     ${consoleArchiveSteps(ctx)[1]}`);
    });
    const archive = consoleArchiveSteps(ctx).join(' ');
    return { flow, tunnelId: ctx.tunnelId ?? null, archivedAt: null, alreadyArchived: false, next: [...steps.slice(0, 2), archive, ...steps.slice(3)] };
  }

  const tunnelId = ctx.tunnelId ?? options.tunnelId;
  if (!tunnelId) throw new ValidationError('data/tunnel-id is missing: which tunnel to archive is unknown', 'pass --tunnel-id tnl_... (the tunnel of this deployment)', 'TUNNEL_ID_MISSING');
  if (options.yes || quiet || !isInteractive(options)) {
    if (!options.yes) throw new ValidationError(`archiving tunnel ${tunnelId} needs a confirmation, and there is no terminal to ask`, `pass --yes --tunnel-id ${tunnelId}`, 'REVOKE_NOT_CONFIRMED');
    checkConfirmation(tunnelId, options.tunnelId);
  } else {
    printLine(`This archives tunnel ${tunnelId}${ctx.domain ? ` (${ctx.domain})` : ''} for good: its hostname is retired and its token stops working.`);
    const typed = await input({ message: `Type the tunnel ID (${tunnelId}) to archive it:` });
    if (typed.trim() !== tunnelId) throw new AbortedError('the tunnel ID did not match; nothing was archived', `to archive, type exactly ${tunnelId}`);
  }

  const federationRuleId = ctx.wif.federationRuleId;
  const organizationId = ctx.wif.organizationId;
  if (!federationRuleId || !organizationId) {
    throw new ValidationError(
      `.env lacks ${!federationRuleId ? WIF_ENV_KEYS.federationRuleId : WIF_ENV_KEYS.organizationId} for the programmatic flow`,
      'archive the tunnel in the Console instead (mcp-tunnel revoke --flow manual prints the steps)',
      'WIF_SETTINGS_MISSING',
    );
  }
  const identity = resolveIdentitySource(options, ctx.wif);
  if (!identity) throw new ValidationError('no identity token source for the programmatic flow', `pass --identity-token-file FILE (or set ANTHROPIC_IDENTITY_TOKEN), or archive in the Console (--flow manual)`, 'IDENTITY_TOKEN_SOURCE_MISSING');
  await checkFileSource(identity);
  const apiUrl = ctx.wif.apiUrl ?? defaultApiUrl();
  const federation = { federationRuleId, organizationId, workspaceId: ctx.wif.workspaceId };
  const client = createTunnelsClient({ ...federation, apiUrl, identityToken: identity });
  const result = await archiveTunnel(client, tunnelId, { apiUrl, federation });
  const steps = [...(stack.running ? [stopStep(dir)] : []), detachStep(), ...remainingSteps(dir)];
  say(() => {
    if (result.alreadyArchived) printStep(`tunnel ${tunnelId} was already archived (${result.archivedAt})`);
    else printStep(`archived tunnel ${tunnelId}${result.domain ? ` (${result.domain})` : ''} at ${result.archivedAt}: its token and hostname no longer work`);
    printLine(bold('Next:'));
    steps.forEach((s, i) => printLine(`  ${i + 1}. ${s}`));
  });
  return { flow, tunnelId, archivedAt: result.archivedAt, alreadyArchived: result.alreadyArchived, next: steps };
}
