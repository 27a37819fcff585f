import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Duplex } from 'node:stream';

/**
 * A WebSocket client that controls its own framing (which `ws` never lets a caller do): frame boundaries,
 * fragmentation, pings between fragments, unmasked or oversized frames, a frame declared longer than what
 * is sent. For the proxy's framing tests and the memory test. Loopback only.
 */
export interface RawWebSocket {
  socket: net.Socket;
  /** The server's frames as they arrive: opcode and payload. */
  frames: Array<{ opcode: number; payload: Buffer }>;
  /** Writes one frame (masked unless `mask: false`). */
  sendFrame(opcode: number, payload: Buffer, options?: { fin?: boolean; mask?: boolean; declaredLength?: number }): void;
  /** Starts a frame of `length` payload bytes and returns a writer for its (masked) payload, sent as given. */
  startFrame(opcode: number, length: number, fin?: boolean): (bytes: Buffer) => boolean;
  /** The server's data frames as a byte stream; writes go out as `writeFrames` decides. */
  stream(writeFrames?: (ws: RawWebSocket, bytes: Buffer) => void): Duplex;
  closed: Promise<void>;
}

export function maskBytes(bytes: Buffer, key: Buffer, offset = 0): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ key[(i + offset) & 3]!;
  return out;
}

function header(opcode: number, length: number, fin: boolean, mask: Buffer | undefined): Buffer {
  const ext = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const h = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  h[0] = (fin ? 0x80 : 0) | opcode;
  h[1] = (mask ? 0x80 : 0) | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) h.writeUInt16BE(length, 2);
  if (ext === 8) h.writeBigUInt64BE(BigInt(length), 2);
  if (mask) mask.copy(h, 2 + ext);
  return h;
}

/** Sends an upgrade request by hand; resolves with the status line and headers, and the socket. */
export async function rawUpgrade(port: number, options: { httpVersion?: string; timeoutMs?: number; extraHeaders?: string } = {}): Promise<{ status: number; head: string; socket: net.Socket; rest: Buffer }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(
    `GET /tunnel HTTP/${options.httpVersion ?? '1.1'}\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${options.extraHeaders ?? ''}\r\n`,
  );
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no upgrade answer')), options.timeoutMs ?? 5_000);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const head = buf.subarray(0, end).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before an upgrade answer: ${buf.toString('latin1')}`)));
  });
}

export async function rawWebSocket(port: number): Promise<RawWebSocket> {
  const up = await rawUpgrade(port);
  if (up.status !== 101) throw new Error(`upgrade refused: ${up.head}`);
  const { socket } = up;
  const frames: RawWebSocket['frames'] = [];
  let onData: ((bytes: Buffer) => void) | undefined;
  let pending = up.rest;
  const parse = (): void => {
    for (;;) {
      if (pending.length < 2) return;
      const len7 = pending[1]! & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      if (pending.length < 2 + ext) return;
      const length = ext === 0 ? len7 : ext === 2 ? pending.readUInt16BE(2) : Number(pending.readBigUInt64BE(2));
      if (pending.length < 2 + ext + length) return;
      const opcode = pending[0]! & 0x0f;
      const payload = Buffer.from(pending.subarray(2 + ext, 2 + ext + length));
      pending = pending.subarray(2 + ext + length);
      frames.push({ opcode, payload });
      if ((opcode === 1 || opcode === 2 || opcode === 0) && onData) onData(payload);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    parse();
  });
  socket.resume();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const ws: RawWebSocket = {
    socket,
    frames,
    closed,
    sendFrame(opcode, payload, options = {}) {
      const key = options.mask === false ? undefined : randomBytes(4);
      socket.write(header(opcode, options.declaredLength ?? payload.length, options.fin ?? true, key));
      socket.write(key ? maskBytes(payload, key) : payload);
    },
    startFrame(opcode, length, fin = true) {
      const key = randomBytes(4);
      socket.write(header(opcode, length, fin, key));
      let offset = 0;
      return (bytes) => {
        const masked = maskBytes(bytes, key, offset);
        offset += bytes.length;
        return socket.write(masked);
      };
    },
    stream(writeFrames = (w, bytes) => w.sendFrame(2, bytes)) {
      const duplex = new Duplex({
        allowHalfOpen: true,
        read() {},
        write(chunk: Buffer, _enc, cb) {
          writeFrames(ws, chunk);
          // Backpressure from the socket reaches the writer (TLS), as it would on a real connection.
          if (socket.writableLength <= 256 * 1024 || socket.destroyed) return cb();
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            cb();
          };
          socket.once('drain', done);
          socket.once('close', done);
        },
        final(cb) {
          cb();
        },
      });
      onData = (bytes) => duplex.push(bytes);
      socket.once('close', () => duplex.push(null));
      parse();
      return duplex;
    },
  };
  setImmediate(parse);
  return ws;
}
