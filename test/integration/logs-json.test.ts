import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { expectRecords } from '../helpers/json-reports.js';

/**
 * `logs --json`: one NDJSON record per log line, with the service, container, stream and Docker's
 * timestamp, the line as the container wrote it. Against a fake Engine API on a unix socket (as in
 * docker-context.test.ts), which serves two compose containers' multiplexed logs: stdout and stderr lines
 * that must keep their stream, and the builtin proxy's own JSON line.
 */
let root = '';
let dir = '';
let sock = '';
let server: http.Server;

const PROJECT = 'logsjson';
const PROXY_LINE = '{"time":"2026-12-01T04:00:00.100Z","level":"info","msg":"listening","addr":":8080"}';
const containers = [
  { id: 'a'.repeat(64), name: `${PROJECT}-mcp-proxy-1`, service: 'mcp-proxy', lines: [[1, '2026-12-01T04:00:00.100000000Z', PROXY_LINE]] },
  {
    id: 'b'.repeat(64),
    name: `${PROJECT}-cloudflared-1`,
    service: 'cloudflared',
    lines: [
      [2, '2026-12-01T04:00:00.050000000Z', 'INF Starting tunnel'],
      [1, '2026-12-01T04:00:00.200000000Z', 'INF Registered tunnel connection | as "pipe" and "quote"'],
    ],
  },
] as const;

/** Docker's multiplexed log stream: an 8-byte header (stream, size) before each frame. */
function frames(lines: ReadonlyArray<readonly [number, string, string]>): Buffer {
  return Buffer.concat(
    lines.map(([stream, time, text]) => {
      const payload = Buffer.from(`${time} ${text}\n`, 'utf8');
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    }),
  );
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mct-logs-json-'));
  dir = path.join(root, 'deploy');
  sock = path.join(root, 'engine.sock');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, '.env'), `COMPOSE_PROJECT_NAME=${PROJECT}\n`, { mode: 0o600 });
  await fs.writeFile(path.join(dir, 'compose.yaml'), 'services:\n  mcp-proxy:\n    image: x\n  cloudflared:\n    image: y\n');
  server = http.createServer((req, res) => {
    const url = (req.url ?? '').replace(/^\/v[\d.]+/, '');
    const json = (body: unknown): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const byId = (id: string | undefined) => containers.find((c) => c.id === id);
    const m = /^\/containers\/([0-9a-f]+)\/(json|logs)/.exec(url);
    if (url.startsWith('/_ping')) res.writeHead(200, { 'content-type': 'text/plain', 'api-version': '1.41' }).end('OK');
    else if (url.startsWith('/containers/json')) {
      json(
        containers.map((c, i) => ({
          Id: c.id, Names: [`/${c.name}`], Image: 'x', State: 'running', Status: 'Up', Created: 1000 + i, HostConfig: { NetworkMode: 'default' },
          Labels: { 'com.docker.compose.project': PROJECT, 'com.docker.compose.service': c.service, 'com.docker.compose.container-number': '1', 'com.docker.compose.oneoff': 'False' },
        })),
      );
    } else if (m && byId(m[1]) && m[2] === 'json') {
      const c = byId(m[1])!;
      json({ Id: c.id, Name: `/${c.name}`, State: { Running: true, Restarting: false, Status: 'running', ExitCode: 0, Error: '' }, Config: { Tty: false, Labels: {} }, HostConfig: { NetworkMode: 'default' }, NetworkSettings: {} });
    } else if (m && byId(m[1]) && m[2] === 'logs') {
      res.writeHead(200, { 'content-type': 'application/vnd.docker.multiplexed-stream' }).end(frames(byId(m[1])!.lines));
    } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await fs.rm(root, { recursive: true, force: true });
});

const logs = (args: string[], env: Record<string, string> = {}) => runCli(['logs', '--dir', dir, ...args], { env: { DOCKER_HOST: `unix://${sock}`, DOCKER_CONTEXT: '', ...env } });

describe('logs --json', () => {
  it('prints one record per line, interleaved by time, each stream kept, the line as written', async () => {
    const r = await logs(['--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const records = expectRecords('logs', r);
    expect(records).toEqual([
      { service: 'cloudflared', container: `${PROJECT}-cloudflared-1`, stream: 'stderr', time: '2026-12-01T04:00:00.050000000Z', line: 'INF Starting tunnel' },
      { service: 'mcp-proxy', container: `${PROJECT}-mcp-proxy-1`, stream: 'stdout', time: '2026-12-01T04:00:00.100000000Z', line: PROXY_LINE },
      { service: 'cloudflared', container: `${PROJECT}-cloudflared-1`, stream: 'stdout', time: '2026-12-01T04:00:00.200000000Z', line: 'INF Registered tunnel connection | as "pipe" and "quote"' },
    ]);
    // The proxy's own line is JSON inside the record, one parse away.
    expect(JSON.parse(records[1]!.line as string)).toMatchObject({ level: 'info', msg: 'listening' });
  });

  it('MCP_TUNNEL_JSON=1 does the same; a service filter applies; without it the text keeps its prefix', async () => {
    const only = await logs(['mcp-proxy'], { MCP_TUNNEL_JSON: '1' });
    expect(only.exitCode, only.stderr).toBe(0);
    expect(expectRecords('logs', only).map((x) => x.service)).toEqual(['mcp-proxy']);
    const text = await logs([]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe('cloudflared | INF Starting tunnel');
  });

  it('an unknown service is still the one error line on stderr, and no record', async () => {
    const r = await logs(['nope', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: no container for service "nope" in compose project logsjson\nhint: /);
  });
});
