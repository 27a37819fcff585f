import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/deployment/env-file.js';
import { fakeJwt, startAnthropicStandin, type AnthropicStandin } from '../helpers/anthropic-standin.js';
import { fakeTunnelToken, runCli, snapshotTree, type CliResult } from '../helpers/cli.js';

/**
 * `mcp-tunnel rotate-token` as a user runs it (built CLI, CI=true, no TTY), on deployments made by
 * `mcp-tunnel init` in both flows. No stack is running for these deployments, so the command updates the
 * files and says how to start the stack (the recreate path is covered with a StackControl double and in
 * docker-orchestration.test.ts, on a real stack).
 */
let work: string;
let standin: AnthropicStandin;
let jwt: string;
let jwtFile: string;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-rotate-cli-'));
  for (const key of Object.keys(process.env)) {
    if (key.startsWith('ANTHROPIC_')) {
      savedEnv[key] = process.env[key];
      delete process.env[key];
    }
  }
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  Object.assign(process.env, savedEnv);
});
beforeEach(async () => {
  standin = await startAnthropicStandin();
  jwt = fakeJwt();
  standin.acceptJwt(jwt);
  jwtFile = path.join(fs.mkdtempSync(path.join(work, 'jwt-')), 'token.jwt');
  fs.writeFileSync(jwtFile, jwt, { mode: 0o600 });
});
afterEach(async () => standin.close());

const ENV = { MCP_TUNNEL_API_RETRY_BASE_MS: '2' };
const cli = (args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> =>
  runCli(args, { input: options.input, env: { ...ENV, ...options.env } });
const read = (dir: string, rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
const mode = (dir: string, rel: string): number => fs.statSync(path.join(dir, rel)).mode & 0o777;
const newDir = (): string => path.join(fs.mkdtempSync(path.join(work, 'dep-')), 'deployment');
const notRunning = /The stack is not running|Docker is not reachable/;

function sameTunnel(token: string, secret: string): string {
  const o = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, string>;
  return Buffer.from(JSON.stringify({ ...o, s: Buffer.from(secret).toString('base64') })).toString('base64');
}

function tokenFile(token: string): string {
  const file = path.join(fs.mkdtempSync(path.join(work, 'tok-')), 'token');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

async function wifDeployment(): Promise<{ dir: string; tunnelId: string }> {
  const dir = newDir();
  const r = await cli([
    'init', '--flow', 'wif', '--dir', dir, '--federation-rule-id', standin.federationRuleId, '--organization-id', standin.organizationId,
    '--identity-token-file', jwtFile, '--api-url', standin.url, '--route', 'docs=http://10.0.0.5:8080',
  ]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return { dir, tunnelId: read(dir, 'data/tunnel-id').trim() };
}

async function manualDeployment(token: string): Promise<string> {
  const dir = newDir();
  const r = await cli(['init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', tokenFile(token), '--route', 'docs=http://10.0.0.5:8080']);
  expect(r.exitCode).toBe(0);
  return dir;
}

describe('rotate-token (CLI)', () => {
  it('wif: rotates through the API with no flags, writes the token, keeps .env.previous', async () => {
    const { dir, tunnelId } = await wifDeployment();
    const old = standin.currentToken(tunnelId)!.value;
    standin.clearCalls();
    const r = await cli(['rotate-token', '--dir', dir, '--reason', 'scheduled']);
    expect(r.stderr).toMatch(/^(|warning: Docker is not reachable.*)$/);
    expect(r.exitCode).toBe(0);
    const fresh = standin.currentToken(tunnelId)!;
    expect(fresh.value).not.toBe(old);
    expect(r.stdout).toContain(`rotated the token of ${tunnelId} (${fresh.id})`);
    expect(r.stdout).toContain('wrote the new token to data/tunnel-token and .env');
    expect(r.stdout).toMatch(notRunning);
    expect(r.stdout + r.stderr).not.toContain(fresh.value);
    expect(r.stdout + r.stderr).not.toContain(old);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(fresh.value);
    expect(read(dir, 'data/tunnel-token')).toBe(`${fresh.value}\n`);
    expect(parseEnvFile(read(dir, '.env.previous')).TUNNEL_TOKEN).toBe(old);
    expect(mode(dir, '.env.previous')).toBe(0o600);
    expect(standin.calls.map((c) => `${c.method} ${c.path.replace(tunnelId, '{id}')}`)).toEqual(['POST /v1/oauth/token', 'POST /v1/tunnels/{id}/rotate_token']);
    expect(standin.callsTo('POST', /rotate_token$/)[0]!.body).toEqual({ reason: 'scheduled' });

    // A later init finds everything in place: no create, no registration, nothing to change.
    standin.clearCalls();
    const init = await cli(['init', '--dir', dir]);
    expect(init.exitCode).toBe(0);
    expect(init.stdout).toContain('nothing changed');
    expect(standin.calls.filter((c) => c.method === 'POST' && !/oauth|reveal_token/.test(c.path))).toEqual([]);
  });

  it('wif: API errors come back as one line and a hint, and nothing is written', async () => {
    const { dir } = await wifDeployment();
    const before = snapshotTree(dir);
    standin.failNext({ path: /rotate_token$/, status: 404 });
    const r = await cli(['rotate-token', '--dir', dir]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^error: tunnel tnl_\w+ was not found \(HTTP 404 not_found_error/);
    expect(r.stderr).toMatch(/\nhint: data\/tunnel-id names a tunnel this identity cannot see/);
    expect(snapshotTree(dir)).toEqual(before);

    const tokenFlag = await cli(['rotate-token', '--dir', dir, '--tunnel-token-file', tokenFile(fakeTunnelToken())]);
    expect(tokenFlag.exitCode).toBe(2);
    expect(tokenFlag.stderr).toMatch(/programmatic flow/);
  });

  it('manual: from --tunnel-token-file and from --tunnel-token-stdin', async () => {
    const old = fakeTunnelToken('m1');
    const dir = await manualDeployment(old);
    const next = sameTunnel(old, 'second');
    const r = await cli(['rotate-token', '--dir', dir, '--tunnel-token-file', tokenFile(next)]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(notRunning);
    expect(r.stdout + r.stderr).not.toContain(next);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(next);
    expect(read(dir, 'data/tunnel-token')).toBe(`${next}\n`);
    expect(parseEnvFile(read(dir, '.env.previous')).TUNNEL_TOKEN).toBe(old);

    const third = sameTunnel(old, 'third');
    const piped = await cli(['rotate-token', '--dir', dir, '--tunnel-token-stdin'], { input: `${third}\n` });
    expect(piped.exitCode).toBe(0);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(third);
    expect(parseEnvFile(read(dir, '.env.previous')).TUNNEL_TOKEN).toBe(next);
    expect(standin.calls).toEqual([]);
  });

  it('manual: refuses a missing, malformed, unchanged or foreign token (exit 2, nothing written)', async () => {
    const old = fakeTunnelToken('m2');
    const dir = await manualDeployment(old);
    const before = snapshotTree(dir);
    const cases: Array<[string[], RegExp]> = [
      [[], /missing the new tunnel token: pass --tunnel-token-file/],
      [['--tunnel-token-file', tokenFile('not-a-token')], /does not look like a tunnel token/],
      [['--tunnel-token-file', tokenFile(old)], /same as the current one/],
      [['--tunnel-token-file', tokenFile(fakeTunnelToken('elsewhere'))], /belongs to another tunnel/],
      [['--wait-timeout', 'soon', '--tunnel-token-file', tokenFile(sameTunnel(old, 'x'))], /invalid --wait-timeout "soon"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['rotate-token', '--dir', dir, ...args]);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^error: .*${message.source}`));
      expect(r.stderr).toMatch(/\nhint: /);
    }
    expect(snapshotTree(dir)).toEqual(before);

    const notDeployment = await cli(['rotate-token', '--dir', newDir(), '--tunnel-token-file', tokenFile(old)]);
    expect(notDeployment.exitCode).toBe(2);
    expect(notDeployment.stderr).toMatch(/is not a deployment: it has no \.env/);
  });
});
