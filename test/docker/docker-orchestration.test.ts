/**
 * Issue 4, "Done when", against the real daemon: init (builtin) -> mcp-tunnel up (cloudflared swapped for the
 * stand-in by compose.override.yaml, which docker-compose reads too) -> probe through the published stand-in port
 * -> a tool call on an upstream MCP server container -> status --json -> down leaves no container or network.
 * Plus interchangeability with docker-compose 1.29 in both directions, the config-hash recreate rules, the
 * rotate-token adapter and the health-failure diagnosis.
 */
import { execa } from 'execa';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerStackControl, type StackStatus } from '../../src/docker/index.js';
import { inspectCertificate } from '../../src/pki/index.js';
import { CLI, fakeTunnelToken } from '../helpers/cli.js';
import { docker, dockerCleanup, mustDocker, projectContainers, projectNetworks, requireDocker } from '../helpers/docker.js';
import {
  TEST_DOMAIN,
  buildStandin,
  containerId,
  containerLabels,
  createDeployment,
  createUpstreamNetwork,
  scrubbedEnv,
  standinPort,
  startUpstreamServer,
  writeOverride,
  type TestDeployment,
  type UpstreamNetwork,
} from '../helpers/stack.js';

const dockerReady = await requireDocker();

const timings: Array<[string, number]> = [];
async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings.push([label, Date.now() - started]);
  }
}

describe.skipIf(!dockerReady)('mcp-tunnel up / status / logs / down on a real daemon', () => {
  const cleanup = dockerCleanup();
  let d: TestDeployment;
  let net: UpstreamNetwork;
  let standin = '';
  const name = (service: string): string => `${d.project}-${service}-1`;

  beforeAll(async () => {
    await timed('setup: stand-in image, upstream network, init', async () => {
      standin = await buildStandin();
      cleanup.image(standin);
      net = await createUpstreamNetwork(cleanup);
      d = await createDeployment({ cleanup, standinImage: standin, routes: [`echo=http://${net.upstreamIp}:8080`] });
    });
  }, 300_000);

  afterAll(async () => {
    const problems = await cleanup.run();
    if (problems.length) console.warn(`cleanup problems:\n${problems.join('\n')}`);
    console.log(`docker-orchestration timings:\n${timings.map(([l, ms]) => `  ${(ms / 1000).toFixed(1).padStart(6)}s  ${l}`).join('\n')}`);
  }, 180_000);

  it('up builds the builtin image, creates the network and containers, waits for health and four registrations', async () => {
    const r = await timed('mcp-tunnel up (first: build + start + wait)', () => d.cli(['up', '--dir', d.dir, '--timeout', '120s']));
    expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`mcp-proxy: building ${d.proxyImage.replace(/[/.]/g, '\\$&')}`));
    expect(r.stdout).toMatch(/mcp-proxy: Step \d+\/\d+ : FROM/);
    expect(r.stdout).toContain(`mcp-proxy: image ${d.proxyImage} built`);
    expect(r.stdout).toContain(`network ${d.project}_default created`);
    expect(r.stdout).toContain(`${name('mcp-proxy')} created`);
    expect(r.stdout).toContain(`${name('cloudflared')} created`);
    expect(r.stdout).toContain('mcp-proxy healthy');
    expect(r.stdout).toContain('cloudflared: 4/4 tunnel connections registered');
    expect(r.stdout).toContain(`Stack ${d.project} is up`);
  }, 300_000);

  it("names and labels the containers exactly as docker-compose 1.29 does, with every compose setting", async () => {
    expect((await projectContainers(d.project)).sort()).toEqual([name('cloudflared'), name('mcp-proxy')].sort());
    const proxyId = await containerId(name('mcp-proxy'));
    for (const service of ['mcp-proxy', 'cloudflared']) {
      const labels = await containerLabels(name(service));
      expect(labels).toMatchObject({
        'com.docker.compose.project': d.project,
        'com.docker.compose.service': service,
        'com.docker.compose.oneoff': 'False',
        'com.docker.compose.container-number': '1',
        'com.docker.compose.version': '1.29.2',
        'com.docker.compose.project.working_dir': d.dir,
        'com.docker.compose.project.config_files': 'compose.yaml,compose.override.yaml',
        'mcp-tunnel-test': '1',
      });
      expect(labels['com.docker.compose.config-hash']).toMatch(/^[0-9a-f]{64}$/);
      const hc = JSON.parse(await mustDocker(['inspect', '--format', '{{json .HostConfig}}', name(service)])) as Record<string, unknown>;
      const cfg = JSON.parse(await mustDocker(['inspect', '--format', '{{json .Config}}', name(service)])) as Record<string, unknown>;
      expect(cfg.User).toBe(process.getuid?.() === 0 ? '65532:65532' : `${process.getuid!()}:${process.getgid!()}`);
      expect(cfg.StopTimeout).toBe(30);
      expect(hc.ReadonlyRootfs).toBe(true);
      expect(hc.CapDrop).toEqual(['ALL']);
      expect(hc.SecurityOpt).toEqual(['no-new-privileges:true']);
      expect(hc.RestartPolicy).toEqual({ Name: 'unless-stopped', MaximumRetryCount: 0 });
      expect(hc.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } });
      if (service === 'cloudflared') {
        expect(hc.NetworkMode).toBe(`container:${proxyId}`);
        expect(cfg.Cmd).toEqual(['tunnel', '--no-autoupdate', 'run', '--url', 'http://localhost:8080']);
        expect((cfg.Env as string[]).some((e) => e.startsWith('TUNNEL_TOKEN=eyJ'))).toBe(true);
      } else {
        expect(hc.NetworkMode).toBe(`${d.project}_default`);
        expect(hc.Binds).toEqual([`${d.dir}/data:/data:ro`, `${d.dir}/config/mcp-proxy.yaml:/etc/mcp-gateway/config.yaml:ro`]);
        expect(hc.PortBindings).toEqual({ '8081/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
        expect(cfg.Healthcheck).toEqual({ Test: ['CMD', 'node', '/app/mcp-tunnel.mjs', 'health'], Interval: 1e9, Timeout: 5e9, StartPeriod: 10e9, Retries: 3 });
        const aliases = await mustDocker(['inspect', '--format', `{{json (index .NetworkSettings.Networks "${d.project}_default").Aliases}}`, name(service)]);
        expect(JSON.parse(aliases)).toContain('mcp-proxy');
      }
    }
    const netLabels = JSON.parse(await mustDocker(['network', 'inspect', '--format', '{{json .Labels}}', `${d.project}_default`])) as Record<string, string>;
    expect(netLabels).toEqual({ 'com.docker.compose.network': 'default', 'com.docker.compose.project': d.project, 'com.docker.compose.version': '1.29.2' });
  });

  it('a probe through the published stand-in port reaches an upstream MCP server container and a tool call succeeds', async () => {
    await timed('upstream MCP server container + probe', async () => {
      await startUpstreamServer(net, d.proxyImage);
      await mustDocker(['network', 'connect', net.name, name('mcp-proxy')]);
      const port = await standinPort(d.project);
      const r = await d.cli(
        ['probe', 'echo', '--dir', d.dir, '--proxy', `ws://127.0.0.1:${port}`, '--call', 'echo', '--args', JSON.stringify({ text: 'through the tunnel' }), '--json'],
        { timeoutMs: 60_000 },
      );
      expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
      const result = JSON.parse(r.stdout) as { ok: boolean; host: string; tools?: string[]; toolCall?: { name: string; isError: boolean; text: string } };
      expect(result.ok).toBe(true);
      expect(result.host).toBe(`echo.${TEST_DOMAIN}`);
      expect(result.tools).toEqual(expect.arrayContaining(['hello', 'echo']));
      expect(result.toolCall).toEqual({ name: 'echo', isError: false, text: 'through the tunnel' });
    });
  }, 120_000);

  it('status --json reports containers, health, uptime, restarts, routes, certificate expiry and connections', async () => {
    const [r, human] = await timed('status --json + status', () =>
      Promise.all([d.cli(['status', '--dir', d.dir, '--json'], { timeoutMs: 60_000 }), d.cli(['status', '--dir', d.dir], { timeoutMs: 60_000 })]),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as StackStatus;
    const cert = inspectCertificate(await fs.readFile(path.join(d.dir, 'data', 'tls.crt'), 'utf8'));
    const port = await standinPort(d.project);
    expect(s).toMatchObject({
      project: d.project,
      dir: d.dir,
      overall: 'running',
      docker: { endpoint: 'unix:///var/run/docker.sock', rootless: false },
      routes: [{ name: 'echo', host: `echo.${TEST_DOMAIN}`, upstream: `http://${net.upstreamIp}:8080` }],
      certificate: { notAfter: cert.notAfter.toISOString(), expired: false, dnsNames: [TEST_DOMAIN, `*.${TEST_DOMAIN}`] },
      tunnel: { service: 'cloudflared', registered: 4, full: 4, state: 'connected' },
      problems: [],
    });
    expect(s.certificate!.daysLeft).toBeGreaterThan(80);
    expect(s.services.map((x) => x.service)).toEqual(['mcp-proxy', 'cloudflared']);
    const [proxy, cf] = s.services;
    expect(proxy).toMatchObject({ container: name('mcp-proxy'), image: d.proxyImage, state: 'running', health: 'healthy', restarts: 0, upToDate: true, ports: [`127.0.0.1:${port}->8081/tcp`] });
    expect(cf).toMatchObject({ container: name('cloudflared'), image: d.standinImage, state: 'running', restarts: 0, upToDate: true, ports: [] });
    expect(cf!.health).toBeUndefined();
    for (const x of s.services) {
      expect(x.uptimeSeconds).toBeGreaterThanOrEqual(0);
      expect(Date.parse(x.startedAt!)).toBeLessThanOrEqual(Date.now());
    }

    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/mcp-proxy\s+\S+-mcp-proxy-1\s+running\s+healthy/);
    expect(human.stdout).toContain('Tunnel: 4/4 connections registered (connected)');
    expect(human.stdout).toContain(`https://echo.${TEST_DOMAIN}  ->  http://${net.upstreamIp}:8080`);
  }, 90_000);

  it('logs demultiplexes each container and prefixes every line with its service', async () => {
    const [r, all, bad] = await Promise.all([
      d.cli(['logs', 'cloudflared', '--dir', d.dir, '--tail', '20'], { timeoutMs: 30_000 }),
      d.cli(['logs', '--dir', d.dir], { timeoutMs: 30_000 }),
      d.cli(['logs', 'nope', '--dir', d.dir], { timeoutMs: 30_000 }),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.every((l) => l.startsWith('cloudflared | '))).toBe(true);
    expect(lines.filter((l) => /cloudflared \| \S+ INF Registered tunnel connection connIndex=\d/.test(l))).toHaveLength(4);
    expect(all.stdout).toMatch(/^mcp-proxy {3}\| \{"time":.*"msg":"proxy listening"/m);
    expect(all.stdout).not.toMatch(/[\u0000-\u0008]/); // no frame headers left
    // --follow streams until Ctrl-C, then exits 0
    const child = execa(process.execPath, [CLI, 'logs', '--follow', '--tail', '1', 'cloudflared', '--dir', d.dir], {
      env: scrubbedEnv({ CI: 'true', NO_COLOR: '1' }),
      extendEnv: false,
      reject: false,
      timeout: 60_000,
    });
    let followed = '';
    child.stdout!.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    for (let i = 0; i < 300 && !followed.includes('cloudflared |'); i++) await new Promise((res) => setTimeout(res, 100));
    child.kill('SIGINT');
    const stopped = await child;
    expect(stopped.exitCode).toBe(0);
    expect(followed).toMatch(/^cloudflared \| \S+ INF Registered tunnel connection connIndex=3/m);

    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('error: no container for service "nope"');
  }, 60_000);

  it('docker-compose ps lists what mcp-tunnel up created and docker-compose up -d leaves it alone (same config hash)', async () => {
    const before = [await containerId(name('mcp-proxy')), await containerId(name('cloudflared'))];
    const ps = await d.compose(['ps']);
    expect(ps.exitCode, String(ps.stderr)).toBe(0);
    expect(String(ps.stdout)).toContain(name('mcp-proxy'));
    expect(String(ps.stdout)).toContain(name('cloudflared'));
    const up = await timed('docker-compose up -d on mcp-tunnel containers', () => d.compose(['up', '-d']));
    expect(up.exitCode, String(up.stderr)).toBe(0);
    expect(String(up.stderr)).toContain(`${name('mcp-proxy')} is up-to-date`);
    expect(String(up.stderr)).toContain(`${name('cloudflared')} is up-to-date`);
    expect([await containerId(name('mcp-proxy')), await containerId(name('cloudflared'))]).toEqual(before);
  }, 120_000);

  it('up again changes nothing; a new TUNNEL_TOKEN recreates only cloudflared; a changed proxy recreates both', async () => {
    const proxyBefore = await containerId(name('mcp-proxy'));
    const cfBefore = await containerId(name('cloudflared'));
    const again = await timed('mcp-tunnel up (no change)', () => d.cli(['up', '--dir', d.dir]));
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain(`${name('mcp-proxy')} is up to date`);
    expect(again.stdout).toContain(`${name('cloudflared')} is up to date`);

    const envFile = path.join(d.dir, '.env');
    const env = await fs.readFile(envFile, 'utf8');
    await fs.writeFile(envFile, env.replace(/^TUNNEL_TOKEN=.*$/m, `TUNNEL_TOKEN=${fakeTunnelToken('rotated')}`));
    const token = await timed('mcp-tunnel up (new token)', () => d.cli(['up', '--dir', d.dir]));
    expect(token.exitCode, token.stderr).toBe(0);
    expect(token.stdout).toContain(`${name('cloudflared')} recreated (configuration changed)`);
    expect(token.stdout).toContain(`${name('mcp-proxy')} is up to date`);
    expect(await containerId(name('mcp-proxy'))).toBe(proxyBefore);
    expect(await containerId(name('cloudflared'))).not.toBe(cfBefore);
    expect((await projectContainers(d.project)).sort()).toEqual([name('cloudflared'), name('mcp-proxy')].sort());

    await writeOverride(d.dir, { standinImage: d.standinImage, proxyImage: d.proxyImage, healthInterval: '2s' });
    const proxy = await timed('mcp-tunnel up (proxy changed)', () => d.cli(['up', '--dir', d.dir]));
    expect(proxy.exitCode, proxy.stderr).toBe(0);
    expect(proxy.stdout).toContain(`${name('mcp-proxy')} recreated (configuration changed)`);
    expect(proxy.stdout).toContain(`${name('cloudflared')} recreated (mcp-proxy was recreated)`);
    expect(proxy.stdout).toContain('cloudflared: 4/4 tunnel connections registered');
    const proxyId = await containerId(name('mcp-proxy'));
    expect(proxyId).not.toBe(proxyBefore);
    expect(await mustDocker(['inspect', '--format', '{{.HostConfig.NetworkMode}}', name('cloudflared')])).toBe(`container:${proxyId}`);
  }, 180_000);

  it('dockerStackControl (rotate-token) recreates cloudflared and counts its registrations again', async () => {
    const control = dockerStackControl(d.dir, { processEnv: scrubbedEnv() });
    expect(await control.cloudflaredState()).toEqual({ state: 'running' });
    const before = await containerId(name('cloudflared'));
    await timed('dockerStackControl: recreate cloudflared + wait', async () => {
      await control.recreateCloudflared();
      const r = await control.waitForRegistration(60_000);
      expect(r).toMatchObject({ registered: 4, full: 4, degraded: false });
    });
    expect(await containerId(name('cloudflared'))).not.toBe(before);
    expect((await projectContainers(d.project)).sort()).toEqual([name('cloudflared'), name('mcp-proxy')].sort());
  }, 120_000);

  it('rotate-token (manual) recreates cloudflared with the new token; one that does not register leaves .env.previous for rollback', async () => {
    // Same account and tunnel as the deployment's current token, new secret: what the Console's "Rotate token" hands out.
    const tokenFile = path.join(path.dirname(d.dir), 'rotated-token');
    const envFile = path.join(d.dir, '.env');
    const current = /^TUNNEL_TOKEN=(.*)$/m.exec(await fs.readFile(envFile, 'utf8'))![1]!;
    const { a, t } = JSON.parse(Buffer.from(current, 'base64').toString('utf8')) as { a: string; t: string };
    const rotated = (s: string): string => Buffer.from(JSON.stringify({ a, t, s })).toString('base64');
    await writeOverride(d.dir, {
      standinImage: d.standinImage,
      proxyImage: d.proxyImage,
      healthInterval: '2s',
      extraCloudflared: ['      STANDIN_CONNECTIONS: "${STANDIN_CONNECTIONS:-4}"'],
    });
    expect((await d.cli(['up', '--dir', d.dir])).exitCode).toBe(0);

    await fs.writeFile(tokenFile, rotated('first'), { mode: 0o600 });
    const ok = await timed('rotate-token (registers)', () => d.cli(['rotate-token', '--dir', d.dir, '--tunnel-token-file', tokenFile, '--wait-timeout', '60s']));
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('cloudflared registered 4 tunnel connections with the new token');
    expect(await mustDocker(['inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', name('cloudflared')])).toContain(`TUNNEL_TOKEN=${rotated('first')}`);
    expect(ok.stdout + ok.stderr).not.toContain(rotated('first'));

    // The next connector never registers (the stand-in is told to open no connection).
    await fs.appendFile(envFile, 'STANDIN_CONNECTIONS=0\n');
    await fs.writeFile(tokenFile, rotated('second'), { mode: 0o600 });
    const bad = await timed('rotate-token (does not register)', () => d.cli(['rotate-token', '--dir', d.dir, '--tunnel-token-file', tokenFile, '--wait-timeout', '5s']));
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).toMatch(/^error: cloudflared did not register a tunnel connection with the new token within 5s; the previous .env is kept in .env.previous$/m);
    expect(bad.stderr).toMatch(/^hint: .*cp .*\.env\.previous .*\.env/m);
    const previous = await fs.readFile(path.join(d.dir, '.env.previous'), 'utf8');
    expect(previous).toContain(`TUNNEL_TOKEN=${rotated('first')}`);
    expect((await fs.stat(path.join(d.dir, '.env.previous'))).mode & 0o777).toBe(0o600);

    // Rolling back as the hint says brings the tunnel back.
    await fs.writeFile(envFile, previous.replace(/^STANDIN_CONNECTIONS=0\n/m, ''), { mode: 0o600 });
    const back = await d.cli(['up', '--dir', d.dir]);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(back.stdout).toContain('cloudflared: 4/4 tunnel connections registered');
  }, 240_000);

  it('a cloudflared that cannot start fails up with its last log lines and the likely fix', async () => {
    await writeOverride(d.dir, {
      standinImage: d.standinImage,
      proxyImage: d.proxyImage,
      healthInterval: '2s',
      extraCloudflared: ['    command: tunnel --no-autoupdate run'],
    });
    const r = await timed('mcp-tunnel up (cloudflared without --url)', () => d.cli(['up', '--dir', d.dir, '--timeout', '60s']));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^error: cloudflared (exited with code 1|keeps restarting \(exit code 1\)) before registering its tunnel connections: cloudflared has no ingress rule/m);
    expect(r.stderr).toMatch(/^hint: .*--url http:\/\/localhost:8080/m);
    expect(r.stdout).toContain('--- last lines of cloudflared ---');
    expect(r.stdout).toContain('No ingress rules');

    await writeOverride(d.dir, { standinImage: d.standinImage, proxyImage: d.proxyImage, healthInterval: '2s' });
    const fixed = await d.cli(['up', '--dir', d.dir]);
    expect(fixed.exitCode, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain('cloudflared: 4/4 tunnel connections registered');
  }, 180_000);

  it('docker-compose down removes what mcp-tunnel up created', async () => {
    const down = await timed('docker-compose down', () => d.compose(['down', '--timeout', '5']));
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(await projectContainers(d.project)).toEqual([]);
    expect(await projectNetworks(d.project)).toEqual([]);
  }, 120_000);

  it('after docker-compose up -d, mcp-tunnel status reports the containers and mcp-tunnel up leaves them alone', async () => {
    const up = await timed('docker-compose up -d', () => d.compose(['up', '-d']));
    expect(up.exitCode, String(up.stderr)).toBe(0);
    const v1 = (service: string): string => `${d.project}_${service}_1`;
    expect((await projectContainers(d.project)).sort()).toEqual([v1('cloudflared'), v1('mcp-proxy')].sort());

    let s: StackStatus | undefined;
    for (let i = 0; i < 40; i++) {
      const r = await d.cli(['status', '--dir', d.dir, '--json'], { timeoutMs: 30_000 });
      s = JSON.parse(r.stdout) as StackStatus;
      if (s.tunnel?.state === 'connected' && s.services.every((x) => x.health === undefined || x.health === 'healthy')) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(s).toMatchObject({ overall: 'running', tunnel: { registered: 4, state: 'connected' }, problems: [] });
    expect(s!.services).toEqual([
      expect.objectContaining({ service: 'mcp-proxy', container: v1('mcp-proxy'), state: 'running', health: 'healthy', upToDate: true, createdBy: 'docker-compose v1' }),
      expect.objectContaining({ service: 'cloudflared', container: v1('cloudflared'), state: 'running', upToDate: true, createdBy: 'docker-compose v1' }),
    ]);

    const ids = [await containerId(v1('mcp-proxy')), await containerId(v1('cloudflared'))];
    const ours = await timed('mcp-tunnel up on docker-compose containers', () => d.cli(['up', '--dir', d.dir]));
    expect(ours.exitCode, ours.stderr).toBe(0);
    expect(ours.stdout).toContain(`${v1('mcp-proxy')} is up to date`);
    expect(ours.stdout).toContain(`${v1('cloudflared')} is up to date`);
    expect([await containerId(v1('mcp-proxy')), await containerId(v1('cloudflared'))]).toEqual(ids);
  }, 180_000);

  it('down --timeout 0 stops at once and leaves no container and no network', async () => {
    const r = await timed('mcp-tunnel down --timeout 0', () => d.cli(['down', '--dir', d.dir, '--timeout', '0'], { timeoutMs: 60_000 }));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`network ${d.project}_default removed`);
    expect(r.stdout).toContain(`Stack ${d.project} is down.`);
    expect(await projectContainers(d.project)).toEqual([]);
    expect(await projectNetworks(d.project)).toEqual([]);
    expect((await docker(['network', 'inspect', `${d.project}_default`])).exitCode).not.toBe(0);
    const again = await d.cli(['down', '--dir', d.dir]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('Nothing to do');
    const status = await d.cli(['status', '--dir', d.dir, '--json']);
    expect(status.exitCode).toBe(1);
    expect(JSON.parse(status.stdout)).toMatchObject({ overall: 'absent' });
  }, 60_000);

  it('a proxy that refuses its config fails up with the diagnosis, and down still works without a token', async () => {
    const config = path.join(d.dir, 'config', 'mcp-proxy.yaml');
    const good = await fs.readFile(config, 'utf8');
    await fs.writeFile(config, `${good}\nbogus_field: 1\n`);
    const r = await timed('mcp-tunnel up (broken proxy config)', () => d.cli(['up', '--dir', d.dir, '--timeout', '60s']));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^error: mcp-proxy (exited with code \d+|keeps restarting \(exit code \d+\)|is unhealthy).*: the proxy refused its configuration/m);
    expect(r.stdout).toContain('--- last lines of mcp-proxy ---');
    expect(r.stdout).toContain('bogus_field');
    await fs.writeFile(config, good);

    // Breach response must not depend on a loadable compose file: remove the token, then down.
    const envFile = path.join(d.dir, '.env');
    await fs.writeFile(envFile, (await fs.readFile(envFile, 'utf8')).replace(/^TUNNEL_TOKEN=.*\n/m, ''));
    const down = await d.cli(['down', '--dir', d.dir, '--timeout', '0']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await projectContainers(d.project)).toEqual([]);
    expect(await projectNetworks(d.project)).toEqual([]);
  }, 120_000);
});
