import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { STREAM_HIGH_WATER_MARK } from './buffers.js';
import type { Logger } from './logger.js';
import { errorText, pathWithoutQuery } from './logger.js';
import type { ProxyMetrics } from './metrics.js';
import { CLOSE, FrameParser, OPCODE, closePayload, frameHeader, type FrameSink } from './ws-frames.js';

/**
 * The outer transport: plain HTTP on listen_addr, where every WebSocket upgrade becomes one ordered byte
 * stream that the inner TLS handshake then runs over (docs/contract.md 1).
 *
 * NOT documented by Anthropic, decided here (and only here; the README's "Assumptions" section and the
 * client side in src/probe/tunnel-protocol.ts say the same):
 *  - any request path is accepted for the upgrade;
 *  - no subprotocol is required (if the client offers some, the first one is echoed, ws's default);
 *  - the payload of every data frame, binary OR text, is the next bytes of the stream (text frames are not
 *    UTF-8 validated: they carry TLS records);
 *  - everything we send is a binary frame;
 *  - permessage-deflate is off (the payload is ciphertext: compressing it only costs CPU);
 *  - messages have no size (their payload is streamed, never collected); one frame's payload may not exceed
 *    limits.max_frame_bytes (default DEFAULT_MAX_FRAME_BYTES, the message bound this proxy had before).
 * The framing is ours (ws-frames.ts says why not `ws`): only an HTTP/1.1 GET with Upgrade: websocket,
 * Sec-WebSocket-Version 13 and a well-formed Sec-WebSocket-Key is upgraded (an HTTP/1.0 upgrade gets 400).
 * A request on this port that is not a WebSocket upgrade gets 426 Upgrade Required (never a crash).
 */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** How long a closing WebSocket waits for the peer's close frame (or a flush) before the socket is cut. */
const CLOSE_WAIT_MS = 5_000;

/** One accepted tunnel connection, handed to the layer above (inner TLS). */
export interface TunnelStream {
  /** Sequence number of the connection, for logs. */
  readonly id: number;
  readonly remoteAddress: string;
  /** The upgrade request's path, without the query string. */
  readonly path: string;
  /** The WebSocket payload as a byte stream: read = what the client sent, write = binary frames out. */
  readonly stream: Duplex;
  /** Close the WebSocket at once (no close handshake). */
  terminate(): void;
  /** Resolves when the WebSocket (and its TCP socket) has closed. */
  readonly closed: Promise<void>;
}

export interface TunnelListenerOptions {
  maxConnections: number;
  /** Bounds the upgrade request itself (headers and request timeouts on the outer HTTP). */
  handshakeTimeoutMs: number;
  maxHeaderBytes: number;
  /** Bound on one frame's payload (1009 beyond it). Default DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
  logger: Logger;
  metrics: ProxyMetrics;
  onStream(tunnel: TunnelStream): void;
}

export class TunnelListener {
  readonly server: http.Server;
  private reserved = 0;
  private nextId = 1;
  private accepting = true;

  constructor(private readonly options: TunnelListenerOptions) {
    const timeout = Math.max(1, options.handshakeTimeoutMs);
    this.server = http.createServer(
      {
        maxHeaderSize: options.maxHeaderBytes,
        headersTimeout: timeout,
        requestTimeout: timeout,
        keepAliveTimeout: Math.min(5_000, timeout),
        connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(timeout / 4))),
        noDelay: true,
        highWaterMark: STREAM_HIGH_WATER_MARK,
      },
      (req, res) => this.onPlainRequest(req, res),
    );
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket as Socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      options.logger.debug('bad request on tunnel port', { error: err.code ?? errorText(err) });
      answerClientError(err, socket);
    });
  }

  /** Tunnel connections open or being upgraded now. */
  get openConnections(): number {
    return this.reserved;
  }

  listen(host: string | undefined, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  /** Stop accepting: close the listening socket, refuse further upgrades on kept-alive sockets, drop idle ones. */
  stopAccepting(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.server.close();
    this.server.closeIdleConnections();
  }

  /** Destroy whatever HTTP sockets are left (after the drain). */
  destroyAll(): void {
    this.server.closeAllConnections();
  }

  private onPlainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.options.logger.debug('non-websocket request on tunnel port', { method: req.method, path: pathWithoutQuery(req.url) });
    const body = 'This port carries MCP tunnel traffic: HTTP upgraded to a WebSocket, with TLS inside. Plain HTTP requests are not served here.\n';
    res.writeHead(426, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      Upgrade: 'websocket',
      Connection: 'close',
    });
    res.end(body);
    // Do not read a body we will never use.
    req.resume();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const { logger, metrics } = this.options;
    this.logSocketErrors(socket);
    if (!this.accepting) {
      metrics.tunnelRejected('shutting_down');
      refuse(socket, 503, 'shutting down');
      return;
    }
    if (this.reserved >= this.options.maxConnections) {
      metrics.tunnelRejected('max_connections');
      logger.warn('tunnel connection refused: max_connections reached', { max_connections: this.options.maxConnections, remote: socket.remoteAddress });
      refuse(socket, 503, 'too many tunnel connections');
      return;
    }
    const bad = handshakeProblem(req);
    if (bad) {
      metrics.tunnelRejected('bad_handshake');
      logger.debug('websocket handshake refused', { reason: bad.reason, remote: socket.remoteAddress });
      refuse(socket, bad.status, bad.reason, bad.status === 426 ? 'Sec-WebSocket-Version: 13\r\n' : '');
      return;
    }
    // The slot is held for the socket's whole life, so a failed upgrade gives it back too.
    this.reserved++;
    this.releaseSlotOnClose(socket);
    const key = req.headers['sec-websocket-key'] as string;
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    const offered = req.headers['sec-websocket-protocol'];
    // No subprotocol is required; one offered is echoed (the first), as ws did.
    const protocol = typeof offered === 'string' ? offered.split(',')[0]!.trim() : '';
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
    );
    this.onWebSocket(socket, req.socket.remoteAddress ?? '', pathWithoutQuery(req.url), head);
  }

  // The listeners that live as long as the socket are made in scopes of their own: a closure made in
  // onUpgrade would share its scope with the upgrade callback, and so keep the upgrade request (headers and
  // all) alive for the whole life of the connection.
  private logSocketErrors(socket: Socket): void {
    const { logger } = this.options;
    socket.on('error', (err) => logger.debug('tunnel socket error', { error: errorText(err) }));
  }

  private releaseSlotOnClose(socket: Socket): void {
    socket.once('close', () => {
      this.reserved--;
    });
  }

  // Its own scope, so nothing of the upgrade request (headers and all) stays reachable from the connection.
  private onWebSocket(socket: Socket, remoteAddress: string, path: string, head: Buffer): void {
    const { logger, metrics } = this.options;
    const id = this.nextId++;
    metrics.tunnelOpened();
    socket.setKeepAlive(true, 30_000);
    socket.setNoDelay(true);
    const stream = new WebSocketStream(socket, this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, (code, reason) => logger.debug('websocket protocol error', { conn: id, code, reason }));
    stream.on('error', (err) => logger.debug('tunnel stream error', { conn: id, error: errorText(err) }));
    const closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        metrics.tunnelClosed();
        resolve();
      });
    });
    this.options.onStream({ id, remoteAddress, path, stream, terminate: () => socket.destroy(), closed });
    if (head.length > 0) stream.feed(head);
  }
}

/**
 * One WebSocket as a byte stream (the TLS layer's transport): read = the payload of every data frame, as
 * it arrives; write = binary frames (one per write or per corked burst of writes). Backpressure both ways:
 * when TLS does not read, the TCP socket is paused; a frame's write callback waits for the socket.
 * allowHalfOpen: the end of the peer's data (its close frame, or a TCP FIN) does not end what we still
 * have to send: the TLS layer decides when it is done, and its end() sends our close frame.
 */
class WebSocketStream extends Duplex implements FrameSink {
  private readonly parser: FrameParser;
  private closeSent = false;
  private closeReceived = false;
  private pausedByUs = false;
  private peerCloseCode: number = CLOSE.normal;

  constructor(
    private readonly socket: Socket,
    maxFrameBytes: number,
    private readonly onProtocolIssue: (code: number, reason: string) => void,
  ) {
    super({ allowHalfOpen: true, decodeStrings: true, highWaterMark: STREAM_HIGH_WATER_MARK });
    this.parser = new FrameParser(this, maxFrameBytes);
    socket.on('data', (chunk: Buffer) => this.parser.push(chunk));
    socket.on('end', () => this.peerDone());
    socket.once('close', () => {
      if (!this.destroyed) this.destroy();
    });
    socket.on('error', (err) => {
      if (!this.destroyed) this.destroy(err);
    });
  }

  /** Bytes that arrived with the upgrade request. */
  feed(head: Buffer): void {
    this.parser.push(head);
  }

  onData(bytes: Buffer): void {
    if (this.closeReceived) return;
    if (!this.push(bytes) && !this.pausedByUs) {
      this.pausedByUs = true;
      this.socket.pause();
    }
  }

  onControl(opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.ping) {
      // A peer that pings without reading must not grow our write queue: RFC 6455 5.5.3 lets a pong answer
      // only the latest ping, so pings are left unanswered while the socket has not drained.
      if (!this.closeSent && !this.socket.writableNeedDrain) this.sendFrame(OPCODE.pong, payload);
    } else if (opcode === OPCODE.close) {
      if (payload.length === 1) {
        this.onProtocolError(CLOSE.protocolError, 'close frame with a 1-byte payload');
        return;
      }
      this.peerCloseCode = payload.length >= 2 ? payload.readUInt16BE(0) : CLOSE.normal;
      this.peerDone();
      // Our close frame answered theirs: the exchange is complete, the server closes the TCP connection.
      if (this.closeSent) {
        this.socket.end();
        this.armCloseTimer();
      }
      // Otherwise their close is a half-close: the TLS layer sees the end of its input and may still owe an
      // answer (a request sent, then end()). RFC 6455 5.5.1 lets an endpoint finish what it is sending
      // before it answers a close; our close frame leaves when the TLS layer ends its side (_final).
    }
    // A pong needs nothing.
  }

  onProtocolError(code: number, reason: string): void {
    this.onProtocolIssue(code, reason);
    if (!this.closeSent) this.sendClose(code, reason);
    this.socket.end();
    this.armCloseTimer();
    this.socket.removeAllListeners('data');
    this.destroy(new Error(`websocket protocol error: ${reason}`));
  }

  override _read(): void {
    if (this.pausedByUs) {
      this.pausedByUs = false;
      this.socket.resume();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.closeSent) return callback(new Error('websocket is closing'));
    this.socket.cork();
    this.socket.write(frameHeader(OPCODE.binary, chunk.length));
    this.socket.write(chunk, callback);
    this.socket.uncork();
  }

  // The inner TLS layer writes records in bursts (JSStreamSocket corks them): send a burst as ONE frame,
  // without copying it into one buffer.
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    if (this.closeSent) return callback(new Error('websocket is closing'));
    let length = 0;
    for (const c of chunks) length += c.chunk.length;
    this.socket.cork();
    this.socket.write(frameHeader(OPCODE.binary, length));
    for (let i = 0; i < chunks.length - 1; i++) this.socket.write(chunks[i]!.chunk);
    this.socket.write(chunks[chunks.length - 1]!.chunk, callback);
    this.socket.uncork();
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (!this.closeSent) this.sendClose(this.closeReceived ? echoable(this.peerCloseCode) : CLOSE.normal);
    // The peer's close frame answers ours; if it already came, the exchange is complete.
    if (this.closeReceived) this.socket.end();
    this.armCloseTimer();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.socket.destroyed) {
      // The peer's close is still owed an answer; a close frame on its way is allowed to leave; anything
      // else is cut now.
      if (!this.closeSent && this.closeReceived && this.socket.writable) this.sendClose(echoable(this.peerCloseCode));
      if (this.closeSent) {
        if (!this.socket.writableEnded) this.socket.end();
        this.armCloseTimer();
      } else this.socket.destroy();
    }
    callback(err);
  }

  private peerDone(): void {
    if (this.closeReceived) return;
    this.closeReceived = true;
    this.push(null);
  }

  private sendFrame(opcode: number, payload: Buffer): void {
    if (!this.socket.writable) return;
    this.socket.cork();
    this.socket.write(frameHeader(opcode, payload.length));
    if (payload.length > 0) this.socket.write(payload);
    this.socket.uncork();
  }

  private sendClose(code: number, reason = ''): void {
    this.closeSent = true;
    this.sendFrame(OPCODE.close, closePayload(code, reason));
  }

  private closeTimer: NodeJS.Timeout | undefined;
  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS);
    this.closeTimer.unref();
    this.socket.once('close', () => clearTimeout(this.closeTimer));
  }
}

/** A close code that may be sent back (1005 and 1006 are never sent on the wire). */
function echoable(code: number): number {
  return code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 && code !== 1015 ? code : CLOSE.normal;
}

/** Why an upgrade request is not a WebSocket handshake we accept, or undefined when it is one. */
function handshakeProblem(req: http.IncomingMessage): { status: number; reason: string } | undefined {
  if (req.httpVersion !== '1.1') return { status: 400, reason: `a WebSocket upgrade needs HTTP/1.1, not HTTP/${req.httpVersion}` };
  if (req.method !== 'GET') return { status: 405, reason: 'a WebSocket upgrade is a GET' };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { status: 400, reason: 'Upgrade must be websocket' };
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return { status: 400, reason: 'missing or malformed Sec-WebSocket-Key' };
  if (req.headers['sec-websocket-version'] !== '13') return { status: 426, reason: 'unsupported Sec-WebSocket-Version (13 only)' };
  return undefined;
}

/** A malformed, oversized or too slow HTTP request: a short status line, then the socket is closed. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  destroyAfterFlush(socket);
}

function destroyAfterFlush(socket: Duplex): void {
  if (socket.writableFinished) socket.destroy();
  else {
    socket.once('finish', () => socket.destroy());
    // A peer that never reads must not pin the socket.
    setTimeout(() => socket.destroy(), 5_000).unref();
  }
}

function refuse(socket: Socket, status: number, reason: string, extraHeaders = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n${extraHeaders}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  destroyAfterFlush(socket);
}
