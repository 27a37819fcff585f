import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { Logger } from './logger.js';
import { errorText, pathWithoutQuery } from './logger.js';
import type { ProxyMetrics } from './metrics.js';

/**
 * The outer transport: plain HTTP on listen_addr, where every WebSocket upgrade becomes one ordered byte
 * stream that the inner TLS handshake then runs over (SPEC.md 1).
 *
 * NOT documented by Anthropic, decided here (and only here; the README's "Assumptions" section and the
 * client side in src/probe/tunnel-protocol.ts say the same):
 *  - any request path is accepted for the upgrade;
 *  - no subprotocol is required (if the client offers some, the first one is echoed, ws's default);
 *  - the payload of every data frame, binary OR text, is the next bytes of the stream (text frames are not
 *    UTF-8 validated: they carry TLS records);
 *  - everything we send is a binary frame;
 *  - permessage-deflate is off (the payload is ciphertext: compressing it only costs CPU);
 *  - a single message may not exceed MAX_MESSAGE_BYTES.
 * A request on this port that is not a WebSocket upgrade gets 426 Upgrade Required (never a crash).
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

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
  logger: Logger;
  metrics: ProxyMetrics;
  onStream(tunnel: TunnelStream): void;
}

export class TunnelListener {
  readonly server: http.Server;
  private readonly wss: WebSocketServer;
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
      },
      (req, res) => this.onPlainRequest(req, res),
    );
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      maxPayload: MAX_MESSAGE_BYTES,
    });
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
    // The slot is held for the socket's whole life, so a failed upgrade gives it back too.
    this.reserved++;
    this.releaseSlotOnClose(socket);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onWebSocket(ws, req, socket));
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

  private onWebSocket(ws: WebSocket, req: http.IncomingMessage, socket: Socket): void {
    const { logger, metrics } = this.options;
    const id = this.nextId++;
    metrics.tunnelOpened();
    socket.setKeepAlive(true, 30_000);
    const stream = createWebSocketStream(ws, {
      // The inner TLS layer writes records in bursts (JSStreamSocket corks them): send a burst as ONE frame.
      writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void) {
        const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
        ws.send(data, { binary: true }, callback);
      },
    });
    stream.on('error', (err) => logger.debug('tunnel stream error', { conn: id, error: errorText(err) }));
    const closed = new Promise<void>((resolve) => {
      ws.once('close', () => {
        metrics.tunnelClosed();
        resolve();
      });
    });
    ws.on('error', (err) => logger.debug('websocket error', { conn: id, error: errorText(err) }));
    this.options.onStream({
      id,
      remoteAddress: req.socket.remoteAddress ?? '',
      path: pathWithoutQuery(req.url),
      stream,
      terminate: () => ws.terminate(),
      closed,
    });
  }
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

function refuse(socket: Socket, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  destroyAfterFlush(socket);
}
