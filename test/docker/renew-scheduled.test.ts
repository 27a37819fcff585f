/**
 * Scheduled renewal on one host, for real: `init --auto-renew` writes the cert-renewer service (and the build
 * context, even for the official engine); docker-compose 1.29 accepts it; the renewer, built from DIR/build
 * on the shell-less node base and started by `docker-compose up -d cert-renewer` with exactly the generated
 * hardening (no network, read-only root, no capabilities, only ./data mounted, the containers' UID plus the
 * CA group), renews a certificate that expires in 5 days into a ~90-day one owned as before, and stops
 * cleanly (exit 0) on SIGTERM. `schedule-renewal --disable` and `schedule-renewal` remove and restore it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RENEWER_CA_GID, RENEWER_SERVICE } from '../../src/deployment/compose-file.js';
import { inspectCertificate, issueServerCert, verifySignedBy } from '../../src/pki/index.js';
import { execa } from 'execa';
import { CLI, fakeTunnelToken, runCli } from '../helpers/cli.js';
import { docker, dockerCleanup, dockerCompose, ensureNodeBaseImage, mustDocker, requireDocker, TEST_LABEL, uniqueName } from '../helpers/docker.js';
import { scrubbedEnv } from '../helpers/stack.js';
import { waitFor } from '../helpers/tunnel-client.js';

const dockerReady = await requireDocker();
const DOMAIN = 'abcd1234.tunnel.example.com';
const DAY = 86_400_000;
const isRoot = process.getuid?.() === 0;
const FILES = ['compose.yaml', 'compose.test.yaml'];

const modeOf = (p: string): number => fs.statSync(p).mode & 0o7777;
const owner = (p: string): string => `${fs.statSync(p).uid}:${fs.statSync(p).gid}`;

describe.skipIf(!dockerReady)('cert-renewer service (docker-compose 1.29, real container)', () => {
  const cleanup = dockerCleanup();
  const project = uniqueName('mctrenew');
  const image = `mcp-tunnel-test/renewer:${uniqueName('r')}`;
  let work = '';
  let dir = '';
  let data = '';
  const compose = (args: string[], timeout = 240_000) =>
    dockerCompose(['-p', project, ...FILES.flatMap((f) => ['-f', f]), ...args], { cwd: dir, env: scrubbedEnv(), extendEnv: false, timeout });

  beforeAll(async () => {
    const base = await ensureNodeBaseImage();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-renewer-'));
    cleanup.dir(work);
    cleanup.image(image);
    dir = path.join(work, 'deployment');
    data = path.join(dir, 'data');
    cleanup.project(project, dir, FILES);
    const tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, `${fakeTunnelToken()}\n`, { mode: 0o600 });
    const init = await runCli([
      'init', '--dir', dir, '--tunnel-id', 'tnl_01renew', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile,
      '--route', 'docs=http://10.0.0.5:8080', '--auto-renew', '--base-image', base,
    ]);
    expect(init.stderr).toBe('');
    expect(init.exitCode).toBe(0);
    expect(init.stdout).toContain('Certificate renewal: scheduled daily');
    // A test-owned image tag, labelled, so the test never clobbers a real mcp-tunnel-proxy image.
    fs.writeFileSync(
      path.join(dir, 'compose.test.yaml'),
      ['services:', `  ${RENEWER_SERVICE}:`, `    image: ${image}`, '    labels:', `      ${TEST_LABEL}: "1"`, ''].join('\n'),
    );
  }, 300_000);

  afterAll(async () => {
    const problems = await cleanup.run();
    expect(problems).toEqual([]);
  }, 300_000);

  it('init --auto-renew writes the service, the build context (official engine) and the least-privilege access', () => {
    const text = fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8');
    const doc = YAML.parse(text) as { services: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.services)).toEqual(['mcp-proxy', 'cloudflared', RENEWER_SERVICE]);
    expect(String(doc.services['mcp-proxy']!.image)).toMatch(/^us-docker\.pkg\.dev\/.*mcp-proxy@sha256:/);
    const svc = doc.services[RENEWER_SERVICE]!;
    expect(svc.command).toEqual(['renew-cert', '--dir', '/deployment', '--every', '24h', '--renew-before', '720h']);
    expect(svc.network_mode).toBe('none');
    expect(svc.volumes).toEqual(['./data:/deployment/data']);
    expect(svc.read_only).toBe(true);
    expect(svc.cap_drop).toEqual(['ALL']);
    expect(svc.user).toBe('${MCP_TUNNEL_UID:-65532}:${MCP_TUNNEL_GID:-65532}');
    expect(fs.existsSync(path.join(dir, 'build', 'Dockerfile'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'build', 'mcp-tunnel.mjs'))).toBe(true);
    if (isRoot) {
      expect([owner(path.join(data, 'ca.key')), modeOf(path.join(data, 'ca.key'))]).toEqual([`0:${RENEWER_CA_GID}`, 0o640]);
      expect([owner(data), modeOf(data)]).toEqual([`0:${RENEWER_CA_GID}`, 0o1731]);
      expect(owner(path.join(data, 'tls.key'))).toBe('65532:65532');
      expect(owner(path.join(data, 'tunnel-token'))).toBe('0:0');
      expect(modeOf(path.join(data, 'tunnel-token'))).toBe(0o600);
    }
  });

  it('docker-compose config accepts the file with the service', async () => {
    const r = await dockerCompose(['config'], { cwd: dir, env: scrubbedEnv(), extendEnv: false });
    expect(r.stderr).not.toMatch(/ERROR|Unsupported|Invalid/i);
    expect(r.exitCode).toBe(0);
    const cfg = YAML.parse(String(r.stdout)) as { services: Record<string, Record<string, unknown>> };
    expect(cfg.services[RENEWER_SERVICE]!.network_mode).toBe('none');
    expect(cfg.services[RENEWER_SERVICE]!.group_add).toEqual([String(RENEWER_CA_GID)]);
  });

  it('renews a certificate that expires in 5 days, owned as before, and stops with exit 0 on SIGTERM', async () => {
    // The deployment's certificate now expires in 5 days (same CA, same owner and modes as init set).
    const ca = { certPem: fs.readFileSync(path.join(data, 'ca.crt'), 'utf8'), keyPem: fs.readFileSync(path.join(data, 'ca.key'), 'utf8') };
    const now = Date.now();
    const expiring = await issueServerCert({ ca, domain: DOMAIN, notBefore: new Date(now - 85 * DAY), notAfter: new Date(now + 5 * DAY) });
    const tlsOwner = { uid: fs.statSync(path.join(data, 'tls.key')).uid, gid: fs.statSync(path.join(data, 'tls.key')).gid };
    for (const [name, content, mode] of [['tls.key', expiring.keyPem, 0o600], ['tls.crt', expiring.certPem, 0o644]] as const) {
      const p = path.join(data, name);
      fs.writeFileSync(p, content);
      fs.chmodSync(p, mode);
      fs.chownSync(p, tlsOwner.uid, tlsOwner.gid);
    }
    const oldSerial = inspectCertificate(expiring.certPem).serialHex;
    const caKeyBefore = fs.readFileSync(path.join(data, 'ca.key'));

    const up = await compose(['up', '-d', RENEWER_SERVICE]);
    expect(up.exitCode, String(up.stderr)).toBe(0);

    const tlsCrt = path.join(data, 'tls.crt');
    await waitFor(() => inspectCertificate(fs.readFileSync(tlsCrt, 'utf8')).serialHex !== oldSerial, 'the renewer to replace tls.crt', 120_000);
    const cert = fs.readFileSync(tlsCrt, 'utf8');
    const info = inspectCertificate(cert);
    expect((info.notAfter.getTime() - Date.now()) / DAY).toBeGreaterThan(89);
    expect(verifySignedBy(cert, ca.certPem)).toBe(true);
    expect(fs.readFileSync(path.join(data, 'ca.key'))).toEqual(caKeyBefore);
    for (const [name, mode] of [['tls.crt', 0o644], ['tls.key', 0o600], ['tls.crt.previous', 0o644], ['tls.key.previous', 0o600]] as const) {
      const p = path.join(data, name);
      expect([name, owner(p), modeOf(p)]).toEqual([name, `${tlsOwner.uid}:${tlsOwner.gid}`, mode]);
    }
    expect(inspectCertificate(fs.readFileSync(path.join(data, 'tls.crt.previous'), 'utf8')).serialHex).toBe(oldSerial);

    // The container is exactly the hardened one compose.yaml describes.
    const id = (await mustDocker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${RENEWER_SERVICE}`])).split('\n')[0]!;
    const inspect = JSON.parse(await mustDocker(['inspect', id]))[0] as {
      Config: { User: string };
      HostConfig: { NetworkMode: string; ReadonlyRootfs: boolean; CapDrop: string[]; GroupAdd: string[]; SecurityOpt: string[] };
      Mounts: Array<{ Source: string; Destination: string; RW: boolean }>;
    };
    expect(inspect.HostConfig.NetworkMode).toBe('none');
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect.HostConfig.CapDrop).toEqual(['ALL']);
    expect(inspect.HostConfig.GroupAdd).toEqual([String(RENEWER_CA_GID)]);
    expect(inspect.HostConfig.SecurityOpt).toContain('no-new-privileges:true');
    expect(inspect.Config.User).toBe(isRoot ? '65532:65532' : `${process.getuid?.()}:${process.getgid?.()}`);
    expect(inspect.Mounts.map((m) => [m.Source, m.Destination, m.RW])).toEqual([[data, '/deployment/data', true]]);

    const logs = await compose(['logs', '--no-color', RENEWER_SERVICE]);
    expect(String(logs.stdout)).toMatch(/renewed data\/tls\.crt for abcd1234\.tunnel\.example\.com and \*\.abcd1234\.tunnel\.example\.com \(expires soon\)/);
    expect(String(logs.stdout)).toMatch(/next check \d{4}-/);

    const started = Date.now();
    const stop = await compose(['stop', '-t', '20', RENEWER_SERVICE]);
    expect(stop.exitCode).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const state = JSON.parse(await mustDocker(['inspect', '--format', '{{json .State}}', id])) as { ExitCode: number; Running: boolean };
    expect(state).toMatchObject({ Running: false, ExitCode: 0 });
    expect(String((await compose(['logs', '--no-color', RENEWER_SERVICE])).stdout)).toContain('SIGTERM received, stopping');
  }, 300_000);

  it('the renewer container and a host command exclude each other through data/.mcp-tunnel.lock', async () => {
    // A host command holding the lock: rotate-token has taken it and waits for its token on stdin.
    const holder = execa(process.execPath, [CLI, 'rotate-token', '--tunnel-token-stdin', '--dir', dir], { env: { ...scrubbedEnv(), CI: 'true', NO_COLOR: '1' }, extendEnv: false, reject: false, stdin: 'pipe', timeout: 120_000 });
    try {
      await waitFor(() => fs.existsSync(path.join(data, '.mcp-tunnel.lock', 'holder.json')), 'the host command to take the lock', 20_000);
      const inContainer = (): Promise<{ exitCode?: number; stdout: unknown; stderr: unknown }> =>
        compose(['run', '--rm', '-T', RENEWER_SERVICE, 'renew-cert', '--dir', '/deployment', '--force', '--lock-timeout', '0'], 120_000);
      const refused = await inContainer();
      expect(refused.exitCode, String(refused.stderr)).toBe(3);
      expect(String(refused.stderr)).toContain(`is being changed by mcp-tunnel rotate-token (pid ${holder.pid} on ${os.hostname()}`);
      holder.kill('SIGTERM');
      await holder;
      expect(fs.existsSync(path.join(data, '.mcp-tunnel.lock'))).toBe(false);
      const renewed = await inContainer();
      expect(renewed.exitCode, String(renewed.stderr)).toBe(0);
      // The container's lock (made as the containers' user) is gone after its run: the host goes ahead at once.
      expect(fs.existsSync(path.join(data, '.mcp-tunnel.lock'))).toBe(false);
      const host = await runCli(['renew-cert', '--dir', dir, '--force', '--lock-timeout', '0']);
      expect(host.exitCode, host.stderr).toBe(0);
    } finally {
      holder.kill('SIGKILL');
    }
  }, 300_000);

  it('schedule-renewal --disable removes it and restores the permissions; schedule-renewal adds it back', async () => {
    await compose(['rm', '-f', '-s', RENEWER_SERVICE]);
    const off = await runCli(['schedule-renewal', '--dir', dir, '--disable']);
    expect(off.exitCode, off.stderr).toBe(0);
    expect(off.stdout).toContain(`removed the ${RENEWER_SERVICE} service from compose.yaml`);
    const withoutText = fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8');
    expect(withoutText).not.toContain(RENEWER_SERVICE);
    if (isRoot) {
      expect([owner(path.join(data, 'ca.key')), modeOf(path.join(data, 'ca.key'))]).toEqual(['0:0', 0o600]);
      expect([owner(data), modeOf(data)]).toEqual(['0:0', 0o711]);
    }
    const again = await runCli(['schedule-renewal', '--dir', dir, '--disable']);
    expect(again.stdout).toContain('nothing to remove');

    const on = await runCli(['schedule-renewal', '--dir', dir]);
    expect(on.exitCode, on.stderr).toBe(0);
    expect(on.stdout).toContain(`added the ${RENEWER_SERVICE} service to compose.yaml`);
    const withText = fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8');
    expect(withText).toContain(`  ${RENEWER_SERVICE}:`);
    if (isRoot) {
      expect([owner(path.join(data, 'ca.key')), modeOf(path.join(data, 'ca.key'))]).toEqual([`0:${RENEWER_CA_GID}`, 0o640]);
      expect([owner(data), modeOf(data)]).toEqual([`0:${RENEWER_CA_GID}`, 0o1731]);
    }
    const cfg = await dockerCompose(['config', '-q'], { cwd: dir, env: scrubbedEnv(), extendEnv: false });
    expect(cfg.exitCode, String(cfg.stderr)).toBe(0);

    // init again without flags keeps the renewer and its permissions (nothing to change).
    const tokenFile = path.join(work, 'token');
    const reinit = await runCli(['init', '--dir', dir, '--tunnel-token-file', tokenFile]);
    expect(reinit.exitCode, reinit.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8')).toBe(withText);
    if (isRoot) expect(modeOf(path.join(data, 'ca.key'))).toBe(0o640);
  }, 120_000);

  it('a hand-edited compose.yaml is edited in place (comments kept) when that does not reformat it', async () => {
    const file = path.join(dir, 'compose.yaml');
    const original = fs.readFileSync(file, 'utf8');
    const edited = original.replace('services:\n', 'services:\n  # my own service\n  sidecar:\n    image: busybox\n');
    fs.writeFileSync(file, edited);
    const off = await runCli(['schedule-renewal', '--dir', dir, '--disable']);
    expect(off.exitCode, off.stderr).toBe(0);
    const after = fs.readFileSync(file, 'utf8');
    expect(after).toContain('# my own service');
    expect(after).not.toContain(RENEWER_SERVICE);
    expect(YAML.parse(after).services.sidecar).toEqual({ image: 'busybox' });
    fs.writeFileSync(file, original);
  });
});

// Keep the helper referenced for the cleanup of stray containers on interrupted runs.
void docker;
