/**
 * routes and doctor against a RUNNING stack (builtin proxy built from DIR/build, cloudflared replaced by the
 * local stand-in that registers four connections): doctor sees the healthy proxy and the four registered
 * connections; `routes add` edits the config, restarts the proxy and then cloudflared (it lives in the
 * proxy's network namespace), and confirms the new route with a probe through the proxy container.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport } from '../../src/ops/doctor/index.js';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';
import {
  buildCloudflaredStandin,
  dockerCleanup,
  dockerCompose,
  ensureNodeBaseImage,
  mustDocker,
  renderTestOverride,
  requireDocker,
  uniqueName,
} from '../helpers/docker.js';
import { scrubbedEnv } from '../helpers/stack.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';

const dockerReady = await requireDocker();
const DOMAIN = 'abcd1234.tunnel.example.com';
const FILES = ['compose.yaml', 'compose.test.yaml'];

describe.skipIf(!dockerReady)('routes and doctor on a running stack', () => {
  const cleanup = dockerCleanup();
  const project = uniqueName('mctroutes');
  const proxyImage = `mcp-tunnel-test/proxy:${uniqueName('routes')}`;
  let work = '';
  let dir = '';
  let mcp: SampleMcpServer;
  const compose = (args: string[], timeout = 240_000) =>
    dockerCompose([...FILES.flatMap((f) => ['-f', f]), ...args], { cwd: dir, env: scrubbedEnv(), extendEnv: false, timeout });
  const started = async (service: string): Promise<string> =>
    mustDocker(['inspect', '--format', '{{.State.StartedAt}}', (await mustDocker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${service}`])).split('\n')[0]!]);

  beforeAll(async () => {
    const [base, standin] = await Promise.all([ensureNodeBaseImage(), buildCloudflaredStandin()]);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-routes-stack-'));
    cleanup.dir(work);
    cleanup.image(proxyImage);
    // The directory's name is the compose project name (init writes it as COMPOSE_PROJECT_NAME).
    dir = path.join(work, project);
    cleanup.project(project, dir, FILES);
    const tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, `${fakeTunnelToken()}\n`, { mode: 0o600 });
    mcp = await startSampleMcpServer({ host: '0.0.0.0' });
    // doctor dials every upstream from the host: the first route is this test's own server on loopback, and
    // allowed_ips keeps the default private ranges so `routes add` can use the compose network's gateway.
    const allowed = ['127.0.0.1/32', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].flatMap((cidr) => ['--allowed-ip', cidr]);
    const init = await runCli([
      'init', '--dir', dir, '--tunnel-id', 'tnl_01routes', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile,
      '--route', `docs=http://127.0.0.1:${mcp.port}`, ...allowed, '--proxy', 'builtin', '--base-image', base,
    ]);
    expect(init.exitCode, init.stderr).toBe(0);
    fs.writeFileSync(path.join(dir, 'compose.test.yaml'), renderTestOverride({ standinImage: standin, proxyImage }));
    const up = await compose(['up', '-d']);
    if (up.exitCode !== 0) throw new Error(`docker-compose up -d failed:\n${String(up.stderr)}`);
  }, 400_000);

  afterAll(async () => {
    await mcp?.close();
    expect(await cleanup.run()).toEqual([]);
  }, 180_000);

  it('doctor: the proxy is healthy and cloudflared registered its four connections', async () => {
    let report: DoctorReport | undefined;
    for (let i = 0; i < 60; i++) {
      report = await runDoctor({ dir, edgeTargets: false, timeoutMs: 2_000 });
      const ready = ['stack.proxy', 'stack.cloudflared', 'cloudflared.connections'].every((id) => report!.findings.find((f) => f.id === id)?.status === 'ok');
      if (ready) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const byId = Object.fromEntries(report!.findings.map((f) => [f.id, f]));
    expect(byId['stack.proxy']).toMatchObject({ status: 'ok', message: expect.stringContaining('running and healthy') });
    expect(byId['stack.cloudflared']?.status).toBe('ok');
    expect(byId['cloudflared.connections']).toMatchObject({ status: 'ok', message: expect.stringContaining('registered 4 tunnel connections') });
  }, 120_000);

  it('routes add restarts the proxy and cloudflared and confirms the route through the stack', async () => {
    const gateway = await mustDocker(['network', 'inspect', '--format', '{{(index .IPAM.Config 0).Gateway}}', `${project}_default`]);
    expect(gateway).toMatch(/^(10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.)/); // inside the default allowed_ips
    const [proxyBefore, cfBefore] = [await started('mcp-proxy'), await started('cloudflared')];

    const r = await runCli(['routes', 'add', 'echo', `http://${gateway}:${mcp.port}`, '--dir', dir], { timeoutMs: 180_000 });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`added route echo -> http://${gateway}:${mcp.port}`);
    expect(r.stdout).toMatch(/restarted \S*mcp-proxy\S* and \S*cloudflared\S*/);
    expect(r.stdout).toContain('route echo is served: MCP initialize through the proxy answered (mcp-tunnel-sample)');
    expect(await started('mcp-proxy')).not.toBe(proxyBefore);
    expect(await started('cloudflared')).not.toBe(cfBefore);

    const list = await runCli(['routes', 'list', '--dir', dir]);
    expect(list.stdout).toContain(`echo  http://${gateway}:${mcp.port}`);

    const rm = await runCli(['routes', 'remove', 'echo', '--dir', dir, '--no-restart']);
    expect(rm.exitCode).toBe(0);
  }, 240_000);
});
