import path from 'node:path';
import { Command, Option } from 'commander';
import { parseDuration } from '../../deployment/duration.js';
import { readDeploymentForRotation, rotateTunnelToken, type RotationEvent, type RotationResult } from '../../ops/rotate-token.js';
import { dockerStackControl, HEALTHY_CONNECTIONS, type StackControl } from '../../docker/index.js';
import { EnvironmentError, ValidationError } from '../../errors.js';
import { isInteractive } from '../interactive.js';
import { startCommandLine } from '../compose-command.js';
import { printLine, printReport, printStep, printWarning } from '../output.js';
import { askTunnelToken } from '../prompts/init-wizard.js';
import { readTokenFromSources } from '../token-input.js';
import { addWifClientOptions, tunnelsApiFromDeployment } from '../wif-client.js';
import { composeOr, detectComposeCommand, logsCommand } from '../../docker/compose-command.js';

interface RotateOptions {
  dir: string;
  reason?: string;
  tunnelTokenFile?: string;
  tunnelTokenStdin?: boolean;
  identityTokenFile?: string;
  identityTokenCommand?: string;
  apiUrl?: string;
  waitTimeout: string;
  force?: boolean;
  nonInteractive?: boolean;
  json?: boolean;
}

export const DEFAULT_WAIT_TIMEOUT_SEC = 120;

export function registerRotateToken(program: Command): void {
  addWifClientOptions(program.command('rotate-token'))
    .description('Replace the tunnel token: through the Tunnels API (wif) or from the Console (manual); then recreate cloudflared')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .option('--reason <text>', 'wif: reason recorded with the rotation')
    .addOption(new Option('--tunnel-token-file <file>', 'manual: read the new token from FILE').env('MCP_TUNNEL_TOKEN_FILE'))
    .option('--tunnel-token-stdin', 'manual: read the new token from standard input')
    .addOption(new Option('--wait-timeout <duration>', 'how long to wait for cloudflared to register (e.g. 2m)').env('MCP_TUNNEL_WAIT_TIMEOUT').default(`${DEFAULT_WAIT_TIMEOUT_SEC}s`))
    .option('--force', 'manual: accept a token of another tunnel than the current one')
    .addOption(new Option('--non-interactive', 'never prompt (implied without a TTY or under CI)').env('MCP_TUNNEL_NON_INTERACTIVE'))
    .addOption(new Option('--json', 'print the result as JSON (docs/json.md: rotate-token); implies --non-interactive').env('MCP_TUNNEL_JSON'))
    .addHelpText(
      'after',
      '\nThe flow is the deployment\'s (MCP_TUNNEL_FLOW in .env). The previous .env is kept as .env.previous (0600) for rollback.\n' +
        'The token never travels on the command line: use --tunnel-token-file, --tunnel-token-stdin, TUNNEL_TOKEN or the prompt.',
    )
    .action(async (options: RotateOptions) => runRotateToken(options));
}

function parseTimeout(raw: string): number {
  return parseDuration(raw, '--wait-timeout', { min: 1000, max: 3_600_000 });
}

export async function runRotateToken(options: RotateOptions, stack?: StackControl): Promise<void> {
  const waitTimeoutMs = parseTimeout(options.waitTimeout);
  const deployment = await readDeploymentForRotation(options.dir);
  const control = stack ?? dockerStackControl(options.dir);
  let result: RotationResult;

  if (deployment.flow === 'wif') {
    if (options.tunnelTokenFile || options.tunnelTokenStdin) {
      throw new ValidationError(
        'this deployment uses the programmatic flow: rotate-token gets the new token from the Tunnels API',
        'drop --tunnel-token-file/--tunnel-token-stdin (or set MCP_TUNNEL_FLOW=manual in .env to switch to the manual flow)',
        'FLOW_MISMATCH',
      );
    }
    const api = await tunnelsApiFromDeployment(options, deployment.envText, options.dir);
    const reason = options.reason?.trim() || undefined;
    result = await rotateTunnelToken({ dir: options.dir, stack: control, waitTimeoutMs, api: { client: api.client, apiUrl: api.apiUrl, federation: api.federation, reason }, onProgress: options.json ? undefined : printProgress(waitTimeoutMs) });
  } else {
    if (options.reason) printWarning('--reason is recorded only by the Tunnels API (programmatic flow); ignored');
    let token = await readTokenFromSources(options);
    if (!token && !options.json && isInteractive(options)) token = await askTunnelToken();
    if (!token) {
      throw new ValidationError(
        'missing the new tunnel token: pass --tunnel-token-file FILE or --tunnel-token-stdin (or set TUNNEL_TOKEN)',
        'rotate the token in the Console (tunnel > Rotate token), save it to a file with umask 077, and pass that file',
        'TUNNEL_TOKEN_MISSING',
      );
    }
    result = await rotateTunnelToken({ dir: options.dir, stack: control, waitTimeoutMs, newToken: token, force: options.force, onProgress: options.json ? undefined : printProgress(waitTimeoutMs) });
  }
  report(result, options, waitTimeoutMs);
}

function printProgress(waitTimeoutMs: number): (event: RotationEvent) => void {
  return (event) => {
    switch (event.type) {
      case 'rotated':
        printStep(`rotated the token of ${event.tunnelId} (${event.tokenId}); connections already open keep running`);
        break;
      case 'written':
        printStep(`wrote the new token to ${event.files.filter((f) => f !== '.env.previous').join(' and ')} (the previous .env is kept in .env.previous)`);
        break;
      case 'stack':
        break;
      case 'recreated':
        printStep(`recreated cloudflared; waiting up to ${Math.round(waitTimeoutMs / 1000)}s for it to register`);
        break;
    }
  };
}

function report(result: RotationResult, options: RotateOptions, waitTimeoutMs: number): void {
  const dir = path.resolve(options.dir);
  // Without compose, mcp-tunnel up recreates cloudflared too: its config hash covers the token in .env.
  const recreate = composeOr('up -d --force-recreate cloudflared', `mcp-tunnel up --dir ${dir}`);
  const rollback = `to go back to the previous token: cp ${path.join(dir, '.env.previous')} ${path.join(dir, '.env')} && ${recreate}`;
  const { stack } = result;
  if (options.json) {
    printReport('rotate-token', {
      flow: result.flow,
      tunnelId: result.tunnelId ?? null,
      tokenId: result.tokenId ?? null,
      written: result.written,
      previousEnv: result.previousEnv,
      cloudflared: { outcome: stack.outcome, state: stack.state, registered: stack.registered, wanted: HEALTHY_CONNECTIONS, ...(stack.detail ? { detail: stack.detail } : {}) },
    });
    // The report is the output; only a failure still becomes the error line on stderr and its exit code.
    if (stack.outcome !== 'recreate-failed' && stack.outcome !== 'not-registered') return;
  }
  switch (stack.outcome) {
    case 'not-running':
      if (stack.state === 'unreachable') {
        printWarning(`Docker is not reachable (${stack.detail ?? 'no daemon'}): the stack was not restarted`);
      } else {
        printLine(`The stack is not running${stack.state === 'stopped' ? ' (cloudflared is stopped)' : ''}: the new token is in .env and is used when it starts.`);
      }
      printLine(`Start it with: ${startCommandLine(dir)}`);
      return;
    case 'registered':
      printStep(`cloudflared registered ${stack.registered} tunnel connections with the new token`);
      return;
    case 'partial':
      printWarning(`cloudflared registered only ${stack.registered} of ${HEALTHY_CONNECTIONS} tunnel connections within ${Math.round(waitTimeoutMs / 1000)}s; watch: ${logsCommand('-f cloudflared')}`);
      return;
    case 'recreate-failed':
      throw new EnvironmentError(`the token files are updated, but cloudflared could not be recreated: ${stack.error?.message ?? 'unknown error'}`, stack.error?.hint ?? `run: ${detectComposeCommand() ? `cd ${dir} && ${recreate}` : recreate}`, undefined, stack.error?.code ?? 'SERVICE_NOT_RECREATED');
    case 'not-registered':
      throw new EnvironmentError(
        `cloudflared did not register a tunnel connection with the new token within ${Math.round(waitTimeoutMs / 1000)}s; the previous .env is kept in .env.previous`,
        result.flow === 'manual'
          ? `check the token and \`${logsCommand('cloudflared')}\`; ${rollback}`
          : `check \`${logsCommand('cloudflared')}\` and egress to the tunnel edge (port 7844); the previous token no longer opens new connections, so rolling back will not help`,
          undefined, 'TUNNEL_NOT_CONNECTED',
      );
  }
}
