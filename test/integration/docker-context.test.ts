/**
 * Issue 13, items 3 and 4, with a fake Engine API on a unix socket (a second dockerd cannot be started
 * cheaply in this sandbox): the daemon is chosen as the docker CLI chooses it (DOCKER_HOST, DOCKER_CONTEXT,
 * the current context in ~/.docker/config.json), and `status` reports which one and why; a TUNNEL_TOKEN
 * in the shell that differs from .env is named (never shown).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';

let root = '';
let home = '';
let dir = '';
let sock = '';
let server: http.Server;
const seen: string[] = [];

async function writeContext(name: string, host: string): Promise<void> {
  const meta = path.join(home, '.docker', 'contexts', 'meta', createHash('sha256').update(name).digest('hex'));
  await fs.mkdir(meta, { recursive: true });
  await fs.writeFile(path.join(meta, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }));
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-context-'));
  home = path.join(root, 'home');
  dir = path.join(root, 'deploy');
  sock = path.join(root, 'second-daemon.sock');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, '.env'), `COMPOSE_PROJECT_NAME=ctxtest\nTUNNEL_TOKEN=${fakeTunnelToken('file')}\n`, { mode: 0o600 });
  server = http.createServer((req, res) => {
    const url = (req.url ?? '').replace(/^\/v[\d.]+/, '');
    seen.push(`${req.method} ${url.split('?')[0]}`);
    if (url.startsWith('/_ping')) res.writeHead(200, { 'content-type': 'text/plain', 'api-version': '1.41' }).end('OK');
    else if (url.startsWith('/info')) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ServerVersion: '99.0.0-second-daemon', SecurityOptions: [] }));
    else if (url.startsWith('/containers/json')) res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  await writeContext('second', `unix://${sock}`);
  await fs.writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: {}, currentContext: 'second' }));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await fs.rm(root, { recursive: true, force: true });
});

const status = (env: Record<string, string>) => runCli(['status', '--dir', dir, '--json'], { env: { HOME: home, DOCKER_HOST: '', DOCKER_CONTEXT: '', ...env } });

describe('the Docker endpoint, as the docker CLI chooses it', () => {
  it("with DOCKER_HOST unset, status talks to the current context's daemon and says so", async () => {
    seen.length = 0;
    const r = await status({});
    const s = JSON.parse(r.stdout) as { docker: Record<string, string> };
    expect(s.docker).toMatchObject({ endpoint: `unix://${sock}`, source: 'docker context', context: 'second', serverVersion: '99.0.0-second-daemon' });
    expect(seen).toContain('GET /containers/json');
  });

  it('DOCKER_CONTEXT names the context', async () => {
    const r = await status({ DOCKER_CONTEXT: 'second', HOME: path.join(root, 'empty-home') , DOCKER_CONFIG: path.join(home, '.docker') });
    expect((JSON.parse(r.stdout) as { docker: Record<string, string> }).docker).toMatchObject({ source: 'DOCKER_CONTEXT', context: 'second', serverVersion: '99.0.0-second-daemon' });
  });

  it('DOCKER_HOST wins over the context (here: a socket nobody serves, exit 3)', async () => {
    const r = await status({ DOCKER_HOST: `unix://${path.join(root, 'none.sock')}` });
    expect(r.exitCode).toBe(3);
    expect(r.stderr.split('\n')[0]).toContain(path.join(root, 'none.sock'));
  });

  it('a context that does not exist: one line, exit 3', async () => {
    const r = await status({ DOCKER_CONTEXT: 'gone' });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^error: docker context "gone" \(from DOCKER_CONTEXT\) does not exist\nhint: .*docker context ls/);
  });

  it('human status names the daemon and where the choice came from', async () => {
    const r = await runCli(['status', '--dir', dir], { env: { HOME: home, DOCKER_HOST: '', DOCKER_CONTEXT: '' } });
    expect(r.stdout).toContain(`Docker: unix://${sock} (docker context second), engine 99.0.0-second-daemon`);
  });
});

describe('drift between the shell and .env', () => {
  it('a TUNNEL_TOKEN exported in the shell with another value is named with its fix, and not shown', async () => {
    const other = fakeTunnelToken('shell');
    const r = await status({ TUNNEL_TOKEN: other });
    const s = JSON.parse(r.stdout) as { envDrift: Array<{ name: string; hint: string }>; problems: string[] };
    expect(s.envDrift.map((d) => d.name)).toEqual(['TUNNEL_TOKEN']);
    expect(s.problems.join('\n')).toContain('unset TUNNEL_TOKEN');
    expect(r.stdout + r.stderr).not.toContain(other);
  });

  it('the same value: no warning', async () => {
    const r = await status({ TUNNEL_TOKEN: fakeTunnelToken('file') });
    expect((JSON.parse(r.stdout) as { envDrift: unknown[] }).envDrift).toEqual([]);
  });

  it('up prints the drift warning with its fix before it starts anything; the same value: none', async () => {
    const deploy = path.join(root, 'initialised');
    const tokenFile = path.join(root, 'token');
    await fs.writeFile(tokenFile, `${fakeTunnelToken('file')}\n`, { mode: 0o600 });
    const init = await runCli(
      ['init', '--dir', deploy, '--proxy', 'official', '--tunnel-id', 'tnl_01ABCDEFGHJKMNPQRSTVWXYZ0', '--tunnel-domain', 'abcd1234.tunnel.example.com', '--tunnel-token-file', tokenFile, '--route', 'docs=http://192.0.2.10:8080', '--allowed-ip', '192.0.2.0/24', '--non-interactive', '-y'],
      { env: { HOME: home } },
    );
    expect(init.exitCode, init.stderr).toBe(0);
    // The fake daemon ends the run at the first image call (exit 3): the warning comes before.
    const other = fakeTunnelToken('shell');
    const drift = await runCli(['up', '--dir', deploy], { env: { HOME: home, DOCKER_HOST: '', TUNNEL_TOKEN: other } });
    expect(drift.stderr).toContain('warning: TUNNEL_TOKEN in your shell differs from .env and wins over it');
    expect(drift.stderr).toContain('unset TUNNEL_TOKEN');
    expect(drift.stdout + drift.stderr).not.toContain(other);
    const same = await runCli(['up', '--dir', deploy], { env: { HOME: home, DOCKER_HOST: '', TUNNEL_TOKEN: fakeTunnelToken('file') } });
    expect(same.stderr).not.toContain('differs from .env');
    expect(seen).toContain('GET /_ping');
  });

  it('doctor names the drift too', async () => {
    const r = await runCli(['doctor', '--dir', dir, '--json', '--offline'], { env: { HOME: home, DOCKER_HOST: '', TUNNEL_TOKEN: fakeTunnelToken('shell') } });
    const findings = (JSON.parse(r.stdout) as { findings: Array<{ id: string; status: string; fix: string }> }).findings;
    expect(findings.find((f) => f.id === 'env.drift.TUNNEL_TOKEN')).toMatchObject({ status: 'warn', fix: expect.stringContaining('unset TUNNEL_TOKEN') });
  });
});
