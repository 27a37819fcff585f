import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';

/**
 * `up` refuses a proxy config the proxy would refuse (a routes list, an upstream without a port) before
 * it pulls, builds or creates anything: one line, exit 2. A fake Engine API on a unix socket stands in
 * for Docker and records what `up` asked of it.
 */
let work: string;
let dir: string;
let sock: string;
let server: http.Server;
const seen: string[] = [];

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-up-config-'));
  const token = path.join(work, 'token');
  fs.writeFileSync(token, fakeTunnelToken('upcfg'), { mode: 0o600 });
  dir = path.join(work, 'dep');
  const r = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_01upcfg', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', token, '--route', 'docs=http://docs-mcp:8080']);
  expect(r.exitCode, r.stderr).toBe(0);
  sock = path.join(work, 'docker.sock');
  server = http.createServer((req, res) => {
    const url = (req.url ?? '').replace(/^\/v[\d.]+/, '');
    seen.push(`${req.method} ${url.split('?')[0]}`);
    if (url.startsWith('/_ping')) res.writeHead(200, { 'content-type': 'text/plain', 'api-version': '1.41' }).end('OK');
    else if (url.startsWith('/info')) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ServerVersion: '20.10.24', SecurityOptions: [] }));
    else res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'fake daemon: not implemented' }));
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(work, { recursive: true, force: true });
});

const config = (): string => path.join(dir, 'config', 'mcp-proxy.yaml');

describe('up: a proxy config the proxy refuses stops it before Docker does anything', () => {
  it.each([
    ['routes as a YAML list', (t: string) => t.replace('  docs: "http://docs-mcp:8080"', '  - docs: "http://docs-mcp:8080"'), /^error: config\/mcp-proxy\.yaml: routes must be a map of hostname to upstream URL, not a list$/m],
    ['an upstream without a port', (t: string) => t.replace('"http://docs-mcp:8080"', '"http://x"'), /^error: config\/mcp-proxy\.yaml: invalid upstream \(must be scheme:\/\/host:port\) for route "docs": "http:\/\/x" has no port$/m],
  ])('%s: exit 2, one line and a hint, no image or container touched', async (_name, edit, message) => {
    const good = fs.readFileSync(config(), 'utf8');
    fs.writeFileSync(config(), edit(good));
    seen.length = 0;
    try {
      const r = await runCli(['up', '--dir', dir], { env: { DOCKER_HOST: `unix://${sock}` } });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'))).toHaveLength(2);
      expect(seen.filter((s) => /images|containers|networks|build/.test(s))).toEqual([]);
    } finally {
      fs.writeFileSync(config(), good);
    }
  });
});
