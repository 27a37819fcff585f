import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CLOSE, FrameParser, frameHeader, type FrameSink } from '../../src/proxy/ws-frames.js';

/** A masked client frame, as a browser or `ws` would send it. */
function clientFrame(opcode: number, payload: Buffer, { fin = true, declared }: { fin?: boolean; declared?: number } = {}): Buffer {
  const length = declared ?? payload.length;
  const ext = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(length, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(length), 2);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([head, body]);
}

function collect(max = 1 << 20): { sink: FrameSink; data: Buffer[]; control: Array<[number, string]>; errors: number[]; parser: FrameParser } {
  const data: Buffer[] = [];
  const control: Array<[number, string]> = [];
  const errors: number[] = [];
  const sink: FrameSink = {
    onData: (b) => data.push(Buffer.from(b)),
    onControl: (op, p) => control.push([op, p.toString()]),
    onProtocolError: (code) => errors.push(code),
  };
  return { sink, data, control, errors, parser: new FrameParser(sink, max) };
}

describe('FrameParser', () => {
  it('unmasks and streams payload fed one byte at a time, with a ping between two fragments', () => {
    const c = collect();
    const wire = Buffer.concat([
      clientFrame(0x2, Buffer.from('hello '), { fin: false }),
      clientFrame(0x9, Buffer.from('p1')),
      clientFrame(0x0, Buffer.alloc(70_000, 0x61)),
    ]);
    for (const byte of wire) c.parser.push(Buffer.from([byte]));
    expect(Buffer.concat(c.data).toString()).toBe(`hello ${'a'.repeat(70_000)}`);
    expect(c.control).toEqual([[0x9, 'p1']]);
    expect(c.errors).toEqual([]);
  });

  it('hands payload on before the frame is complete', () => {
    const c = collect();
    const whole = clientFrame(0x2, Buffer.alloc(100_000, 0x62));
    c.parser.push(whole.subarray(0, 50_000));
    // 14 header bytes (64-bit length + mask), the rest is payload already delivered.
    expect(Buffer.concat(c.data).length).toBe(50_000 - 14);
  });

  it.each([
    ['an unmasked frame', Buffer.from([0x82, 0x01, 0x41]), CLOSE.protocolError],
    ['RSV bits', (() => { const f = clientFrame(0x2, Buffer.from('x')); f[0]! |= 0x40; return f; })(), CLOSE.protocolError],
    ['an unknown opcode', clientFrame(0x3, Buffer.from('x')), CLOSE.protocolError],
    ['a continuation without a message', clientFrame(0x0, Buffer.from('x')), CLOSE.protocolError],
    ['a fragmented ping', clientFrame(0x9, Buffer.from('x'), { fin: false }), CLOSE.protocolError],
    ['a control frame over 125 bytes', clientFrame(0xa, Buffer.alloc(126)), CLOSE.protocolError],
    ['a frame over the limit', clientFrame(0x2, Buffer.alloc(0), { declared: 2048 }).subarray(0, 8), CLOSE.tooBig],
    ['a new message inside a fragmented one', Buffer.concat([clientFrame(0x2, Buffer.from('a'), { fin: false }), clientFrame(0x2, Buffer.from('b'))]), CLOSE.protocolError],
  ])('refuses %s', (_what, wire, code) => {
    const c = collect(1024);
    c.parser.push(wire);
    expect(c.errors).toEqual([code]);
  });

  it('writes server headers for every length class', () => {
    expect([...frameHeader(0x2, 5)]).toEqual([0x82, 5]);
    expect([...frameHeader(0x2, 300)]).toEqual([0x82, 126, 1, 44]);
    expect(frameHeader(0x2, 70_000).readUInt32BE(6)).toBe(70_000);
  });
});
