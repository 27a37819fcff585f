// The upstream MCP-like server (its own process): streamable-HTTP shaped endpoints on 127.0.0.1.
//   POST /mcp           a JSON-RPC request -> a small JSON-RPC result (Content-Length)
//   GET  /sse?n=N&interval=MS&phase=MS
//                       text/event-stream: N events, one every MS ms (drift-free schedule); each event
//                       carries the monotonic clock (process.hrtime, system-wide CLOCK_MONOTONIC) read just
//                       before it is written, so the client can compute the one-way delay of every event.
// Started by run.mjs with fork(); reports its port over IPC and exits when the harness goes away.
import http from 'node:http';

const MAX_EVENTS = 10_000;

const server = http.createServer({ keepAliveTimeout: 120_000, noDelay: true }, (req, res) => {
  if (req.method === 'POST') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let id = null;
      try {
        id = JSON.parse(Buffer.concat(chunks).toString('utf8')).id ?? null;
      } catch {
        id = null;
      }
      const body = JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'hello from the upstream' }], isError: false } });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  const url = new URL(req.url, 'http://upstream');
  if (url.pathname === '/sse') {
    const n = Math.min(MAX_EVENTS, Math.max(1, Number(url.searchParams.get('n') ?? 100)));
    const interval = Math.min(1_000, Math.max(1, Number(url.searchParams.get('interval') ?? 10)));
    // phase: where in the interval this stream's events fall (streams run side by side, staggered).
    const phase = Math.min(interval, Math.max(0, Number(url.searchParams.get('phase') ?? 0)));
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    const start = performance.now() + interval + phase;
    let seq = 0;
    let timer;
    const tick = () => {
      if (res.destroyed) return;
      const t = process.hrtime.bigint();
      res.write(`id: ${seq}\ndata: {"seq":${seq},"t":"${t}"}\n\n`);
      seq++;
      if (seq >= n) {
        res.end();
        return;
      }
      timer = setTimeout(tick, Math.max(0, start + seq * interval - performance.now()));
    };
    timer = setTimeout(tick, interval + phase);
    res.once('close', () => clearTimeout(timer));
    return;
  }
  res.writeHead(404, { 'Content-Length': 0 });
  res.end();
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.maxRequestsPerSocket = 0;

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: server.address().port });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
