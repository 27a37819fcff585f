import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/bundle/env-file.js';
import { parseProxyConfig } from '../../src/bundle/proxy-config.js';
import { CLI, fakeTunnelToken, snapshotTree } from '../helpers/cli.js';
import { spawnInPty, type PtySession } from '../helpers/pty.js';

/** The wizard as a person meets it: a real terminal, typed answers, hidden token input. */
let work: string;
const ENTER = '\r';

function wizardEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key === 'CI' || key.startsWith('MCP_TUNNEL_') || key === 'TUNNEL_TOKEN') delete env[key];
  return env;
}

async function answer(session: PtySession, prompt: RegExp, keys: string): Promise<void> {
  await session.waitFor(prompt);
  session.write(keys);
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-wizard-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('init wizard on a terminal', () => {
  it('asks for every value, re-asks after a bad one, hides the token and writes the deployment', async () => {
    const dir = path.join(work, 'dep');
    const session = spawnInPty([process.execPath, CLI, 'init', '--dir', dir], wizardEnv());
    try {
      await answer(session, /Tunnel ID/, `abc${ENTER}`);
      await session.waitFor(/invalid tunnel ID "abc": must start with tnl_/);
      session.write('\u0015'); // Ctrl-U clears the line, as in any readline prompt
      session.write(`tnl_wiz1${ENTER}`);
      await answer(session, /Tunnel domain/, `abcd1234.tunnel.anthropic.com${ENTER}`);
      await answer(session, /Tunnel token/, `${fakeTunnelToken('wiz')}${ENTER}`);
      await answer(session, /Route name/, `docs${ENTER}`);
      await answer(session, /Upstream for docs/, `http://10.0.0.5:8080${ENTER}`);
      await answer(session, /Add another route/, `n${ENTER}`);
      await answer(session, /Restrict upstreams to specific IP ranges/, ENTER);
      await answer(session, /Proxy engine/, ENTER);
      await answer(session, /Write \d+ file\(s\) to/, ENTER);
      expect(await session.exit()).toBe(0);
    } finally {
      session.kill();
    }
    const screen = session.output();
    expect(screen).toContain('create compose.yaml');
    expect(screen).not.toContain(fakeTunnelToken('wiz'));
    expect(parseEnvFile(fs.readFileSync(path.join(dir, '.env'), 'utf8')).TUNNEL_TOKEN).toBe(fakeTunnelToken('wiz'));
    const config = parseProxyConfig(fs.readFileSync(path.join(dir, 'config/mcp-proxy.yaml'), 'utf8'));
    expect([...config.routes.keys()]).toEqual(['docs']);
    expect(fs.readFileSync(path.join(dir, 'data/tunnel-id'), 'utf8')).toBe('tnl_wiz1\n');
  });

  it('declining to replace a changed file writes nothing', async () => {
    const dir = path.join(work, 'dep');
    const before = snapshotTree(dir);
    const session = spawnInPty([process.execPath, CLI, 'init', '--dir', dir, '--route', 'wiki=http://10.0.0.9:3000'], wizardEnv());
    try {
      await answer(session, /Tunnel ID/, ENTER); // defaults come from the existing deployment
      await answer(session, /Tunnel domain/, ENTER);
      await answer(session, /Proxy engine/, ENTER);
      await answer(session, /Replace config\/mcp-proxy.yaml\? \(the CA is kept\)/, `n${ENTER}`);
      expect(await session.exit()).toBe(130);
    } finally {
      session.kill();
    }
    expect(session.output()).toContain('nothing was written');
    expect(snapshotTree(dir)).toEqual(before);
  });
});
