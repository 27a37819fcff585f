import { describe, expect, it } from 'vitest';
import { mergeProxyConfig } from '../../src/deployment/proxy-config-merge.js';
import { renderProxyConfig } from '../../src/deployment/proxy-config-render.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { unifiedDiff } from '../../src/deployment/text-diff.js';
import { getSettings, planSet, planUnset, type ProxySettingsFile } from '../../src/ops/proxy-settings.js';

/** config get/set/unset on the text (validated by the proxy's own parser), and init's merge keeping hand edits. */

const DOMAIN = 'abcd1234.tunnel.example.com';
const rendered = renderProxyConfig({ tunnelDomain: DOMAIN, routes: [{ name: 'docs', url: 'http://192.0.2.5:8080' }], allowedIps: ['192.0.2.0/24'] });
const file = (text: string, engine: ProxySettingsFile['engine'] = 'builtin'): ProxySettingsFile => ({ paths: {} as ProxySettingsFile['paths'], text, config: parseProxyConfig(text), engine });

describe('config set / unset', () => {
  it('replaces a value in place: every other byte (comments included) kept', () => {
    const edit = planSet(file(rendered), 'log_level', 'debug');
    expect(edit.text).toBe(rendered.replace('log_level: info', 'log_level: debug'));
    expect(edit.preserved).toBe(true);
    expect(edit.config.logLevel).toBe('debug');
  });

  it('adds a nested key that is absent, keeping the comments', () => {
    const edit = planSet(file(rendered), 'limits.max_connections', '100');
    expect(edit.config.limits.maxConnections).toBe(100);
    expect(edit.text).toContain('# MCP tunnel proxy configuration, written by mcp-tunnel init.');
    expect(edit.text).toContain('# subdomain (or full hostname) -> upstream');
  });

  it.each([
    ['log_level', 'loud', 'CONFIG_VALUE_INVALID', /log_level "loud" is not one of debug, info, warn, error; nothing was written/],
    ['shutdown_timeout', 'soon', 'CONFIG_VALUE_INVALID', /shutdown_timeout/],
    ['upstream.disable_ip_validation', 'yes', 'CONFIG_VALUE_INVALID', /must be true or false/],
    ['upstream.disable_ip_validation', 'true', 'CONFIG_VALUE_INVALID', /mutually exclusive/],
    ['upstream.allowed_ips', '10.0.0.0/33', 'CONFIG_VALUE_INVALID', /allowed_ips/],
    ['limits.max_connections', '-1', 'CONFIG_VALUE_INVALID', /whole number/],
    ['listen_addr', '8080', 'CONFIG_VALUE_INVALID', /address:port/],
    ['nope', 'x', 'CONFIG_KEY_UNKNOWN', /unknown proxy setting "nope"/],
    ['routes.docs', 'http://192.0.2.1:1', 'CONFIG_KEY_ROUTES', /routes are not a config setting/],
  ])('set %s %s: refused (%s), exit 2', (key, value, code, message) => {
    expect(() => planSet(file(rendered), key, value)).toThrow(expect.objectContaining({ code, exitCode: 2, message: expect.stringMatching(message) }));
  });

  it("a listen port other than cloudflared's --url port is written, with a warning naming what else to change", () => {
    const edit = planSet(file(rendered), 'listen_addr', ':9000');
    expect(edit.config.listenAddr.port).toBe(9000);
    expect(edit.warnings.join('\n')).toContain('change its --url to port 9000');
    expect(planSet(file(rendered), 'log_level', 'warn').warnings).toEqual([]);
  });

  it('builtin-only settings are refused on the official engine', () => {
    expect(() => planSet(file(rendered, 'official'), 'admin.listen_addr', '127.0.0.1:9191')).toThrow(expect.objectContaining({ code: 'CONFIG_BUILTIN_ONLY' }));
  });

  it('unset brings the default back; required keys cannot be unset', () => {
    const edit = planUnset(file(rendered), 'shutdown_timeout');
    expect(edit.text).not.toContain('shutdown_timeout');
    expect(edit.config.shutdownTimeoutMs).toBe(30_000);
    expect(() => planUnset(file(rendered), 'listen_addr')).toThrow(expect.objectContaining({ code: 'CONFIG_KEY_REQUIRED' }));
    expect(planUnset(file(rendered), 'admin.listen_addr').changed).toBe(false);
  });

  it('get shows the file value or the default, and where it came from', () => {
    const views = getSettings(file(rendered));
    expect(views.find((v) => v.key === 'log_level')).toMatchObject({ effective: 'info', source: 'file' });
    expect(views.find((v) => v.key === 'limits.idle_timeout')).toMatchObject({ effective: '300s', source: 'default', engine: 'builtin' });
    expect(views.find((v) => v.key === 'upstream.allowed_ips')).toMatchObject({ effective: '192.0.2.0/24', source: 'file' });
  });
});

describe("init's merge of an existing config", () => {
  it('keeps every key init does not own (hand edits survive a re-run)', () => {
    const edited = planSet(file(planSet(file(rendered), 'log_level', 'debug').text), 'limits.idle_timeout', '10m').text;
    expect(mergeProxyConfig(edited, rendered)).toBe(edited);
  });

  it('sets what init owns (a new route) without touching the rest', () => {
    const edited = rendered.replace('log_level: info', 'log_level: warn');
    const next = renderProxyConfig({ tunnelDomain: DOMAIN, routes: [{ name: 'docs', url: 'http://192.0.2.5:8080' }, { name: 'wiki', url: 'http://192.0.2.6:8080' }], allowedIps: ['192.0.2.0/24'] });
    const merged = mergeProxyConfig(edited, next);
    expect(parseProxyConfig(merged).logLevel).toBe('warn');
    expect([...parseProxyConfig(merged).routes.keys()]).toEqual(['docs', 'wiki']);
    expect(merged).toContain('  wiki: "http://192.0.2.6:8080"');
    expect(unifiedDiff(edited, merged)).toEqual(['  routes:', '    docs: "http://192.0.2.5:8080"', '+   wiki: "http://192.0.2.6:8080"', '  ', '  upstream:']);
  });

  it('a file that does not load is replaced by the rendering', () => {
    expect(mergeProxyConfig('routes: [a, b]\n', rendered)).toBe(rendered);
  });
});
