import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readExistingDeployment } from '../../src/deployment/existing.js';
import { applyInit, deploymentPaths, planInit } from '../../src/deployment/init.js';
import { currentInvoker } from '../../src/deployment/ownership.js';
import { VERSION } from '../../src/version.js';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';
import { fakeJwt } from '../helpers/anthropic-standin.js';
import { expectReport } from '../helpers/json-reports.js';
import { DOCUMENTED_HELM_VALUES } from '../../src/ops/helm-export.js';

/**
 * export helm: values.yaml for Anthropic's chart with the expected keys and NO secret; the manual flow's two
 * Secret manifests (0600) hold the token and the key pair; the install command is printed.
 */
const DOMAIN = 'abcd1234.tunnel.anthropic.com';
const TOKEN = fakeTunnelToken('helm');
let work: string;
let dir: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-helm-'));
  dir = path.join(work, 'dep');
  const settings = {
    dir,
    tunnelId: 'tnl_01helm',
    tunnelDomain: DOMAIN,
    tunnelToken: TOKEN,
    routes: [
      { name: 'docs', url: 'http://10.0.0.5:8080' },
      { name: 'wiki', url: 'http://wiki.internal:3000' },
    ],
    allowedIps: ['10.0.0.0/8', '192.168.1.0/24'],
    engine: 'official' as const,
  };
  const plan = await planInit(settings, await readExistingDeployment(deploymentPaths(dir)), { now: new Date(), invoker: currentInvoker(), version: VERSION });
  await applyInit(plan);
}, 120_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const secretMaterial = (): string[] => {
  const key = fs.readFileSync(path.join(dir, 'data', 'tls.key'), 'utf8');
  const keyBody = key.split('\n').filter((l) => l && !l.startsWith('-----'));
  return [TOKEN, Buffer.from(TOKEN).toString('base64'), 'PRIVATE KEY', Buffer.from(key).toString('base64').slice(0, 60), ...keyBody.slice(0, 3)];
};

/** Leaf paths of a values document; gateway.config's own fields are the proxy config's. */
function leafPaths(value: unknown, prefix = ''): Array<[string, unknown]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
}

/** Every key is one the chart documents, and none is an empty string that would shadow a chart default. */
function expectOnlyDocumentedKeys(values: unknown): void {
  for (const [p, v] of leafPaths(values)) {
    const documented = DOCUMENTED_HELM_VALUES.some((d) => (d.endsWith('.*') ? p.startsWith(d.slice(0, -1)) : p === d));
    expect(documented, `${p} is not a documented chart value`).toBe(true);
    expect(v, `${p} is empty`).not.toBe('');
  }
}

describe('export helm, manual flow', () => {
  let out: string;
  let stdout: string;
  let stderr: string;

  beforeAll(async () => {
    out = path.join(work, 'helm-manual');
    const r = await runCli(['export', 'helm', '--dir', dir, '--out', out]);
    expect(r.exitCode).toBe(0);
    stdout = r.stdout;
    stderr = r.stderr;
  });

  it('values.yaml is valid YAML with the chart keys', () => {
    const values = YAML.parse(fs.readFileSync(path.join(out, 'values.yaml'), 'utf8'));
    expect(values.tunnel).toEqual({ id: 'tnl_01helm' });
    expect(values.setup).toEqual({ enabled: false });
    expect(values.api).toBeUndefined();
    expect(values.gateway.config).toEqual({
      log_level: 'info',
      shutdown_timeout: '30s',
      tunnel_domain: DOMAIN,
      routes: { docs: 'http://10.0.0.5:8080', wiki: 'http://wiki.internal:3000' },
      upstream: { allowed_ips: ['10.0.0.0/8', '192.168.1.0/24'] },
    });
    expect(values.networkPolicy).toEqual({
      ingress: { enabled: true },
      egress: {
        enabled: true,
        cloudflaredEgressCIDRs: ['198.41.192.0/19', '2606:4700:a0::/44'],
      },
    });
    expect(values.serverCert).toEqual({ cronSchedule: '0 3 * * *', renewBefore: '720h' });
    expectOnlyDocumentedKeys(values);
  });

  it('secrets appear only in the two Secret manifests (0600)', () => {
    const valuesText = fs.readFileSync(path.join(out, 'values.yaml'), 'utf8');
    for (const s of secretMaterial()) expect(valuesText).not.toContain(s);
    expect(stdout).not.toContain(TOKEN);

    const tokenFile = path.join(out, 'mcp-tunnel-token.secret.yaml');
    const certFile = path.join(out, 'mcp-tunnel-cert.secret.yaml');
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(certFile).mode & 0o777).toBe(0o600);
    const tokenSecret = YAML.parse(fs.readFileSync(tokenFile, 'utf8'));
    expect(tokenSecret).toMatchObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'mcp-tunnel-token' }, type: 'Opaque' });
    expect(Object.keys(tokenSecret.data)).toEqual(['tunnel-token']);
    expect(Buffer.from(tokenSecret.data['tunnel-token'], 'base64').toString()).toBe(TOKEN);
    const certSecret = YAML.parse(fs.readFileSync(certFile, 'utf8'));
    // generic (Opaque), like `kubectl create secret generic`: the docs' renewal command can then update it in place
    expect(certSecret).toMatchObject({ kind: 'Secret', metadata: { name: 'mcp-tunnel-cert' }, type: 'Opaque' });
    expect(Object.keys(certSecret.data).sort()).toEqual(['tls.crt', 'tls.key']);
    expect(Buffer.from(certSecret.data['tls.key'], 'base64').toString()).toBe(fs.readFileSync(path.join(dir, 'data', 'tls.key'), 'utf8'));
    expect(Buffer.from(certSecret.data['tls.crt'], 'base64').toString()).toBe(fs.readFileSync(path.join(dir, 'data', 'tls.crt'), 'utf8'));
    expect(fs.readFileSync(path.join(out, '.gitignore'), 'utf8')).toContain('*.secret.yaml');
  });

  it('prints the install commands', () => {
    expect(stdout).toContain(`kubectl -n mcp-tunnel apply -f ${path.join(out, 'mcp-tunnel-token.secret.yaml')} -f ${path.join(out, 'mcp-tunnel-cert.secret.yaml')}`);
    expect(stdout).toContain(
      `helm install mcp-tunnel oci://us-docker.pkg.dev/anthropic-public-registry/charts/mcp-tunnel --version 2.0.2 --namespace mcp-tunnel -f ${path.join(out, 'values.yaml')}`,
    );
    expect(stderr).toMatch(/^warning: route wiki: upstream wiki\.internal is a hostname/m);
    expect(stderr).toMatch(/^warning: networkPolicy\.egress\.mcpServers is not written .*docs 10\.0\.0\.5\/32:8080, wiki wiki\.internal:3000$/m);
  });
});

describe('export helm, programmatic flow', () => {
  it('values carry api.wif.*, tunnel.tokenVersion and setup.enabled; no Secret manifests', async () => {
    const wifDir = path.join(work, 'wif');
    fs.cpSync(dir, wifDir, { recursive: true });
    const jwtFile = path.join(work, 'id.jwt');
    fs.writeFileSync(jwtFile, fakeJwt({ aud: 'https://sts.example.com' }), { mode: 0o600 });
    fs.appendFileSync(
      path.join(wifDir, '.env'),
      ['MCP_TUNNEL_FLOW=wif', 'ANTHROPIC_FEDERATION_RULE_ID=fdrl_01abc', 'ANTHROPIC_ORGANIZATION_ID=11111111-2222-3333-4444-555555555555', 'ANTHROPIC_WORKSPACE_ID=wrkspc_01xyz', `ANTHROPIC_IDENTITY_TOKEN_FILE=${jwtFile}`, ''].join('\n'),
    );
    const out = path.join(work, 'helm-wif');
    const r = await runCli(['export', 'helm', '--dir', wifDir, '--out', out]);
    expect(r.exitCode).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['values.yaml']);
    const text = fs.readFileSync(path.join(out, 'values.yaml'), 'utf8');
    const values = YAML.parse(text);
    expect(values.tunnel).toEqual({ id: 'tnl_01helm', tokenVersion: 1 });
    expect(values.setup).toEqual({ enabled: true });
    expect(values.api.wif).toEqual({
      federationRuleId: 'fdrl_01abc',
      organizationId: '11111111-2222-3333-4444-555555555555',
      workspaceId: 'wrkspc_01xyz',
      audience: 'https://sts.example.com',
    });
    for (const s of [...secretMaterial(), fs.readFileSync(jwtFile, 'utf8')]) expect(text).not.toContain(s);
    expectOnlyDocumentedKeys(values);
    expect(r.stderr).toMatch(/warning: the chart's setup hook registers its own CA with tnl_01helm; a tunnel holds at most two/);
  });

  it('the default audience is left to the chart, and tokenFile is never written', async () => {
    const wifDir = path.join(work, 'wif-default-aud');
    fs.cpSync(dir, wifDir, { recursive: true });
    const jwtFile = path.join(work, 'id-default.jwt');
    fs.writeFileSync(jwtFile, fakeJwt({ aud: 'api.anthropic.com' }), { mode: 0o600 });
    fs.appendFileSync(path.join(wifDir, '.env'), ['MCP_TUNNEL_FLOW=wif', 'ANTHROPIC_FEDERATION_RULE_ID=fdrl_01abc', 'ANTHROPIC_ORGANIZATION_ID=11111111-2222-3333-4444-555555555555', `ANTHROPIC_IDENTITY_TOKEN_FILE=${jwtFile}`, ''].join('\n'));
    const out = path.join(work, 'helm-wif-default');
    expect((await runCli(['export', 'helm', '--dir', wifDir, '--out', out])).exitCode).toBe(0);
    const values = YAML.parse(fs.readFileSync(path.join(out, 'values.yaml'), 'utf8'));
    expect(values.api.wif).toEqual({ federationRuleId: 'fdrl_01abc', organizationId: '11111111-2222-3333-4444-555555555555' });
    expectOnlyDocumentedKeys(values);
  });

  it('--json: the wif flow has no Secret file, its warnings are coded, and valueKeys is what values.yaml sets', async () => {
    const wifDir = path.join(work, 'wif-json');
    fs.cpSync(dir, wifDir, { recursive: true });
    const jwtFile = path.join(work, 'id-json.jwt');
    fs.writeFileSync(jwtFile, fakeJwt({ aud: 'https://sts.example.com' }), { mode: 0o600 });
    fs.appendFileSync(path.join(wifDir, '.env'), ['MCP_TUNNEL_FLOW=wif', 'ANTHROPIC_ORGANIZATION_ID=11111111-2222-3333-4444-555555555555', `ANTHROPIC_IDENTITY_TOKEN_FILE=${jwtFile}`, ''].join('\n'));
    const out = path.join(work, 'helm-wif-json');
    const r = await runCli(['export', 'helm', '--dir', wifDir, '--out', out, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = expectReport('export-helm', r);
    expect(report).toMatchObject({ flow: 'wif', files: [{ path: path.join(out, 'values.yaml'), kind: 'values', mode: '0644', secret: null }] });
    const codes = (report.warnings as Array<{ code: string; route: string | null }>).map((w) => `${w.code}${w.route ? ` ${w.route}` : ''}`);
    expect(codes).toEqual(['upstream-hostname wiki', 'egress-upstreams-not-written', 'wif-ids-missing', 'tunnel-ca-slots']);
    const values = YAML.parse(fs.readFileSync(path.join(out, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const expected = [...new Set(leafPaths(values).map(([p]) => (p.startsWith('gateway.config.') ? 'gateway.config' : p)))];
    expect(report.valueKeys).toEqual(expected);
    expect(report.valueKeys).toContain('api.wif.audience');
    for (const s of [...secretMaterial(), fs.readFileSync(jwtFile, 'utf8')]) expect(r.stdout).not.toContain(s);
  });

  it('bad input: one line, exit 2', async () => {
    const r = await runCli(['export', 'helm', '--dir', path.join(work, 'nope')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: no config\/mcp-proxy\.yaml in /);
  });
});
