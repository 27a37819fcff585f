import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkConfirmation } from '../../src/ops/revoke.js';
import { fakeTunnelToken, runCli } from '../helpers/cli.js';
import { expectReport } from '../helpers/json-reports.js';
import { fakeJwt, startAnthropicStandin, type AnthropicStandin } from '../helpers/anthropic-standin.js';

/**
 * Breach response: the manual flow prints what to click and what else to do; the programmatic flow archives
 * the tunnel through the Tunnels API (the real SDK against the local stand-in) only after a confirmation
 * naming the tunnel, and never on a mismatch.
 */
let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-revoke-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function deployment(env: string[], tunnelId: string, domain: string): string {
  const dir = fs.mkdtempSync(path.join(work, 'dep-'));
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'data', 'tunnel-id'), `${tunnelId}\n`);
  fs.writeFileSync(path.join(dir, 'data', 'tunnel-domain'), `${domain}\n`);
  // A project no container uses: the stack counts as stopped.
  fs.writeFileSync(path.join(dir, '.env'), [`TUNNEL_TOKEN=${fakeTunnelToken()}`, 'COMPOSE_PROJECT_NAME=mctrevokenostack', ...env, ''].join('\n'), { mode: 0o600 });
  return dir;
}

describe('revoke, manual flow', () => {
  it('prints the breach-response steps: stop, detach, archive in the Console, contact Anthropic, rotate, review, tear down', async () => {
    const dir = deployment([], 'tnl_01manual', 'abcd1234.tunnel.anthropic.com');
    const r = await runCli(['revoke', '--dir', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Breach response for tnl_01manual (manual flow: the Console archives it)');
    expect(lines[1]).toMatch(new RegExp(`^ {2}1\\. Stop the stack now .*: mcp-tunnel down --dir ${dir.replace(/[/.]/g, '\\$&')} --timeout 0 `));
    expect(lines[1]).toContain(`logs are saved to ${dir}/logs/`);
    expect(lines[2]).toMatch(/^ {2}2\. Detach the servers from Claude/);
    expect(lines[3]).toBe('  3. Archive the tunnel in the Claude Console: MCP tunnels -> open tnl_01manual (abcd1234.tunnel.anthropic.com) -> Archive -> confirm.');
    expect(lines[4]).toMatch(/^ {2}4\. Contact Anthropic support/);
    expect(lines[5]).toMatch(/^ {2}5\. Rotate the credentials your MCP servers accept/);
    expect(lines[6]).toContain(`6. Review the logs for the window before restoring service: the proxy's and cloudflared's, saved by mcp-tunnel down in ${dir}/logs/`);
    expect(lines[7]).toContain(`7. Tear down: mcp-tunnel teardown --dir ${dir}`);
    expect(r.stdout).toContain('Archiving is irreversible');
    expect(r.stdout).not.toContain(fakeTunnelToken());

    const json = await runCli(['revoke', '--dir', dir, '--json']);
    expect(json.exitCode, json.stderr).toBe(0);
    const report = expectReport('revoke', json);
    expect(report).toMatchObject({ flow: 'manual', tunnelId: 'tnl_01manual', archivedAt: null, alreadyArchived: false });
    // The same seven steps as the text, the Console step with its warning.
    expect(report.next).toHaveLength(7);
    expect((report.next as string[])[2]).toMatch(/^Archive the tunnel in the Claude Console: .* Archiving is irreversible/);
  });
});

describe('revoke, programmatic flow (Tunnels API stand-in)', () => {
  let standin: AnthropicStandin;
  let jwtFile: string;
  let tunnel: { id: string; domain: string };
  let dir: string;

  beforeEach(async () => {
    standin = await startAnthropicStandin();
    const jwt = fakeJwt();
    standin.acceptJwt(jwt);
    jwtFile = path.join(fs.mkdtempSync(path.join(work, 'jwt-')), 'token.jwt');
    fs.writeFileSync(jwtFile, `${jwt}\n`, { mode: 0o600 });
    tunnel = standin.seedTunnel({ displayName: 'revoke test' });
    dir = deployment(
      [
        'MCP_TUNNEL_FLOW=wif',
        `MCP_TUNNEL_API_URL=${standin.url}`,
        `ANTHROPIC_FEDERATION_RULE_ID=${standin.federationRuleId}`,
        `ANTHROPIC_ORGANIZATION_ID=${standin.organizationId}`,
        `ANTHROPIC_IDENTITY_TOKEN_FILE=${jwtFile}`,
      ],
      tunnel.id,
      tunnel.domain,
    );
  });
  afterEach(async () => standin.close());

  const archiveCalls = () => standin.callsTo('POST', `/v1/tunnels/${tunnel.id}/archive`);

  it('without a terminal and without --yes: exit 2, nothing archived', async () => {
    const r = await runCli(['revoke', '--dir', dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`error: archiving tunnel ${tunnel.id} needs a confirmation, and there is no terminal to ask\nhint: pass --yes --tunnel-id ${tunnel.id}`);
    expect(archiveCalls()).toEqual([]);
  });

  it('--yes with another tunnel ID: exit 2, nothing archived', async () => {
    const r = await runCli(['revoke', '--dir', dir, '--yes', '--tunnel-id', 'tnl_someoneelse']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`error: "tnl_someoneelse" is not this deployment's tunnel (${tunnel.id}); nothing was archived`);
    expect(archiveCalls()).toEqual([]);
    const noId = await runCli(['revoke', '--dir', dir, '--yes']);
    expect(noId.exitCode).toBe(2);
    expect(archiveCalls()).toEqual([]);
  });

  it('--yes --tunnel-id <the ID>: archives through the API (POST /v1/tunnels/{id}/archive), then lists what else to do', async () => {
    const r = await runCli(['revoke', '--dir', dir, '--yes', '--tunnel-id', tunnel.id]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`archived tunnel ${tunnel.id} \\(${tunnel.domain.replace(/\./g, '\\.')}\\) at \\S+: its token and hostname no longer work`));
    expect(r.stdout).toContain('Rotate the credentials your MCP servers accept');
    expect(archiveCalls().map((c) => c.status)).toEqual([200]);
    expect(standin.tunnelList(true).find((t) => t.id === tunnel.id)).toMatchObject({ archived_at: expect.any(String) });

    const again = await runCli(['revoke', '--dir', dir, '--yes', '--tunnel-id', tunnel.id, '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(expectReport('revoke', again)).toMatchObject({ flow: 'wif', tunnelId: tunnel.id, alreadyArchived: true, archivedAt: expect.any(String) });
    expect(archiveCalls().length).toBe(1);
  });

  it('an identity the API refuses: one line, exit 3, nothing archived', async () => {
    fs.writeFileSync(jwtFile, `${fakeJwt({ sub: 'intruder' })}\n`);
    const r = await runCli(['revoke', '--dir', dir, '--yes', '--tunnel-id', tunnel.id]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^error: the token exchange was refused .*\nhint: .*$/);
    expect(archiveCalls()).toEqual([]);
  });
});

describe('checkConfirmation', () => {
  it('accepts exactly the tunnel ID (surrounding blanks aside)', () => {
    expect(() => checkConfirmation('tnl_abc', ' tnl_abc ')).not.toThrow();
    expect(() => checkConfirmation('tnl_abc', 'tnl_ABC')).toThrow(/not this deployment's tunnel/);
    expect(() => checkConfirmation('tnl_abc', undefined)).toThrow(/needs a confirmation/);
  });
});
