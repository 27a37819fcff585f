/**
 * Issue 13, item 7 without a stack: `doctor --offline` makes no network connection at all (every socket the
 * CLI process opens is recorded by a preload; only unix sockets are allowed), and the programmatic flow's
 * checks produced for real against the local Tunnels API stand-in (the real SDK): the API reachable, and
 * data/ca.crt registered for the tunnel or not.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeJwt, startAnthropicStandin, type AnthropicStandin } from '../helpers/anthropic-standin.js';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';
import { writeTestPki } from '../helpers/pki.js';

const DOMAIN = 'abcd1234.tunnel.example.com';

let work = '';
let dir = '';
let standin: AnthropicStandin;
let tunnel: { id: string; domain: string };
let upstream: net.Server;
let upstreamConnections = 0;
let preload = '';

interface Finding {
  id: string;
  status: string;
  message: string;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-doctor-day2-'));
  standin = await startAnthropicStandin();
  const jwt = fakeJwt();
  standin.acceptJwt(jwt);
  const jwtFile = path.join(work, 'token.jwt');
  fs.writeFileSync(jwtFile, `${jwt}\n`, { mode: 0o600 });
  tunnel = standin.seedTunnel({ displayName: 'doctor day2' });
  upstream = net.createServer((s) => {
    upstreamConnections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as net.AddressInfo).port;

  dir = path.join(work, 'deploy');
  await writeTestPki(path.join(dir, 'data'), DOMAIN);
  fs.writeFileSync(path.join(dir, 'data', 'tunnel-id'), `${tunnel.id}\n`);
  fs.writeFileSync(path.join(dir, 'data', 'tunnel-domain'), `${DOMAIN}\n`);
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(
    path.join(dir, 'config', 'mcp-proxy.yaml'),
    [`listen_addr: ":8080"`, `tunnel_domain: ${DOMAIN}`, 'tls:', '  cert_file: /data/tls.crt', '  key_file: /data/tls.key', 'routes:', `  echo: "http://127.0.0.1:${port}"`, 'upstream:', '  allowed_ips: ["127.0.0.1/32"]', ''].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, '.env'),
    [
      `TUNNEL_TOKEN=${fakeTunnelToken('doc')}`,
      'COMPOSE_PROJECT_NAME=mctdoctorday2',
      'MCP_TUNNEL_FLOW=wif',
      `MCP_TUNNEL_API_URL=${standin.url}`,
      `ANTHROPIC_FEDERATION_RULE_ID=${standin.federationRuleId}`,
      `ANTHROPIC_ORGANIZATION_ID=${standin.organizationId}`,
      `ANTHROPIC_IDENTITY_TOKEN_FILE=${jwtFile}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // Records every socket connect that is not a unix socket, and every DNS lookup.
  preload = path.join(work, 'record-network.mjs');
  fs.writeFileSync(
    preload,
    `import fs from 'node:fs'; import net from 'node:net'; import dns from 'node:dns'; import dgram from 'node:dgram';
const log = process.env.MCT_NET_LOG;
const record = (line) => fs.appendFileSync(log, line + '\\n');
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const o = Array.isArray(args[0]) ? args[0][0] : args[0];
  const unix = typeof o === 'string' || (o && typeof o === 'object' && typeof o.path === 'string');
  if (!unix) record('connect ' + (o && typeof o === 'object' ? o.host + ':' + o.port : String(o) + ':' + String(args[1])));
  return connect.apply(this, args);
};
const lookup = dns.lookup;
dns.lookup = function (host, ...rest) { record('lookup ' + host); return lookup.call(this, host, ...rest); };
const lookupP = dns.promises.lookup;
dns.promises.lookup = function (host, ...rest) { record('lookup ' + host); return lookupP.call(this, host, ...rest); };
const send = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (...args) { record('udp send'); return send.apply(this, args); };
`,
  );
});

afterAll(async () => {
  await standin?.close();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  fs.rmSync(work, { recursive: true, force: true });
});

async function doctor(args: string[], netLog?: string): Promise<{ exitCode: number; findings: Finding[] }> {
  const env: Record<string, string> = netLog ? { NODE_OPTIONS: `--import ${preload}`, MCT_NET_LOG: netLog } : {};
  const r = await runCli(['doctor', '--dir', dir, '--json', ...args], { env });
  return { exitCode: r.exitCode, findings: (JSON.parse(r.stdout) as { findings: Finding[] }).findings };
}

describe('doctor --offline', () => {
  it('makes no network connection: no socket but unix ones, no DNS lookup, nothing reaches the upstream or the API', async () => {
    const log = path.join(work, 'offline.log');
    fs.writeFileSync(log, '');
    const callsBefore = standin.calls.length;
    const upstreamBefore = upstreamConnections;
    const r = await doctor(['--offline'], log);
    expect(fs.readFileSync(log, 'utf8')).toBe('');
    expect(upstreamConnections).toBe(upstreamBefore);
    expect(standin.calls.length).toBe(callsBefore);
    const byId = new Map(r.findings.map((f) => [f.id, f]));
    for (const id of ['upstream.reach.echo', 'egress.tcp-7844', 'api.reachable', 'api.ca-registered']) expect(byId.get(id)?.status, id).toBe('skip');
    // The local checks still ran.
    expect(byId.get('token.present')?.status).toBe('ok');
  });

  it('the same run without --offline does connect (the recorder sees it): the check can fail', async () => {
    const log = path.join(work, 'online.log');
    fs.writeFileSync(log, '');
    await doctor(['--no-edge-check'], log);
    expect(fs.readFileSync(log, 'utf8')).toMatch(/connect 127\.0\.0\.1:\d+/);
    expect(upstreamConnections).toBeGreaterThan(0);
  });
});

describe("doctor: cloudflared's command", () => {
  it('without --url: fail with the command to write; with it: ok', async () => {
    const compose = path.join(dir, 'compose.yaml');
    const service = (command: string): string => ['services:', '  cloudflared:', '    image: cloudflare/cloudflared@sha256:' + 'a'.repeat(64), `    command: ${command}`, ''].join('\n');
    try {
      fs.writeFileSync(compose, service('tunnel --no-autoupdate run'));
      const bad = await doctor(['--offline']);
      expect(bad.findings.find((f) => f.id === 'compose.cloudflared-url')).toMatchObject({ status: 'fail', message: expect.stringContaining('lacks --url') });
      expect(bad.exitCode).toBe(1);
      fs.writeFileSync(compose, service('tunnel --no-autoupdate run --url http://localhost:8080'));
      const good = await doctor(['--offline']);
      expect(good.findings.find((f) => f.id === 'compose.cloudflared-url')?.status).toBe('ok');
    } finally {
      fs.rmSync(compose, { force: true });
    }
  });
});

describe('doctor, programmatic flow', () => {
  it('finds data/ca.crt not registered for the tunnel, then registered once it is', async () => {
    const before = await doctor(['--no-edge-check']);
    const byId = new Map(before.findings.map((f) => [f.id, f]));
    expect(byId.get('api.reachable')?.status).toBe('ok');
    expect(byId.get('api.ca-registered')).toMatchObject({ status: 'fail', message: expect.stringContaining(`is not among the 0 active CA certificates of ${tunnel.id}`) });
    expect(before.exitCode).toBe(1);

    standin.seedCertificate(tunnel.id, { pem: fs.readFileSync(path.join(dir, 'data', 'ca.crt'), 'utf8') });
    const after = await doctor(['--no-edge-check']);
    expect(after.findings.find((f) => f.id === 'api.ca-registered')?.status).toBe('ok');
  });

  it('an API that does not answer: api.reachable fails with the host named', async () => {
    const envFile = path.join(dir, '.env');
    const text = fs.readFileSync(envFile, 'utf8');
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    fs.writeFileSync(envFile, text.replace(/^MCP_TUNNEL_API_URL=.*$/m, `MCP_TUNNEL_API_URL=http://127.0.0.1:${port}`));
    try {
      const r = await doctor(['--no-edge-check']);
      expect(r.findings.find((f) => f.id === 'api.reachable')).toMatchObject({ status: 'fail', message: expect.stringContaining(`127.0.0.1:${port} is not reachable`) });
    } finally {
      fs.writeFileSync(envFile, text);
    }
  });
});
