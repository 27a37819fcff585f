import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, hostOf, upstreamRequestHeaders } from '../../src/proxy/headers.js';

describe('upstreamRequestHeaders', () => {
  it('keeps end-to-end headers untouched, in order and case, and reads Host', () => {
    const raw = ['Host', 'docs.abcd1234.tunnel.example.com', 'Authorization', 'Bearer t', 'Mcp-Session-Id', 's1', 'MCP-Protocol-Version', '2025-06-18', 'Mcp-Method', 'tools/call', 'Mcp-Name', 'hello', 'Last-Event-ID', '4', 'Accept', 'application/json, text/event-stream', 'Content-Length', '12', 'X-Dup', 'a', 'X-Dup', 'b'];
    const out = upstreamRequestHeaders(raw);
    expect(out.host).toBe('docs.abcd1234.tunnel.example.com');
    expect(out.headers).toEqual(raw);
  });

  it('drops RFC 9110 hop-by-hop headers, the ones Connection names, proxy credentials and Expect', () => {
    const raw = ['host', 'h', 'Connection', 'keep-alive, X-Secret , x-other', 'X-Secret', '1', 'X-Other', '2', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive', 'TE', 'trailers', 'Upgrade', 'websocket', 'Proxy-Authorization', 'Basic x', 'Expect', '100-continue', 'X-Kept', 'yes'];
    expect(upstreamRequestHeaders(raw).headers).toEqual(['host', 'h', 'X-Kept', 'yes']);
  });

  it('re-frames a chunked body as chunked', () => {
    const out = upstreamRequestHeaders(['Host', 'h', 'Transfer-Encoding', 'chunked']);
    expect(out.headers).toEqual(['Host', 'h', 'Transfer-Encoding', 'chunked']);
    expect(upstreamRequestHeaders(['Host', 'h', 'Content-Length', '3']).headers).toEqual(['Host', 'h', 'Content-Length', '3']);
  });

  it('reports a missing Host as undefined', () => {
    expect(upstreamRequestHeaders(['Accept', '*/*']).host).toBeUndefined();
    expect(hostOf(['HOST', 'x'])).toBe('x');
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers and reports Content-Length', () => {
    const out = clientResponseHeaders(['Content-Type', 'text/event-stream', 'Connection', 'close, X-Hop', 'X-Hop', '1', 'Transfer-Encoding', 'chunked', 'Mcp-Session-Id', 's', 'Proxy-Authenticate', 'Basic']);
    expect(out).toEqual({ headers: ['Content-Type', 'text/event-stream', 'Mcp-Session-Id', 's'], hasLength: false });
    expect(clientResponseHeaders(['content-length', '5']).hasLength).toBe(true);
  });
});
