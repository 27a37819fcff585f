import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectComposeCommand } from '../../src/docker/compose-command.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { renderProxyConfig } from '../../src/deployment/proxy-config-render.js';
import { addRoute, removeRoute } from '../../src/ops/routes.js';
import { runCli } from '../helpers/cli.js';

/**
 * routes add/remove edit config/mcp-proxy.yaml as a document, not a rewrite: every byte outside the edited
 * line stays (comments, quoting, odd indentation, blank lines, key order); bad input is one line, exit 2,
 * and the file untouched.
 */
const DOMAIN = 'abcd1234.tunnel.anthropic.com';

const HAND_EDITED = `# My proxy config, hand edited
listen_addr: ":8080"
log_level:   info      # verbose when debugging
shutdown_timeout: 30s

tunnel_domain: ${DOMAIN}

tls:
    cert_file: /data/tls.crt
    key_file:  /data/tls.key

# subdomain -> upstream
routes:
    # the docs server
    docs:  "http://10.0.0.5:8080"     # main
    wiki: 'http://10.0.0.6:3000'

upstream:
  allowed_ips:
  - "10.0.0.0/8"
# trailing comment
`;

const file = (text: string) => ({ text, config: parseProxyConfig(text) });

describe('addRoute / removeRoute (document edit, bytes kept)', () => {
  it('add inserts exactly one line after the last route, in its indentation and quoting', () => {
    const edit = addRoute(file(HAND_EDITED), 'tools', 'http://10.0.0.7:9000');
    expect(edit.preserved).toBe(true);
    const expected = HAND_EDITED.replace("    wiki: 'http://10.0.0.6:3000'\n", "    wiki: 'http://10.0.0.6:3000'\n    tools: 'http://10.0.0.7:9000'\n");
    expect(edit.text).toBe(expected);
    expect(edit.route).toEqual({ name: 'tools', url: 'http://10.0.0.7:9000', host: `tools.${DOMAIN}` });
    expect([...edit.config.routes.keys()]).toEqual(['docs', 'wiki', 'tools']);
  });

  it('remove deletes exactly the route\'s own line (comments above it are kept)', () => {
    const edit = removeRoute(file(HAND_EDITED), 'docs');
    expect(edit.preserved).toBe(true);
    expect(edit.text).toBe(HAND_EDITED.replace('    docs:  "http://10.0.0.5:8080"     # main\n', ''));
    expect(removeRoute(file(HAND_EDITED), `wiki.${DOMAIN}`).text).toBe(HAND_EDITED.replace("    wiki: 'http://10.0.0.6:3000'\n", ''));
  });

  it('add then remove on the file init writes gives back the same bytes; key order kept', () => {
    const text = renderProxyConfig({ tunnelDomain: DOMAIN, routes: [{ name: 'docs', url: 'http://10.0.0.5:8080' }, { name: 'wiki', url: 'http://10.0.0.6:3000' }], allowedIps: ['10.0.0.0/8'] });
    const added = addRoute(file(text), 'alpha', 'http://10.1.2.3:80');
    expect(added.preserved).toBe(true);
    const diff = added.text.split('\n').filter((l) => !text.split('\n').includes(l));
    expect(diff).toEqual(['  alpha: "http://10.1.2.3:80"']);
    expect(Object.keys(YAML.parse(added.text).routes)).toEqual(['docs', 'wiki', 'alpha']);
    expect(removeRoute(file(added.text), 'alpha').text).toBe(text);
  });

  it('a flow-style routes map still works (re-rendered by the yaml library, comments kept)', () => {
    const text = `# keep me\nlisten_addr: ":8080"\ntunnel_domain: ${DOMAIN}\ntls: {cert_file: /data/tls.crt, key_file: /data/tls.key}\nroutes: {docs: "http://10.0.0.5:8080"}\n`;
    const edit = addRoute(file(text), 'wiki', 'http://10.0.0.6:3000');
    expect(edit.text).toContain('# keep me');
    expect(YAML.parse(edit.text).routes).toEqual({ docs: 'http://10.0.0.5:8080', wiki: 'http://10.0.0.6:3000' });
  });
});

describe('mcp-tunnel routes (CLI)', () => {
  let work: string;
  let dir: string;
  let configFile: string;
  const sha = (): string => createHash('sha256').update(fs.readFileSync(configFile)).digest('hex');

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-routes-'));
    dir = path.join(work, 'dep');
    fs.mkdirSync(path.join(dir, 'config'), { recursive: true });
    configFile = path.join(dir, 'config', 'mcp-proxy.yaml');
    fs.writeFileSync(configFile, HAND_EDITED, { mode: 0o644 });
    // A project name no container uses: the stack is "not running".
    fs.writeFileSync(path.join(dir, '.env'), 'COMPOSE_PROJECT_NAME=mctroutesnostack\n', { mode: 0o600 });
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('list prints each route and the URL Claude uses; --json too', async () => {
    const r = await runCli(['routes', 'list', '--dir', dir]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      [
        'NAME  UPSTREAM              CLAUDE REACHES',
        `docs  http://10.0.0.5:8080  https://docs.${DOMAIN}/mcp`,
        `wiki  http://10.0.0.6:3000  https://wiki.${DOMAIN}/mcp`,
      ].join('\n'),
    );
    const j = await runCli(['routes', 'list', '--dir', dir, '--json']);
    expect(JSON.parse(j.stdout)).toEqual({
      schemaVersion: 1,
      report: 'routes',
      routes: [
        { name: 'docs', upstream: 'http://10.0.0.5:8080', url: `https://docs.${DOMAIN}/mcp` },
        { name: 'wiki', upstream: 'http://10.0.0.6:3000', url: `https://wiki.${DOMAIN}/mcp` },
      ],
    });
  });

  it.each([
    ['an invalid name', ['add', 'Bad_Name', 'http://10.0.0.7:80'], /invalid route name "Bad_Name"/],
    ['a duplicate', ['add', 'docs', 'http://10.0.0.7:80'], /route "docs" already exists/],
    ['an upstream with a path', ['add', 'tools', 'http://10.0.0.7:80/mcp'], /invalid upstream \(must be scheme:\/\/host:port\) for route "tools": .* has a path, query or fragment \("\/mcp"\)/],
    ['an upstream without a port', ['add', 'tools', 'http://10.0.0.7'], /has no port/],
    ['an upstream outside allowed_ips', ['add', 'tools', 'http://192.168.1.5:80'], /outside the allowed IPs \(10\.0\.0\.0\/8\)/],
    ['a decimal IPv4 spelling (2130771969)', ['add', 'tools', 'http://2130771969:80'], /points to 2130771969 \(= 127\.1\.0\.1\), which the proxy will refuse/],
    ['an octal IPv4 spelling (0177.1.0.1)', ['add', 'tools', 'http://0177.1.0.1:80'], /points to 0177\.1\.0\.1 \(= 127\.1\.0\.1\)/],
    ['a hex IPv4 spelling (0x7f.1.0.1)', ['add', 'tools', 'http://0x7f.1.0.1:80'], /points to 0x7f\.1\.0\.1 \(= 127\.1\.0\.1\)/],
    ['a two-part IPv4 spelling (127.65537)', ['add', 'tools', 'http://127.65537:80'], /points to 127\.65537 \(= 127\.1\.0\.1\)/],
    ['a decimal public address (134744072)', ['add', 'tools', 'http://134744072:80'], /points to 134744072 \(= 8\.8\.8\.8\)/],
    ['an IPv4-mapped IPv6 address', ['add', 'tools', 'http://[::ffff:127.0.0.1]:80'], /points to \[::ffff:127\.0\.0\.1\] \(= 127\.0\.0\.1\)/],
    ['0.0.0.0', ['add', 'tools', 'http://0.0.0.0:80'], /points to 0\.0\.0\.0, which the proxy will refuse/],
    ['an https upstream with no CA to verify it', ['add', 'tools', 'https://10.0.0.7:443'], /https upstream but neither upstream\.tls\.ca_file/],
    ['an unknown route', ['remove', 'nope'], /no route "nope" in config\/mcp-proxy\.yaml/],
    ['a missing argument', ['add', 'tools'], /missing required argument 'url'/],
  ])('%s: one line, exit 2, file unchanged', async (_what, args, message) => {
    const before = sha();
    const r = await runCli(['routes', ...args, '--dir', dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
    expect(sha()).toBe(before);
  });

  it('refuses to remove the last route', async () => {
    const one = path.join(work, 'one');
    fs.mkdirSync(path.join(one, 'config'), { recursive: true });
    const text = HAND_EDITED.replace("    wiki: 'http://10.0.0.6:3000'\n", '');
    fs.writeFileSync(path.join(one, 'config', 'mcp-proxy.yaml'), text);
    const r = await runCli(['routes', 'remove', 'docs', '--dir', one]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: "docs" is the only route/);
    expect(fs.readFileSync(path.join(one, 'config', 'mcp-proxy.yaml'), 'utf8')).toBe(text);
  });

  it('add and remove edit the file in place (mode kept) and say what to run when the stack is not running', async () => {
    const added = await runCli(['routes', 'add', 'tools', 'http://10.0.0.7:9000', '--dir', dir]);
    expect(added.exitCode, added.stderr).toBe(0);
    expect(added.stdout).toContain('added route tools -> http://10.0.0.7:9000 to config/mcp-proxy.yaml');
    expect(added.stdout).toMatch(/The stack is not running.*mcp-tunnel up.*mcp-tunnel probe tools/s);
    expect(added.stdout).toMatch(/\(mcp-tunnel up[^)]*\)\. Then check it: mcp-tunnel probe tools/);
    expect(fs.readFileSync(configFile, 'utf8')).toBe(HAND_EDITED.replace("    wiki: 'http://10.0.0.6:3000'\n", "    wiki: 'http://10.0.0.6:3000'\n    tools: 'http://10.0.0.7:9000'\n"));
    expect(fs.statSync(configFile).mode & 0o777).toBe(0o644);

    const removed = await runCli(['routes', 'remove', 'tools', '--dir', dir, '--no-restart']);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('removed route tools (http://10.0.0.7:9000)');
    expect(removed.stdout).toContain(`restart it to apply (${detectComposeCommand() ? `${detectComposeCommand()} restart mcp-proxy cloudflared` : 'mcp-tunnel down && mcp-tunnel up'})`);
    expect(fs.readFileSync(configFile, 'utf8')).toBe(HAND_EDITED);
  });
});
