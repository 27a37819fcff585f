import { describe, expect, it } from 'vitest';
import { createJsonLogger, errorText, pathWithoutQuery } from '../../src/proxy/logger.js';

describe('createJsonLogger', () => {
  const fixed = () => new Date('2026-01-02T03:04:05.000Z');

  it('writes one JSON object per line with time, level, msg and the fields', () => {
    const out: string[] = [];
    const log = createJsonLogger({ level: 'info', write: (c) => out.push(c), now: fixed, batch: false });
    log.info('route configured', { route: 'docs', upstream: 'http://10.0.0.5:8080', skipped: undefined });
    expect(out.join('')).toBe('{"time":"2026-01-02T03:04:05.000Z","level":"info","msg":"route configured","route":"docs","upstream":"http://10.0.0.5:8080"}\n');
  });

  it('filters by level', () => {
    const out: string[] = [];
    const log = createJsonLogger({ level: 'warn', write: (c) => out.push(c), now: fixed, batch: false });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(out.join('').trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['w', 'e']);
    expect(log.isEnabled('info')).toBe(false);
    expect(log.isEnabled('error')).toBe(true);
  });

  it('batches lines of one event-loop turn into one write, and flush() writes at once', async () => {
    const out: string[] = [];
    const log = createJsonLogger({ level: 'debug', write: (c) => out.push(c), now: fixed });
    log.info('a');
    log.info('b');
    expect(out).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(1);
    expect(out[0]!.split('\n')).toHaveLength(3);
    log.info('c');
    log.flush();
    expect(out).toHaveLength(2);
  });

  it('never lets a field overwrite the envelope, and renders errors as text', () => {
    const out: string[] = [];
    const log = createJsonLogger({ write: (c) => out.push(c), now: fixed, batch: false });
    log.error('boom', { msg: 'x', level: 'debug', error: Object.assign(new Error('nope\nsecond line'), { code: 'ECONNREFUSED' }) });
    expect(JSON.parse(out[0]!)).toEqual({ time: '2026-01-02T03:04:05.000Z', level: 'error', msg: 'boom', error: 'ECONNREFUSED: nope' });
  });

  it('survives a sink that throws', () => {
    const log = createJsonLogger({ write: () => { throw new Error('EPIPE'); }, batch: false });
    expect(() => log.info('x')).not.toThrow();
  });
});

describe('helpers', () => {
  it('pathWithoutQuery drops the query string', () => {
    expect(pathWithoutQuery('/mcp?token=secret')).toBe('/mcp');
    expect(pathWithoutQuery('/mcp')).toBe('/mcp');
    expect(pathWithoutQuery(undefined)).toBe('');
  });
  it('errorText is one line', () => {
    expect(errorText(new Error('a\nb'))).toBe('a');
    expect(errorText('plain')).toBe('plain');
  });
});
