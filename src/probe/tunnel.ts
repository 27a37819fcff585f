import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { X509Certificate } from 'node:crypto';
import WebSocket, { createWebSocketStream } from 'ws';
import { classifyTlsError, classifyUpgradeResponse, classifyWebSocketError, TlsLayerError, WebSocketLayerError, type TlsContext } from './errors.js';
import { DEFAULT_TIMEOUT_MS, TUNNEL_PROTOCOL } from './tunnel-protocol.js';

export interface OpenTunnelOptions {
  /** The proxy's WebSocket URL (ws://host:port/any-path). */
  proxyUrl: string;
  /** SNI and the name the certificate must cover: "<route>.<tunnel-domain>". */
  servername: string;
  /** The trusted CA (data/ca.crt): the ONLY trust anchor; system roots are not used. */
  caPem: string | string[];
  /** Bound for the WebSocket upgrade and, separately, for the TLS handshake. Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** For messages: where caPem came from (default "data/ca.crt"). */
  caSource?: string;
  /** For the SAN hint: the tunnel domain. */
  domain?: string;
  /** Extra headers on the upgrade request. */
  headers?: Record<string, string>;
}

export interface TunnelTimings {
  /** From start to the WebSocket being open (TCP connect + HTTP upgrade). */
  wsOpenMs: number;
  /** The inner TLS handshake, from the WebSocket being open to the session being verified. */
  tlsHandshakeMs: number;
}

export interface Tunnel {
  /** The inner TLS session: write HTTP/1.1 to it. Destroying it closes the WebSocket. */
  socket: tls.TLSSocket;
  /** The SNI the session was opened with. */
  servername: string;
  timings: TunnelTimings;
  /** The certificate the proxy presented (already verified: chain to caPem, hostname, validity). */
  peerCertificate: X509Certificate;
  peerCertificatePem: string;
  /** Negotiated protocol ("TLSv1.3"), cipher name and ALPN. */
  tlsProtocol: string | null;
  cipher: string;
  alpnProtocol: string | false | null;
  close(): void;
}

/**
 * The error an openTunnel failure carries: a WebSocketLayerError or a TlsLayerError with the timings of
 * the steps that did complete (a failed TLS handshake still reports how long the WebSocket took).
 */
export type OpenTunnelError = (WebSocketLayerError | TlsLayerError) & { timings?: Partial<TunnelTimings> };

/**
 * Opens one tunnel connection: WebSocket to the proxy -> one ordered byte stream -> TLS client handshake
 * inside it (SNI = servername) -> verification against caPem (chain, hostname, validity). Nothing is sent
 * inside the session before verification passed. docs/contract.md §4's finer rules (direct signature, AKI/SKI, EKU)
 * are checked by checkTunnelCertificate() on the returned peer certificate.
 */
export async function openTunnel(opts: OpenTunnelOptions): Promise<Tunnel> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const t0 = performance.now();
  const ws = await openWebSocket(opts, timeoutMs);
  const wsOpenMs = performance.now() - t0;
  try {
    const { socket, tlsHandshakeMs, peerCertificate, tlsProtocol, cipher } = await handshake(ws, opts, timeoutMs);
    let closed = false;
    return {
      socket,
      servername: opts.servername,
      timings: { wsOpenMs, tlsHandshakeMs },
      peerCertificate,
      peerCertificatePem: peerCertificate.toString(),
      tlsProtocol,
      cipher,
      alpnProtocol: socket.alpnProtocol,
      close() {
        if (closed) return;
        closed = true;
        socket.destroy();
        ws.terminate();
      },
    };
  } catch (err) {
    ws.terminate();
    (err as OpenTunnelError).timings = { wsOpenMs };
    throw err;
  }
}

function openWebSocket(opts: OpenTunnelOptions, timeoutMs: number): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(abortError(opts.signal));
      return;
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(opts.proxyUrl, [...TUNNEL_PROTOCOL.subprotocols], {
        handshakeTimeout: timeoutMs,
        perMessageDeflate: TUNNEL_PROTOCOL.perMessageDeflate,
        headers: opts.headers,
        followRedirects: false,
      });
    } catch (err) {
      reject(classifyWebSocketError(err, opts.proxyUrl));
      return;
    }
    let settled = false;
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      ws.removeListener('open', onOpen);
      ws.removeListener('error', onError);
      ws.removeListener('unexpected-response', onUnexpected);
      // From here on errors surface through the byte stream (createWebSocketStream re-emits them); this
      // listener only keeps one from becoming an uncaught exception in between.
      ws.on('error', () => {});
      if (err) {
        ws.terminate();
        reject(err);
      } else resolve(ws);
    };
    const onOpen = (): void => finish(undefined);
    const onError = (err: Error): void => finish(classifyWebSocketError(err, opts.proxyUrl));
    const onUnexpected = (req: import('node:http').ClientRequest, res: import('node:http').IncomingMessage): void => {
      // Read a little of the body for the message (e.g. a 503's reason), then give up the socket.
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (): void => {
        req.destroy();
        finish(classifyUpgradeResponse(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), opts.proxyUrl));
      };
      res.on('data', (c: Buffer) => {
        if (size < 512) chunks.push(c);
        size += c.length;
        if (size >= 512) done();
      });
      res.on('end', done);
      res.on('error', done);
      setTimeout(done, 500).unref();
    };
    const onAbort = (): void => finish(abortError(opts.signal!));
    const timer = setTimeout(
      () => finish(classifyWebSocketError(Object.assign(new Error('Opening handshake has timed out'), { code: undefined }), opts.proxyUrl)),
      timeoutMs + 50,
    );
    ws.on('open', onOpen);
    ws.on('error', onError);
    ws.on('unexpected-response', onUnexpected);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface Handshaken {
  socket: tls.TLSSocket;
  tlsHandshakeMs: number;
  peerCertificate: X509Certificate;
  tlsProtocol: string | null;
  cipher: string;
}

function handshake(ws: WebSocket, opts: OpenTunnelOptions, timeoutMs: number): Promise<Handshaken> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let wsClose: TlsContext['wsClose'];
    ws.once('close', (code: number, reason: Buffer) => {
      wsClose = { code, reason: reason.toString('utf8') };
    });
    const stream: Duplex = createWebSocketStream(ws);
    // createWebSocketStream re-emits ws errors on the duplex; TLS sees them as socket errors.
    stream.on('error', () => {});
    const ctx = (): TlsContext => ({ servername: opts.servername, domain: opts.domain, caSource: opts.caSource, wsClose });
    const socket = tls.connect({
      socket: stream,
      servername: opts.servername,
      ca: opts.caPem,
      ALPNProtocols: TUNNEL_PROTOCOL.tls.alpnProtocols,
      minVersion: TUNNEL_PROTOCOL.tls.minVersion,
      // Verified below, by hand, before anything is sent: so a failure can say WHAT is wrong with the
      // certificate (its SAN, its issuer, its expiry) instead of Node's bare code.
      rejectUnauthorized: false,
    });
    let settled = false;
    // Node frees the peer certificate once 'secureConnect' has run: everything is captured inside it.
    let peerCertificate: X509Certificate | undefined;
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('secureConnect', onSecure);
      socket.removeListener('error', onError);
      if (err) {
        socket.on('error', () => {});
        socket.destroy();
        reject(err);
      } else {
        // From here on the owner (undici, the probe) listens for errors; this keeps a late error on a
        // socket nobody watches from becoming an uncaught exception.
        socket.on('error', () => {});
        // The TLS session is the connection: when it ends, the WebSocket goes with it (close frame first).
        socket.once('close', () => {
          if (ws.readyState === WebSocket.OPEN) ws.close(1000);
          if (ws.readyState !== WebSocket.CLOSED) setTimeout(() => ws.terminate(), 2000).unref();
        });
        resolve({
          socket,
          tlsHandshakeMs: performance.now() - t0,
          peerCertificate: peerCertificate!,
          tlsProtocol: socket.getProtocol(),
          cipher: socket.getCipher()?.name ?? 'unknown',
        });
      }
    };
    const onSecure = (): void => {
      const peer = socket.getPeerX509Certificate();
      peerCertificate = peer;
      if (!peer) {
        finish(new TlsLayerError('no-certificate', 'the proxy presented no certificate in the inner TLS handshake', 'check tls.cert_file in config/mcp-proxy.yaml'));
        return;
      }
      if (!socket.authorized) {
        const code = String(socket.authorizationError ?? 'CERT_REJECTED');
        finish(
          classifyTlsError(code, {
            ...ctx(),
            peer: { subjectAltName: peer.subjectAltName, validFrom: peer.validFrom, validTo: peer.validTo, issuer: peer.issuer.replace(/\n/g, ', ') },
          }),
        );
        return;
      }
      finish(undefined);
    };
    const onError = (err: Error): void => {
      // If the proxy is closing the WebSocket, wait (briefly) for its close code/reason: the message carries them.
      if (wsClose || ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        setImmediate(() => finish(classifyTlsError(err, ctx())));
        return;
      }
      const t = setTimeout(() => finish(classifyTlsError(err, ctx())), 250);
      ws.once('close', () => {
        clearTimeout(t);
        finish(classifyTlsError(err, ctx()));
      });
    };
    const onAbort = (): void => finish(abortError(opts.signal!));
    const timer = setTimeout(() => finish(classifyTlsError(new Error('TLS handshake timed out'), ctx())), timeoutMs);
    socket.once('secureConnect', onSecure);
    socket.on('error', onError);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException('The operation was aborted', 'AbortError');
}
