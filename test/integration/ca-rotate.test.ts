import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTunnelsClient, fileSource, type TunnelsApi } from '../../src/anthropic/index.js';
import { deploymentPaths } from '../../src/deployment/layout.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { UserError } from '../../src/errors.js';
import { rotateCa, rotationFiles, type CaRotateEvent, type CaRotateOptions } from '../../src/ops/ca-rotate.js';
import { proxyServes } from '../../src/ops/proxy-serving.js';
import { inspectCertificate } from '../../src/pki/index.js';
import { silentLogger } from '../../src/proxy/logger.js';
import { startProxy, type RunningProxy } from '../../src/proxy/server.js';
import { fakeJwt, startAnthropicStandin, type AnthropicStandin } from '../helpers/anthropic-standin.js';
import { execa } from 'execa';
import { CLI, fakeTunnelToken, runCli } from '../helpers/cli.js';
import { expectReport } from '../helpers/json-reports.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { writeTestPki } from '../helpers/pki.js';
import { hasCompleteResponse, openTunnelSocket, rawExchange } from '../helpers/tunnel-client.js';

/*
 * CA rotation against the Tunnels API stand-in (real @anthropic-ai/sdk) and the builtin proxy in-process,
 * which hot-reloads data/tls.crt: what a TLS client sees at every moment, which calls reach the API, and
 * that an interrupted rotation completes when run again.
 */

let work: string;
let standin: AnthropicStandin;
let jwtFile: string;
let mcp: SampleMcpServer;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-carot-'));
  mcp = await startSampleMcpServer();
});
afterAll(async () => {
  await mcp.close();
  fs.rmSync(work, { recursive: true, force: true });
});
beforeEach(async () => {
  standin = await startAnthropicStandin();
  const jwt = fakeJwt({ jti: 'ca-rotate' });
  standin.acceptJwt(jwt);
  jwtFile = path.join(fs.mkdtempSync(path.join(work, 'jwt-')), 'token.jwt');
  fs.writeFileSync(jwtFile, `${jwt}\n`, { mode: 0o600 });
});
afterEach(async () => standin.close());

function api(): TunnelsApi {
  const federation = { federationRuleId: standin.federationRuleId, organizationId: standin.organizationId };
  const client = createTunnelsClient({ ...federation, apiUrl: standin.url, identityToken: fileSource(jwtFile, 'test'), retryBaseDelayMs: 2 });
  return { client, apiUrl: standin.url, federation, retryBaseDelayMs: 2 };
}

interface Deployment {
  dir: string;
  tunnelId: string;
  domain: string;
  oldCaPem: string;
  proxy: RunningProxy;
  wsUrl: string;
}

/** A deployment directory whose CA is registered on a stand-in tunnel, served by the builtin proxy. */
async function deployment(): Promise<Deployment> {
  const tunnel = standin.seedTunnel();
  const dir = fs.mkdtempSync(path.join(work, 'dep-'));
  const paths = deploymentPaths(dir);
  const pki = await writeTestPki(paths.dataDir, tunnel.domain);
  fs.writeFileSync(paths.tunnelId, `${tunnel.id}\n`);
  fs.writeFileSync(paths.tunnelDomain, `${tunnel.domain}\n`);
  standin.seedCertificate(tunnel.id, { pem: pki.ca.certPem });
  fs.mkdirSync(paths.configDir);
  const yaml = [
    'listen_addr: "127.0.0.1:0"',
    `tunnel_domain: ${tunnel.domain}`,
    'tls:',
    `  cert_file: ${paths.tlsCert}`,
    `  key_file: ${paths.tlsKey}`,
    'routes:',
    `  hello: ${JSON.stringify(mcp.origin)}`,
    'upstream:',
    '  allowed_ips: ["127.0.0.1/32"]',
  ].join('\n');
  fs.writeFileSync(paths.proxyConfig, yaml);
  const proxy = await startProxy({ config: parseProxyConfig(yaml), configPath: paths.proxyConfig, logger: silentLogger, certPollIntervalMs: 50, defaultMetrics: false });
  return { dir, tunnelId: tunnel.id, domain: tunnel.domain, oldCaPem: pki.ca.certPem, proxy, wsUrl: `ws://127.0.0.1:${proxy.address().port}/` };
}

function wifOptions(d: Deployment, extra: Partial<CaRotateOptions> = {}): CaRotateOptions {
  return { dir: d.dir, flow: 'wif', api: api(), confirmServing: (e) => proxyServes(d.wsUrl, e, 10_000, 50), ...extra };
}

function wifEnv(): string {
  return [
    'MCP_TUNNEL_FLOW=wif',
    `ANTHROPIC_FEDERATION_RULE_ID=${standin.federationRuleId}`,
    `ANTHROPIC_ORGANIZATION_ID=${standin.organizationId}`,
    `ANTHROPIC_IDENTITY_TOKEN_FILE=${jwtFile}`,
    `MCP_TUNNEL_API_URL=${standin.url}`,
    `TUNNEL_TOKEN=${fakeTunnelToken()}`,
    '',
  ].join('\n');
}

/** The environment runCli gives the CLI (CI set, none of our variables from the host). */
function cliEnv(): Record<string, string> {
  const env: Record<string, string> = { CI: 'true', NO_COLOR: '1' };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MCP_TUNNEL_') && k !== 'TUNNEL_TOKEN') env[k] = v;
  return env;
}

const fp = (pem: string): string => inspectCertificate(pem).fingerprintSha256;
const registrations = (s: AnthropicStandin) => s.callsTo('POST', /^\/v1\/tunnels\/[^/]+\/certificates$/).filter((c) => c.status < 300);
const archives = (s: AnthropicStandin) => s.callsTo('POST', /\/certificates\/[^/]+\/archive$/).filter((c) => c.status < 300);

/** The CA (by fingerprint) that signed the certificate a new handshake gets, among the CAs in data/. */
async function servedBy(d: Deployment): Promise<string | undefined> {
  const files = rotationFiles(deploymentPaths(d.dir));
  const cas = [d.oldCaPem, ...[files.nextCert, deploymentPaths(d.dir).caCert].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8'))];
  const t = await openTunnelSocket({ proxyUrl: d.wsUrl, ca: cas.join('\n'), servername: `hello.${d.domain}` });
  try {
    const peer = t.socket.getPeerX509Certificate()!;
    const issuer = cas.find((pem) => peer.verify(new X509Certificate(pem).publicKey));
    return issuer && fp(issuer);
  } finally {
    t.destroy();
  }
}

describe('ca rotate, programmatic flow', () => {
  it('under load: register -> swap -> archive with one call each, 0 failed requests, no handshake with an unregistered CA', async () => {
    const d = await deployment();
    try {
      const stats = { ok: 0, failed: [] as string[], unregistered: [] as string[] };
      let done = false;
      const worker = async (): Promise<void> => {
        const files = rotationFiles(deploymentPaths(d.dir));
        for (let i = 0; i < 5_000 && !done; i++) {
          try {
            const cas = [d.oldCaPem, ...[files.nextCert, deploymentPaths(d.dir).caCert].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8'))];
            const t = await openTunnelSocket({ proxyUrl: d.wsUrl, ca: cas.join('\n'), servername: `hello.${d.domain}` });
            try {
              // at the moment of the handshake, the CA behind the served certificate must be registered
              const peer = t.socket.getPeerX509Certificate()!;
              const issuer = cas.find((pem) => peer.verify(new X509Certificate(pem).publicKey));
              const active = standin.activeCertificates(d.tunnelId).map((c) => c.fingerprint);
              if (!issuer || !active.includes(fp(issuer))) stats.unregistered.push(peer.fingerprint256);
              const answer = await rawExchange(t.socket, `GET /mcp HTTP/1.1\r\nHost: hello.${d.domain}\r\n\r\n`, hasCompleteResponse);
              if (/^HTTP\/1\.1 \d{3}/.test(answer) && !/^HTTP\/1\.1 5/.test(answer)) stats.ok++;
              else stats.failed.push(answer.split('\r\n')[0] ?? '');
            } finally {
              t.destroy();
            }
          } catch (err) {
            stats.failed.push((err as Error).message);
          }
        }
      };
      const load = Promise.all([worker(), worker(), worker()]);
      await new Promise((r) => setTimeout(r, 300));
      const oldFp = fp(d.oldCaPem);
      const result = await rotateCa(wifOptions(d));
      await new Promise((r) => setTimeout(r, 300));
      done = true;
      await load;

      expect(result).toMatchObject({ status: 'done', oldFingerprint: oldFp });
      expect(stats.failed).toEqual([]);
      expect(stats.unregistered).toEqual([]);
      expect(stats.ok).toBeGreaterThan(10);
      expect(registrations(standin)).toHaveLength(1);
      expect(archives(standin)).toHaveLength(1);
      const paths = deploymentPaths(d.dir);
      const newCa = fs.readFileSync(paths.caCert, 'utf8');
      expect(standin.activeCertificates(d.tunnelId).map((c) => c.fingerprint)).toEqual([fp(newCa)]);
      expect(inspectCertificate(newCa).publicKey).toMatchObject({ type: 'ec', curve: 'prime256v1' });
      expect(fs.readFileSync(path.join(paths.dataDir, 'ca.previous.crt'), 'utf8')).toBe(d.oldCaPem);
      expect(fs.statSync(path.join(paths.dataDir, 'ca.previous.key')).mode & 0o777).toBe(0o600);
      expect(fs.existsSync(rotationFiles(paths).state)).toBe(false);
      expect(await servedBy(d)).toBe(fp(newCa));
    } finally {
      await d.proxy.close();
    }
  }, 60_000);

  it('with both slots used, refuses with the registered fingerprints and changes nothing', async () => {
    const d = await deployment();
    try {
      const other = standin.seedCertificate(d.tunnelId, { fingerprint: 'ab'.repeat(32) });
      const before = fs.readdirSync(path.join(d.dir, 'data')).sort();
      const err = await rotateCa(wifOptions(d)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).code).toBe('CA_SLOTS_FULL');
      expect((err as UserError).message).toContain(other.fingerprint);
      expect((err as UserError).message).toContain(`${fp(d.oldCaPem)} (data/ca.crt)`);
      expect(fs.readdirSync(path.join(d.dir, 'data')).sort()).toEqual(before);
      expect(registrations(standin)).toHaveLength(0);
      expect(archives(standin)).toHaveLength(0);
    } finally {
      await d.proxy.close();
    }
  });

  it('--dry-run changes nothing, on disk or on the tunnel', async () => {
    const d = await deployment();
    try {
      const before = fs.readdirSync(path.join(d.dir, 'data')).sort();
      const r = await rotateCa(wifOptions(d, { dryRun: true }));
      expect(r.status).toBe('dry-run');
      expect(fs.readdirSync(path.join(d.dir, 'data')).sort()).toEqual(before);
      expect(standin.calls.filter((c) => c.method === 'POST' && c.path !== '/v1/oauth/token')).toEqual([]);
    } finally {
      await d.proxy.close();
    }
  });

  it.each(['created', 'registered', 'swapped', 'confirmed', 'archived'] as const)('interrupted after "%s", completes when run again (one registration, one archive)', async (step) => {
    const d = await deployment();
    try {
      const kill = (e: CaRotateEvent): void => {
        if (e.type === step) throw new Error(`killed after ${step}`);
      };
      await expect(rotateCa(wifOptions(d, { onProgress: kill }))).rejects.toThrow(`killed after ${step}`);
      const events: string[] = [];
      const r = await rotateCa(wifOptions(d, { onProgress: (e) => events.push(e.type) }));
      expect(r.status).toBe('done');
      expect(events[0]).toBe('resumed');
      expect(registrations(standin)).toHaveLength(1);
      expect(archives(standin)).toHaveLength(1);
      const newCa = fs.readFileSync(deploymentPaths(d.dir).caCert, 'utf8');
      expect(standin.activeCertificates(d.tunnelId).map((c) => c.fingerprint)).toEqual([fp(newCa)]);
      expect(await servedBy(d)).toBe(fp(newCa));
    } finally {
      await d.proxy.close();
    }
  });
});

describe('ca rotate and tunnel show through the CLI, programmatic flow', () => {
  it('refuses without --yes when it cannot ask; with it, rotates; tunnel show marks which certificate is which file', async () => {
    const d = await deployment();
    try {
      fs.writeFileSync(path.join(d.dir, '.env'), wifEnv(), { mode: 0o600 });
      const tuning = { MCP_TUNNEL_API_RETRY_BASE_MS: '2' };
      const refused = await runCli(['ca', 'rotate', '--dir', d.dir, '--non-interactive'], { env: tuning });
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toMatch(/pass --yes/);
      expect(registrations(standin)).toHaveLength(0);

      const r = await runCli(['ca', 'rotate', '--dir', d.dir, '--non-interactive', '--yes', '--proxy', d.wsUrl, '--wait-timeout', '10s'], { env: tuning });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/archived the old CA's certificate tcrt_/);

      const show = await runCli(['tunnel', 'show', '--dir', d.dir, '--json'], { env: tuning });
      expect(show.exitCode, show.stderr).toBe(0);
      const report = expectReport('tunnel', show) as unknown as { tunnel: { id: string; domain: string }; certificates: Array<{ fingerprint: string; archivedAt: string | null; local: string | null }>; localCa: { key: string; fingerprint: string } };
      expect(report.tunnel).toMatchObject({ id: d.tunnelId, domain: d.domain });
      const newFp = fp(fs.readFileSync(deploymentPaths(d.dir).caCert, 'utf8'));
      expect(report.localCa).toMatchObject({ key: 'ECDSA P-256', fingerprint: newFp });
      expect(report.certificates.map((c) => [c.local, c.archivedAt === null])).toEqual([
        ['ca.crt', true],
        ['ca.previous.crt', false],
      ]);

      // --json implies --non-interactive: still --yes or nothing; with it, one report of the second rotation.
      const jsonRefused = await runCli(['ca', 'rotate', '--dir', d.dir, '--json'], { env: tuning });
      expect(jsonRefused.exitCode).toBe(2);
      expect(jsonRefused.stdout).toBe('');
      const again = await runCli(['ca', 'rotate', '--dir', d.dir, '--json', '--yes', '--proxy', d.wsUrl, '--wait-timeout', '10s'], { env: tuning });
      expect(again.exitCode, again.stderr).toBe(0);
      expect(expectReport('ca-rotate', again)).toMatchObject({
        status: 'done', flow: 'wif', oldFingerprint: newFp, newFingerprint: fp(fs.readFileSync(deploymentPaths(d.dir).caCert, 'utf8')),
        archivedCertificateId: expect.stringMatching(/^tcrt_/), next: [],
      });
      expect(registrations(standin)).toHaveLength(2);
    } finally {
      await d.proxy.close();
    }
  }, 60_000);
});

describe('two ca rotate at once, programmatic flow', () => {
  it('the second waits for the first (the deployment lock), then rotates from its result: never a third CA on the tunnel', async () => {
    const d = await deployment();
    try {
      fs.writeFileSync(path.join(d.dir, '.env'), wifEnv(), { mode: 0o600 });
      const args = ['ca', 'rotate', '--dir', d.dir, '--json', '--yes', '--proxy', d.wsUrl, '--wait-timeout', '10s', '--lock-timeout', '60s'];
      const [a, b] = await Promise.all([0, 1].map(() => runCli(args, { env: { MCP_TUNNEL_API_RETRY_BASE_MS: '2' } })));
      for (const r of [a!, b!]) expect(r.exitCode, r.stderr).toBe(0);
      const reports = [a!, b!].map((r) => expectReport('ca-rotate', r) as unknown as { oldFingerprint: string; newFingerprint: string });
      // One after the other: one rotated the original CA, the other the CA the first one made.
      const first = reports.find((r) => r.oldFingerprint === fp(d.oldCaPem))!;
      const second = reports.find((r) => r !== first)!;
      expect(second.oldFingerprint).toBe(first.newFingerprint);
      expect(registrations(standin)).toHaveLength(2);
      expect(archives(standin)).toHaveLength(2);
      expect(standin.activeCertificates(d.tunnelId).map((c) => c.fingerprint)).toEqual([fp(fs.readFileSync(deploymentPaths(d.dir).caCert, 'utf8'))]);
    } finally {
      await d.proxy.close();
    }
  }, 90_000);
});

describe('ca rotate killed with SIGKILL', () => {
  /** What is on disk when the process dies: the new CA written but not recorded, then each recorded step. */
  const moments: Array<[string, (dir: string) => boolean]> = [
    ['new CA key written, nothing recorded', (dir) => fs.existsSync(rotationFiles(deploymentPaths(dir)).nextKey)],
    ...(['created', 'registered', 'swapped'] as const).map((step): [string, (dir: string) => boolean] => [
      `step "${step}" recorded`,
      (dir) => {
        try {
          return (JSON.parse(fs.readFileSync(rotationFiles(deploymentPaths(dir)).state, 'utf8')) as { step: string }).step === step;
        } catch {
          return false;
        }
      },
    ]),
  ];

  it.each(moments)('right after: %s; the next run completes with one registration and one archive', async (_, reached) => {
    const d = await deployment();
    try {
      fs.writeFileSync(path.join(d.dir, '.env'), wifEnv(), { mode: 0o600 });
      const args = ['ca', 'rotate', '--dir', d.dir, '--non-interactive', '--yes', '--proxy', d.wsUrl, '--wait-timeout', '10s'];
      const child = execa(process.execPath, [CLI, ...args], { env: { ...cliEnv(), MCP_TUNNEL_API_RETRY_BASE_MS: '2' }, extendEnv: false, reject: false });
      let killed = false;
      const watch = setInterval(() => {
        if (!killed && reached(d.dir)) {
          killed = child.kill('SIGKILL');
        }
      }, 2);
      const first = await child;
      clearInterval(watch);
      expect(first.signal, first.stderr).toBe('SIGKILL');

      const again = await runCli(args, { env: { MCP_TUNNEL_API_RETRY_BASE_MS: '2' } });
      expect(again.exitCode, again.stderr).toBe(0);
      expect(registrations(standin)).toHaveLength(1);
      expect(archives(standin)).toHaveLength(1);
      const newCa = fs.readFileSync(deploymentPaths(d.dir).caCert, 'utf8');
      expect(standin.activeCertificates(d.tunnelId).map((c) => c.fingerprint)).toEqual([fp(newCa)]);
      expect(fs.readFileSync(path.join(d.dir, 'data', 'ca.previous.crt'), 'utf8')).toBe(d.oldCaPem);
      expect(await servedBy(d)).toBe(fp(newCa));
    } finally {
      await d.proxy.close();
    }
  }, 60_000);
});

describe('ca rotate, manual flow', () => {
  it('in a directory without a CA: one line that does not name another command, exit 2', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-ca-none-'));
    try {
      const r = await runCli(['ca', 'rotate', '--dir', empty, '--non-interactive']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/^error: data\/ca\.crt and data\/ca\.key missing in .*: this command works with the existing CA and never creates one$/m);
      expect(r.stderr).not.toContain('renew-cert');
      expect(fs.readdirSync(empty)).toEqual([]);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('serves the old CA until --registered, then the new one; the CLI prints the PEM and the revoke step', async () => {
    const d = await deployment();
    try {
      fs.writeFileSync(path.join(d.dir, '.env'), `TUNNEL_TOKEN=${fakeTunnelToken()}\n`, { mode: 0o600 });
      const first = await runCli(['ca', 'rotate', '--dir', d.dir, '--non-interactive']);
      expect(first.exitCode, first.stderr).toBe(0);
      const next = fs.readFileSync(path.join(d.dir, 'data', 'ca.next.crt'), 'utf8');
      expect(first.stdout).toContain(next.trim());
      expect(first.stdout).toContain('--registered');
      const doctor = await runCli(['doctor', '--dir', d.dir, '--json', '--no-edge-check', '--timeout', '1s']);
      expect((JSON.parse(doctor.stdout) as { findings: Array<{ id: string; status: string }> }).findings.find((f) => f.id === 'ca.rotation')).toMatchObject({ status: 'warn' });
      // not registered yet: new handshakes still get the old CA's certificate
      await new Promise((r) => setTimeout(r, 200));
      expect(await servedBy(d)).toBe(fp(d.oldCaPem));

      const second = await runCli(['ca', 'rotate', '--dir', d.dir, '--non-interactive', '--registered', '--proxy', d.wsUrl, '--wait-timeout', '10s']);
      expect(second.exitCode, second.stderr).toBe(0);
      expect(second.stdout).toContain(`Revoke on the row with fingerprint ${fp(d.oldCaPem)}`);
      expect(await servedBy(d)).toBe(fp(next));
      expect(fs.readFileSync(path.join(d.dir, 'data', 'ca.crt'), 'utf8')).toBe(next);

      const show = await runCli(['tunnel', 'show', '--dir', d.dir, '--json']);
      expect(show.exitCode, show.stderr).toBe(0);
      expect(expectReport('tunnel', show)).toMatchObject({
        flow: 'manual',
        tunnel: { id: d.tunnelId, domain: d.domain },
        token: { present: true, source: '.env' },
        localCa: { fingerprint: fp(next), key: 'ECDSA P-256' },
        serverCertificate: { signedByLocalCa: true, renewalDue: false },
        certificates: null,
        rotation: null,
      });
    } finally {
      await d.proxy.close();
    }
  }, 30_000);
});
