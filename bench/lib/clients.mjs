// The load generator's client side, the same code for the three paths; only the transport differs:
//   direct  plain TCP to the upstream (the floor)
//   nginx   TLS to nginx (native TLS socket)
//   tunnel  WebSocket to the builtin proxy -> inner TLS inside the WebSocket byte stream, as Anthropic's
//           backend does it (SNI = <route>.<tunnel domain>, verified against the deployment's CA)
// HTTP/1.1 is written and parsed by hand (a few lines, no per-request allocations beyond the buffers), so the
// generator costs as little as possible and exactly the same on every path.
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import WebSocket from 'ws';

/** A WebSocket as one ordered byte stream (binary frames out, any frame in): the tunnel's wire contract. */
export class WsByteStream extends Duplex {
  constructor(ws) {
    super({ allowHalfOpen: false, decodeStrings: false });
    this.ws = ws;
    ws.on('message', (data) => {
      if (!this.push(data)) ws.pause();
    });
    ws.once('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }
  _read() {
    if (this.ws.isPaused) this.ws.resume();
  }
  _write(chunk, _enc, cb) {
    this.ws.send(chunk, { binary: true }, cb);
  }
  _writev(chunks, cb) {
    const data = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.ws.send(data, { binary: true }, cb);
  }
  _final(cb) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    cb();
  }
  _destroy(err, cb) {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    cb(err);
  }
}

function withTimeout(promise, ms, what, onTimeout) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        onTimeout?.();
        reject(new Error(`${what} not done within ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Opens one connection on `path` and returns a connected stream ready for HTTP/1.1.
 * target: { host, port, servername, ca, wsUrl, tlsOptions? }
 */
export async function openConnection(path, target, timeoutMs = 15_000) {
  if (path === 'direct') {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    await withTimeout(new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)), timeoutMs, 'TCP connect', () => socket.destroy());
    return socket;
  }
  if (path === 'nginx') {
    const socket = tls.connect({ host: target.host, port: target.port, servername: target.servername, ca: target.ca, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2', noDelay: true, ...target.tlsOptions });
    await withTimeout(new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)), timeoutMs, 'TLS handshake', () => socket.destroy());
    return socket;
  }
  // The Go peer speaks the same wire protocol: the same client drives both.
  if (path === 'tunnel' || path === 'go') {
    const ws = new WebSocket(target.wsUrl, { perMessageDeflate: false, handshakeTimeout: timeoutMs, skipUTF8Validation: true });
    await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), timeoutMs, 'WebSocket upgrade', () => ws.terminate());
    ws._socket?.setNoDelay(true);
    const stream = new WsByteStream(ws);
    stream.on('error', () => undefined);
    const socket = tls.connect({ socket: stream, servername: target.servername, ca: target.ca, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2', ...target.tlsOptions });
    await withTimeout(new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)), timeoutMs, 'inner TLS handshake', () => {
      socket.destroy();
      ws.terminate();
    });
    socket.once('close', () => ws.terminate());
    return socket;
  }
  throw new Error(`unknown path ${path}`);
}

/** The small JSON-RPC POST every throughput request sends (an MCP tools/call). */
export function jsonRpcRequest(host, id = 1, close = false) {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello from the benchmark' } } });
  return Buffer.from(
    `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2025-06-18\r\n` +
      `${close ? 'Connection: close\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    'latin1',
  );
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * One HTTP/1.1 connection used for one request at a time. `request(bytes)` resolves with
 * { status, bodyBytes } once the whole response (Content-Length or chunked) arrived.
 */
export class HttpConn {
  constructor(socket) {
    this.socket = socket;
    this.buf = null;
    this.waiter = null;
    this.closed = false;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closed = true;
      const w = this.waiter;
      this.waiter = null;
      w?.reject(new Error('connection closed before the response was complete'));
    });
  }

  request(bytes) {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.write(bytes);
    });
  }

  onData(chunk) {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.waiter === null) return;
    const parsed = parseResponse(this.buf);
    if (parsed === null) return;
    this.buf = parsed.rest.length ? parsed.rest : null;
    const w = this.waiter;
    this.waiter = null;
    w.resolve(parsed);
  }

  destroy() {
    this.socket.destroy();
  }
}

/** A complete response at the start of `buf`, or null when more bytes are needed. */
export function parseResponse(buf) {
  const end = buf.indexOf(CRLFCRLF);
  if (end === -1) return null;
  const head = buf.latin1Slice(0, end);
  const status = Number(head.slice(9, 12));
  const lower = head.toLowerCase();
  const cl = lower.indexOf('\r\ncontent-length:');
  const bodyStart = end + 4;
  if (cl !== -1) {
    const lineEnd = lower.indexOf('\r\n', cl + 17);
    const len = parseInt(lower.slice(cl + 17, lineEnd === -1 ? lower.length : lineEnd), 10);
    if (buf.length < bodyStart + len) return null;
    return { status, bodyBytes: len, rest: buf.subarray(bodyStart + len) };
  }
  if (lower.includes('\r\ntransfer-encoding: chunked')) {
    let pos = bodyStart;
    let total = 0;
    for (let guard = 0; guard < 100_000; guard++) {
      const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
      if (lineEnd === -1) return null;
      const size = parseInt(buf.latin1Slice(pos, lineEnd), 16);
      if (size === 0) {
        if (buf.length < lineEnd + 4) return null;
        return { status, bodyBytes: total, rest: buf.subarray(lineEnd + 4) };
      }
      if (buf.length < lineEnd + 2 + size + 2) return null;
      total += size;
      pos = lineEnd + 2 + size + 2;
    }
    throw new Error('too many chunks');
  }
  // No body (e.g. 204/304) or close-delimited (not used by these servers).
  return { status, bodyBytes: 0, rest: buf.subarray(bodyStart) };
}
