import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { inspectCertificate } from '../../src/pki/index.js';
import { silentLogger } from '../../src/proxy/logger.js';
import { startProxy, type RunningProxy } from '../../src/proxy/server.js';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { opensslOk } from '../helpers/pki-openssl.js';
import { openTunnelSocket, waitFor } from '../helpers/tunnel-client.js';

/*
 * A directory laid out the way Anthropic's tools do it: an ECDSA P-256 CA (5 years) and an RSA-4096 server
 * certificate made with openssl, keys 0644 owned by 65532, docker-compose.yaml with the official hardening.
 * mcp-tunnel adopts it (no second CA, nothing it did not create rewritten), and doctor, renew-cert, status
 * and probe work on it, the builtin proxy hot-reloading the renewed pair.
 */

const DOMAIN = 'wxyz9876.tunnel.example.com';
const isRoot = process.getuid?.() === 0;
let dir: string;
let mcp: SampleMcpServer;
let proxy: RunningProxy;
let wsUrl: string;

const data = (f: string): string => path.join(dir, 'data', f);
const read = (f: string): string => fs.readFileSync(f, 'utf8');

const COMPOSE = `services:
  mcp-proxy:
    image: us-docker.pkg.dev/anthropic-public-registry/images/mcp-proxy@sha256:efb27b299d627e4134815663cb8896641eeaee025d734c0f695582b4df38f013
    user: "65532:65532"
    read_only: true
    security_opt:
      - no-new-privileges:true
    cap_drop:
      - ALL
    restart: unless-stopped
    stop_grace_period: 30s
    volumes:
      - ./config/mcp-proxy.yaml:/etc/mcp-gateway/config.yaml:ro
      - ./data:/data:ro
  cloudflared:
    image: cloudflare/cloudflared@sha256:6b599ca3e974349ead3286d178da61d291961182ec3fe9c505e1dd02c8ac31b0
    command: tunnel --no-autoupdate run --url http://localhost:8080
    environment:
      - TUNNEL_TOKEN
    network_mode: "service:mcp-proxy"
    user: "65532:65532"
    read_only: true
    restart: unless-stopped
`;

beforeAll(async () => {
  mcp = await startSampleMcpServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-anthropic-dir-'));
  fs.mkdirSync(path.join(dir, 'data'));
  const run = (args: string[]): Promise<string> => opensslOk(args, { cwd: path.join(dir, 'data') });
  await run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key']);
  await run(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '1825', '-subj', '/CN=MCP Tunnel CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt']);
  await run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096', '-out', 'tls.key']);
  await run(['req', '-new', '-key', 'tls.key', '-subj', `/CN=${DOMAIN}`, '-out', 'tls.csr']);
  fs.writeFileSync(data('tls.ext'), `subjectAltName=DNS:${DOMAIN},DNS:*.${DOMAIN}\nauthorityKeyIdentifier=keyid\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  await run(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '90', '-sha256', '-extfile', 'tls.ext', '-out', 'tls.crt']);
  fs.rmSync(data('tls.csr'));
  for (const f of ['ca.key', 'tls.key']) fs.chmodSync(data(f), 0o644);
  if (isRoot) for (const f of ['tls.key', 'tls.crt']) fs.chownSync(data(f), 65532, 65532);
  fs.writeFileSync(data('tunnel-id'), 'tnl_01setup\n');
  fs.writeFileSync(data('tunnel-domain'), `${DOMAIN}\n`);
  fs.writeFileSync(path.join(dir, 'docker-compose.yaml'), COMPOSE);
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await mcp?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("a directory made by Anthropic's tools", () => {
  it('init adopts it: no second CA, docker-compose.yaml and the keys left as they are, no compose.yaml', async () => {
    const ca = read(data('ca.crt'));
    const compose = read(path.join(dir, 'docker-compose.yaml'));
    const keyBefore = fs.statSync(data('tls.key'));
    const tokenFile = path.join(dir, '..', `${path.basename(dir)}.token`);
    fs.writeFileSync(tokenFile, `${fakeTunnelToken()}\n`, { mode: 0o600 });
    const r = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_01setup', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile, '--route', `hello=${mcp.origin}`, '--allowed-ip', '127.0.0.1/32', '--proxy', 'builtin', '--non-interactive']);
    fs.rmSync(tokenFile);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('CA: reused');
    expect(r.stdout).toContain('Kept docker-compose.yaml');
    expect(read(data('ca.crt'))).toBe(ca);
    expect(read(path.join(dir, 'docker-compose.yaml'))).toBe(compose);
    expect(fs.existsSync(path.join(dir, 'compose.yaml'))).toBe(false);
    const keyAfter = fs.statSync(data('tls.key'));
    expect([keyAfter.mode & 0o777, keyAfter.uid, keyAfter.ino]).toEqual([keyBefore.mode & 0o777, keyBefore.uid, keyBefore.ino]);
    expect(fs.existsSync(path.join(dir, 'config', 'mcp-proxy.yaml'))).toBe(true);

    const config = parseProxyConfig(read(path.join(dir, 'config', 'mcp-proxy.yaml')));
    // the builtin proxy, run on the host on loopback with the directory's own files
    const yaml = read(path.join(dir, 'config', 'mcp-proxy.yaml')).replace(/listen_addr:.*/, 'listen_addr: "127.0.0.1:0"').replace(/\/data\//g, `${path.join(dir, 'data')}/`);
    expect(config.tunnelDomain).toBe(DOMAIN);
    proxy = await startProxy({ config: parseProxyConfig(yaml), logger: silentLogger, certPollIntervalMs: 50, defaultMetrics: false });
    wsUrl = `ws://127.0.0.1:${proxy.address().port}/`;
  }, 60_000);

  it('doctor finds the compose file, passes the certificates, and offers to tighten tls.key without locking the proxy out', async () => {
    const r = await runCli(['doctor', '--dir', dir, '--json', '--no-edge-check', '--timeout', '1s']);
    const report = JSON.parse(r.stdout) as { findings: Array<{ id: string; status: string; fix: string }> };
    const byId = (id: string) => report.findings.find((f) => f.id === id);
    expect(byId('files.compose')).toBeUndefined();
    for (const id of ['ca.valid', 'cert.key-match', 'cert.chain', 'cert.san', 'cert.expiry', 'files.container-read.tls.key']) expect(byId(id)?.status, id).toBe('ok');
    expect(byId('files.secret-mode.tls.key')).toMatchObject({ status: 'warn' });
    expect(byId('files.secret-mode.tls.key')?.fix).toContain(`chown 65532:65532 ${data('tls.key')} && sudo chmod 600`);
  }, 30_000);

  it('probe reaches the route through the builtin proxy', async () => {
    const r = await runCli(['probe', 'hello', '--dir', dir, '--proxy', wsUrl, '--timeout', '5s']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  }, 30_000);

  it('renew-cert --force signs with the ECDSA CA, keeps the key readable by 65532, and the proxy reloads it', async () => {
    const ca = read(data('ca.crt'));
    const before = inspectCertificate(read(data('tls.crt'))).serialHex;
    const r = await runCli(['renew-cert', '--dir', dir, '--force']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(read(data('ca.crt'))).toBe(ca);
    expect((await opensslOk(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', 'ca.crt', 'tls.crt'], { cwd: path.join(dir, 'data') })).trim()).toBe('tls.crt: OK');
    const key = fs.statSync(data('tls.key'));
    expect(key.mode & 0o777).toBe(0o644);
    if (isRoot) expect([key.uid, key.gid]).toEqual([65532, 65532]);
    const after = inspectCertificate(read(data('tls.crt'))).serialHex;
    expect(after).not.toBe(before);
    await waitFor(async () => {
      const t = await openTunnelSocket({ proxyUrl: wsUrl, ca, servername: `hello.${DOMAIN}` });
      const serial = t.socket.getPeerX509Certificate()!.serialNumber.toLowerCase();
      t.destroy();
      return serial === after;
    }, 'the proxy to serve the renewed certificate');
  }, 30_000);

  it('status reads docker-compose.yaml and the certificate', async () => {
    const r = await runCli(['status', '--dir', dir, '--json']);
    const status = JSON.parse(r.stdout) as { composeError?: string; certificate?: { renewalDue: boolean; dnsNames: string[] } };
    expect(status.composeError).toBeUndefined();
    expect(status.certificate).toMatchObject({ renewalDue: false, dnsNames: [DOMAIN, `*.${DOMAIN}`] });
  }, 30_000);
});
