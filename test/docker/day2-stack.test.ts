/**
 * Issue 13 on a real daemon: a builtin stack (cloudflared replaced by the local stand-in) whose upstream is a
 * compose service of the same project (the sample MCP server in the builtin image, on the project network):
 * probe with no published proxy port, config set applied and confirmed, a hand edit applied by `up` (and only
 * then), docker-compose agreeing with what `up` did, logs kept by `down --timeout 0`, teardown.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebSocketStream, WebSocket } from 'ws';
import { docker, dockerCleanup, mustDocker, requireDocker } from '../helpers/docker.js';
import { expectReport } from '../helpers/json-reports.js';
import { makeTestPki } from '../helpers/pki.js';
import { TEST_DOMAIN, buildStandin, createDeployment, writeOverride, type TestDeployment } from '../helpers/stack.js';

const dockerReady = await requireDocker();

describe.skipIf(!dockerReady)('day-2 operations on a running stack', () => {
  const cleanup = dockerCleanup();
  let d: TestDeployment;
  const configFile = (): string => path.join(d.dir, 'config', 'mcp-proxy.yaml');
  const proxyName = (): string => `${d.project}-mcp-proxy-1`;
  const logsOf = async (name: string): Promise<string> => {
    const r = await docker(['logs', name]);
    return String(r.stdout) + String(r.stderr);
  };

  beforeAll(async () => {
    const standin = await buildStandin();
    cleanup.image(standin);
    d = await createDeployment({ cleanup, standinImage: standin, routes: ['echo=http://hello-mcp:9000'], prefix: 'mcpday2' });
    // The upstream: the sample MCP server as a service of the project (an address on the project's network).
    await writeOverride(d.dir, {
      standinImage: standin,
      proxyImage: d.proxyImage,
      healthInterval: '1s',
      extraCloudflared: [
        '  hello-mcp:',
        `    image: ${d.proxyImage}`,
        '    command: ["demo", "--serve-sample", "0.0.0.0:9000"]',
        // Ready once it listens: up waits for it (after the proxy it depends on, and after each recreate).
        '    healthcheck:',
        `      test: ["CMD", "node", "-e", "require('net').connect(9000, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"]`,
        '      interval: 1s',
        '      retries: 30',
        '    depends_on:',
        '      - mcp-proxy',
        '    labels:',
        '      mcp-tunnel-test: "1"',
      ],
    });
    const up = await d.cli(['up', '--dir', d.dir, '--timeout', '180s'], { timeoutMs: 300_000 });
    expect(up.exitCode, `${up.stderr}\n${up.stdout}`).toBe(0);
  }, 400_000);

  afterAll(async () => {
    const problems = await cleanup.run();
    if (problems.length) console.warn(`cleanup problems:\n${problems.join('\n')}`);
  }, 180_000);

  it('probe ROUTE works with no published proxy port: it reaches the proxy container where it runs', async () => {
    const r = await d.cli(['probe', 'echo', '--dir', d.dir, '--call', 'echo', '--args', '{"text":"day2"}'], { timeoutMs: 60_000 });
    expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stdout).toMatch(/through ws:\/\/[\d.]+:8080\/ \(the \S+-mcp-proxy-1 container's address on its network\)/);
    expect(r.stdout).toContain('the tunnel path to echo.');
  }, 90_000);

  it('config set log_level debug: comments kept, proxy restarted and logging at debug; init re-run changes nothing', async () => {
    const before = fs.readFileSync(configFile(), 'utf8');
    const r = await d.cli(['config', 'set', 'log_level', 'debug', '--dir', d.dir], { timeoutMs: 120_000 });
    expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stdout).toContain('log_level: info -> debug');
    expect(r.stdout).toMatch(/restarted \S+-mcp-proxy-1 and \S+-cloudflared-1/);
    expect(r.stdout).toContain('route echo is served');
    const after = fs.readFileSync(configFile(), 'utf8');
    expect(after).toBe(before.replace('log_level: info', 'log_level: debug'));
    // The confirmation probe opened a tunnel connection, which the proxy logs at debug only.
    expect(await logsOf(proxyName())).toMatch(/"level":"debug".*tunnel connection opened/);

    const init = await d.cli(['init', '--dir', d.dir, '--non-interactive']);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain('is up to date; nothing changed');
    expect(fs.readFileSync(configFile(), 'utf8')).toBe(after);
  }, 180_000);

  it('config set log_level loud: one line + hint, exit 2, nothing changed', async () => {
    const before = fs.readFileSync(configFile(), 'utf8');
    const r = await d.cli(['config', 'set', 'log_level', 'loud', '--dir', d.dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: log_level "loud" is not one of debug, info, warn, error; nothing was written\nhint: .+$/);
    expect(fs.readFileSync(configFile(), 'utf8')).toBe(before);
  });

  it('config unset log_level --json: one report, the restart and the probe through the proxy in it', async () => {
    const r = await d.cli(['config', 'unset', 'log_level', '--dir', d.dir, '--json'], { timeoutMs: 120_000 });
    expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(expectReport('config-change', r)).toMatchObject({
      action: 'unset', key: 'log_level', changed: true, after: 'info', source: 'default',
      apply: { state: 'restarted', restarted: [proxyName(), `${d.project}-cloudflared-1`], probe: { ok: true } },
    });
  }, 180_000);

  it('up without an edit restarts nothing; a hand edit is applied by up (proxy recreated, new route served); docker-compose then recreates nothing', async () => {
    const same = await d.cli(['up', '--dir', d.dir], { timeoutMs: 180_000 });
    expect(same.exitCode, same.stderr).toBe(0);
    expect(same.stdout).not.toMatch(/recreated|created \(/);
    expect(same.stdout).toContain(`${proxyName()} is up to date`);

    const text = fs.readFileSync(configFile(), 'utf8');
    fs.writeFileSync(configFile(), text.replace(/^routes:\n/m, 'routes:\n  echo2: "http://hello-mcp:9000"\n'));
    const status = await d.cli(['status', '--dir', d.dir, '--json']);
    const s = JSON.parse(status.stdout) as { services: Array<{ service: string; configChangedSinceStart?: boolean }>; problems: string[] };
    expect(s.services.find((x) => x.service === 'mcp-proxy')?.configChangedSinceStart).toBe(true);
    expect(s.problems.join('\n')).toContain('mcp-proxy: config changed since start (config/mcp-proxy.yaml)');

    const up = await d.cli(['up', '--dir', d.dir], { timeoutMs: 180_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.stdout).toContain(`${proxyName()} recreated (config/mcp-proxy.yaml changed since it started)`);
    const probe = await d.cli(['probe', 'echo2', '--dir', d.dir], { timeoutMs: 60_000 });
    expect(probe.exitCode, `${probe.stderr}\n${probe.stdout}`).toBe(0);

    const again = await d.cli(['up', '--dir', d.dir, '--json'], { timeoutMs: 180_000 });
    expect(again.exitCode, again.stderr).toBe(0);
    const report = expectReport('up', again);
    expect(report).toMatchObject({ project: d.project, waited: true, proxy: { service: 'mcp-proxy' }, tunnel: { service: 'cloudflared' } });
    const containers = report.containers as Array<{ service: string; action: string }>;
    expect(containers.map((c) => c.service)).toEqual(expect.arrayContaining(['mcp-proxy', 'cloudflared']));
    expect(containers.filter((c) => c.action === 'created' || c.action === 'recreated')).toEqual([]);
    const compose = await d.compose(['up', '-d']);
    expect(compose.exitCode, String(compose.stderr)).toBe(0);
    expect(String(compose.stderr) + String(compose.stdout)).not.toMatch(/Recreating/);
  }, 400_000);

  it('doctor: the compose-service upstream checked from the proxy namespace; a hand edit not applied and "no route for host" found for real', async () => {
    const doctor = async (): Promise<Map<string, { status: string; message: string; fix: string }>> => {
      const r = await d.cli(['doctor', '--dir', d.dir, '--json', '--no-edge-check'], { timeoutMs: 120_000 });
      const findings = (JSON.parse(r.stdout) as { findings: Array<{ id: string; status: string; message: string; fix: string }> }).findings;
      return new Map(findings.map((f) => [f.id, f]));
    };
    const first = await doctor();
    expect(first.get('upstream.from-proxy.echo')).toMatchObject({ status: 'ok', message: expect.stringMatching(/^hello-mcp -> [\d.]+: reachable from the proxy/) });
    expect(first.get('stack.config-applied')?.status).toBe('ok');
    expect(first.get('compose.cloudflared-url')?.status).toBe('ok');
    expect(first.get('logs.no-route')).toBeUndefined();
    // No leftover helper container.
    expect(String((await docker(['ps', '-aq', '--filter', 'label=io.mcp-tunnel.helper=doctor', '--filter', `name=${d.project}-doctor-`])).stdout).trim()).toBe('');

    // A route added by hand, not applied: the probe meets "no route for host", doctor names both.
    const text = fs.readFileSync(configFile(), 'utf8');
    fs.writeFileSync(configFile(), text.replace(/^routes:\n/m, 'routes:\n  later: "http://hello-mcp:9000"\n'));
    try {
      const probe = await d.cli(['probe', 'later', '--dir', d.dir], { timeoutMs: 60_000 });
      expect(probe.exitCode).toBe(3);
      const after = await doctor();
      expect(after.get('stack.config-applied')).toMatchObject({ status: 'warn', fix: expect.stringContaining('mcp-tunnel up') });
      expect(after.get('logs.no-route')).toMatchObject({ status: 'warn', message: expect.stringContaining('no route for host') });
    } finally {
      fs.writeFileSync(configFile(), text);
    }
  }, 240_000);

  it('doctor, produced for real: an upstream outside allowed_ips (IP validation failed) and a client that does not know the CA', async () => {
    const doctor = async (): Promise<Map<string, { status: string; message: string; fix: string }>> => {
      const r = await d.cli(['doctor', '--dir', d.dir, '--json', '--no-edge-check'], { timeoutMs: 120_000 });
      const findings = (JSON.parse(r.stdout) as { findings: Array<{ id: string; status: string; message: string; fix: string }> }).findings;
      return new Map(findings.map((f) => [f.id, f]));
    };
    // The proxy refuses the upstream before dialling it: no traffic leaves.
    const narrowed = await d.cli(['config', 'set', 'upstream.allowed_ips', '10.99.0.0/16', '--dir', d.dir], { timeoutMs: 120_000 });
    expect(narrowed.exitCode, narrowed.stderr).toBe(0);
    expect((await d.cli(['probe', 'echo', '--dir', d.dir], { timeoutMs: 60_000 })).exitCode).toBe(3);

    // A client that trusts another CA, as Anthropic's side does when data/ca.crt is not registered: real
    // openssl, which aborts the handshake with an "unknown ca" alert, through a local TCP -> WebSocket bridge
    // to the proxy container.
    const other = await makeTestPki('zz999999.tunnel.example.com');
    const otherCa = path.join(d.dir, '..', 'other-ca.pem');
    fs.writeFileSync(otherCa, other.ca.certPem);
    const proxyIp = (await mustDocker(['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', proxyName()])).trim().split(' ')[0]!;
    const bridge = net.createServer((sock) => {
      const ws = new WebSocket(`ws://${proxyIp}:8080/`, { perMessageDeflate: false });
      const stream = createWebSocketStream(ws);
      stream.on('error', () => sock.destroy());
      sock.on('error', () => stream.destroy());
      sock.pipe(stream).pipe(sock);
    });
    await new Promise<void>((resolve) => bridge.listen(0, '127.0.0.1', resolve));
    try {
      const port = (bridge.address() as net.AddressInfo).port;
      const s = await execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', `echo.${TEST_DOMAIN}`, '-CAfile', otherCa, '-verify_return_error'], {
        input: '',
        reject: false,
        timeout: 20_000,
      });
      expect(s.exitCode).not.toBe(0);
    } finally {
      await new Promise<void>((resolve) => bridge.close(() => resolve()));
    }

    const found = await doctor();
    expect(found.get('upstream.from-proxy.echo')).toMatchObject({ status: 'fail', message: expect.stringContaining('is outside upstream.allowed_ips') });
    expect(found.get('logs.ip-validation')).toMatchObject({ status: 'warn', message: expect.stringContaining('IP validation failed') });
    expect(found.get('logs.tls-unknown-ca')).toMatchObject({ status: 'warn', fix: expect.stringContaining('register data/ca.crt') });

    const restored = await d.cli(['config', 'unset', 'upstream.allowed_ips', '--dir', d.dir], { timeoutMs: 120_000 });
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/route echo2? is served/);
  }, 300_000);

  it("doctor, produced for real: cloudflared without --url (No ingress rules), then with a token it refuses", async () => {
    const composeFile = path.join(d.dir, 'compose.yaml');
    const envFile = path.join(d.dir, '.env');
    const [composeText, envText] = [fs.readFileSync(composeFile, 'utf8'), fs.readFileSync(envFile, 'utf8')];
    const findingsAfter = async (what: RegExp): Promise<Map<string, { status: string; message: string; fix: string }>> => {
      // cloudflared dies at start and restarts (unless-stopped): wait until its log says why.
      for (let i = 0; i < 30; i++) {
        if (what.test(await logsOf(`${d.project}-cloudflared-1`))) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const r = await d.cli(['doctor', '--dir', d.dir, '--json', '--no-edge-check'], { timeoutMs: 120_000 });
      return new Map((JSON.parse(r.stdout) as { findings: Array<{ id: string; status: string; message: string; fix: string }> }).findings.map((f) => [f.id, f]));
    };
    try {
      fs.writeFileSync(composeFile, composeText.replace(' --url http://localhost:8080', ''));
      expect((await d.cli(['up', '--dir', d.dir, '--no-wait'], { timeoutMs: 180_000 })).exitCode).toBe(0);
      const noUrl = await findingsAfter(/No ingress rules/);
      expect(noUrl.get('compose.cloudflared-url')?.status).toBe('fail');
      expect(noUrl.get('logs.no-ingress')).toMatchObject({ status: 'warn', fix: expect.stringContaining('--url http://localhost:8080') });

      fs.writeFileSync(composeFile, composeText);
      fs.writeFileSync(envFile, envText.replace(/^TUNNEL_TOKEN=.*$/m, `TUNNEL_TOKEN=eyJ${'A'.repeat(40)}`));
      expect((await d.cli(['up', '--dir', d.dir, '--no-wait'], { timeoutMs: 180_000 })).exitCode).toBe(0);
      const refused = await findingsAfter(/Tunnel token is not valid/);
      const logFindings = JSON.stringify([...refused.entries()].filter(([id]) => id.startsWith('logs.') || id.startsWith('stack.')));
      expect(refused.get('logs.token-invalid'), `${logFindings}\n${await logsOf(`${d.project}-cloudflared-1`)}`).toMatchObject({ status: 'warn', fix: expect.stringContaining('rotate-token') });
    } finally {
      fs.writeFileSync(composeFile, composeText);
      fs.writeFileSync(envFile, envText);
    }
  }, 300_000);

  it('down --timeout 0 keeps each container\'s log in logs/ (0600) before removing it', async () => {
    const r = await d.cli(['down', '--dir', d.dir, '--timeout', '0', '--json'], { timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = expectReport('down', r);
    const logs = fs.readdirSync(path.join(d.dir, 'logs'));
    expect(logs.sort()).toEqual(expect.arrayContaining([expect.stringMatching(/^\d{4}-\d\d-\d\dT\d{6}Z-mcp-proxy\.log$/), expect.stringMatching(/-cloudflared\.log$/)]));
    const proxyLog = path.join(d.dir, 'logs', logs.find((f) => f.endsWith('-mcp-proxy.log'))!);
    expect(fs.statSync(proxyLog).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(proxyLog, 'utf8')).toContain('route configured');
    expect(report.savedLogs).toEqual(expect.arrayContaining([expect.objectContaining({ service: 'mcp-proxy', file: expect.stringMatching(/logs\/.*-mcp-proxy\.log$/), lines: expect.any(Number) })]));
    expect(report.removedContainers).toEqual(expect.arrayContaining([proxyName()]));
    expect(String((await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${d.project}`])).stdout).trim()).toBe('');
  }, 150_000);

  it('teardown --yes removes data/ and .env, keeps compose.yaml, config/ and logs/', async () => {
    const refused = await d.cli(['teardown', '--dir', d.dir]);
    expect(refused.exitCode).toBe(2);
    expect(fs.existsSync(path.join(d.dir, 'data'))).toBe(true);
    const r = await d.cli(['teardown', '--dir', d.dir, '--yes'], { timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(d.dir, 'data'))).toBe(false);
    expect(fs.existsSync(path.join(d.dir, '.env'))).toBe(false);
    for (const kept of ['compose.yaml', 'config/mcp-proxy.yaml', 'logs']) expect(fs.existsSync(path.join(d.dir, kept))).toBe(true);
  }, 150_000);
});
