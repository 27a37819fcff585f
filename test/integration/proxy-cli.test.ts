import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueServerCert } from '../../src/pki/index.js';
import { CLI, REPO_ROOT, runCli } from '../helpers/cli.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { writeTestPki, type TestPki } from '../helpers/pki.js';
import { startTestProxy, tunnelFetch, waitFor } from '../helpers/tunnel-client.js';

/** `mcp-tunnel proxy` and `mcp-tunnel health` as a user runs them: the compiled CLI in a child process. */

const DOMAIN = 'cli12345.tunnel.example.com';
let dir: string;
let pki: TestPki;
let mcp: SampleMcpServer;

beforeAll(async () => {
  // `npm test` builds first; when run alone, build once if the compiled command is missing.
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'commands', 'proxy.js'))) {
    await execa('npm', ['run', 'build'], { cwd: REPO_ROOT });
  }
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-proxy-cli-'));
  pki = await writeTestPki(dir, DOMAIN);
  mcp = await startSampleMcpServer();
});

afterAll(async () => {
  await mcp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const base = (routes: string, extra = ''): string =>
  `listen_addr: "127.0.0.1:0"\ntunnel_domain: ${DOMAIN}\ntls:\n  cert_file: tls.crt\n  key_file: tls.key\nroutes:\n${routes}\n${extra}`;

async function configFile(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('mcp-tunnel proxy: config errors', () => {
  it.each([
    ['routes as a list', base('  - hello: "http://hello-mcp:8080"'), /routes must be a map of hostname to upstream URL, not a list/],
    ['an upstream with a path', base('  hello: "http://hello-mcp:8080/mcp"'), /invalid upstream \(must be scheme:\/\/host:port\) for route "hello"/],
    [
      'allowed_ips with disable_ip_validation',
      base('  hello: "http://hello-mcp:8080"', 'upstream:\n  allowed_ips: ["10.0.0.0/8"]\n  disable_ip_validation: true'),
      /upstream\.allowed_ips and upstream\.disable_ip_validation are mutually exclusive/,
    ],
  ])('%s: one error line, exit 2', async (_name, text, message) => {
    const file = await configFile('bad.yaml', text);
    const res = await runCli(['proxy', '--config', file], { timeoutMs: 20_000 });
    expect(res.exitCode).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(message);
    expect(lines.every((l) => /^(error|hint): /.test(l))).toBe(true);
    expect(res.stdout).toBe('');
  });

  it('accepts the official image argument -config FILE', async () => {
    const file = await configFile('bad2.yaml', base('  - hello: "http://hello-mcp:8080"'));
    const res = await runCli(['proxy', '-config', file], { timeoutMs: 20_000 });
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/not a list/);
  });

  it('names an unreadable certificate', async () => {
    const file = await configFile('nocert.yaml', base('  hello: "http://hello-mcp:8080"').replace('cert_file: tls.crt', 'cert_file: missing.crt'));
    const res = await runCli(['proxy', '--config', file], { timeoutMs: 20_000 });
    expect(res.exitCode).toBe(2);
    expect(res.stderr.split('\n')[0]).toMatch(/^error: tls: cannot read .*missing\.crt \(ENOENT\)/);
  });
});

describe('mcp-tunnel proxy: a running proxy', () => {
  it('serves, reports ready to `health`, and exits 0 on SIGTERM after draining', async () => {
    const file = await configFile(
      'good.yaml',
      base(`  hello: "${mcp.origin}"`, 'log_level: info\nshutdown_timeout: 5s\nupstream:\n  allowed_ips: ["127.0.0.1/32"]\nadmin:\n  listen_addr: "127.0.0.1:0"'),
    );
    const child = execa(process.execPath, [CLI, 'proxy', '--config', file], { reject: false, cwd: os.tmpdir() });
    const lines: Array<Record<string, unknown>> = [];
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let idx: number;
      while ((idx = buffered.indexOf('\n')) !== -1) {
        lines.push(JSON.parse(buffered.slice(0, idx)) as Record<string, unknown>);
        buffered = buffered.slice(idx + 1);
      }
    });
    try {
      await waitFor(() => lines.some((l) => l.msg === 'proxy listening'), 'the proxy to listen', 20_000);
      const listening = lines.find((l) => l.msg === 'proxy listening')!;
      expect(lines.find((l) => l.msg === 'route configured')).toMatchObject({ level: 'info', route: 'hello', upstream: mcp.origin });
      const port = Number(String(listening.listen_addr).split(':').at(-1));
      const adminPort = Number(String(listening.admin_addr).split(':').at(-1));

      const health = await runCli(['health', '--url', `http://127.0.0.1:${adminPort}/readyz`], { timeoutMs: 20_000 });
      expect(health.exitCode).toBe(0);
      expect(health.stdout).toMatch(/^ready \(certificate valid until .*\)$/);

      const tf = tunnelFetch({ proxyUrl: `ws://127.0.0.1:${port}/`, ca: pki.ca.certPem });
      try {
        const res = await tf.fetch(`https://hello.${pki.domain}/mcp`);
        expect(res.status).toBe(400); // the sample server: no session yet; the path works
        await res.arrayBuffer();
      } finally {
        await tf.close();
      }
      await waitFor(() => lines.some((l) => l.msg === 'request started' && l.route === 'hello'), 'the request log line');

      child.kill('SIGTERM');
      const result = await child;
      expect(result.exitCode).toBe(0);
      expect(lines.at(-1)).toMatchObject({ msg: 'proxy stopped' });
      expect(String(result.stderr)).toBe('');

      const after = await runCli(['health', '--url', `http://127.0.0.1:${adminPort}/readyz`, '--timeout', '1s'], { timeoutMs: 20_000 });
      expect(after.exitCode).toBe(1);
      expect(after.stdout).toMatch(/^unhealthy: .* unreachable \(ECONNREFUSED\)$/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('is not ready (and `health` exits 1) while the certificate is expired', async () => {
    const expired = await issueServerCert({ ca: pki.ca, domain: pki.domain, notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    const t = await startTestProxy({ routes: { hello: mcp.origin } });
    try {
      await writeFile(path.join(t.dir, 'tls.crt'), expired.certPem);
      await writeFile(path.join(t.dir, 'tls.key'), expired.keyPem);
      await waitFor(() => t.logs.some((l) => l.msg === 'certificate reloaded'), 'the expired pair to load');
      const res = await runCli(['health', '--url', `${t.adminUrl}/readyz`], { timeoutMs: 20_000 });
      expect(res.exitCode).toBe(1);
      expect(res.stdout).toMatch(/^not ready: the certificate expired at \d{4}-/);
    } finally {
      await t.close();
    }
  });
});

describe('the proxy bundle (the image entry point)', () => {
  const bundle = path.join(REPO_ROOT, 'dist', 'bundle', 'mcp-proxy.cjs');

  it('holds the proxy and nothing of the CLI', () => {
    const text = fs.readFileSync(bundle, 'utf8');
    expect(text).toContain('src/proxy/server.ts');
    for (const absent of ['node_modules/dockerode/', 'node_modules/@anthropic-ai/', 'node_modules/@inquirer/', 'node_modules/@modelcontextprotocol/', 'node_modules/commander/', 'node_modules/ws/', 'src/cli/']) {
      expect(text, absent).not.toContain(absent);
    }
  });

  it('reports a config error as the CLI does, and hands other commands to the CLI bundle', async () => {
    const file = await configFile('bad3.yaml', base('  - hello: "http://hello-mcp:8080"'));
    const bad = await execa(process.execPath, [bundle, 'proxy', '-config', file], { reject: false, timeout: 20_000 });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.split('\n')[0]).toMatch(/^error: .*not a list/);
    const version = await execa(process.execPath, [bundle, '--version'], { reject: false, timeout: 20_000 });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
