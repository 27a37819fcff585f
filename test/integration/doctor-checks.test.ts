import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readExistingDeployment } from '../../src/deployment/existing.js';
import { applyInit, deploymentPaths, planInit } from '../../src/deployment/init.js';
import { currentInvoker } from '../../src/deployment/ownership.js';
import { runDoctor, type DoctorFinding, type DoctorReport } from '../../src/ops/doctor/index.js';
import { createCa, issueServerCert } from '../../src/pki/index.js';
import { VERSION } from '../../src/version.js';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';

/**
 * doctor against deployments broken FOR REAL, one failure each, on a copy of a good deployment made by
 * init's own plan (as root: containers 65532, tls.* handed to 65532). No traffic leaves loopback: the
 * upstreams are loopback servers and the tunnel edge is a loopback listener (--edge / edgeTargets).
 */
const DOMAIN = 'abcd1234.tunnel.example.com';
const DAY = 86_400_000;
const isRoot = process.getuid?.() === 0;

let work: string;
let good: string;
let mcp: SampleMcpServer;
let edge: net.Server;
let edgeTarget: string;
let strict: http.Server;
let strictOrigin: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-doctor-'));
  mcp = await startSampleMcpServer();
  edge = net.createServer((s) => s.end());
  await new Promise<void>((r) => edge.listen(0, '127.0.0.1', r));
  edgeTarget = `127.0.0.1:${(edge.address() as AddressInfo).port}`;
  // A FastMCP-style upstream: only its own Host is accepted, anything else is 421 Misdirected Request.
  strict = http.createServer((req, res) => {
    const own = `127.0.0.1:${(strict.address() as AddressInfo).port}`;
    if (req.headers.host !== own && req.headers.host !== 'localhost') {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('Invalid Host header');
      return;
    }
    res.writeHead(406).end();
  });
  await new Promise<void>((r) => strict.listen(0, '127.0.0.1', r));
  strictOrigin = `http://127.0.0.1:${(strict.address() as AddressInfo).port}`;

  good = path.join(work, 'good');
  const settings = {
    dir: good,
    tunnelId: 'tnl_01doctor',
    tunnelDomain: DOMAIN,
    tunnelToken: fakeTunnelToken(),
    routes: [{ name: 'docs', url: mcp.origin }],
    allowedIps: ['127.0.0.1/32'],
    engine: 'official' as const,
  };
  const plan = await planInit(settings, await readExistingDeployment(deploymentPaths(good)), { now: new Date(), invoker: currentInvoker(), version: VERSION });
  await applyInit(plan);
}, 120_000);

afterAll(async () => {
  await mcp.close();
  await new Promise((r) => edge.close(r));
  await new Promise((r) => strict.close(r));
  fs.rmSync(work, { recursive: true, force: true });
});

let copies = 0;
/** A copy of the good deployment with owners and modes (cp -a), to break. */
async function copy(): Promise<string> {
  const dir = path.join(work, `case-${++copies}`);
  await execa('cp', ['-a', good, dir]);
  return dir;
}

const doctor = (dir: string): Promise<DoctorReport> => runDoctor({ dir, edgeTargets: [edgeTarget], timeoutMs: 2_000 });
const find = (r: DoctorReport, id: string): DoctorFinding => {
  const f = r.findings.find((x) => x.id === id);
  if (!f) throw new Error(`no finding ${id} in ${r.findings.map((x) => x.id).join(', ')}`);
  return f;
};
const failed = (r: DoctorReport): string[] => r.findings.filter((f) => f.status === 'fail').map((f) => f.id);

function replaceFile(file: string, content: string): void {
  const st = fs.statSync(file);
  fs.writeFileSync(file, content);
  fs.chmodSync(file, st.mode & 0o777);
  if (isRoot) fs.chownSync(file, st.uid, st.gid);
}

async function replacePair(dir: string, pair: { certPem: string; keyPem: string }): Promise<void> {
  replaceFile(path.join(dir, 'data', 'tls.crt'), pair.certPem);
  replaceFile(path.join(dir, 'data', 'tls.key'), pair.keyPem);
}

const deploymentCa = (dir: string) => ({
  certPem: fs.readFileSync(path.join(dir, 'data', 'ca.crt'), 'utf8'),
  keyPem: fs.readFileSync(path.join(dir, 'data', 'ca.key'), 'utf8'),
});

function editConfig(dir: string, edit: (text: string) => string): void {
  const file = path.join(dir, 'config', 'mcp-proxy.yaml');
  replaceFile(file, edit(fs.readFileSync(file, 'utf8')));
}

describe('doctor on a good deployment', () => {
  it('gives a clean bill: no failure, every check that can pass passes', async () => {
    const r = await doctor(good);
    expect(failed(r)).toEqual([]);
    expect(r.ok).toBe(true);
    for (const id of [
      'config.routes-map', 'upstream.format.docs', 'config.valid', 'ca.valid', 'cert.key-match', 'cert.chain', 'cert.san', 'cert.expiry',
      'files.container-read.tls.crt', 'files.container-read.tls.key', 'files.container-read.config', 'token.present', 'token.format',
      'upstream.allowed.docs', 'upstream.reachable.docs', 'upstream.host-header.docs', 'docker.reachable', 'egress.tcp-7844',
    ]) {
      expect([id, find(r, id).status]).toEqual([id, 'ok']);
    }
    // Not running yet is a warning with the command to start it, not a failure.
    expect(find(r, 'stack.proxy')).toMatchObject({ status: 'warn', fix: expect.stringContaining('mcp-tunnel up') });
    expect(find(r, 'egress.udp-7844').status).toBe('skip');
    expect(r.findings.filter((f) => f.status === 'warn').map((f) => f.id).sort()).toEqual(['stack.cloudflared', 'stack.proxy']);
    for (const f of r.findings) if (f.status === 'warn' || f.status === 'fail') expect([f.id, f.fix.length > 0]).toEqual([f.id, true]);
  });

  it('CLI: exit 0, one line per finding, no secret printed; --json has {id, status, message, fix}', async () => {
    const r = await runCli(['doctor', '--dir', good, '--edge', edgeTarget]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok {4}cert\.san: covers abcd1234\.tunnel\.example\.com and \*\.abcd1234\.tunnel\.example\.com/m);
    expect(r.stdout).toMatch(/^No failures: \d+ ok, 2 warnings, \d+ skipped$/m);
    expect(r.stdout).not.toContain(fakeTunnelToken());
    const j = await runCli(['doctor', '--dir', good, '--edge', edgeTarget, '--json']);
    const report = JSON.parse(j.stdout) as { ok: boolean; findings: DoctorFinding[] };
    expect(report.ok).toBe(true);
    for (const f of report.findings) expect(Object.keys(f).sort()).toEqual(['fix', 'id', 'message', 'status']);
  });
});

describe('doctor finds each failure, created for real', () => {
  it('an expired certificate', async () => {
    const dir = await copy();
    const now = Date.now();
    await replacePair(dir, await issueServerCert({ ca: deploymentCa(dir), domain: DOMAIN, notBefore: new Date(now - 100 * DAY), notAfter: new Date(now - DAY) }));
    const r = await doctor(dir);
    expect(find(r, 'cert.expiry')).toMatchObject({ status: 'fail', message: expect.stringMatching(/expired on .* \(1 day ago\)/), fix: expect.stringContaining('mcp-tunnel renew-cert') });
    expect(failed(r)).toEqual(['cert.expiry']);
  });

  it('a certificate about to expire is a warning', async () => {
    const dir = await copy();
    await replacePair(dir, await issueServerCert({ ca: deploymentCa(dir), domain: DOMAIN, notAfter: new Date(Date.now() + 10 * DAY) }));
    const r = await doctor(dir);
    expect(find(r, 'cert.expiry')).toMatchObject({ status: 'warn', message: expect.stringContaining('in 9 days'), fix: expect.stringContaining('mcp-tunnel schedule-renewal') });
    expect(r.ok).toBe(true);
  });

  it('a SAN for another domain', async () => {
    const dir = await copy();
    await replacePair(dir, await issueServerCert({ ca: deploymentCa(dir), domain: 'wxyz9876.tunnel.example.com' }));
    const r = await doctor(dir);
    expect(find(r, 'cert.san')).toMatchObject({ status: 'fail', message: expect.stringContaining(`does not cover ${DOMAIN} and *.${DOMAIN}`) });
    expect(failed(r)).toEqual(['cert.san']);
  });

  it('a certificate from another CA (AKI/SKI chain)', async () => {
    const dir = await copy();
    await replacePair(dir, await issueServerCert({ ca: await createCa(), domain: DOMAIN }));
    const r = await doctor(dir);
    expect(find(r, 'cert.chain')).toMatchObject({ status: 'fail', message: expect.stringContaining('was not signed by the CA') });
    expect(failed(r)).toEqual(['cert.chain']);
  });

  it('a key that does not belong to the certificate', async () => {
    const dir = await copy();
    const other = await issueServerCert({ ca: deploymentCa(dir), domain: DOMAIN });
    replaceFile(path.join(dir, 'data', 'tls.key'), other.keyPem);
    const r = await doctor(dir);
    expect(find(r, 'cert.key-match')).toMatchObject({ status: 'fail', message: expect.stringContaining('does not belong to data/tls.crt') });
    expect(failed(r)).toEqual(['cert.key-match']);
  });

  it('a tls.key the containers\' user cannot read', async () => {
    const dir = await copy();
    const key = path.join(dir, 'data', 'tls.key');
    if (isRoot) fs.chownSync(key, 0, 0); // e.g. re-created by root after init ran
    else fs.chmodSync(key, 0o000);
    const r = await doctor(dir);
    expect(find(r, 'files.container-read.tls.key')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/the containers' user \d+:\d+ \(MCP_TUNNEL_UID\/GID in \.env\) cannot read data\/tls\.key/),
      fix: expect.stringContaining('chown'),
    });
    expect(failed(r)).toContain('files.container-read.tls.key');
  });

  it('routes written as a list', async () => {
    const dir = await copy();
    editConfig(dir, (t) => t.replace(/^routes:\n {2}docs: "([^"]+)"$/m, 'routes:\n  - docs: "$1"'));
    const r = await doctor(dir);
    expect(find(r, 'config.routes-map')).toMatchObject({ status: 'fail', message: expect.stringContaining('routes is a YAML list'), fix: expect.stringContaining('without a leading "-"') });
    expect(failed(r)).toEqual(['config.routes-map']);
  });

  it('an upstream with a path', async () => {
    const dir = await copy();
    editConfig(dir, (t) => t.replace(`docs: "${mcp.origin}"`, `docs: "${mcp.origin}/mcp"`));
    const r = await doctor(dir);
    expect(find(r, 'upstream.format.docs')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('invalid upstream (must be scheme://host:port)'),
      fix: expect.stringContaining(`docs: "${mcp.origin}"`),
    });
    expect(failed(r)).toEqual(['upstream.format.docs']);
  });

  it('an upstream whose address allowed_ips refuses (127.0.0.2 with 127.0.0.1/32)', async () => {
    const dir = await copy();
    editConfig(dir, (t) => t.replace(`docs: "${mcp.origin}"`, `docs: "http://127.0.0.2:${mcp.port}"`));
    const r = await doctor(dir);
    expect(find(r, 'upstream.allowed.docs')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('IP validation failed: 127.0.0.2 is not a private address'),
      fix: expect.stringContaining('"127.0.0.2/32"'),
    });
    expect(failed(r)).toEqual(['upstream.allowed.docs']);
  });

  it('--offline still judges an IP-literal upstream against allowed_ips (no lookup, no connection), as init does', async () => {
    const dir = await copy();
    editConfig(dir, (t) => t.replace(`docs: "${mcp.origin}"`, `docs: "http://127.0.0.2:${mcp.port}"\n  wiki: "http://wiki-mcp:3000"`));
    const r = await runDoctor({ dir, offline: true, timeoutMs: 2_000 });
    expect(find(r, 'upstream.allowed.docs')).toMatchObject({ status: 'fail', message: expect.stringContaining('IP validation failed: 127.0.0.2 is not a private address') });
    expect(find(r, 'upstream.reach.docs').status).toBe('skip');
    // A name needs a lookup: offline it is only skipped.
    expect(find(r, 'upstream.reach.wiki').status).toBe('skip');
    expect(r.findings.some((f) => f.id === 'upstream.allowed.wiki')).toBe(false);
    expect(failed(r)).toEqual(['upstream.allowed.docs']);
    const ok = await runDoctor({ dir: good, offline: true, timeoutMs: 2_000 });
    expect(find(ok, 'upstream.allowed.docs').status).toBe('ok');
  });

  it('an upstream that is down', async () => {
    const dir = await copy();
    const closed = net.createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((res) => closed.close(res));
    editConfig(dir, (t) => t.replace(`docs: "${mcp.origin}"`, `docs: "http://127.0.0.1:${port}"`));
    const r = await doctor(dir);
    expect(find(r, 'upstream.reachable.docs')).toMatchObject({ status: 'fail', message: expect.stringContaining('connection refused') });
  });

  it('a FastMCP-style upstream that answers 421 to the tunnel hostname', async () => {
    const dir = await copy();
    editConfig(dir, (t) => t.replace(`docs: "${mcp.origin}"`, `docs: "${strictOrigin}"`));
    const r = await doctor(dir);
    expect(find(r, 'upstream.host-header.docs')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining(`rejects the tunnel's Host header "docs.${DOMAIN}" (HTTP 421`),
      fix: expect.stringContaining(`allowed_hosts=["docs.${DOMAIN}"]`),
    });
    expect(failed(r)).toEqual(['upstream.host-header.docs']);
  });

  it('TUNNEL_TOKEN missing, then malformed', async () => {
    const dir = await copy();
    const env = path.join(dir, '.env');
    replaceFile(env, fs.readFileSync(env, 'utf8').replace(/^TUNNEL_TOKEN=.*\n/m, ''));
    let r = await doctor(dir);
    expect(find(r, 'token.present')).toMatchObject({ status: 'fail', fix: expect.stringContaining('mcp-tunnel rotate-token') });
    expect(failed(r)).toEqual(['token.present']);

    replaceFile(env, `${fs.readFileSync(env, 'utf8')}TUNNEL_TOKEN=not-a-token\n`);
    r = await doctor(dir);
    expect(find(r, 'token.format')).toMatchObject({ status: 'fail', message: expect.stringContaining('should start with "eyJ"') });
    expect(failed(r)).toEqual(['token.format']);
    expect(JSON.stringify(r)).not.toContain('not-a-token');
  });

  it('Docker unreachable (DOCKER_HOST=unix:///nonexistent.sock): exit 1, the finding and its fix', async () => {
    const r = await runCli(['doctor', '--dir', good, '--edge', edgeTarget, '--json'], { env: { DOCKER_HOST: 'unix:///nonexistent.sock' } });
    expect(r.exitCode).toBe(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; findings: DoctorFinding[] };
    expect(report.ok).toBe(false);
    const f = report.findings.find((x) => x.id === 'docker.reachable');
    expect(f).toMatchObject({ status: 'fail', message: expect.stringContaining('/nonexistent.sock') });
    expect(f!.fix.length).toBeGreaterThan(0);
    expect(report.findings.filter((x) => x.status === 'fail').map((x) => x.id)).toEqual(['docker.reachable']);
    expect(report.findings.find((x) => x.id === 'cloudflared.connections')?.status).toBe('skip');
  });

  it('an unreachable tunnel edge is a warning with the command to check it; --no-edge-check only prints the hint', async () => {
    const closed = net.createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const target = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((res) => closed.close(res));
    const r = await runDoctor({ dir: good, edgeTargets: [target], timeoutMs: 1_000 });
    expect(find(r, 'egress.tcp-7844')).toMatchObject({ status: 'warn', fix: expect.stringContaining('nc -vz region1.v2.argotunnel.com 7844') });
    const off = await runDoctor({ dir: good, edgeTargets: false, timeoutMs: 1_000 });
    expect(find(off, 'egress.tcp-7844').status).toBe('skip');
  });

  it.skipIf(!isRoot)('a scheduled renewer that cannot read data/ca.key', async () => {
    const dir = path.join(work, 'renewer');
    const settings = {
      dir, tunnelId: 'tnl_01doctor', tunnelDomain: DOMAIN, tunnelToken: fakeTunnelToken(),
      routes: [{ name: 'docs', url: mcp.origin }], allowedIps: ['127.0.0.1/32'], engine: 'official' as const, autoRenew: true,
    };
    const plan = await planInit(settings, await readExistingDeployment(deploymentPaths(dir)), { now: new Date(), invoker: currentInvoker(), version: VERSION });
    await applyInit(plan);
    let r = await doctor(dir);
    expect(find(r, 'files.renewer')).toMatchObject({ status: 'ok' });
    expect(failed(r)).toEqual([]);
    expect(find(r, 'stack.cert-renewer').status).toBe('warn');
    expect(find(r, 'cert.expiry').message).toContain('renewed automatically by cert-renewer');

    fs.chownSync(path.join(dir, 'data', 'ca.key'), 0, 0); // e.g. restored from a backup by root
    r = await doctor(dir);
    expect(find(r, 'files.renewer')).toMatchObject({ status: 'fail', message: expect.stringContaining('cannot read data/ca.key'), fix: `sudo mcp-tunnel schedule-renewal --dir ${dir}` });
  });

  it('bad input is one line and exit 2', async () => {
    const r = await runCli(['doctor', '--dir', path.join(work, 'nope'), '--no-edge-check']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: deployment directory .* does not exist\nhint: /);
  });
});
