import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeTunnelToken, REPO_ROOT, runCli } from '../helpers/cli.js';
import { expectReport, jsonSchemas } from '../helpers/json-reports.js';

/*
 * Every --json report validates against its schema in docs/json.md, with one key casing (camelCase) and
 * a schemaVersion; and what `connect` prints is a request the Messages API shape accepts: the printed
 * TypeScript runs with the real @anthropic-ai/sdk, the printed curl with curl, both against a local
 * stand-in that records what arrives.
 */
const execFileP = promisify(execFile);
let work: string;
let dir: string;
const DOMAIN = 'abcd1234.tunnel.anthropic.com';

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-json-'));
  const token = path.join(work, 'token');
  fs.writeFileSync(token, fakeTunnelToken('json'), { mode: 0o600 });
  dir = path.join(work, 'dep');
  // Loopback upstreams only (allowed explicitly): doctor connects to them.
  const r = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_json1', '--tunnel-domain', DOMAIN, '--tunnel-token-file', token, '--allowed-ip', '127.0.0.1/32', '--route', 'docs=http://127.0.0.1:9', '--route', 'wiki=http://127.0.0.1:10', '--json']);
  expect(r.exitCode).toBe(0);
  expectReport('init', r);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('--json reports match docs/json.md', () => {
  it('init and init --dry-run', async () => {
    const r = await runCli(['init', '--dir', dir, '--dry-run', '--json']);
    expect(r.exitCode).toBe(0);
    const json = expectReport('init', r);
    expect(json).toMatchObject({ dryRun: true, tunnelId: 'tnl_json1', urls: [`https://docs.${DOMAIN}/mcp`, `https://wiki.${DOMAIN}/mcp`] });
  });

  it('routes list, connect, renew-cert', async () => {
    expectReport('routes', await runCli(['routes', 'list', '--dir', dir, '--json']));
    const c = expectReport('connect', await runCli(['connect', '--dir', dir, '--json']));
    expect((c.servers as unknown[]).length).toBe(2);
    const one = expectReport('connect', await runCli(['connect', 'wiki', '--dir', dir, '--path', 'sse', '--json']));
    expect(one.servers).toEqual([{ name: 'wiki', subdomain: 'wiki', url: `https://wiki.${DOMAIN}/sse`, upstream: 'http://127.0.0.1:10' }]);
    const renew = await runCli(['renew-cert', '--dir', dir, '--json']);
    expect(renew.exitCode).toBe(10); // "not needed": renew-cert's documented exit code for a no-op
    expect(expectReport('renew-cert', renew)).toMatchObject({ status: 'not-needed', domain: DOMAIN });
  });

  it('probe (a failure is a report too), status, doctor', async () => {
    const probe = await runCli(['probe', 'docs', '--dir', dir, '--proxy', 'ws://127.0.0.1:9/', '--timeout', '2s', '--json']);
    expect(probe.exitCode).toBe(3);
    expect(expectReport('probe', probe)).toMatchObject({ ok: false, route: 'docs', failure: { layer: 'websocket', code: 'PROBE_WEBSOCKET_FAILED' } });
    const status = await runCli(['status', '--dir', dir, '--json']);
    expect(expectReport('status', status)).toMatchObject({ overall: 'absent' });
    const doctor = await runCli(['doctor', '--dir', dir, '--no-edge-check', '--timeout', '1s', '--json'], { timeoutMs: 60_000 });
    expectReport('doctor', doctor);
  });

  it('images, config get|set|unset, tunnel show (edits on a copy of the deployment)', async () => {
    const copy = path.join(work, 'edits');
    fs.cpSync(dir, copy, { recursive: true });
    const images = expectReport('images', await runCli(['images', '--dir', copy, '--json']));
    expect(images.images).toEqual(expect.arrayContaining([expect.objectContaining({ service: 'cloudflared', pinned: true })]));
    expect(images).not.toHaveProperty('changes');
    const digest = `cloudflare/cloudflared@sha256:${'b'.repeat(64)}`;
    const moved = expectReport('images', await runCli(['images', '--dir', copy, '--cloudflared', digest, '--json']));
    expect(moved.changes).toEqual([expect.objectContaining({ service: 'cloudflared', to: digest })]);

    const all = expectReport('config', await runCli(['config', 'get', '--dir', copy, '--json']));
    expect((all.settings as Array<{ key: string }>).map((v) => v.key)).toContain('upstream.allowed_ips');
    const one = expectReport('config', await runCli(['config', 'get', 'log_level', '--dir', copy, '--json']));
    expect(one.settings).toEqual([expect.objectContaining({ key: 'log_level', effective: 'info' })]);
    const set = await runCli(['config', 'set', 'log_level', 'debug', '--dir', copy, '--no-restart', '--json']);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(expectReport('config-change', set)).toMatchObject({ action: 'set', changed: true, before: 'info', after: 'debug', source: 'file', apply: { state: 'not-restarted' } });
    const same = expectReport('config-change', await runCli(['config', 'set', 'log_level', 'debug', '--dir', copy, '--no-restart', '--json']));
    expect(same).toMatchObject({ changed: false, apply: null });
    // A drain longer than compose's stop_grace_period (30s) would be cut short by Docker's kill: said, not hidden.
    const longer = await runCli(['config', 'set', 'shutdown_timeout', '60s', '--dir', copy, '--no-restart', '--json']);
    expect(longer.exitCode, longer.stderr).toBe(0);
    expect((expectReport('config-change', longer).warnings as string[]).join('\n')).toMatch(/stop_grace_period of 30s, before a 1m drain ends/);
    expect(longer.stderr).toMatch(/^warning: .*stop_grace_period/m);
    const within = expectReport('config-change', await runCli(['config', 'set', 'shutdown_timeout', '20s', '--dir', copy, '--no-restart', '--json']));
    expect(within.warnings).toEqual([]);
    // The domain is the tunnel's (data/tunnel-domain, the certificate's SAN): another one here breaks every handshake.
    const otherDomain = await runCli(['config', 'set', 'tunnel_domain', 'wxyz9876.tunnel.anthropic.com', '--dir', copy, '--no-restart', '--json']);
    expect(otherDomain.exitCode, otherDomain.stderr).toBe(0);
    expect((expectReport('config-change', otherDomain).warnings as string[]).join('\n')).toMatch(/data\/tunnel-domain \(abcd1234\.tunnel\.anthropic\.com\).*init --tunnel-domain wxyz9876/);
    const back = expectReport('config-change', await runCli(['config', 'set', 'tunnel_domain', DOMAIN, '--dir', copy, '--no-restart', '--json']));
    expect(back.warnings).toEqual([]);
    // With the restart (the default): the stack is not running, so the change applies at the next up.
    const unset = await runCli(['config', 'unset', 'log_level', '--dir', copy, '--json'], { env: { MCP_TUNNEL_JSON: '1' } });
    expect(unset.exitCode, unset.stderr).toBe(0);
    expect(expectReport('config-change', unset)).toMatchObject({ action: 'unset', changed: true, before: 'debug', after: 'info', source: 'default', apply: { state: 'not-running' } });

    // routes add|remove: the route as `routes list` shows it, applied as config set reports it.
    const added = await runCli(['routes', 'add', 'extra', 'http://127.0.0.1:12', '--dir', copy, '--no-restart', '--json']);
    expect(added.exitCode, added.stderr).toBe(0);
    expect(expectReport('route-change', added)).toMatchObject({ action: 'add', route: { name: 'extra', upstream: 'http://127.0.0.1:12', url: `https://extra.${DOMAIN}/mcp` }, preserved: true, apply: { state: 'not-restarted' } });
    const removed = await runCli(['routes', 'rm', 'extra', '--dir', copy], { env: { MCP_TUNNEL_JSON: '1' } });
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(expectReport('route-change', removed)).toMatchObject({ action: 'remove', route: { name: 'extra' }, apply: { state: 'not-running' } });
    const schemas = jsonSchemas();
    const applyOf = (report: string): unknown => (schemas.get(report) as { properties: { apply: { oneOf?: unknown[] } } }).properties.apply;
    expect((applyOf('config-change') as { oneOf: unknown[] }).oneOf).toContainEqual(applyOf('route-change'));

    const show = expectReport('tunnel', await runCli(['tunnel', 'show', '--dir', copy, '--json']));
    expect(show).toMatchObject({ flow: 'manual', tunnel: { id: 'tnl_json1', domain: DOMAIN }, token: { present: true }, certificates: null, rotation: null });
  });

  it('ca rotate in the manual flow: --dry-run, the CA to register, then --registered (on a copy)', async () => {
    const copy = path.join(work, 'ca');
    fs.cpSync(dir, copy, { recursive: true });
    const dry = await runCli(['ca', 'rotate', '--dir', copy, '--dry-run', '--json']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(expectReport('ca-rotate', dry)).toMatchObject({ status: 'dry-run', flow: 'manual', resumeFrom: null });
    expect(fs.existsSync(path.join(copy, 'data', 'ca.next.crt'))).toBe(false);

    // MCP_TUNNEL_JSON alone: the env twin of --json, which implies --non-interactive.
    const first = await runCli(['ca', 'rotate', '--dir', copy], { env: { MCP_TUNNEL_JSON: '1' } });
    expect(first.exitCode, first.stderr).toBe(0);
    const pending = expectReport('ca-rotate', first);
    expect(pending).toMatchObject({ status: 'awaiting-registration', flow: 'manual', caPem: fs.readFileSync(path.join(copy, 'data', 'ca.next.crt'), 'utf8') });

    const done = await runCli(['ca', 'rotate', '--dir', copy, '--registered', '--skip-confirm', '--json']);
    expect(done.exitCode, done.stderr).toBe(0);
    const report = expectReport('ca-rotate', done);
    expect(report).toMatchObject({ status: 'done', flow: 'manual', oldFingerprint: pending.oldFingerprint, newFingerprint: pending.newFingerprint, archivedCertificateId: null });
    expect(report.next).toEqual([expect.stringContaining(String(pending.oldFingerprint))]);
  });

  it('schedule-renewal: what was written and re-permissioned, the schedule; a re-run changes nothing; --disable (on a copy)', async () => {
    const copy = path.join(work, 'renewer');
    fs.cpSync(dir, copy, { recursive: true });
    const env = fs.readFileSync(path.join(copy, '.env'), 'utf8');
    const uid = Number(/^MCP_TUNNEL_UID=(\d+)$/m.exec(env)?.[1] ?? 65532);
    const needsGroup = fs.statSync(path.join(copy, 'data', 'ca.key')).uid !== uid;

    const on = await runCli(['schedule-renewal', '--dir', copy, '--json']);
    expect(on.exitCode, on.stderr).toBe(0);
    const added = expectReport('schedule-renewal', on);
    expect(added).toMatchObject({
      action: 'enable', dir: copy, changed: true, service: 'cert-renewer', compose: 'added', composeMethod: 'rendered',
      renewer: { every: '24h', renewBefore: '720h', runsAs: { uid } }, access: needsGroup ? 'granted' : 'none-needed',
    });
    expect((added.renewer as { command: string[] }).command).toEqual(['renew-cert', '--dir', '/deployment', '--every', '24h', '--renew-before', '720h']);
    const files = added.files as Array<{ path: string; change: string; mode: string; gid: number | null }>;
    expect(files).toEqual(
      expect.arrayContaining([
        { path: 'compose.yaml', change: 'written', mode: '0644', gid: null },
        { path: 'build/mcp-tunnel.mjs', change: 'written', mode: '0644', gid: null },
        ...(needsGroup ? [{ path: 'data/ca.key', change: 'permissions', mode: '0640', gid: 65533 }, { path: 'data', change: 'permissions', mode: '1731', gid: 65533 }] : []),
      ]),
    );
    for (const f of files) expect(fs.statSync(path.join(copy, f.path)).mode & 0o7777, f.path).toBe(parseInt(f.mode, 8));
    expect(fs.readFileSync(path.join(copy, 'compose.yaml'), 'utf8')).toContain('cert-renewer:');

    const again = expectReport('schedule-renewal', await runCli(['schedule-renewal', '--dir', copy], { env: { MCP_TUNNEL_JSON: '1' } }));
    expect(again).toMatchObject({ changed: false, compose: 'unchanged', composeMethod: null, files: [], renewer: { every: '24h' } });

    const off = await runCli(['schedule-renewal', '--dir', copy, '--disable', '--json']);
    expect(off.exitCode, off.stderr).toBe(0);
    const removed = expectReport('schedule-renewal', off);
    expect(removed).toMatchObject({ action: 'disable', changed: true, compose: 'removed', renewer: null, access: needsGroup ? 'revoked' : 'none-needed' });
    expect(removed.files).toEqual(expect.arrayContaining([{ path: 'compose.yaml', change: 'written', mode: '0644', gid: null }, ...(needsGroup ? [expect.objectContaining({ path: 'data/ca.key', mode: '0600' })] : [])]));
    expect(fs.statSync(path.join(copy, 'data', 'ca.key')).mode & 0o777).toBe(0o600);
    expect(expectReport('schedule-renewal', await runCli(['schedule-renewal', '--dir', copy, '--disable', '--json']))).toMatchObject({ changed: false, files: [] });
  });

  it('export helm: the files with their modes, the chart keys set, coded warnings, and no secret value', async () => {
    const out = path.join(work, 'helm');
    const r = await runCli(['export', 'helm', '--dir', dir, '--out', out, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = expectReport('export-helm', r);
    expect(report).toMatchObject({ dir, out, flow: 'manual', tunnelId: 'tnl_json1', chart: { version: expect.any(String), namespace: 'mcp-tunnel' } });
    expect(report.files).toEqual([
      { path: path.join(out, 'values.yaml'), kind: 'values', mode: '0644', secret: null },
      { path: path.join(out, 'mcp-tunnel-token.secret.yaml'), kind: 'secret', mode: '0600', secret: { name: 'mcp-tunnel-token', keys: ['tunnel-token'] } },
      { path: path.join(out, 'mcp-tunnel-cert.secret.yaml'), kind: 'secret', mode: '0600', secret: { name: 'mcp-tunnel-cert', keys: ['tls.crt', 'tls.key'] } },
      { path: path.join(out, '.gitignore'), kind: 'gitignore', mode: '0644', secret: null },
    ]);
    for (const f of report.files as Array<{ path: string; mode: string }>) expect(fs.statSync(f.path).mode & 0o777, f.path).toBe(parseInt(f.mode, 8));
    expect(report.valueKeys).toEqual(expect.arrayContaining(['tunnel.id', 'gateway.config', 'networkPolicy.egress.cloudflaredEgressCIDRs', 'serverCert.renewBefore', 'setup.enabled']));
    const { DOCUMENTED_HELM_VALUES } = await import('../../src/ops/helm-export.js');
    for (const key of report.valueKeys as string[]) expect(DOCUMENTED_HELM_VALUES.some((d) => d === key || d === `${key}.*`), key).toBe(true);
    const warnings = report.warnings as Array<{ code: string; route: string | null; upstreams?: unknown[] }>;
    expect(warnings.map((w) => `${w.code}${w.route ? ` ${w.route}` : ''}`)).toEqual(['upstream-loopback docs', 'upstream-loopback wiki', 'egress-upstreams-not-written', 'manual-flow-renewal']);
    expect(warnings[2]!.upstreams).toEqual([{ route: 'docs', cidr: '127.0.0.1/32', host: null, port: 9 }, { route: 'wiki', cidr: '127.0.0.1/32', host: null, port: 10 }]);
    expect(report.install).toEqual(expect.arrayContaining([expect.stringMatching(/^helm install mcp-tunnel /)]));
    // What the Secrets hold is in their files only.
    const key = fs.readFileSync(path.join(dir, 'data', 'tls.key'), 'utf8');
    const token = fs.readFileSync(path.join(work, 'token'), 'utf8').trim();
    for (const secret of [token, Buffer.from(token).toString('base64'), 'PRIVATE KEY', ...key.split('\n').filter((l) => l && !l.startsWith('-----')).slice(0, 2), Buffer.from(key).toString('base64').slice(0, 40)]) {
      expect(r.stdout).not.toContain(secret);
      expect(r.stderr).not.toContain(secret);
    }
    // Warnings go to stderr only without --json (stdout holds the report alone).
    expect(r.stderr).toBe('');
  });

  it('rotate-token (last: it changes the token)', async () => {
    const next = path.join(work, 'token-next');
    fs.writeFileSync(next, fakeTunnelToken('json-next'), { mode: 0o600 });
    const r = await runCli(['rotate-token', '--dir', dir, '--tunnel-token-file', next, '--force', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(expectReport('rotate-token', r)).toMatchObject({ flow: 'manual', cloudflared: { outcome: 'not-running' } });
  });

  it('connect with an unknown route is one line and exit 2', async () => {
    const r = await runCli(['connect', 'nope', '--dir', dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: no route nope in config\/mcp-proxy\.yaml \(configured: docs, wiki\)\nhint: /);
  });
});

describe('connect: the printed request is what the Messages API takes', () => {
  let standin: http.Server;
  let url: string;
  const received: Array<{ path: string; headers: http.IncomingHttpHeaders; body: unknown }> = [];

  beforeAll(async () => {
    standin = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString('utf8')));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(data) as unknown });
        res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_standin' });
        res.end(
          JSON.stringify({
            id: 'msg_standin', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', stop_reason: 'end_turn', stop_sequence: null,
            content: [{ type: 'text', text: 'I can call hello.' }], usage: { input_tokens: 1, output_tokens: 1 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => standin.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(standin.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => standin.close(() => resolve())));

  it('the TypeScript snippet runs with the real SDK and sends the documented shape', async () => {
    const info = JSON.parse((await runCli(['connect', '--dir', dir, '--json'])).stdout) as { typescript: string; messagesApi: { body: Record<string, unknown> } };
    // The snippet is plain ESM (no type annotations); placed in the repository so the SDK resolves.
    const file = path.join(REPO_ROOT, 'dist', `connect-snippet-${process.pid}.mjs`);
    fs.writeFileSync(file, info.typescript);
    received.length = 0;
    try {
      const r = await execFileP(process.execPath, [file], { env: { ...process.env, ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: 'sk-ant-test' }, timeout: 30_000 });
      expect(r.stdout).toContain('I can call hello.');
    } finally {
      fs.rmSync(file, { force: true });
    }
    expect(received).toHaveLength(1);
    const [req] = received;
    expect(req!.path).toMatch(/^\/v1\/messages(\?beta=true)?$/);
    // The SDK sends the API version it was built for; the curl snippet names the documented one.
    expect(req!.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(String(req!.headers['anthropic-beta']).split(',')).toContain('mcp-client-2025-11-20');
    // This SDK release sends the key as a bearer token; older ones as x-api-key.
    expect([req!.headers['x-api-key'], req!.headers.authorization]).toContainEqual(expect.stringMatching(/^(Bearer )?sk-ant-test$/));
    expect(req!.body).toEqual(info.messagesApi.body);
    expect(req!.body).toMatchObject({
      mcp_servers: [
        { type: 'url', url: `https://docs.${DOMAIN}/mcp`, name: 'docs' },
        { type: 'url', url: `https://wiki.${DOMAIN}/mcp`, name: 'wiki' },
      ],
      tools: [
        { type: 'mcp_toolset', mcp_server_name: 'docs' },
        { type: 'mcp_toolset', mcp_server_name: 'wiki' },
      ],
    });
  });

  it('the curl snippet sends the same request', async () => {
    const info = JSON.parse((await runCli(['connect', 'docs', '--dir', dir, '--json'])).stdout) as { curl: string; messagesApi: { url: string; body: unknown } };
    received.length = 0;
    await execFileP('bash', ['-c', info.curl.replace(info.messagesApi.url, `${url}/v1/messages`).replace(/^curl /, 'curl -sS ')], {
      env: { ...process.env, ANTHROPIC_API_KEY: 'sk-ant-curl' },
      timeout: 30_000,
    });
    expect(received).toHaveLength(1);
    expect(received[0]!.headers['x-api-key']).toBe('sk-ant-curl');
    expect(received[0]!.headers['anthropic-beta']).toBe('mcp-client-2025-11-20');
    expect(received[0]!.headers['anthropic-version']).toBe('2023-06-01');
    expect(received[0]!.body).toEqual(info.messagesApi.body);
  });
});
