/**
 * Issue 13 items 1, 6 and 8 and issue 16's image references, as a user meets them without Docker: config and
 * images edit the files (comments kept, validated first, nothing written on a refusal), init re-runs keep what
 * they do not own and show a diff before changing a file, teardown refuses without a confirmation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDFLARED_IMAGE } from '../../src/deployment/images.js';
import { fakeTunnelToken, runCli, snapshotTree } from '../helpers/cli.js';
import { requireDocker } from '../helpers/docker.js';
import { expectReport } from '../helpers/json-reports.js';

const dockerReady = await requireDocker();

const DOMAIN = 'abcd1234.tunnel.example.com';
let work = '';
let tokenFile = '';

const initArgs = (dir: string, extra: string[] = []): string[] => [
  'init', '--dir', dir, '--proxy', 'official', '--tunnel-id', 'tnl_01ABCDEFGHJKMNPQRSTVWXYZ0', '--tunnel-domain', DOMAIN,
  '--tunnel-token-file', tokenFile, '--route', 'docs=http://192.0.2.5:8080', '--allowed-ip', '192.0.2.0/24', '--non-interactive', '-y', ...extra,
];

async function freshDeployment(name: string): Promise<string> {
  const dir = path.join(work, name);
  const r = await runCli(initArgs(dir));
  expect(r.exitCode, r.stderr).toBe(0);
  return dir;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-day2-cli-'));
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, `${fakeTunnelToken('cli')}\n`, { mode: 0o600 });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('init --base-image takes an image reference only', () => {
  it.each(['node 24; rm -rf /', '$(id)', 'Node:24'])('%j: one line + hint, exit 2, nothing written', async (ref) => {
    const dir = path.join(work, 'base-image');
    const r = await runCli(['init', '--dir', dir, '--proxy', 'builtin', '--tunnel-id', 'tnl_01ABCDEFGHJKMNPQRSTVWXYZ0', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile, '--route', 'docs=http://192.0.2.5:8080', '--allowed-ip', '192.0.2.0/24', '--base-image', ref, '--non-interactive', '-y']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: --base-image ".*" is not an image reference.*\nhint: an image reference looks like node:24-slim/);
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('images', () => {
  it('shows the pins; moves one only to name@sha256:<64 hex>, comments kept; init re-runs keep it', async () => {
    const dir = await freshDeployment('images');
    const shown = await runCli(['images', '--dir', dir, '--json']);
    expect(JSON.parse(shown.stdout).images).toEqual(expect.arrayContaining([expect.objectContaining({ service: 'cloudflared', image: CLOUDFLARED_IMAGE, pinned: true })]));

    const before = snapshotTree(dir);
    const tag = await runCli(['images', '--dir', dir, '--cloudflared', 'cloudflare/cloudflared:latest']);
    expect(tag.exitCode).toBe(2);
    expect(tag.stderr).toMatch(/^error: --cloudflared "cloudflare\/cloudflared:latest" is not pinned by digest\nhint: give name@sha256:<64 hex>/);
    expect(snapshotTree(dir)).toEqual(before);

    const compose = fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8');
    const next = `cloudflare/cloudflared@sha256:${'a'.repeat(64)}`;
    const moved = await runCli(['images', '--dir', dir, '--cloudflared', next]);
    expect(moved.exitCode, moved.stderr).toBe(0);
    expect(moved.stdout).toContain(`cloudflared: ${CLOUDFLARED_IMAGE} -> ${next} in compose.yaml`);
    expect(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8')).toBe(compose.replace(CLOUDFLARED_IMAGE, next));

    const rerun = await runCli(['init', '--dir', dir, '--non-interactive']);
    expect(rerun.exitCode, rerun.stderr).toBe(0);
    expect(rerun.stdout).toContain('is up to date; nothing changed');
    expect(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8')).toContain(next);
  });
});

describe('config', () => {
  it('set keeps comments and layout; a value the proxy would refuse: exit 2, nothing written; init keeps the edit', async () => {
    const dir = await freshDeployment('config');
    const file = path.join(dir, 'config', 'mcp-proxy.yaml');
    const original = fs.readFileSync(file, 'utf8');
    const set = await runCli(['config', 'set', 'shutdown_timeout', '10s', '--dir', dir, '--no-restart']);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe(original.replace('shutdown_timeout: 30s', 'shutdown_timeout: 10s'));
    expect((await runCli(['config', 'get', 'shutdown_timeout', '--dir', dir])).stdout.trim()).toBe('10s');

    const edited = fs.readFileSync(file, 'utf8');
    const bad = await runCli(['config', 'set', 'log_level', 'loud', '--dir', dir, '--no-restart']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^error: log_level "loud" is not one of debug, info, warn, error; nothing was written\nhint: /);
    expect(fs.readFileSync(file, 'utf8')).toBe(edited);
    const builtinOnly = await runCli(['config', 'set', 'limits.max_connections', '10', '--dir', dir, '--no-restart']);
    expect(builtinOnly.exitCode).toBe(2);

    const rerun = await runCli(['init', '--dir', dir, '--non-interactive']);
    expect(rerun.stdout).toContain('nothing changed');
    expect(fs.readFileSync(file, 'utf8')).toBe(edited);
  });

  it('init with a new route shows the diff before refusing (and writes it with --force)', async () => {
    const dir = await freshDeployment('config-diff');
    const r = await runCli([...initArgs(dir), '--route', 'wiki=http://192.0.2.6:8080']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toContain('--- config/mcp-proxy.yaml (now)  +++ config/mcp-proxy.yaml (after init)');
    expect(r.stdout).toContain('+   wiki: "http://192.0.2.6:8080"');
    expect(r.stdout).not.toContain('TUNNEL_TOKEN');
    const forced = await runCli([...initArgs(dir), '--route', 'wiki=http://192.0.2.6:8080', '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'config', 'mcp-proxy.yaml'), 'utf8')).toContain('wiki: "http://192.0.2.6:8080"');
  });

  it('get --json lists every setting with its source', async () => {
    const dir = await freshDeployment('config-json');
    const r = await runCli(['config', 'get', '--dir', dir, '--json']);
    const views = (expectReport('config', r).settings) as Array<{ key: string; source: string }>;
    expect(views.map((v) => v.key)).toContain('upstream.tls.include_system_cas');
    // The official engine: the builtin extensions are not listed.
    expect(views.map((v) => v.key)).not.toContain('limits.max_connections');
  });
});

describe('teardown', () => {
  it.skipIf(!dockerReady)('--yes --revoke on a manual-flow deployment with no stack: the Console steps, then data/ and .env deleted, the rest kept', async () => {
    const dir = await freshDeployment('teardown-revoke');
    const r = await runCli(['teardown', '--dir', dir, '--yes', '--revoke']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('no container was running');
    expect(r.stdout).toContain('Archive the tunnel in the Claude Console');
    expect(r.stdout).toContain('deleted data/, .env');
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
    expect(fs.existsSync(path.join(dir, '.env'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'compose.yaml'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'config', 'mcp-proxy.yaml'))).toBe(true);
  });

  it.skipIf(!dockerReady)('down --json, then teardown --yes --revoke --json, with no stack: one report each on stdout', async () => {
    const dir = await freshDeployment('teardown-json');
    const down = await runCli(['down', '--dir', dir, '--json']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(expectReport('down', down)).toEqual({ schemaVersion: 1, report: 'down', project: 'teardown-json', removedContainers: [], removedNetworks: [], savedLogs: [] });

    const r = await runCli(['teardown', '--dir', dir, '--yes', '--revoke'], { env: { MCP_TUNNEL_JSON: '1' } });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = expectReport('teardown', r);
    expect(report).toMatchObject({ project: 'teardown-json', removedContainers: [], removed: ['data/', '.env'], revoke: { flow: 'manual', tunnelId: 'tnl_01ABCDEFGHJKMNPQRSTVWXYZ0', archivedAt: null } });
    expect((report.revoke as { next: string[] }).next.join('\n')).toContain('Archive the tunnel in the Claude Console');
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'compose.yaml'))).toBe(true);
  });

  it('--json without --yes: exit 2 (no prompt on stdout), nothing removed', async () => {
    const dir = await freshDeployment('teardown-json-refused');
    const before = snapshotTree(dir);
    const r = await runCli(['teardown', '--dir', dir, '--json'], { env: { DOCKER_HOST: `unix://${path.join(work, 'no.sock')}` } });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('without a terminal and without --yes: exit 2, nothing removed', async () => {
    const dir = await freshDeployment('teardown');
    const before = snapshotTree(dir);
    const r = await runCli(['teardown', '--dir', dir], { env: { DOCKER_HOST: `unix://${path.join(work, 'no.sock')}` } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: teardown deletes the credentials and needs a confirmation\nhint: .*--yes/);
    expect(snapshotTree(dir)).toEqual(before);
  });
});
