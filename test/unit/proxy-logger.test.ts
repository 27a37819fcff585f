import { describe, expect, it, vi } from 'vitest';
import { createJsonLogger, errorText, FLUSH_BYTES, FLUSH_INTERVAL_MS, pathWithoutQuery } from '../../src/proxy/logger.js';

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

  it('batches info lines for up to the flush interval into one write, and flush() writes at once', async () => {
    vi.useFakeTimers();
    try {
      const out: string[] = [];
      const log = createJsonLogger({ level: 'debug', write: (c) => out.push(c), now: fixed });
      log.info('a');
      log.info('b');
      vi.advanceTimersByTime(FLUSH_INTERVAL_MS - 1);
      expect(out).toHaveLength(0);
      vi.advanceTimersByTime(1);
      expect(out).toHaveLength(1);
      expect(out[0]!.split('\n')).toHaveLength(3);
      log.info('c');
      log.flush();
      expect(out).toHaveLength(2);
      vi.advanceTimersByTime(FLUSH_INTERVAL_MS);
      expect(out).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes a warning at the end of the current turn, with the info lines before it, in order', async () => {
    const out: string[] = [];
    const log = createJsonLogger({ level: 'debug', write: (c) => out.push(c), now: fixed });
    log.info('a');
    log.warn('w');
    expect(out).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(out.join('').trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['a', 'w']);
  });

  it('writes a full batch at once, so the buffer stays bounded', () => {
    const out: string[] = [];
    const log = createJsonLogger({ level: 'debug', write: (c) => out.push(c), now: fixed });
    const big = 'x'.repeat(1024);
    for (let i = 0; i < 70; i++) log.info('line', { big });
    expect(out).toHaveLength(1);
    expect(out[0]!.length).toBeGreaterThanOrEqual(FLUSH_BYTES);
    log.flush();
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
