import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/deployment/env-file.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { fakeJwt, startAnthropicStandin } from '../helpers/anthropic-standin.js';
import { CLI, fakeTunnelToken, runCli, snapshotTree } from '../helpers/cli.js';
import { answer, KEYS, promptEnv as wizardEnv, spawnInPty } from '../helpers/pty.js';

/**
 * The wizard as a person meets it: a real terminal, typed answers, hidden token input. The flow is the
 * first question; every answer is checked at its own prompt and re-asked there (earlier answers kept);
 * one summary and one confirmation come before any file is written or any API request is sent.
 */
let work: string;
const { enter: ENTER, down: DOWN, clearLine: CLEAR_LINE } = KEYS;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-wizard-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('init wizard on a terminal', () => {
  it('manual flow: flow first, a bad answer re-asked at its own prompt, one summary and confirmation, then the files', async () => {
    const dir = path.join(work, 'dep');
    const session = spawnInPty([process.execPath, CLI, 'init', '--dir', dir], wizardEnv());
    try {
      await answer(session, /Credential flow/, `${DOWN}${ENTER}`); // the default is the programmatic flow
      await answer(session, /Tunnel ID/, `abc${ENTER}`);
      await session.waitFor(/invalid tunnel ID "abc": must start with tnl_/);
      session.write(CLEAR_LINE);
      session.write(`tnl_wiz1${ENTER}`);
      await answer(session, /Tunnel domain/, `abcd1234.tunnel.anthropic.com${ENTER}`);
      await answer(session, /Tunnel token/, `${fakeTunnelToken('wiz')}${ENTER}`);
      await answer(session, /Restrict upstreams to specific IP ranges/, ENTER);
      await answer(session, /sample "hello" MCP server/, ENTER);
      await answer(session, /Route name/, `docs${ENTER}`);
      // Outside the default allowed ranges: refused at this prompt, not four prompts later.
      await answer(session, /Upstream for docs/, `http://192.0.2.10:8080${ENTER}`);
      await session.waitFor(/points to 192\.0\.2\.10, which the proxy will refuse/);
      session.write(CLEAR_LINE);
      // An https upstream without a CA to verify it: refused here too.
      session.write(`https://10.0.0.5:8443${ENTER}`);
      await session.waitFor(/has an https upstream, but there is no CA/);
      session.write(CLEAR_LINE);
      session.write(`http://10.0.0.5:8080${ENTER}`);
      await answer(session, /Add another route/, `n${ENTER}`);
      await answer(session, /Proxy engine/, ENTER);
      await session.waitFor(/Summary[\s\S]*tnl_wiz1 \(abcd1234\.tunnel\.anthropic\.com\)[\s\S]*docs -> http:\/\/10\.0\.0\.5:8080/);
      expect(fs.existsSync(dir)).toBe(false); // nothing written before the confirmation
      await answer(session, /Write \d+ file\(s\) to/, ENTER);
      expect(await session.exit()).toBe(0);
    } finally {
      session.kill();
    }
    const screen = session.output();
    expect(screen.indexOf('Credential flow')).toBeLessThan(screen.indexOf('Tunnel ID'));
    expect(screen).toContain('create compose.yaml');
    expect(screen).not.toContain(fakeTunnelToken('wiz'));
    expect(parseEnvFile(fs.readFileSync(path.join(dir, '.env'), 'utf8')).TUNNEL_TOKEN).toBe(fakeTunnelToken('wiz'));
    const config = parseProxyConfig(fs.readFileSync(path.join(dir, 'config/mcp-proxy.yaml'), 'utf8'));
    expect([...config.routes.keys()]).toEqual(['docs']);
    expect(fs.readFileSync(path.join(dir, 'data/tunnel-id'), 'utf8')).toBe('tnl_wiz1\n');
  });

  it('a first init takes the deployment lock only after its confirmation; a deployment made meanwhile is left alone', async () => {
    const dir = path.join(work, 'raced');
    const session = spawnInPty([process.execPath, CLI, 'init', '--dir', dir, '--flow', 'manual', '--tunnel-id', 'tnl_wiz2', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--route', 'docs=http://docs-mcp:8080', '--proxy', 'builtin'], {
      ...wizardEnv(),
      TUNNEL_TOKEN: fakeTunnelToken('first'),
    });
    try {
      await session.waitFor(/Write \d+ file\(s\) to/);
      // Waiting at its confirmation, the wizard has created nothing, not even the lock.
      expect(fs.existsSync(dir)).toBe(false);
      // Meanwhile another init makes the deployment (it does not wait: no lock is held yet).
      const other = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_other', '--tunnel-domain', 'efgh5678.tunnel.anthropic.com', '--route', 'wiki=http://docs-mcp:8080', '--proxy', 'builtin'], {
        env: { TUNNEL_TOKEN: fakeTunnelToken('other') },
      });
      expect(other.exitCode, other.stderr).toBe(0);
      const made = snapshotTree(dir);
      session.write(ENTER);
      expect(await session.exit()).toBe(3);
      expect(session.output()).toMatch(/another command created a deployment in .* while init was waiting; nothing was written/);
      expect(snapshotTree(dir)).toEqual(made);
      expect(fs.readFileSync(path.join(dir, 'data/tunnel-id'), 'utf8')).toBe('tnl_other\n');
    } finally {
      session.kill();
    }
  });

  it('declining the one confirmation (which names the file it would replace) writes nothing', async () => {
    const dir = path.join(work, 'dep');
    const before = snapshotTree(dir);
    const session = spawnInPty([process.execPath, CLI, 'init', '--dir', dir, '--route', 'wiki=http://10.0.0.9:3000'], wizardEnv());
    try {
      await answer(session, /Tunnel ID/, ENTER); // an existing deployment: no flow question; defaults from it
      await answer(session, /Tunnel domain/, ENTER);
      await answer(session, /Proxy engine/, ENTER);
      await answer(session, /Write \d+ file\(s\) to .*\(replaces config\/mcp-proxy\.yaml.*\)\?/, `n${ENTER}`);
      expect(await session.exit()).toBe(130);
    } finally {
      session.kill();
    }
    expect(session.output()).toContain('nothing was written');
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('programmatic flow: existing tunnel or a new one, workspace, token file; nothing reaches the API before the confirmation', async () => {
    const standin = await startAnthropicStandin();
    try {
      const jwt = fakeJwt({ jti: 'wizard' });
      standin.acceptJwt(jwt);
      const jwtFile = path.join(work, 'id.jwt');
      fs.writeFileSync(jwtFile, jwt, { mode: 0o600 });
      const dir = path.join(work, 'wif');
      const session = spawnInPty([process.execPath, CLI, 'init', '--dir', dir, '--api-url', standin.url], wizardEnv({ MCP_TUNNEL_API_RETRY_BASE_MS: '2' }));
      try {
        await answer(session, /Credential flow/, ENTER); // programmatic, the recommended default
        await answer(session, /Federation rule ID/, `${standin.federationRuleId}${ENTER}`);
        await answer(session, /Organization ID/, `not-a-uuid${ENTER}`);
        await session.waitFor(/invalid organization ID "not-a-uuid"/);
        session.write(CLEAR_LINE);
        session.write(`${standin.organizationId}${ENTER}`);
        await answer(session, /Workspace ID/, ENTER);
        await answer(session, /OIDC identity token \(JWT\) from/, ENTER); // a file
        await answer(session, /File holding the identity token/, `${path.join(work, 'missing.jwt')}${ENTER}`);
        await session.waitFor(/missing\.jwt.* does not exist/);
        session.write(CLEAR_LINE);
        session.write(`${jwtFile}${ENTER}`);
        await answer(session, /Tunnel:/, `${DOWN}${ENTER}`); // create a new tunnel
        await answer(session, /Restrict upstreams to specific IP ranges/, ENTER);
        await answer(session, /sample "hello" MCP server/, `y${ENTER}`);
        await answer(session, /Also add a route for your own MCP server now/, ENTER);
        await answer(session, /Proxy engine/, ENTER);
        await session.waitFor(/Summary[\s\S]*create a new tunnel[\s\S]*hello -> http:\/\/hello:3000/);
        await session.waitFor(/Call the Tunnels API and write the deployment\?/);
        expect(standin.calls).toEqual([]);
        expect(fs.existsSync(dir)).toBe(false);
        session.write(ENTER);
        expect(await session.exit(60_000)).toBe(0);
      } finally {
        session.kill();
      }
      expect(standin.callsTo('POST', '/v1/tunnels')).toHaveLength(1);
      expect(fs.readFileSync(path.join(dir, 'data/tunnel-id'), 'utf8')).toMatch(/^tnl_/);
      expect(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8')).toContain('  hello:');
      expect(session.output()).not.toContain(jwt);
    } finally {
      await standin.close();
    }
  }, 120_000);
});
