import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { detectComposeCommand } from '../../src/docker/compose-command.js';
import { createTunnelsClient, withWifSettings } from '../../src/anthropic/index.js';
import type { CloudflaredState, StackControl } from '../../src/docker/stack-control.js';
import { rotateTunnelToken, type RotationOptions } from '../../src/ops/rotate-token.js';
import { parseEnvFile, updateEnvFile } from '../../src/deployment/env-file.js';
import { runRotateToken } from '../../src/cli/commands/rotate-token.js';
import { EnvironmentError, ExitCode, UserError } from '../../src/errors.js';
import { fakeJwt, startAnthropicStandin, type AnthropicStandin } from '../helpers/anthropic-standin.js';
import { fakeTunnelToken } from '../helpers/cli.js';

/**
 * rotate-token's logic in both flows, with the real SDK against the stand-in for the API and a double of
 * StackControl for cloudflared (the Docker side belongs to the orchestration work and its own tests).
 */
let work: string;
let standin: AnthropicStandin;
let jwt: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-rotate-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
beforeEach(async () => {
  standin = await startAnthropicStandin();
  jwt = fakeJwt();
  standin.acceptJwt(jwt);
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await standin.close();
});

const read = (dir: string, rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
const mode = (dir: string, rel: string): number => fs.statSync(path.join(dir, rel)).mode & 0o777;

interface Double extends StackControl {
  events: string[];
  tokenAtRecreate?: string;
}

function stackDouble(dir: string, opts: { state?: CloudflaredState; registered?: number; recreateError?: UserError } = {}): Double {
  const double: Double = {
    events: [],
    async cloudflaredState() {
      double.events.push('state');
      return { state: opts.state ?? 'running', detail: opts.state === 'unreachable' ? 'Docker is not reachable (ENOENT)' : undefined };
    },
    async recreateCloudflared() {
      double.events.push('recreate');
      // What a real recreate would start cloudflared with: the .env on disk at that moment.
      double.tokenAtRecreate = parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN;
      if (opts.recreateError) throw opts.recreateError;
    },
    async waitForRegistration(timeoutMs) {
      double.events.push(`wait ${timeoutMs}`);
      return { registered: opts.registered ?? 4 };
    },
  };
  return double;
}

/** A deployment as init leaves it: .env (0600) with TUNNEL_TOKEN, data/tunnel-id and data/tunnel-token. */
function deployment(token: string, tunnelId: string, wif: boolean): string {
  const dir = fs.mkdtempSync(path.join(work, 'dep-'));
  const jwtFile = path.join(dir, 'jwt');
  fs.writeFileSync(jwtFile, jwt, { mode: 0o600 });
  let env = updateEnvFile(undefined, [
    { key: 'TUNNEL_TOKEN', value: token },
    { key: 'COMPOSE_PROJECT_NAME', value: 'rotatetest' },
  ]);
  if (wif) {
    env = withWifSettings(env, {
      apiUrl: standin.url,
      federationRuleId: standin.federationRuleId,
      organizationId: standin.organizationId,
      identityTokenFile: jwtFile,
    });
  }
  fs.writeFileSync(path.join(dir, '.env'), env, { mode: 0o600 });
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'data/tunnel-id'), `${tunnelId}\n`);
  fs.writeFileSync(path.join(dir, 'data/tunnel-token'), `${token}\n`, { mode: 0o600 });
  return dir;
}

function wifApi(dir: string, reason?: string): RotationOptions['api'] {
  const client = createTunnelsClient({
    apiUrl: standin.url,
    federationRuleId: standin.federationRuleId,
    organizationId: standin.organizationId,
    identityToken: { kind: 'file', path: path.join(dir, 'jwt'), origin: 'test' },
    retryBaseDelayMs: 2,
  });
  return { client, apiUrl: standin.url, reason };
}

describe('rotate-token, programmatic flow', () => {
  it('rotates through the API, writes the new token atomically, keeps .env.previous, recreates cloudflared', async () => {
    const tunnel = standin.seedTunnel();
    const dir = deployment(tunnel.token, tunnel.id, true);
    const envBefore = read(dir, '.env');
    const stack = stackDouble(dir);
    const result = await rotateTunnelToken({ dir, stack, waitTimeoutMs: 5000, api: wifApi(dir, 'quarterly rotation') });

    const fresh = standin.currentToken(tunnel.id)!;
    expect(fresh.value).not.toBe(tunnel.token);
    expect(result).toMatchObject({ flow: 'wif', tunnelId: tunnel.id, tokenId: fresh.id, stack: { outcome: 'registered', registered: 4 } });
    expect(result.written).toEqual(['.env.previous', 'data/tunnel-token', '.env']);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(fresh.value);
    expect(read(dir, 'data/tunnel-token')).toBe(`${fresh.value}\n`);
    expect(read(dir, '.env.previous')).toBe(envBefore);
    expect(parseEnvFile(read(dir, '.env.previous')).TUNNEL_TOKEN).toBe(tunnel.token);
    for (const f of ['.env', '.env.previous', 'data/tunnel-token']) expect(mode(dir, f)).toBe(0o600);
    // Everything else in .env is kept as it was.
    expect(read(dir, '.env').replace(fresh.value, 'X')).toBe(envBefore.replace(tunnel.token, 'X'));

    expect(stack.events).toEqual(['state', 'recreate', 'wait 5000']);
    expect(stack.tokenAtRecreate).toBe(fresh.value);
    expect(standin.callsTo('POST', `/v1/tunnels/${tunnel.id}/rotate_token`).map((c) => c.body)).toEqual([{ reason: 'quarterly rotation' }]);
  });

  it('when the API refuses, nothing is written and cloudflared is left alone', async () => {
    const tunnel = standin.seedTunnel();
    const dir = deployment(tunnel.token, tunnel.id, true);
    const envBefore = read(dir, '.env');
    standin.failNext({ path: /\/rotate_token$/, status: 403 });
    const stack = stackDouble(dir);
    const err = await rotateTunnelToken({ dir, stack, waitTimeoutMs: 1000, api: wifApi(dir) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/denied the request to rotate the tunnel token \(HTTP 403/);
    expect((err as UserError).hint).toContain('workspace:manage_tunnels');
    expect(read(dir, '.env')).toBe(envBefore);
    expect(fs.existsSync(path.join(dir, '.env.previous'))).toBe(false);
    expect(stack.events).toEqual([]);
    expect(standin.currentToken(tunnel.id)!.value).toBe(tunnel.token);
  });

  it('through the CLI code path: settings come from .env, a stopped stack is reported, not started', async () => {
    const tunnel = standin.seedTunnel();
    const dir = deployment(tunnel.token, tunnel.id, true);
    const stack = stackDouble(dir, { state: 'absent' });
    process.env.MCP_TUNNEL_API_RETRY_BASE_MS = '2';
    try {
      await runRotateToken({ dir, waitTimeout: '30s', reason: 'ops' }, stack);
    } finally {
      delete process.env.MCP_TUNNEL_API_RETRY_BASE_MS;
    }
    expect(stack.events).toEqual(['state']);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(standin.currentToken(tunnel.id)!.value);
    const printed = vi.mocked(process.stdout.write).mock.calls.map((c) => String(c[0])).join('');
    expect(printed).toContain(`rotated the token of ${tunnel.id}`);
    expect(printed).toContain('The stack is not running');
    expect(printed).toContain(`${detectComposeCommand() ?? 'mcp-tunnel'} up`);
    expect(printed).not.toContain(standin.currentToken(tunnel.id)!.value);
  });
});

describe('rotate-token, manual flow', () => {
  const OLD = fakeTunnelToken('old');
  /** A new token for the same tunnel (same a and t), as the Console's "Rotate token" gives. */
  const rotatedFor = (token: string, secret: string): string => {
    const o = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, string>;
    return Buffer.from(JSON.stringify({ ...o, s: Buffer.from(secret).toString('base64') })).toString('base64');
  };

  it('writes the new token, recreates cloudflared, waits for four registrations', async () => {
    const dir = deployment(OLD, 'tnl_manual1', false);
    const next = rotatedFor(OLD, 'next');
    const stack = stackDouble(dir);
    const r = await rotateTunnelToken({ dir, stack, waitTimeoutMs: 2000, newToken: next });
    expect(r).toMatchObject({ flow: 'manual', stack: { outcome: 'registered', registered: 4 } });
    expect(stack.tokenAtRecreate).toBe(next);
    expect(read(dir, 'data/tunnel-token')).toBe(`${next}\n`);
    expect(parseEnvFile(read(dir, '.env.previous')).TUNNEL_TOKEN).toBe(OLD);
    expect(standin.calls).toEqual([]); // the manual flow never calls the API
  });

  it('when the new cloudflared does not register: says so, keeps the previous token in .env.previous (0600) for rollback', async () => {
    const dir = deployment(OLD, 'tnl_manual2', false);
    const next = rotatedFor(OLD, 'next');
    const stack = stackDouble(dir, { registered: 0 });
    const err = (await runRotateToken({ dir, waitTimeout: '7s', tunnelTokenFile: writeToken(dir, next) }, stack).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(EnvironmentError);
    expect(err.exitCode).toBe(ExitCode.environment);
    expect(err.message).toBe('cloudflared did not register a tunnel connection with the new token within 7s; the previous .env is kept in .env.previous');
    expect(err.hint).toContain(`cp ${path.join(dir, '.env.previous')} ${path.join(dir, '.env')} && ${detectComposeCommand() ?? 'mcp-tunnel'} up`);
    expect(stack.events).toEqual(['state', 'recreate', 'wait 7000']);
    expect(mode(dir, '.env.previous')).toBe(0o600);
    expect(parseEnvFile(read(dir, '.env.previous')).TUNNEL_TOKEN).toBe(OLD);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(next);

    // The rollback the hint describes brings the previous token back for compose.
    fs.copyFileSync(path.join(dir, '.env.previous'), path.join(dir, '.env'));
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(OLD);
  });

  it('fewer than four registrations is a warning, a failed recreate an error', async () => {
    const dir = deployment(OLD, 'tnl_manual3', false);
    const partial = await rotateTunnelToken({ dir, stack: stackDouble(dir, { registered: 2 }), waitTimeoutMs: 100, newToken: rotatedFor(OLD, 'a') });
    expect(partial.stack).toMatchObject({ outcome: 'partial', registered: 2 });

    const failing = stackDouble(dir, { recreateError: new EnvironmentError('cannot recreate x: boom', 'docker compose up -d --force-recreate cloudflared') });
    const r = await rotateTunnelToken({ dir, stack: failing, waitTimeoutMs: 100, newToken: rotatedFor(OLD, 'b') });
    expect(r.stack.outcome).toBe('recreate-failed');
    expect(failing.events).toEqual(['state', 'recreate']);
    const viaCli = (await runRotateToken({ dir, waitTimeout: '1s', tunnelTokenFile: writeToken(dir, rotatedFor(OLD, 'c')) }, stackDouble(dir, { recreateError: new EnvironmentError('boom') })).catch(
      (e: unknown) => e,
    )) as UserError;
    expect(viaCli.message).toMatch(/the token files are updated, but cloudflared could not be recreated: boom/);
  });

  it('a stack that is not running (or Docker unreachable) only gets the files', async () => {
    for (const state of ['absent', 'stopped', 'unreachable'] as const) {
      const dir = deployment(OLD, 'tnl_manual4', false);
      const stack = stackDouble(dir, { state });
      const r = await rotateTunnelToken({ dir, stack, waitTimeoutMs: 100, newToken: rotatedFor(OLD, state) });
      expect(r.stack).toMatchObject({ outcome: 'not-running', state });
      expect(stack.events).toEqual(['state']);
      expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(rotatedFor(OLD, state));
    }
  });

  it('refuses the same token, and a token of another tunnel unless forced', async () => {
    const dir = deployment(OLD, 'tnl_manual5', false);
    const stack = stackDouble(dir);
    const same = (await rotateTunnelToken({ dir, stack, waitTimeoutMs: 100, newToken: OLD }).catch((e: unknown) => e)) as UserError;
    expect(same.exitCode).toBe(ExitCode.usage);
    expect(same.message).toMatch(/same as the current one/);
    const other = fakeTunnelToken('other');
    const foreign = (await rotateTunnelToken({ dir, stack, waitTimeoutMs: 100, newToken: other }).catch((e: unknown) => e)) as UserError;
    expect(foreign.message).toMatch(/belongs to another tunnel/);
    expect(foreign.hint).toMatch(/--force/);
    expect(fs.existsSync(path.join(dir, '.env.previous'))).toBe(false);
    expect(stack.events).toEqual([]);
    const forced = await rotateTunnelToken({ dir, stack, waitTimeoutMs: 100, newToken: other, force: true });
    expect(forced.stack.outcome).toBe('registered');
  });
});

function writeToken(dir: string, token: string): string {
  const file = path.join(dir, `new-token-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}
