// The floor under any Node.js implementation of the tunnel's inner TLS: a process that holds, per
// connection, nothing but a TLS server session over a JavaScript stream (what the proxy's inner TLS runs
// over: tls.TLSSocket on a Duplex, the WebSocket payload in the proxy, the TCP socket here), with the same
// certificate, Node.js and OpenSSL as the proxy. No WebSocket, no HTTP parser, no routing, no logs: it
// answers every chunk it receives with a fixed 200, so the same client can open its connections and then
// check each one still works. Its resting RSS is Node's with tls and net loaded and a listener bound.
// Usage (by run.mjs, with fork()): node tls-floor.mjs CERT_FILE KEY_FILE
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

const [certFile, keyFile] = process.argv.slice(2);
const secureContext = tls.createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' });
const ANSWER = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';

/** The TCP socket as a plain JS Duplex, so TLS runs over a JS stream as in the proxy. */
class Passthrough extends Duplex {
  constructor(socket) {
    super();
    this.socket = socket;
    socket.on('data', (chunk) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', () => this.destroy());
  }
  _read() {
    this.socket.resume();
  }
  _write(chunk, _encoding, callback) {
    this.socket.write(chunk, callback);
  }
  _final(callback) {
    this.socket.end();
    callback();
  }
}

const server = net.createServer((socket) => {
  const secure = new tls.TLSSocket(new Passthrough(socket), { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
  secure.on('error', () => socket.destroy());
  secure.on('data', () => secure.write(ANSWER));
});
server.listen(0, '127.0.0.1', () => process.send?.({ type: 'ready', port: server.address().port }));
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
