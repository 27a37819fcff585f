import type http from 'node:http';
import type tls from 'node:tls';
import type { TunnelStream } from './websocket-stream.js';

/**
 * Book-keeping of the open tunnel connections (one WebSocket = one TLS session = one HTTP/1.1 connection):
 * which are past their handshake, how many requests each has in flight, and the graceful drain:
 * idle connections are closed at once (TLS close_notify, then the WebSocket close handshake), busy ones as
 * soon as their last response is complete (their remaining responses carry Connection: close), and
 * whatever is left when the time is up is cut.
 */
export class TunnelConnection {
  /** Requests whose response is not complete yet. */
  inflight = 0;
  tls: tls.TLSSocket | undefined;
  secure = false;

  constructor(readonly tunnel: TunnelStream) {}

  get id(): number {
    return this.tunnel.id;
  }

  /** TLS close_notify, then the WebSocket close handshake. */
  closeGracefully(): void {
    if (this.tls && this.secure && !this.tls.destroyed) this.tls.end();
    else this.tunnel.terminate();
  }
}

export class ConnectionRegistry {
  private readonly open = new Set<TunnelConnection>();
  private readonly bySocket = new WeakMap<object, TunnelConnection>();
  private draining = false;

  get size(): number {
    return this.open.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  add(tunnel: TunnelStream): TunnelConnection {
    const conn = new TunnelConnection(tunnel);
    this.open.add(conn);
    void tunnel.closed.then(() => this.open.delete(conn));
    return conn;
  }

  attachTls(conn: TunnelConnection, socket: tls.TLSSocket): void {
    conn.tls = socket;
    this.bySocket.set(socket, conn);
  }

  markSecure(conn: TunnelConnection): void {
    conn.secure = true;
    // A handshake that finished while draining: nothing will be served on it.
    if (this.draining) conn.closeGracefully();
  }

  connectionOf(socket: object): TunnelConnection | undefined {
    return this.bySocket.get(socket);
  }

  /** Called for every request inside the tunnel; tracks it until its response is complete or aborted. */
  requestStarted(req: http.IncomingMessage, res: http.ServerResponse): TunnelConnection | undefined {
    const conn = this.bySocket.get(req.socket);
    if (!conn) return undefined;
    conn.inflight++;
    if (this.draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      conn.inflight--;
      if (this.draining && conn.inflight === 0) conn.closeGracefully();
    });
    return conn;
  }

  /**
   * Graceful drain: close idle connections now, busy ones when their in-flight requests are done, and cut
   * whatever is still open after `timeoutMs`. Resolves when every connection is closed.
   */
  async drain(timeoutMs: number): Promise<{ forced: number }> {
    this.draining = true;
    // A connection still in its TLS handshake is left to finish it (markSecure then closes it properly)
    // or to fail it (handshake_timeout); the deadline below bounds both.
    for (const conn of this.open) if (conn.secure && conn.inflight === 0) conn.closeGracefully();
    const allClosed = (): Promise<unknown> => Promise.all([...this.open].map((c) => c.tunnel.closed));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      allClosed().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!timedOut) return { forced: 0 };
    const forced = this.open.size;
    for (const conn of this.open) conn.tunnel.terminate();
    await Promise.race([allClosed(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    return { forced };
  }
}
