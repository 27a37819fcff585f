import { describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/errors.js';
import {
  classifyHttpFailure,
  classifyTlsError,
  classifyUpgradeResponse,
  classifyWebSocketError,
  findTunnelError,
  TlsLayerError,
  tunnelHost,
  tunnelUrl,
} from '../../src/probe/index.js';

const url = 'ws://127.0.0.1:8080/';
const err = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('probe error classification', () => {
  it('websocket: connection refused says where and what to check', () => {
    const e = classifyWebSocketError(err('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8080'), url);
    expect(e).toBeInstanceOf(UserError);
    expect(e.layer).toBe('websocket');
    expect(e.reason).toBe('connection-refused');
    expect(e.exitCode).toBe(ExitCode.environment);
    expect(e.message).toContain(url);
    expect(e.hint).toMatch(/is the proxy running.*published/);
    expect(e.message).not.toContain('\n');
  });
  it('websocket: an HTTP answer instead of an upgrade, and the 503 of a full proxy', () => {
    const e = classifyUpgradeResponse(404, 'not here', url);
    expect(e.reason).toBe('not-upgraded');
    expect(e.message).toMatch(/answered HTTP 404 instead of upgrading/);
    const full = classifyUpgradeResponse(503, 'too many connections', url);
    expect(full.reason).toBe('too-many-connections');
    expect(full.hint).toMatch(/max_connections/);
  });
  it('websocket: dns and timeouts', () => {
    expect(classifyWebSocketError(err('ENOTFOUND'), url).reason).toBe('dns');
    expect(classifyWebSocketError(new Error('Opening handshake has timed out'), url).reason).toBe('timeout');
  });
  it.each([
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown-ca', /not signed by data\/ca\.crt/],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'unknown-ca', /not signed by data\/ca\.crt/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'unknown-ca', /not signed by data\/ca\.crt/],
    ['CERT_HAS_EXPIRED', 'expired', /expired/],
    ['CERT_NOT_YET_VALID', 'not-yet-valid', /not valid yet/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'hostname-mismatch', /does not cover echo\.abcd\.tunnel\.example\.com/],
  ])('tls: %s -> %s', (code, reason, message) => {
    const e = classifyTlsError(code, { servername: 'echo.abcd.tunnel.example.com', domain: 'abcd.tunnel.example.com' });
    expect(e).toBeInstanceOf(TlsLayerError);
    expect(e.reason).toBe(reason);
    expect(e.message).toMatch(message);
    expect(e.hint).toBeTruthy();
  });
  it('tls: the hints name the fix', () => {
    const ctx = { servername: 'echo.d.example.com', domain: 'd.example.com' };
    expect(classifyTlsError('CERT_HAS_EXPIRED', ctx).hint).toMatch(/renew-cert/);
    expect(classifyTlsError('ERR_TLS_CERT_ALTNAME_INVALID', ctx).hint).toMatch(/d\.example\.com and \*\.d\.example\.com/);
  });
  it('tls: garbage instead of TLS, and a connection closed mid-handshake', () => {
    const ctx = { servername: 'echo.d.example.com' };
    expect(classifyTlsError(err('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), ctx).reason).toBe('not-tls');
    expect(classifyTlsError(err('ERR_SSL_PACKET_LENGTH_TOO_LONG', 'packet length too long'), ctx).reason).toBe('not-tls');
    const closed = classifyTlsError(err('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), { ...ctx, wsClose: { code: 1011, reason: 'bad cert' } });
    expect(closed.reason).toBe('closed-during-handshake');
    expect(closed.message).toMatch(/1011 "bad cert"/);
  });
  it('routing and upstream failures from the proxy answers', () => {
    const ctx = { host: 'nope.d.example.com', route: 'nope', path: '/mcp' };
    const noRoute = classifyHttpFailure(502, 'No route configured for host\n', ctx);
    expect(noRoute.layer).toBe('routing');
    expect(noRoute.hint).toMatch(/routes add nope/);
    const ip = classifyHttpFailure(502, 'IP validation failed: 127.0.0.2 is not a private address', ctx);
    expect(ip.layer).toBe('upstream');
    expect(ip.reason).toBe('ip-validation');
    expect(ip.hint).toMatch(/allowed_ips/);
    expect(classifyHttpFailure(502, 'Bad Gateway', ctx)).toMatchObject({ layer: 'upstream', code: 'PROBE_UPSTREAM_FAILED', reason: 'upstream-unreachable' });
    expect(classifyHttpFailure(404, 'not found', ctx)).toMatchObject({ layer: 'mcp', code: 'PROBE_MCP_FAILED', reason: 'not-mcp-endpoint' });
    expect(classifyHttpFailure(401, '', ctx)).toMatchObject({ layer: 'mcp', reason: 'unauthorized' });
  });
  it('finds a tunnel error in a cause chain', () => {
    const inner = classifyWebSocketError(err('ECONNREFUSED'), url);
    const wrapped = new TypeError('fetch failed', { cause: new Error('x', { cause: inner }) });
    expect(findTunnelError(wrapped)).toBe(inner);
    expect(findTunnelError(new Error('plain'))).toBeUndefined();
  });
  it('addresses routes as <route>.<domain>', () => {
    expect(tunnelHost('Echo', 'abcd.tunnel.example.com')).toBe('echo.abcd.tunnel.example.com');
    expect(tunnelHost('full.example.org', 'abcd.tunnel.example.com')).toBe('full.example.org');
    expect(tunnelUrl('echo.d.example.com', 'mcp').href).toBe('https://echo.d.example.com/mcp');
  });
});
