/**
 * The server side of RFC 6455 framing, streaming: payload bytes are handed on as they arrive, never
 * collected into a message.
 *
 * Why our own and not `ws`: `ws` (checked up to 8.x: Receiver, `maxPayload`, createWebSocketStream) only
 * ever delivers WHOLE messages. It buffers every fragment of a message until the final one, up to
 * maxPayload, before the first byte reaches the listener; there is no option to stream a message's
 * payload. Our peer sends one ordered byte stream (TLS records) whose message boundaries mean nothing, so
 * a peer sending all but the last byte of a 16 MiB message held 16 MiB of our memory per connection, with
 * nothing for TLS to look at. Here memory per connection is the 14-byte header buffer, a control frame's
 * payload (<= 125 bytes) and whatever the Readable side holds until its reader (TLS) takes it.
 *
 * Covered: masking (client frames MUST be masked, 1002 otherwise), fragmentation (continuation frames;
 * a data frame inside an unfinished message is a protocol error), control frames interleaved between
 * fragments, ping (answered with pong by the owner), close, RSV bits (no extension is negotiated: 1002),
 * a per-frame payload bound (1009). Text frames are not UTF-8 validated: they carry TLS records too.
 */

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Close codes we send (RFC 6455 7.4.1). */
export const CLOSE = { normal: 1000, goingAway: 1001, protocolError: 1002, tooBig: 1009 } as const;

export interface FrameSink {
  /** Unmasked payload bytes of a data frame, in order (a slice of the input: consume or copy before returning). */
  onData(bytes: Buffer): void;
  /** A complete control frame (ping, pong, close), payload unmasked. */
  onControl(opcode: number, payload: Buffer): void;
  /** The peer broke the protocol: close with `code`, then stop reading. */
  onProtocolError(code: number, reason: string): void;
}

const enum State {
  Header,
  Payload,
  Failed,
}

export class FrameParser {
  private state = State.Header;
  /** Header bytes gathered so far (a header is 2 to 14 bytes and may straddle reads), then the masking key:
   * one small slice of Node's shared pool (allocUnsafe), not two ArrayBuffers of their own per connection. */
  private readonly scratch = Buffer.allocUnsafe(18);
  private readonly head = this.scratch.subarray(0, 14);
  private headLen = 0;
  private opcode = 0;
  private fin = false;
  private readonly mask = this.scratch.subarray(14, 18);
  /** Payload bytes of the current frame still to come (a Number: frames over 2^53 are refused). */
  private remaining = 0;
  /** Position in the masking key of the next payload byte. */
  private maskPos = 0;
  /** Inside a fragmented data message (a continuation is expected). */
  private inMessage = false;
  /** The control frame being gathered (its payload is at most 125 bytes). */
  private control: Buffer | undefined;
  private controlLen = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxFrameBytes: number,
  ) {}

  /** Feeds bytes read from the socket. The buffer may be unmasked in place. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.state !== State.Failed) {
      if (this.state === State.Header) {
        pos = this.readHeader(chunk, pos);
      } else {
        const n = Math.min(this.remaining, chunk.length - pos);
        const slice = chunk.subarray(pos, pos + n);
        this.unmask(slice);
        pos += n;
        this.remaining -= n;
        if (this.control) {
          slice.copy(this.control, this.controlLen);
          this.controlLen += n;
        } else if (n > 0) {
          this.sink.onData(slice);
        }
        if (this.remaining === 0) this.frameDone();
      }
    }
  }

  private fail(code: number, reason: string): void {
    this.state = State.Failed;
    this.sink.onProtocolError(code, reason);
  }

  /** Gathers header bytes; when the header is complete, validates it and moves to the payload. */
  private readHeader(chunk: Buffer, pos: number): number {
    // Enough of the header to know its length: 2 bytes, then the extended length, then the mask.
    while (pos < chunk.length) {
      this.head[this.headLen++] = chunk[pos++]!;
      const need = this.headLength();
      if (need !== undefined && this.headLen === need) {
        this.startFrame();
        return pos;
      }
    }
    return pos;
  }

  private headLength(): number | undefined {
    if (this.headLen < 2) return undefined;
    const len7 = this.head[1]! & 0x7f;
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const masked = (this.head[1]! & 0x80) !== 0;
    return 2 + ext + (masked ? 4 : 0);
  }

  private startFrame(): void {
    const b0 = this.head[0]!;
    const b1 = this.head[1]!;
    this.headLen = 0;
    this.fin = (b0 & 0x80) !== 0;
    this.opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return this.fail(CLOSE.protocolError, 'RSV bits set without a negotiated extension');
    if ((b1 & 0x80) === 0) return this.fail(CLOSE.protocolError, 'unmasked client frame');
    const len7 = b1 & 0x7f;
    let length: number;
    let maskAt: number;
    if (len7 === 126) {
      length = this.head.readUInt16BE(2);
      maskAt = 4;
    } else if (len7 === 127) {
      const hi = this.head.readUInt32BE(2);
      if (hi > 0x1fffff) return this.fail(CLOSE.tooBig, 'frame length beyond 2^53');
      length = hi * 2 ** 32 + this.head.readUInt32BE(6);
      maskAt = 10;
    } else {
      length = len7;
      maskAt = 2;
    }
    this.head.copy(this.mask, 0, maskAt, maskAt + 4);
    this.maskPos = 0;
    this.remaining = length;

    const isControl = (this.opcode & 0x08) !== 0;
    if (isControl) {
      if (this.opcode !== OPCODE.close && this.opcode !== OPCODE.ping && this.opcode !== OPCODE.pong) return this.fail(CLOSE.protocolError, `unknown opcode ${this.opcode}`);
      if (!this.fin) return this.fail(CLOSE.protocolError, 'fragmented control frame');
      if (length > 125) return this.fail(CLOSE.protocolError, 'control frame payload over 125 bytes');
      this.control = Buffer.alloc(length);
      this.controlLen = 0;
    } else {
      if (this.opcode === OPCODE.continuation) {
        if (!this.inMessage) return this.fail(CLOSE.protocolError, 'continuation frame without a message');
      } else if (this.opcode === OPCODE.text || this.opcode === OPCODE.binary) {
        if (this.inMessage) return this.fail(CLOSE.protocolError, 'new data frame inside a fragmented message');
      } else {
        return this.fail(CLOSE.protocolError, `unknown opcode ${this.opcode}`);
      }
      if (length > this.maxFrameBytes) return this.fail(CLOSE.tooBig, `frame of ${length} bytes over limits.max_frame_bytes (${this.maxFrameBytes})`);
      this.inMessage = !this.fin;
      this.control = undefined;
    }
    if (length === 0) this.frameDone();
    else this.state = State.Payload;
  }

  private frameDone(): void {
    this.state = State.Header;
    const control = this.control;
    if (control) {
      this.control = undefined;
      this.sink.onControl(this.opcode, control);
    }
  }

  private unmask(bytes: Buffer): void {
    const m = this.mask;
    let k = this.maskPos;
    for (let i = 0; i < bytes.length; i++) {
      bytes[i]! ^= m[k]!;
      k = (k + 1) & 3;
    }
    this.maskPos = k;
  }
}

/** The header of an unmasked (server) frame with FIN set. */
export function frameHeader(opcode: number, length: number): Buffer {
  if (length < 126) {
    const h = Buffer.allocUnsafe(2);
    h[0] = 0x80 | opcode;
    h[1] = length;
    return h;
  }
  if (length < 65_536) {
    const h = Buffer.allocUnsafe(4);
    h[0] = 0x80 | opcode;
    h[1] = 126;
    h.writeUInt16BE(length, 2);
    return h;
  }
  const h = Buffer.allocUnsafe(10);
  h[0] = 0x80 | opcode;
  h[1] = 127;
  h.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  h.writeUInt32BE(length >>> 0, 6);
  return h;
}

/** A close frame's payload: the code, then a short UTF-8 reason (control payloads are at most 125 bytes). */
export function closePayload(code: number, reason = ''): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const p = Buffer.allocUnsafe(2 + text.length);
  p.writeUInt16BE(code, 0);
  text.copy(p, 2);
  return p;
}
