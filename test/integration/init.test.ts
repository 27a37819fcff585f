import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectComposeCommand } from '../../src/docker/compose-command.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { parseEnvFile } from '../../src/deployment/env-file.js';
import { inspectCertificate } from '../../src/pki/index.js';
import { fakeTunnelToken, runCli, snapshotTree } from '../helpers/cli.js';

const DOMAIN = 'abcd1234.tunnel.anthropic.com';
let work: string;
let tokenFile: string;

const baseArgs = (dir: string): string[] => [
  'init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile, '--route', 'docs=http://10.0.0.5:8080',
];
const mode = (p: string): number => fs.statSync(p).mode & 0o777;
const read = (dir: string, rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
const fingerprint = (dir: string): string => inspectCertificate(read(dir, 'data/ca.crt')).fingerprintSha256;
const isRoot = process.getuid?.() === 0;

async function freshDeployment(extra: string[] = []): Promise<string> {
  const dir = fs.mkdtempSync(path.join(work, 'dep-'));
  const r = await runCli([...baseArgs(dir), ...extra]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return dir;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-init-'));
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, `${fakeTunnelToken()}\n`, { mode: 0o600 });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('init (manual flow, non-interactive)', () => {
  it('writes the whole deployment with safe modes and never prints the token', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'dep-'));
    const r = await runCli(baseArgs(dir));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Register the CA in the Console');
    // The next step names the compose command this host has (docker-compose v1 here), else mcp-tunnel up.
    expect(r.stdout).toContain(`${detectComposeCommand() ?? 'mcp-tunnel'} up`);
    expect(r.stdout).toContain(`https://docs.${DOMAIN}/mcp`);
    expect(r.stdout + r.stderr).not.toContain(fakeTunnelToken());

    expect(mode(path.join(dir, '.env'))).toBe(0o600);
    expect(mode(path.join(dir, 'data/ca.key'))).toBe(0o600);
    expect(mode(path.join(dir, 'data/tls.key'))).toBe(0o600);
    expect(mode(path.join(dir, 'data/tunnel-token'))).toBe(0o600);
    expect(mode(path.join(dir, 'data/ca.crt'))).toBe(0o644);
    expect(read(dir, 'data/tunnel-id')).toBe('tnl_01abc\n');
    expect(read(dir, 'data/tunnel-domain')).toBe(`${DOMAIN}\n`);
    expect(read(dir, 'data/tunnel-token').trim()).toBe(fakeTunnelToken());

    const env = parseEnvFile(read(dir, '.env'));
    expect(env.TUNNEL_TOKEN).toBe(fakeTunnelToken());
    expect(env.COMPOSE_PROJECT_NAME).toBe(path.basename(dir).toLowerCase().replace(/[^a-z0-9_-]/g, ''));
    if (isRoot) {
      // root: the containers keep 65532 and own the two files the proxy reads, still 0600.
      expect(env.MCP_TUNNEL_UID).toBe('65532');
      expect(fs.statSync(path.join(dir, 'data/tls.key')).uid).toBe(65532);
      expect(fs.statSync(path.join(dir, 'data/ca.key')).uid).toBe(0);
      expect(mode(path.join(dir, 'data'))).toBe(0o711);
    }

    const config = parseProxyConfig(read(dir, 'config/mcp-proxy.yaml'));
    expect(config.tunnelDomain).toBe(DOMAIN);
    expect(config.listenAddr.port).toBe(8080);
    expect(config.tls).toEqual({ certFile: '/data/tls.crt', keyFile: '/data/tls.key' });
    expect([...config.routes].map(([k, u]) => [k, u.url])).toEqual([['docs', 'http://10.0.0.5:8080']]);

    expect(read(dir, '.gitignore').split('\n')).toEqual(expect.arrayContaining(['.env', 'data/']));
  });

  it('makes certificates that the real openssl accepts for the tunnel domain', async () => {
    const dir = await freshDeployment();
    const verify = await execa('openssl', ['verify', '-CAfile', path.join(dir, 'data/ca.crt'), path.join(dir, 'data/tls.crt')]);
    expect(verify.stdout).toContain(': OK');
    const text = (await execa('openssl', ['x509', '-in', path.join(dir, 'data/tls.crt'), '-noout', '-ext', 'subjectAltName'])).stdout;
    expect(text).toContain(`DNS:${DOMAIN}`);
    expect(text).toContain(`DNS:*.${DOMAIN}`);
    const certPub = (await execa('openssl', ['x509', '-in', path.join(dir, 'data/tls.crt'), '-noout', '-pubkey'])).stdout;
    const keyPub = (await execa('openssl', ['pkey', '-in', path.join(dir, 'data/tls.key'), '-pubout'])).stdout;
    expect(certPub).toBe(keyPub);
  });

  it('writes a compose file that docker-compose accepts as is', async () => {
    for (const engine of ['official', 'builtin']) {
      const dir = await freshDeployment(['--proxy', engine]);
      const r = await execa('docker-compose', ['config', '--services'], { cwd: dir, reject: false });
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n').sort()).toEqual(['cloudflared', 'mcp-proxy']);
      if (engine === 'builtin') {
        expect(fs.existsSync(path.join(dir, 'build/Dockerfile'))).toBe(true);
        expect(fs.existsSync(path.join(dir, 'build/mcp-tunnel.mjs'))).toBe(true);
      }
    }
  });

  it('re-running with nothing new changes nothing and keeps the CA', async () => {
    const dir = await freshDeployment();
    const before = snapshotTree(dir);
    const r = await runCli(['init', '--dir', dir]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('is up to date; nothing changed');
    expect(r.stdout).toContain('CA: reused');
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('asks before replacing: refuses without --force, replaces with it, and never rotates the CA', async () => {
    const dir = await freshDeployment();
    const ca = fingerprint(dir);
    const serverBefore = read(dir, 'data/tls.crt');
    const before = snapshotTree(dir);
    const args = [...baseArgs(dir).filter((a) => a !== 'docs=http://10.0.0.5:8080' && a !== '--route'), '--route', 'wiki=http://10.0.0.9:3000'];
    const refused = await runCli(args);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('config/mcp-proxy.yaml already exists and would change; nothing was written');
    expect(snapshotTree(dir)).toEqual(before);

    const forced = await runCli([...args, '--force']);
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toContain('replace config/mcp-proxy.yaml');
    expect(read(dir, 'config/mcp-proxy.yaml')).toContain('wiki: "http://10.0.0.9:3000"');
    expect(fingerprint(dir)).toBe(ca);
    expect(read(dir, 'data/tls.crt')).toBe(serverBefore);
  });

  it('a changed tunnel ID is shown as a diff (it is no secret), the token only named', async () => {
    const dir = await freshDeployment();
    const args = baseArgs(dir);
    args[args.indexOf('tnl_01abc')] = 'tnl_02other';
    const refused = await runCli(args);
    expect(refused.exitCode).toBe(2);
    expect(refused.stdout).toMatch(/^-.*tnl_01abc$/m);
    expect(refused.stdout).toMatch(/^\+.*tnl_02other$/m);
    expect(refused.stdout).not.toMatch(/data\/tunnel-id: would change \(content not shown/);
  });

  it('a new tunnel domain gets a new server certificate from the same CA', async () => {
    const dir = await freshDeployment();
    const ca = fingerprint(dir);
    const r = await runCli([...baseArgs(dir).map((a) => (a === DOMAIN ? 'efgh5678.tunnel.anthropic.com' : a)), '--force']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('domain-changed');
    expect(fingerprint(dir)).toBe(ca);
    expect(inspectCertificate(read(dir, 'data/tls.crt')).dnsNames).toEqual(['efgh5678.tunnel.anthropic.com', '*.efgh5678.tunnel.anthropic.com']);
  });

  it('repairs loosened permissions on a re-run without asking', async () => {
    const dir = await freshDeployment();
    fs.chmodSync(path.join(dir, '.env'), 0o644);
    fs.chmodSync(path.join(dir, 'data/ca.key'), 0o644);
    const r = await runCli(['init', '--dir', dir]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('fix permissions .env');
    expect(mode(path.join(dir, '.env'))).toBe(0o600);
    expect(mode(path.join(dir, 'data/ca.key'))).toBe(0o600);
  });

  it("keeps the user's own lines in .env and .gitignore", async () => {
    const dir = fs.mkdtempSync(path.join(work, 'dep-'));
    fs.writeFileSync(path.join(dir, '.env'), '# mine\nHTTP_PROXY=http://10.1.1.1:3128\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, '.gitignore'), 'node_modules/\n');
    const r = await runCli([...baseArgs(dir), '--force']);
    expect(r.exitCode).toBe(0);
    const env = read(dir, '.env');
    expect(env.startsWith('# mine\nHTTP_PROXY=http://10.1.1.1:3128\n')).toBe(true);
    expect(parseEnvFile(env).TUNNEL_TOKEN).toBe(fakeTunnelToken());
    expect(read(dir, '.gitignore')).toBe('node_modules/\n.env\n.env.previous\ndata/\n');
  });

  it('takes the token from stdin or TUNNEL_TOKEN, and --print-ca prints the CA', async () => {
    const viaStdin = fs.mkdtempSync(path.join(work, 'dep-'));
    const args = (dir: string): string[] => baseArgs(dir).filter((a, i, all) => a !== '--tunnel-token-file' && all[i - 1] !== '--tunnel-token-file');
    const r1 = await runCli([...args(viaStdin), '--tunnel-token-stdin', '--print-ca'], { input: `${fakeTunnelToken('stdin')}\n` });
    expect(r1.exitCode).toBe(0);
    expect(parseEnvFile(read(viaStdin, '.env')).TUNNEL_TOKEN).toBe(fakeTunnelToken('stdin'));
    expect(r1.stdout.endsWith(read(viaStdin, 'data/ca.crt').trimEnd())).toBe(true);

    const viaEnv = fs.mkdtempSync(path.join(work, 'dep-'));
    const r2 = await runCli(args(viaEnv), { env: { TUNNEL_TOKEN: fakeTunnelToken('env') } });
    expect(r2.exitCode).toBe(0);
    expect(parseEnvFile(read(viaEnv, '.env')).TUNNEL_TOKEN).toBe(fakeTunnelToken('env'));
  });

  it('reads every option from its environment variable too', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'dep-'));
    const r = await runCli(['init'], {
      env: {
        MCP_TUNNEL_DIR: dir,
        MCP_TUNNEL_TUNNEL_ID: 'tnl_env1',
        MCP_TUNNEL_TUNNEL_DOMAIN: DOMAIN,
        MCP_TUNNEL_TOKEN_FILE: tokenFile,
        MCP_TUNNEL_ROUTES: 'docs=http://10.0.0.5:8080,wiki=http://10.0.0.6:8080',
        MCP_TUNNEL_ALLOWED_IPS: '10.0.0.0/24',
        MCP_TUNNEL_PROXY: 'builtin',
      },
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const config = parseProxyConfig(read(dir, 'config/mcp-proxy.yaml'));
    expect([...config.routes.keys()]).toEqual(['docs', 'wiki']);
    expect(config.upstream.allowedIps?.map((c) => c.text)).toEqual(['10.0.0.0/24']);
    expect(read(dir, 'compose.yaml')).toContain('image: mcp-tunnel-proxy:');
  });

  it('https upstreams get the CA bundle given with --upstream-ca-file', async () => {
    const caFile = path.join(work, 'upstream-ca.pem');
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(work, 'upstream-ca.key'), '-out', caFile, '-subj', '/CN=upstream CA', '-days', '30']);
    const dir = fs.mkdtempSync(path.join(work, 'dep-'));
    const args = baseArgs(dir).map((a) => (a === 'docs=http://10.0.0.5:8080' ? 'docs=https://10.0.0.5:8443' : a));
    const r = await runCli([...args, '--upstream-ca-file', caFile]);
    expect(r.stderr).toBe('');
    expect(read(dir, 'data/upstream-ca.crt')).toBe(fs.readFileSync(caFile, 'utf8'));
    const config = parseProxyConfig(read(dir, 'config/mcp-proxy.yaml'));
    expect(config.upstream.caFile).toBe('/data/upstream-ca.crt');
    expect(config.routes.get('docs')?.scheme).toBe('https');
    // A re-run without the flag keeps the bundle and the config as they are.
    const again = await runCli(['init', '--dir', dir]);
    expect(again.stdout).toContain('nothing changed');
  });

  it.runIf(isRoot)('run by a regular user, the containers take that user and the keys stay 0600', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'dep-'));
    fs.chmodSync(work, 0o755);
    fs.chownSync(dir, 1000, 1000);
    fs.chmodSync(tokenFile, 0o644);
    const r = await execa('setpriv', ['--reuid', '1000', '--regid', '1000', '--clear-groups', process.execPath, path.resolve('dist/cli/main.js'), ...baseArgs(dir)], {
      env: { CI: 'true', PATH: process.env.PATH ?? '', HOME: dir },
      reject: false,
    });
    fs.chmodSync(tokenFile, 0o600);
    expect(r.stderr).toBe('');
    expect(parseEnvFile(read(dir, '.env')).MCP_TUNNEL_UID).toBe('1000');
    expect(fs.statSync(path.join(dir, 'data/tls.key')).uid).toBe(1000);
    expect(mode(path.join(dir, 'data/tls.key'))).toBe(0o600);
    expect(mode(path.join(dir, 'data'))).toBe(0o700);
  });
});
