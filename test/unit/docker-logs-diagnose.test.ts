/**
 * The stream plumbing and the log reading without Docker: Docker's multiplexed log frames split anywhere,
 * JSON progress streams with errors inside them, registration counting, and the failure diagnosis table.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { diagnose, relevantLines } from '../../src/docker/diagnose.js';
import { readJsonStream, StreamError, StreamStalledError, type DockerStreamMessage } from '../../src/docker/json-stream.js';
import { countRegistrations, LogDemuxer, type LogLine } from '../../src/docker/logs.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const lines = (...texts: string[]): LogLine[] => texts.map((text) => ({ stream: 'stderr', text }));

describe('LogDemuxer', () => {
  it('splits stdout/stderr frames into lines, whatever the chunking, and strips timestamps', () => {
    const all = Buffer.concat([
      frame(1, '2026-01-01T00:00:00.000000001Z out one\n2026-01-01T00:00:00.5Z out '),
      frame(2, '2026-01-01T00:00:01Z err ✓ one\n'),
      frame(1, 'two\n'),
    ]);
    for (const size of [1, 3, 7, 64, all.length]) {
      const got: LogLine[] = [];
      const d = new LogDemuxer((l) => got.push(l), true);
      for (let i = 0; i < all.length; i += size) d.push(all.subarray(i, i + size));
      d.end();
      expect(got, `chunk ${size}`).toEqual([
        { stream: 'stdout', time: '2026-01-01T00:00:00.000000001Z', text: 'out one' },
        { stream: 'stderr', time: '2026-01-01T00:00:01Z', text: 'err ✓ one' },
        { stream: 'stdout', time: '2026-01-01T00:00:00.5Z', text: 'out two' },
      ]);
    }
  });
});

describe('readJsonStream', () => {
  it('passes every object on and fails at an error inside the stream', async () => {
    const s = new PassThrough();
    const seen: DockerStreamMessage[] = [];
    const done = readJsonStream(s, { onMessage: (m) => seen.push(m) });
    s.write('{"status":"Pulling fs layer","id":"abc"}\r\n{"status":"Downloa');
    s.write('ding","progressDetail":{"current":1,"total":2},"id":"abc"}\r\n');
    s.write('{"errorDetail":{"message":"unknown blob"},"error":"unknown blob"}\r\n');
    await expect(done).rejects.toThrow(StreamError);
    await expect(done).rejects.toThrow('unknown blob');
    expect(seen.map((m) => m.status ?? m.error)).toEqual(['Pulling fs layer', 'Downloading', 'unknown blob']);
  });
  it('resolves at the end of a clean stream; a silent stream stalls', async () => {
    const ok = new PassThrough();
    const p = readJsonStream(ok, { onMessage: () => undefined });
    ok.end('{"stream":"Step 1/2 : FROM x\\n"}');
    await expect(p).resolves.toBeUndefined();
    const silent = new PassThrough();
    await expect(readJsonStream(silent, { onMessage: () => undefined, idleTimeoutMs: 50 })).rejects.toThrow(StreamStalledError);
  });
});

describe('countRegistrations', () => {
  it('counts distinct live connections; an unregistered one no longer counts', () => {
    const reg = (i: number): string => `2026-01-01T00:00:00Z INF Registered tunnel connection connIndex=${i} connection=x event=0 ip=198.41.200.1 location=ams01 protocol=quic`;
    expect(countRegistrations(lines(reg(0), reg(1), reg(2), reg(3)))).toBe(4);
    expect(countRegistrations(lines(reg(0), reg(1), 'INF Unregistered tunnel connection connIndex=1 event=0', reg(0)))).toBe(1);
    expect(countRegistrations(lines('Registered tunnel connection', 'Registered tunnel connection'))).toBe(2);
    expect(countRegistrations(lines('INF Starting tunnel tunnelID=x'))).toBe(0);
  });
});

describe('diagnose', () => {
  const cases: Array<[role: 'proxy' | 'cloudflared', line: string, rule: string, fix: RegExp]> = [
    ['cloudflared', 'ERR No ingress rules were defined in provided config (if any) nor from the cli, cloudflared will return 503 for all incoming HTTP requests', 'no-ingress', /--url http:\/\/localhost:8080/],
    ['cloudflared', 'ERR Provided Tunnel token is not valid.', 'token-invalid', /rotate-token/],
    ['cloudflared', 'ERR Register tunnel error from server side error="Unauthorized: Invalid tunnel secret"', 'token-invalid', /rotate-token/],
    ['cloudflared', 'ERR Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no recent network activity"', 'edge-unreachable', /7844/],
    ['cloudflared', 'ERR Unable to reach the origin service. The service may be down error="dial tcp [::1]:8080: connect: connection refused"', 'origin-unreachable', /service:mcp-proxy/],
    ['proxy', 'error: cannot read /data/tls.key: EACCES: permission denied', 'key-permission', /MCP_TUNNEL_UID/],
    ['proxy', 'error: unknown config field "bogus"', 'config-error', /config\/mcp-proxy\.yaml/],
    // The builtin proxy's and the official proxy's wording for a bad upstream, verbatim.
    ['proxy', 'error: invalid upstream (must be scheme://host:port) for route "docs": "http://x" has no port', 'config-error', /config\/mcp-proxy\.yaml/],
    ['proxy', '{"level":"warn","msg":"tls handshake failed","conn":"c1","reason":"alert unknown ca"}', 'tls-unknown-ca', /register data\/ca\.crt/],
    ['proxy', '{"level":"warn","msg":"tls handshake failed","conn":"c1","reason":"socket hang up"}', 'tls-handshake', /ca\.crt/],
    ['proxy', '{"level":"warn","msg":"no route for host","host":"nope.abcd1234.tunnel.anthropic.com"}', 'no-route', /routes add/],
    ['proxy', '{"level":"warn","msg":"IP validation failed: 8.8.8.8 is not a private address","route":"docs"}', 'ip-validation', /allowed_ips/],
  ];
  it.each(cases)('%s: %s', (role, line, rule, fix) => {
    const d = diagnose(role === 'proxy' ? 'mcp-proxy' : 'cloudflared', role, lines('INF starting', line, 'INF something else'));
    expect(d?.rule).toBe(rule);
    expect(d?.fix).toMatch(fix);
    expect(d?.line).toBe(line);
  });
  it('nothing known: no diagnosis; relevantLines prefers warnings and errors', () => {
    expect(diagnose('cloudflared', 'cloudflared', lines('INF all good'))).toBeUndefined();
    const got = relevantLines(lines('INF a', 'ERR b', 'INF c', '{"level":"warn","msg":"d"}'), 5).map((l) => l.text);
    expect(got).toEqual(['ERR b', '{"level":"warn","msg":"d"}']);
  });
});
