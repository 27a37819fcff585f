import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { detectComposeCommand } from '../../src/docker/compose-command.js';
import { parseEnvFile } from '../../src/deployment/env-file.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { inspectCertificate } from '../../src/pki/index.js';
import { fakeJwt, startAnthropicStandin, type AnthropicStandin } from '../helpers/anthropic-standin.js';
import { runCli, snapshotTree, type CliResult } from '../helpers/cli.js';
import { expectReport } from '../helpers/json-reports.js';

/**
 * `mcp-tunnel init --flow wif` as a user runs it (the built CLI, CI=true, no TTY), against the local
 * stand-in of the Anthropic API: the real SDK inside the CLI talks to it through --api-url.
 */
let work: string;
let standin: AnthropicStandin;
let jwt: string;
let jwtFile: string;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-wif-cli-'));
  // The host's own federation settings must not leak into the CLI under test.
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
  jwt = fakeJwt({ jti: 'cli-1' });
  standin.acceptJwt(jwt);
  jwtFile = path.join(fs.mkdtempSync(path.join(work, 'jwt-')), 'token.jwt');
  fs.writeFileSync(jwtFile, jwt, { mode: 0o600 });
});
afterEach(async () => standin.close());

const TEST_ENV = { MCP_TUNNEL_API_RETRY_BASE_MS: '2' };
const newDir = (): string => path.join(fs.mkdtempSync(path.join(work, 'dep-')), 'deployment');
const read = (dir: string, rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
const mode = (p: string): number => fs.statSync(p).mode & 0o777;

function wifArgs(dir: string, extra: string[] = []): string[] {
  return [
    'init', '--flow', 'wif', '--dir', dir,
    '--federation-rule-id', standin.federationRuleId,
    '--organization-id', standin.organizationId,
    '--identity-token-file', jwtFile,
    '--api-url', standin.url,
    '--display-name', 'cli test',
    '--route', 'docs=http://10.0.0.5:8080',
    ...extra,
  ];
}

const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(args, { env: { ...TEST_ENV, ...env } });

function expectNoSecrets(r: CliResult, tunnelId?: string): void {
  const out = r.stdout + r.stderr;
  expect(out).not.toContain(jwt);
  expect(out).not.toMatch(/sk-ant-oat01-/);
  if (tunnelId) expect(out).not.toContain(standin.currentToken(tunnelId)!.value);
  expect(out).not.toMatch(/\n\s+at /); // no stack trace
}

describe('init --flow wif (CLI)', () => {
  it('--dry-run --json: one report (docs/json.md init), no request, nothing written', async () => {
    const dir = newDir();
    const r = await cli([...wifArgs(dir), '--dry-run', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = expectReport('init', r);
    expect(report).toMatchObject({ dryRun: true, flow: 'wif', tunnelId: null, tunnelDomain: null, files: [], urls: [] });
    expect(report.apiCalls).toEqual(expect.arrayContaining([expect.stringContaining('create a tunnel')]));
    expect(standin.calls).toEqual([]);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('--json: stdout is the one report (no provisioning lines), and a CA made by this run is not "reused"', async () => {
    const dir = newDir();
    const r = await cli([...wifArgs(dir), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { schemaVersion: number; report: string; flow: string; ca: { reused: boolean } };
    expect(report).toMatchObject({ schemaVersion: 1, report: 'init', flow: 'wif', ca: { reused: false } });
    const again = await cli([...wifArgs(dir), '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { ca: { reused: boolean } }).ca.reused).toBe(true);
  });

  it('without --api-url, ANTHROPIC_BASE_URL (the SDK\'s own variable) names the API, and .env keeps it for the next run', async () => {
    const dir = newDir();
    const args = wifArgs(dir);
    args.splice(args.indexOf('--api-url'), 2);
    const r = await cli(args, { ANTHROPIC_BASE_URL: standin.url });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(standin.calls.some((c) => c.path === '/v1/tunnels' && c.method === 'POST')).toBe(true);
    expect(parseEnvFile(read(dir, '.env')).MCP_TUNNEL_API_URL).toBe(standin.url);
  });

  it('provisions through the API and writes the same layout as the setup component', async () => {
    const dir = newDir();
    const r = await cli(wifArgs(dir));
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const tunnelId = read(dir, 'data/tunnel-id').trim();
    expect(tunnelId).toMatch(/^tnl_/);
    expectNoSecrets(r, tunnelId);
    expect(r.stdout).toContain(`created tunnel ${tunnelId} "cli test"`);
    expect(r.stdout).toMatch(/registered the CA on the tunnel \(tcrt_/);
    expect(r.stdout).toMatch(/revealed the tunnel token \(ttkn_/);
    // The next step names the compose command this host has (docker-compose v1 here), else mcp-tunnel up.
    expect(r.stdout).toContain(`${detectComposeCommand() ?? 'mcp-tunnel'} up`);

    // data/: exactly the setup component's files, secrets 0600.
    expect(fs.readdirSync(path.join(dir, 'data')).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key', 'tunnel-domain', 'tunnel-id', 'tunnel-token']);
    const token = standin.currentToken(tunnelId)!.value;
    const domain = standin.tunnelList()[0]!.domain;
    expect(read(dir, 'data/tunnel-domain')).toBe(`${domain}\n`);
    expect(read(dir, 'data/tunnel-token')).toBe(`${token}\n`);
    for (const f of ['data/ca.key', 'data/tls.key', 'data/tunnel-token', '.env']) expect(mode(path.join(dir, f))).toBe(0o600);
    const fingerprint = inspectCertificate(read(dir, 'data/ca.crt')).fingerprintSha256;
    expect(standin.activeCertificates(tunnelId).map((c) => c.fingerprint)).toEqual([fingerprint]);
    expect(inspectCertificate(read(dir, 'data/tls.crt')).dnsNames).toEqual(expect.arrayContaining([domain, `*.${domain}`]));
    expect(parseProxyConfig(read(dir, 'config/mcp-proxy.yaml')).tunnelDomain).toBe(domain);
    expect(fs.existsSync(path.join(dir, 'compose.yaml'))).toBe(true);

    // .env: the token for compose, and the WIF settings for the next run (never the JWT).
    const envText = read(dir, '.env');
    const env = parseEnvFile(envText);
    expect(env.TUNNEL_TOKEN).toBe(token);
    expect(env).toMatchObject({
      MCP_TUNNEL_FLOW: 'wif',
      MCP_TUNNEL_API_URL: standin.url,
      ANTHROPIC_FEDERATION_RULE_ID: standin.federationRuleId,
      ANTHROPIC_ORGANIZATION_ID: standin.organizationId,
      ANTHROPIC_IDENTITY_TOKEN_FILE: jwtFile,
    });
    expect(envText).not.toContain(jwt);
  });

  it('a second run (with or without flags) makes no state-changing call and changes no file', async () => {
    const dir = newDir();
    expect((await cli(wifArgs(dir))).exitCode).toBe(0);
    const before = snapshotTree(dir);
    const tunnelId = read(dir, 'data/tunnel-id').trim();

    standin.clearCalls();
    const again = await cli(wifArgs(dir));
    expect(again.stderr).toBe('');
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain(`tunnel ${tunnelId} (from data/tunnel-id)`);
    expect(again.stdout).toContain('already registered on the tunnel');
    expect(again.stdout).toContain('is up to date; nothing changed');
    // Only reads (and the reveal, which does not rotate): no POST /v1/tunnels, no POST certificates.
    expect(standin.calls.map((c) => `${c.method} ${c.path.replace(tunnelId, '{id}')}`)).toEqual([
      'POST /v1/oauth/token',
      'GET /v1/tunnels/{id}',
      'GET /v1/tunnels/{id}/certificates',
      'POST /v1/tunnels/{id}/reveal_token',
    ]);
    expect(snapshotTree(dir)).toEqual(before);

    // No flags at all: the flow and its settings come from .env.
    standin.clearCalls();
    const bare = await cli(['init', '--dir', dir]);
    expect(bare.stderr).toBe('');
    expect(bare.exitCode).toBe(0);
    expect(bare.stdout).toContain('is up to date; nothing changed');
    expect(standin.callsTo('POST', '/v1/tunnels')).toEqual([]);
    expect(standin.callsTo('POST', /\/certificates$/)).toEqual([]);
    expect(standin.callsTo('POST', '/v1/oauth/token')).toHaveLength(1);
    expect(snapshotTree(dir)).toEqual(before);
    expect(standin.tunnelList()).toHaveLength(1);
    expect(standin.activeCertificates(tunnelId)).toHaveLength(1);
  });

  it('attaches with --tunnel-id and picks up a token rotated elsewhere on the next run', async () => {
    const seeded = standin.seedTunnel({ displayName: 'console' });
    const dir = newDir();
    const r = await cli(wifArgs(dir, ['--tunnel-id', seeded.id]));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`attached to tunnel ${seeded.id}`);
    expect(standin.callsTo('POST', '/v1/tunnels')).toEqual([]);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(seeded.token);

    // Another host rotated the token: the re-run reveals the new one (no --force needed for that).
    const client = await import('../../src/anthropic/index.js');
    const c = client.createTunnelsClient({
      apiUrl: standin.url,
      federationRuleId: standin.federationRuleId,
      organizationId: standin.organizationId,
      identityToken: client.fileSource(jwtFile, 'test'),
    });
    const rotated = await c.beta.tunnels.rotateToken(seeded.id, {});
    const again = await cli(['init', '--dir', dir]);
    expect(again.stderr).toBe('');
    expect(again.exitCode).toBe(0);
    expect(parseEnvFile(read(dir, '.env')).TUNNEL_TOKEN).toBe(rotated.tunnel_token);
    expect(read(dir, 'data/tunnel-token')).toBe(`${rotated.tunnel_token}\n`);
    expectNoSecrets(again, seeded.id);
  });

  it('uses the new JWT when the identity token file changes between runs', async () => {
    const dir = newDir();
    expect((await cli(wifArgs(dir))).exitCode).toBe(0);
    const jwt2 = fakeJwt({ jti: 'cli-2' });
    fs.writeFileSync(jwtFile, jwt2);
    standin.rejectJwt(jwt);
    standin.acceptJwt(jwt2);
    const again = await cli(['init', '--dir', dir]);
    expect(again.exitCode).toBe(0);
    expect(standin.callsTo('POST', '/v1/oauth/token').map((c) => c.assertion?.jti)).toEqual(['cli-1', 'cli-2']);
  });

  it('takes the JWT from --identity-token-command (no shell) and remembers the command', async () => {
    const script = path.join(path.dirname(jwtFile), 'print-jwt.mjs');
    fs.writeFileSync(script, `import fs from 'node:fs'; process.stdout.write(fs.readFileSync(${JSON.stringify(jwtFile)}, 'utf8'));\n`);
    const command = `${process.execPath} ${script}`;
    const dir = newDir();
    const args = wifArgs(dir).filter((a, i, all) => a !== '--identity-token-file' && all[i - 1] !== '--identity-token-file');
    const r = await cli([...args, '--identity-token-command', command]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const env = parseEnvFile(read(dir, '.env'));
    expect(env.MCP_TUNNEL_IDENTITY_TOKEN_COMMAND).toBe(command);
    expect(env.ANTHROPIC_IDENTITY_TOKEN_FILE).toBeUndefined();
    standin.clearCalls();
    expect((await cli(['init', '--dir', dir])).exitCode).toBe(0);
    expect(standin.callsTo('POST', '/v1/oauth/token')[0]!.assertion?.jti).toBe('cli-1');

    const exit3 = path.join(path.dirname(jwtFile), 'exit3.mjs');
    fs.writeFileSync(exit3, 'process.stderr.write("secret-ish diagnostics\\n"); process.exit(3);\n');
    const failing = await cli([...args, '--identity-token-command', `${process.execPath} ${exit3}`]);
    expect(failing.exitCode, failing.stderr).toBe(3);
    expect(failing.stderr).toContain('error: the identity token command exited with 3');
    expect(failing.stderr).not.toContain('secret-ish');
  });

  it('takes the JWT from ANTHROPIC_IDENTITY_TOKEN (and does not store it)', async () => {
    const dir = newDir();
    const args = wifArgs(dir).filter((a, i, all) => a !== '--identity-token-file' && all[i - 1] !== '--identity-token-file');
    const r = await cli(args, { ANTHROPIC_IDENTITY_TOKEN: jwt });
    expect(r.exitCode).toBe(0);
    expect(read(dir, '.env')).not.toContain(jwt);
  });

  it('retries 429/5xx and shows it in the call log', async () => {
    standin.failNext({ method: 'POST', path: '/v1/oauth/token', status: 503 });
    standin.failNext({ method: 'GET', path: /\/certificates$/, status: 500 });
    standin.failNext({ method: 'POST', path: '/v1/tunnels', status: 429 });
    const r = await cli(wifArgs(newDir()));
    expect(r.exitCode).toBe(0);
    expect(standin.callsTo('POST', '/v1/oauth/token').map((c) => c.status)).toEqual([503, 200]);
    expect(standin.callsTo('POST', '/v1/tunnels').map((c) => c.status)).toEqual([429, 200]);
    expect(standin.callsTo('GET', /\/certificates$/).map((c) => c.status)).toEqual([500, 200]);
  });
});

describe('init --flow wif: bad input and refusals (one line, a hint, nothing written)', () => {
  const cases: Array<[string, (dir: string) => string[], RegExp]> = [
    ['a malformed federation rule ID', (d) => wifArgs(d, ['--federation-rule-id', 'rule-1']), /invalid federation rule ID "rule-1"/],
    ['a malformed organization ID', (d) => wifArgs(d, ['--organization-id', 'acme']), /invalid organization ID "acme"/],
    ['a malformed workspace ID', (d) => wifArgs(d, ['--workspace-id', 'ws-1']), /invalid workspace ID "ws-1"/],
    ['a malformed tunnel ID', (d) => wifArgs(d, ['--tunnel-id', 'tunnel-1']), /invalid tunnel ID "tunnel-1"/],
    ['a plain-http API URL', (d) => wifArgs(d, ['--api-url', 'http://api.example.com']), /invalid --api-url .*must be https/],
    ['two identity sources', (d) => wifArgs(d, ['--identity-token-command', 'echo x']), /mutually exclusive/],
    ['a missing identity token file', (d) => wifArgs(d, ['--identity-token-file', '/nonexistent/jwt']), /identity token file \/nonexistent\/jwt .* does not exist/],
    ['a manual-flow flag', (d) => wifArgs(d, ['--tunnel-domain', 'abcd1234.tunnel.anthropic.com']), /--tunnel-domain is not used with --flow wif/],
    ['no federation rule', (d) => wifArgs(d).filter((a, i, all) => a !== '--federation-rule-id' && all[i - 1] !== '--federation-rule-id'), /missing --federation-rule-id \(or ANTHROPIC_FEDERATION_RULE_ID\)/],
    ['no route', (d) => wifArgs(d).filter((a, i, all) => a !== '--route' && all[i - 1] !== '--route'), /missing --route/],
    ['an https upstream without a CA to verify it', (d) => wifArgs(d, ['--route', 'secure=https://10.0.0.6:8443']), /route "secure" has an https upstream, but there is no CA/],
    ['an upstream outside the allowed IPs', (d) => wifArgs(d, ['--route', 'pub=http://8.8.8.8:80']), /route "pub" points to 8\.8\.8\.8/],
  ];
  for (const [what, args, message] of cases) {
    it(`refuses ${what} before any request (exit 2)`, async () => {
      const dir = newDir();
      const r = await cli(args(dir));
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^error: .*${message.source}`));
      expect(r.stderr).toMatch(/\nhint: /);
      expect(r.stderr.trim().split('\n')).toHaveLength(2);
      expect(fs.existsSync(dir)).toBe(false);
      expect(standin.calls).toEqual([]);
    });
  }

  it('a refused exchange (401): exit 3, what to check, where to look; no JWT, nothing but data/ untouched', async () => {
    standin.rejectJwt(jwt);
    const dir = newDir();
    const r = await cli(wifArgs(dir));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('error: the token exchange was refused (HTTP 401 authentication_error: Authentication failed)');
    expect(r.stderr).toMatch(/hint: .*audience \(aud\) and subject \(sub\).*authentication history/);
    expectNoSecrets(r);
    expect(fs.existsSync(path.join(dir, 'data/tunnel-id'))).toBe(false);
    expect(fs.existsSync(path.join(dir, '.env'))).toBe(false);
  });

  it('a missing scope (403) and an unreachable API name the fix', async () => {
    standin.scope = 'workspace:read';
    const r = await cli(wifArgs(newDir()));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/hint: .*workspace:manage_tunnels/);

    const url = standin.url;
    await standin.close();
    standin = await startAnthropicStandin();
    const down = await cli(wifArgs(newDir(), ['--api-url', url]), { MCP_TUNNEL_API_MAX_RETRIES: '0' });
    expect(down.exitCode).toBe(3);
    expect(down.stderr).toMatch(/error: cannot reach the token endpoint at .* \(ECONNREFUSED\)/);
    expect(down.stderr).toMatch(/hint: check --api-url/);
  });

  it('the certificate cap: lists the registered ones; data/tunnel-id and the CA stay for the re-run', async () => {
    const seeded = standin.seedTunnel();
    const a = standin.seedCertificate(seeded.id, { fingerprint: 'ab'.repeat(32), expiresAt: '2031-01-01T00:00:00.000Z' });
    const b = standin.seedCertificate(seeded.id, { fingerprint: 'cd'.repeat(32), expiresAt: '2032-01-01T00:00:00.000Z' });
    const dir = newDir();
    const r = await cli(wifArgs(dir, ['--tunnel-id', seeded.id]));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain(`error: tunnel ${seeded.id} already has 2 active CA certificates`);
    expect(r.stderr).toContain(`${a.id} (fingerprint ${'ab'.repeat(32)}, expires 2031-01-01)`);
    expect(r.stderr).toContain(`${b.id} (fingerprint ${'cd'.repeat(32)}, expires 2032-01-01)`);
    expect(r.stderr).toMatch(/hint: archive/);
    expect(standin.callsTo('POST', /\/certificates$/)).toEqual([]);
    expect(read(dir, 'data/tunnel-id')).toBe(`${seeded.id}\n`);
    expect(fs.existsSync(path.join(dir, '.env'))).toBe(false);

    // Once a slot is free, the re-run (no flags needed but the federation ones) completes.
    standin.failNext({ path: '/never', status: 500 });
    const c = (await import('../../src/anthropic/index.js')).createTunnelsClient({
      apiUrl: standin.url,
      federationRuleId: standin.federationRuleId,
      organizationId: standin.organizationId,
      identityToken: { kind: 'value', value: jwt, origin: 'test' },
    });
    await c.beta.tunnels.certificates.archive(a.id, { tunnel_id: seeded.id });
    const again = await cli(wifArgs(dir));
    expect(again.stderr).toBe('');
    expect(again.exitCode).toBe(0);
    expect(standin.callsTo('POST', /\/certificates$/).map((x) => x.status)).toEqual([200]);
    expect(standin.activeCertificates(seeded.id)).toHaveLength(2);
  });

  it('a different --tunnel-id than data/tunnel-id needs --force', async () => {
    const dir = newDir();
    expect((await cli(wifArgs(dir))).exitCode).toBe(0);
    const other = standin.seedTunnel();
    const before = snapshotTree(dir);
    standin.clearCalls();
    const r = await cli(wifArgs(dir, ['--tunnel-id', other.id]));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/differs from tnl_\w+ in data\/tunnel-id/);
    expect(r.stderr).toMatch(/hint: pass --force/);
    expect(standin.calls).toEqual([]);
    expect(snapshotTree(dir)).toEqual(before);
    const forced = await cli(wifArgs(dir, ['--tunnel-id', other.id, '--force']));
    expect(forced.stderr).toBe('warning: the tunnel domain changed: a new server certificate was issued');
    expect(forced.exitCode).toBe(0);
    expect(read(dir, 'data/tunnel-id')).toBe(`${other.id}\n`);
  });
});
