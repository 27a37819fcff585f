/**
 * Every hint that tells the user to run a compose command names the one this host has: `docker compose`
 * (the v2 plugin), else `docker-compose` (v1), else mcp-tunnel's own command. Each case gives the CLI a
 * PATH (and Docker config directory) that holds exactly that: stub executables, never run. No stack is
 * needed: doctor on a fresh deployment finds no mcp-proxy container and gives the fix to start it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';

let work: string;
let dir: string;
const DOMAIN = 'abcd1234.tunnel.anthropic.com';

type Host = 'v2' | 'v1' | 'none';

function stub(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
}

/** PATH and DOCKER_CONFIG of a host with the v2 plugin, with only docker-compose v1, or with neither. */
function hostEnv(host: Host): Record<string, string> {
  const root = path.join(work, `host-${host}`);
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const dockerConfig = path.join(root, 'docker-config');
  fs.mkdirSync(dockerConfig, { recursive: true });
  if (host === 'v2') {
    stub(path.join(bin, 'docker'));
    stub(path.join(dockerConfig, 'cli-plugins', 'docker-compose'));
  }
  if (host === 'v1') stub(path.join(bin, 'docker-compose'));
  return { PATH: bin, DOCKER_CONFIG: dockerConfig };
}

interface Finding {
  id: string;
  status: string;
  message: string;
  fix?: string;
}

async function proxyFix(host: Host): Promise<string> {
  const r = await runCli(['doctor', '--dir', dir, '--offline', '--json'], { env: hostEnv(host), timeoutMs: 60_000 });
  const findings = (JSON.parse(r.stdout) as { findings: Finding[] }).findings;
  const finding = findings.find((f) => f.message === 'no mcp-proxy container');
  expect(finding, r.stdout).toBeDefined();
  return finding!.fix ?? '';
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-compose-hints-'));
  const token = path.join(work, 'token');
  fs.writeFileSync(token, fakeTunnelToken('hints'), { mode: 0o600 });
  dir = path.join(work, 'dep');
  const r = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_hints1', '--tunnel-domain', DOMAIN, '--tunnel-token-file', token, '--allowed-ip', '127.0.0.1/32', '--route', 'docs=http://127.0.0.1:9']);
  expect(r.exitCode, r.stderr).toBe(0);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('hints name the compose command this host has', () => {
  it("doctor's fix for a missing proxy container", async () => {
    expect(await proxyFix('v1')).toBe('start the stack: mcp-tunnel up (or docker-compose up -d)');
    expect(await proxyFix('v2')).toBe('start the stack: mcp-tunnel up (or docker compose up -d)');
    expect(await proxyFix('none')).toBe('start the stack: mcp-tunnel up');
  });

  it('routes add --no-restart: how to restart the proxy by hand', async () => {
    const restartLine = async (host: Host, name: string): Promise<string> => {
      const r = await runCli(['routes', 'add', name, 'http://127.0.0.1:11', '--dir', dir, '--no-restart'], { env: hostEnv(host) });
      expect(r.exitCode, r.stderr).toBe(0);
      return r.stdout;
    };
    const v1 = await restartLine('v1', 'one');
    expect(v1).toContain('restart it to apply (docker-compose restart mcp-proxy cloudflared)');
    expect(v1).not.toContain('docker compose');
    expect(await restartLine('v2', 'two')).toContain('restart it to apply (docker compose restart mcp-proxy cloudflared)');
    const none = await restartLine('none', 'three');
    expect(none).toContain('restart it to apply (mcp-tunnel down && mcp-tunnel up)');
    expect(none).not.toMatch(/docker[ -]compose/);
  });
});
