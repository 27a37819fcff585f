import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { STREAM_HIGH_WATER_MARK } from './buffers.js';
import type { Logger } from './logger.js';
import { errorText } from './logger.js';
import type { ProxyMetrics } from './metrics.js';

/**
 * The inner TLS session (docs/contract.md 1): a TLS server handshake inside the WebSocket byte stream, with the
 * configured certificate. TLS 1.2 or newer (set on the SecureContext, see cert-reloader.ts), ALPN http/1.1.
 * The SecureContext is taken when the connection starts, so a certificate reload affects new handshakes
 * only; established sessions keep theirs.
 */
export const INNER_ALPN = ['http/1.1'];

export interface InnerTlsOptions {
  /** The context for this handshake (read once, at the start). */
  secureContext: tls.SecureContext;
  handshakeTimeoutMs: number;
  logger: Logger;
  metrics: ProxyMetrics;
  /** For logs. */
  connId: number;
  remoteAddress: string;
  /** Called once the handshake succeeded. */
  onSecure(socket: tls.TLSSocket): void;
  /** Called when the handshake failed or timed out (already logged and counted). */
  onFailure?(): void;
}

export function startInnerTls(stream: Duplex, options: InnerTlsOptions): tls.TLSSocket {
  const { logger, metrics, connId } = options;
  const socket = new tls.TLSSocket(stream, {
    isServer: true,
    secureContext: options.secureContext,
    ALPNProtocols: INNER_ALPN,
    requestCert: false,
    rejectUnauthorized: false,
    // TLSSocket hands it to net.Socket (Node's _tls_wrap.js); @types/node does not list it.
    ...({ highWaterMark: STREAM_HIGH_WATER_MARK } as tls.TLSSocketOptions),
  });
  let settled = false;

  const fail = (reason: 'timeout' | 'error', detail: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    metrics.tlsHandshakeFailed(reason);
    logger.warn('tls handshake failed', { conn: connId, remote: options.remoteAddress, reason: detail });
    socket.destroy();
    stream.destroy();
    options.onFailure?.();
  };

  const timer = setTimeout(() => fail('timeout', `no handshake within ${options.handshakeTimeoutMs}ms`), options.handshakeTimeoutMs);
  timer.unref();

  socket.once('secure', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (logger.isEnabled('debug')) {
      logger.debug('tls handshake complete', {
        conn: connId,
        sni: socket.servername || undefined,
        protocol: socket.getProtocol() ?? undefined,
        cipher: socket.getCipher()?.name,
        alpn: socket.alpnProtocol || undefined,
      });
    }
    options.onSecure(socket);
  });

  socket.on('error', (err) => {
    if (!settled) {
      fail('error', errorText(err));
      return;
    }
    logger.debug('tunnel tls error', { conn: connId, error: errorText(err) });
    socket.destroy();
  });
  // The peer went away before finishing the handshake (e.g. it closed the WebSocket). The TLS socket is
  // half-open capable (so that a half-closed request is answered), so the end of its input alone does not
  // close it: during the handshake, that end is the failure.
  socket.once('close', () => {
    if (!settled) fail('error', 'connection closed during the handshake');
  });
  socket.once('end', () => {
    if (!settled) fail('error', 'connection closed during the handshake');
  });
  return socket;
}
