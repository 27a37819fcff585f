import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/pki/index.js';
import { runProbe, type ProbeResult } from '../../src/probe/index.js';
import { runCli } from '../helpers/cli.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { startTestProxy, type TestProxy } from '../helpers/tunnel-client.js';

/*
 * The probe, as a library and as `mcp-tunnel probe` (the built CLI, a child process), against the real builtin
 * proxy and the real SDK sample server, all on loopback with ephemeral ports.
 */

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A deployment directory as init writes it: config/mcp-proxy.yaml, data/ca.crt, data/tunnel-domain. */
async function writeDeployment(opts: { domain: string; caPem: string; routes: Record<string, string> }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-probe-'));
  await fs.mkdir(path.join(dir, 'config'));
  await fs.mkdir(path.join(dir, 'data'));
  const routes = Object.entries(opts.routes)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  await fs.writeFile(
    path.join(dir, 'config', 'mcp-proxy.yaml'),
    `listen_addr: ":8080"\ntunnel_domain: ${opts.domain}\ntls:\n  cert_file: /data/tls.crt\n  key_file: /data/tls.key\nroutes:\n${routes}\nupstream:\n  allowed_ips: ["127.0.0.1/32"]\n`,
  );
  await fs.writeFile(path.join(dir, 'data', 'ca.crt'), opts.caPem);
  await fs.writeFile(path.join(dir, 'data', 'tunnel-domain'), `${opts.domain}\n`);
  return dir;
}

describe('probe against the builtin proxy', () => {
  let upstream: SampleMcpServer;
  let proxy: TestProxy;
  let deployment: string;
  let downPort: number;
  const dirs: string[] = [];

  beforeAll(async () => {
    upstream = await startSampleMcpServer();
    downPort = await freePort();
    proxy = await startTestProxy({
      routes: {
        echo: upstream.origin,
        // outside allowed_ips: must be refused without any connection attempt
        outside: `http://127.0.0.2:${upstream.port}`,
        // allowed, but nothing listens there
        down: `http://127.0.0.1:${downPort}`,
      },
      extraYaml: 'upstream:\n  allowed_ips: ["127.0.0.1/32"]',
      logLevel: 'info',
    });
    // The deployment the CLI reads knows one more route than the running proxy: a config edited without a restart.
    deployment = await writeDeployment({
      domain: proxy.domain,
      caPem: proxy.pki.ca.certPem,
      routes: { echo: upstream.origin, outside: `http://127.0.0.2:${upstream.port}`, down: `http://127.0.0.1:${downPort}`, added: upstream.origin },
    });
    dirs.push(deployment);
  });
  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  });

  const lib = (route: string, extra: Partial<Parameters<typeof runProbe>[0]> = {}): Promise<ProbeResult> =>
    runProbe({ route, proxyUrl: proxy.wsUrl, domain: proxy.domain, caPem: proxy.pki.ca.certPem, timeoutMs: 5000, ...extra });

  it('library: all steps and a tool call through WS + inner TLS + proxy + SDK server', async () => {
    const result = await lib('echo', { callTool: { name: 'hello', args: { name: 'tunnel' } } });
    expect(result.failure).toBeUndefined();
    expect(result.steps.map((s) => `${s.step}:${s.ok}`)).toEqual(['websocket:true', 'tls:true', 'initialize:true', 'tools/list:true', 'tools/call:true']);
    expect(result.toolCall?.text).toContain('Hello, tunnel!');
    expect(result.tls?.certificate.findings.filter((f) => !f.ok && !f.advisory)).toEqual([]);
    expect(proxy.logs.some((l) => l.msg === 'request started')).toBe(true);
  });

  it('library: upstream outside allowed_ips -> upstream layer, and the upstream never saw a connection', async () => {
    const before = upstream.requests;
    const result = await lib('outside');
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'upstream', reason: 'ip-validation' });
    expect(result.failure?.hint).toMatch(/allowed_ips/);
    expect(upstream.requests).toBe(before);
  });

  it('library: upstream not listening -> upstream layer', async () => {
    const result = await lib('down');
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'upstream', reason: 'upstream-unreachable' });
  });

  it('library: unknown host -> routing layer', async () => {
    const result = await lib('nosuchroute');
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'routing', reason: 'no-route' });
  });

  it('cli: prints every step with its timing and the tool answer, exit 0', async () => {
    const r = await runCli(['probe', 'echo', '--dir', deployment, '--proxy', proxy.wsUrl, '--call', 'hello', '--args', '{"name":"cli"}']);
    expect(r.stderr).toBe('');
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const step of ['websocket', 'tls', 'initialize', 'tools/list', 'tools/call']) expect(r.stdout).toMatch(new RegExp(`✓ ${step.replace('/', '\\/')}\\s+\\d+(\\.\\d)? m?s`));
    expect(r.stdout).toContain('Hello, cli!');
    expect(r.stdout).toMatch(/works/);
  });

  it('cli: env variables stand in for --dir and --proxy', async () => {
    const r = await runCli(['probe', 'echo'], { env: { MCP_TUNNEL_DIR: deployment, MCP_TUNNEL_PROXY_URL: proxy.wsUrl } });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('✓ tools/list');
  });

  it('cli --json: the result object', async () => {
    const r = await runCli(['probe', 'echo', '--dir', deployment, '--proxy', proxy.wsUrl, '--json']);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const json = JSON.parse(r.stdout) as ProbeResult;
    expect(json).toMatchObject({ ok: true, route: 'echo', host: `echo.${proxy.domain}`, url: `https://echo.${proxy.domain}/mcp`, proxyUrl: proxy.wsUrl });
    expect(json.steps.map((s) => s.step)).toEqual(['websocket', 'tls', 'initialize', 'tools/list']);
    for (const s of json.steps) expect(s).toEqual({ step: expect.any(String), ok: true, ms: expect.any(Number), detail: expect.any(String) });
    expect(json.tools).toEqual(expect.arrayContaining(['hello', 'echo']));
    expect(json.server?.name).toBe('mcp-tunnel-sample');
    expect(typeof json.totalMs).toBe('number');
  });

  it('cli --json on failure: the failure object, exit 3', async () => {
    const r = await runCli(['probe', 'added', '--dir', deployment, '--proxy', proxy.wsUrl, '--json']);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
    const json = JSON.parse(r.stdout) as ProbeResult;
    expect(json.ok).toBe(false);
    expect(json.failure).toMatchObject({ step: 'initialize', layer: 'routing', reason: 'no-route', message: expect.any(String), hint: expect.any(String) });
  });

  it('cli: a route added to the config but not to the running proxy -> routing layer, restart hint, exit 3', async () => {
    const r = await runCli(['probe', 'added', '--dir', deployment, '--proxy', proxy.wsUrl]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect(r.stdout).toMatch(/✓ websocket/);
    expect(r.stdout).toMatch(/✓ tls/);
    expect(r.stdout).toMatch(/✗ initialize .*\[routing\]/);
    expect(r.stderr).toMatch(/^error: routing: the proxy has no route for added\./m);
    expect(r.stderr).toMatch(/^hint: .*restart the proxy/m);
  });

  it('cli: another CA in data/ca.crt -> tls layer, exit 3', async () => {
    const other = await createCa({ commonName: 'some other CA' });
    const dir = await writeDeployment({ domain: proxy.domain, caPem: other.certPem, routes: { echo: upstream.origin } });
    dirs.push(dir);
    const r = await runCli(['probe', 'echo', '--dir', dir, '--proxy', proxy.wsUrl]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect(r.stdout).toMatch(/✗ tls .*\[tls\]/);
    expect(r.stderr).toMatch(/^error: tls: the proxy's certificate is not signed by data\/ca\.crt/m);
    expect(r.stderr).toMatch(/^hint: /m);
  });

  it('cli: a tunnel domain the certificate does not cover -> tls layer, SAN hint', async () => {
    const dir = await writeDeployment({ domain: 'zzzz9999.tunnel.example.org', caPem: proxy.pki.ca.certPem, routes: { echo: upstream.origin } });
    dirs.push(dir);
    const r = await runCli(['probe', 'echo', '--dir', dir, '--proxy', proxy.wsUrl]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect(r.stderr).toMatch(/does not cover echo\.zzzz9999\.tunnel\.example\.org/);
    expect(r.stderr).toMatch(/\*\.zzzz9999\.tunnel\.example\.org/);
  });

  it('cli: proxy not running -> websocket layer, exit 3', async () => {
    const port = await freePort();
    const r = await runCli(['probe', 'echo', '--dir', deployment, '--proxy', `ws://127.0.0.1:${port}`]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect(r.stdout).toMatch(/✗ websocket .*\[websocket\]/);
    expect(r.stderr).toMatch(/^error: websocket: cannot reach the proxy at ws:\/\/127\.0\.0\.1:\d+\/: connection refused$/m);
    expect(r.stderr).toMatch(/^hint: .*is the proxy running/m);
  });

  it.each([
    [['probe', 'nope'], /^error: no route "nope" in config\/mcp-proxy\.yaml\nhint: configured routes: echo, outside, down, added/],
    [['probe', 'echo', '--proxy', 'not a url'], /^error: invalid --proxy "not a url": not a URL\nhint: /],
    [['probe', 'echo', '--proxy', 'ftp://127.0.0.1:8080'], /^error: invalid --proxy .*scheme must be ws:\/\//],
    [['probe', 'echo', '--timeout', 'soon'], /^error: invalid --timeout "soon"/],
    [['probe', 'echo', '--path', 'mcp'], /^error: invalid --path "mcp"/],
    [['probe', 'echo', '--args', '{}'], /^error: --args needs --call TOOL/],
    [['probe', 'echo', '--call', 'hello', '--args', '[1]'], /^error: invalid --args: must be a JSON object/],
  ])('cli bad input %j -> one line + hint, exit 2', async (args, stderr) => {
    const r = await runCli([...args, '--dir', deployment]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(stderr);
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
  });

  it('cli: missing deployment files -> exit 2 naming the file', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-probe-empty-'));
    dirs.push(empty);
    let r = await runCli(['probe', 'echo', '--dir', empty]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(/^error: no proxy config at .*config\/mcp-proxy\.yaml\nhint: .*--dir/);
    await fs.mkdir(path.join(empty, 'config'));
    await fs.copyFile(path.join(deployment, 'config', 'mcp-proxy.yaml'), path.join(empty, 'config', 'mcp-proxy.yaml'));
    r = await runCli(['probe', 'echo', '--dir', empty]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(/^error: no CA certificate at .*data\/ca\.crt/);
    r = await runCli(['probe', 'echo', '--dir', path.join(empty, 'missing')]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(/^error: deployment directory .* does not exist/);
  });
});
