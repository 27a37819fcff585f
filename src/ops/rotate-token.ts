import { readTextIfExists } from '../deployment/atomic-file.js';
import { parseEnvFile, readEnvTextIfExists, updateEnvFile } from '../deployment/env-file.js';
import { writeFilesTogether } from '../deployment/transaction.js';
import { decodeTunnelToken } from '../deployment/validate.js';
import { deploymentPaths, type DeploymentPaths } from '../deployment/layout.js';
import { EnvironmentError, ValidationError, isUserError, type UserError } from '../errors.js';
import type { FederationSettings, TunnelsClient } from '../anthropic/client.js';
import { explainApiError } from '../anthropic/errors.js';
import { checkApiToken, readStoredTunnelId } from '../anthropic/provision.js';
import { readWifSettings, type CredentialFlow } from '../anthropic/settings.js';
import { HEALTHY_CONNECTIONS, type CloudflaredState, type StackControl } from '../docker/stack-control.js';

/**
 * rotate-token, both flows, without printing: get the new token (from the user, or from the Tunnels
 * API), write it atomically to data/tunnel-token and .env while keeping the previous .env as
 * .env.previous (0600), then recreate cloudflared and wait for it to register.
 */
export interface RotationOptions {
  dir: string;
  stack: StackControl;
  waitTimeoutMs: number;
  /** Manual flow: the new token, already read and shape-checked by the caller. */
  newToken?: string;
  /** Programmatic flow: rotate through the Tunnels API. */
  api?: { client: TunnelsClient; apiUrl: string; federation?: FederationSettings; reason?: string };
  /** Manual flow: accept a token that belongs to another tunnel than the current one. */
  force?: boolean;
  onProgress?: (event: RotationEvent) => void;
}

export type RotationEvent =
  | { type: 'rotated'; tunnelId: string; tokenId: string }
  | { type: 'written'; files: string[] }
  | { type: 'stack'; state: CloudflaredState; detail?: string }
  | { type: 'recreated' };

export type StackOutcome = 'registered' | 'partial' | 'not-registered' | 'recreate-failed' | 'not-running';

export interface RotationResult {
  flow: CredentialFlow;
  tunnelId?: string;
  tokenId?: string;
  /** Labels relative to the deployment directory, in write order. */
  written: string[];
  previousEnv: string;
  stack: { outcome: StackOutcome; state: CloudflaredState; detail?: string; registered: number; error?: UserError };
}

export interface DeploymentForRotation {
  paths: DeploymentPaths;
  envText: string;
  flow: CredentialFlow;
  currentToken?: string;
}

export async function readDeploymentForRotation(dir: string): Promise<DeploymentForRotation> {
  const paths = deploymentPaths(dir);
  const envText = await readEnvTextIfExists(paths.env);
  if (envText === undefined) {
    throw new ValidationError(`${paths.dir} is not a deployment: it has no .env`, `run mcp-tunnel init --dir ${dir} first (or pass --dir to the deployment directory)`, 'DEPLOYMENT_NOT_FOUND');
  }
  const env = parseEnvFile(envText);
  const fromFile = (await readTextIfExists(paths.tunnelToken))?.split('\n')[0]?.trim();
  return { paths, envText, flow: readWifSettings(envText).flow ?? 'manual', currentToken: env.TUNNEL_TOKEN || fromFile || undefined };
}

function decodeToken(token: string | undefined): { a?: unknown; t?: unknown } | undefined {
  return token ? decodeTunnelToken(token) : undefined;
}

export async function rotateTunnelToken(options: RotationOptions): Promise<RotationResult> {
  const emit = options.onProgress ?? (() => undefined);
  const deployment = await readDeploymentForRotation(options.dir);
  const { paths } = deployment;
  let token: string;
  let tunnelId: string | undefined;
  let tokenId: string | undefined;

  if (options.api) {
    tunnelId = await readStoredTunnelId(paths);
    if (!tunnelId) throw new ValidationError('data/tunnel-id is missing', `run mcp-tunnel init --flow wif --dir ${options.dir} first`, 'TUNNEL_ID_MISSING');
    const { client, reason } = options.api;
    const id = tunnelId;
    let answer;
    try {
      answer = await client.beta.tunnels.rotateToken(id, reason ? { reason } : {});
    } catch (err) {
      throw explainApiError(err, { operation: 'rotate-token', apiUrl: options.api.apiUrl, federation: options.api.federation, tunnelId: id, tunnelIdOrigin: 'data/tunnel-id' });
    }
    token = checkApiToken(answer.tunnel_token, 'rotate_token');
    tokenId = answer.id;
    emit({ type: 'rotated', tunnelId: id, tokenId });
  } else {
    if (!options.newToken) throw new ValidationError('no new tunnel token was given', 'pass --tunnel-token-file FILE or --tunnel-token-stdin', 'TUNNEL_TOKEN_MISSING');
    token = options.newToken;
    if (token === deployment.currentToken) {
      throw new ValidationError(
        'the new tunnel token is the same as the current one; nothing to do',
        'rotate the token in the Console first (tunnel > Rotate token), then pass the new one',
        'TUNNEL_TOKEN_UNCHANGED',
      );
    }
    const before = decodeToken(deployment.currentToken);
    const after = decodeToken(token);
    if (before && after && (before.a !== after.a || before.t !== after.t) && !options.force) {
      throw new ValidationError(
        'the new tunnel token belongs to another tunnel than the current one',
        'check that you copied the token of this deployment\'s tunnel (data/tunnel-id); pass --force to use it anyway',
        'TUNNEL_TOKEN_OTHER_TUNNEL',
      );
    }
  }

  // One transaction (deployment/transaction.ts): previous .env first (the rollback), then the token file, then
  // .env (what compose reads); a run killed half-way is completed or rolled back by the next one.
  const label = (p: string): string => p.slice(paths.dir.length + 1);
  const nextEnv = updateEnvFile(deployment.envText, [{ key: 'TUNNEL_TOKEN', value: token }]);
  const changes = [
    { path: paths.envPrevious, content: deployment.envText, options: { mode: 0o600 } },
    { path: paths.tunnelToken, content: `${token}\n`, options: { mode: 0o600 } },
    { path: paths.env, content: nextEnv, options: { mode: 0o600 } },
  ];
  const written = changes.map((c) => label(c.path));
  try {
    await writeFilesTogether(paths.dir, 'rotate-token', changes);
  } catch (err) {
    if (options.api && isUserError(err)) {
      throw new EnvironmentError(
        `the token was rotated, but writing it failed: ${err.message}`,
        `fix the cause, then fetch the new token with: mcp-tunnel init --flow wif --dir ${options.dir}`,
        err,
        'TOKEN_ROTATED_NOT_SAVED',
      );
    }
    throw err;
  }
  emit({ type: 'written', files: written });

  const result: RotationResult = {
    flow: options.api ? 'wif' : 'manual',
    tunnelId,
    tokenId,
    written,
    previousEnv: paths.envPrevious,
    stack: { outcome: 'not-running', state: 'absent', registered: 0 },
  };

  const { state, detail } = await options.stack.cloudflaredState();
  result.stack.state = state;
  result.stack.detail = detail;
  emit({ type: 'stack', state, detail });
  if (state !== 'running') return result;

  try {
    await options.stack.recreateCloudflared();
  } catch (err) {
    if (!isUserError(err)) throw err;
    result.stack.outcome = 'recreate-failed';
    result.stack.error = err;
    return result;
  }
  emit({ type: 'recreated' });
  const { registered } = await options.stack.waitForRegistration(options.waitTimeoutMs);
  result.stack.registered = registered;
  result.stack.outcome = registered >= HEALTHY_CONNECTIONS ? 'registered' : registered > 0 ? 'partial' : 'not-registered';
  return result;
}
