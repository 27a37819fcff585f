// A load generator process (run.mjs forks one or more per scenario, with serialization: 'advanced').
// Protocol over IPC:
//   parent -> {type:'job', job}     child opens what the job needs, then -> {type:'ready', ...}
//   parent -> {type:'go', warmupMs, durationMs}
//                                    child runs, then -> {type:'result', ...} and exits
//   (idle job) parent -> {type:'probe'} -> {type:'probed', ok, failed}; parent -> {type:'exit'}
// Every loop is bounded by a deadline and a count; the process exits if the parent goes away.
import { performance } from 'node:perf_hooks';
import { HttpConn, jsonRpcRequest, openConnection } from './clients.mjs';

const MAX_SAMPLES = 4_000_000;
const HARD_LIMIT_MS = 180_000;

process.on('disconnect', () => process.exit(0));
setTimeout(() => {
  process.send?.({ type: 'error', error: `generator hard limit (${HARD_LIMIT_MS} ms) reached` });
  process.exit(2);
}, HARD_LIMIT_MS).unref();

let job;
let goResolve;
const go = new Promise((resolve) => (goResolve = resolve));
let probeResolve;
const probeAsked = new Promise((resolve) => (probeResolve = resolve));

process.on('message', (msg) => {
  if (msg.type === 'job') {
    job = msg.job;
    run().catch((err) => {
      process.send({ type: 'error', error: String(err?.stack ?? err) });
      setTimeout(() => process.exit(1), 100);
    });
  } else if (msg.type === 'go') goResolve(msg);
  else if (msg.type === 'probe') probeResolve();
  else if (msg.type === 'exit') process.exit(0);
});

/** Runs `fn(i)` for i in [0, n) with at most `limit` at a time. */
async function pool(n, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

async function run() {
  if (job.kind === 'throughput') return throughput();
  if (job.kind === 'handshake') return handshakes();
  if (job.kind === 'sse') return sse();
  if (job.kind === 'idle') return idle();
  throw new Error(`unknown job ${job.kind}`);
}

async function throughput() {
  const conns = [];
  await pool(job.conns, 16, async () => {
    conns.push(new HttpConn(await openConnection(job.path, job.target)));
  });
  const request = jsonRpcRequest(job.target.hostHeader);
  // Warm each connection with one request (JIT, TLS buffers, upstream keep-alive sockets).
  await Promise.all(conns.map((c) => c.request(request)));
  process.send({ type: 'ready' });
  const { warmupMs, durationMs } = await go;
  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + durationMs;
  const lat = new Float64Array(MAX_SAMPLES);
  let n = 0;
  let errors = 0;
  let badStatus = 0;
  const loop = async (conn) => {
    for (let i = 0; i < 50_000_000; i++) {
      const start = performance.now();
      if (start >= windowEnd) return;
      let res;
      try {
        res = await conn.request(request);
      } catch {
        errors++;
        return;
      }
      const end = performance.now();
      if (res.status !== 200) badStatus++;
      if (start >= windowStart && end <= windowEnd && n < MAX_SAMPLES) lat[n++] = end - start;
    }
  };
  await Promise.all(conns.map(loop));
  for (const c of conns) c.destroy();
  process.send({ type: 'result', count: n, latencies: lat.slice(0, n), errors, badStatus, windowMs: durationMs });
  setTimeout(() => process.exit(0), 50);
}

async function handshakes() {
  process.send({ type: 'ready' });
  const { warmupMs, durationMs } = await go;
  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + durationMs;
  const request = jsonRpcRequest(job.target.hostHeader, 1, true);
  const lat = new Float64Array(MAX_SAMPLES);
  let n = 0;
  let errors = 0;
  let firstError;
  const info = {};
  const loop = async () => {
    for (let i = 0; i < 10_000_000; i++) {
      const start = performance.now();
      if (start >= windowEnd) return;
      let conn;
      try {
        const socket = await openConnection(job.path, job.target);
        if (info.protocol === undefined && socket.getProtocol) {
          info.protocol = socket.getProtocol();
          info.cipher = socket.getCipher()?.name;
          const eph = socket.getEphemeralKeyInfo?.();
          info.keyExchange = eph && eph.name ? eph.name : eph?.type;
          info.resumed = socket.isSessionReused();
        }
        conn = new HttpConn(socket);
        const res = await conn.request(request);
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      } catch (err) {
        errors++;
        firstError ??= String(err?.message ?? err);
        conn?.destroy();
        // Do not spin on a refused connection.
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      conn.destroy();
      const end = performance.now();
      if (start >= windowStart && end <= windowEnd && n < MAX_SAMPLES) lat[n++] = end - start;
    }
  };
  await Promise.all(Array.from({ length: job.conns }, loop));
  process.send({ type: 'result', count: n, latencies: lat.slice(0, n), errors, firstError, windowMs: durationMs, info });
  setTimeout(() => process.exit(0), 50);
}

const SSE_EVENT_END = Buffer.from('\n\n');

async function sse() {
  const socket = await openConnection(job.path, job.target);
  process.send({ type: 'ready' });
  await go;
  const delays = [];
  const eventsPerRead = [];
  let headerDone = false;
  let raw = Buffer.alloc(0);
  let text = '';
  let seqExpected = 0;
  let outOfOrder = 0;
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`SSE stream not complete after ${job.timeoutMs} ms (${delays.length} events)`)), job.timeoutMs);
    socket.on('data', (chunk) => {
      const now = process.hrtime.bigint();
      raw = raw.length ? Buffer.concat([raw, chunk]) : chunk;
      if (!headerDone) {
        const end = raw.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = raw.latin1Slice(0, end).toLowerCase();
        if (!head.startsWith('http/1.1 200')) {
          reject(new Error(`SSE: ${head.split('\r\n')[0]}`));
          return;
        }
        if (!head.includes('transfer-encoding: chunked')) {
          reject(new Error('SSE: expected a chunked response'));
          return;
        }
        headerDone = true;
        raw = raw.subarray(end + 4);
      }
      // De-chunk what is complete.
      let pos = 0;
      let finished = false;
      for (let guard = 0; guard < 100_000; guard++) {
        const lineEnd = raw.indexOf('\r\n', pos);
        if (lineEnd === -1) break;
        const size = parseInt(raw.latin1Slice(pos, lineEnd), 16);
        if (size === 0) {
          finished = true;
          pos = lineEnd + 2;
          break;
        }
        if (raw.length < lineEnd + 2 + size + 2) break;
        text += raw.toString('utf8', lineEnd + 2, lineEnd + 2 + size);
        pos = lineEnd + 2 + size + 2;
      }
      raw = raw.subarray(pos);
      // Complete events in this read.
      let events = 0;
      for (let guard = 0; guard < 100_000; guard++) {
        const end = text.indexOf('\n\n');
        if (end === -1) break;
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (!data) continue;
        const ev = JSON.parse(data.slice(6));
        if (ev.seq !== seqExpected) outOfOrder++;
        seqExpected = ev.seq + 1;
        delays.push(Number(now - BigInt(ev.t)) / 1e6);
        events++;
      }
      if (events > 0) eventsPerRead.push(events);
      if (finished) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (delays.length < job.events) reject(new Error(`SSE: connection closed after ${delays.length} events`));
    });
    socket.write(`GET /sse?n=${job.events}&interval=${job.intervalMs}&phase=${job.phaseMs ?? 0} HTTP/1.1\r\nHost: ${job.target.hostHeader}\r\nAccept: text/event-stream\r\n\r\n`);
  });
  await done;
  socket.destroy();
  const batchedReads = eventsPerRead.filter((n) => n > 1).length;
  process.send({ type: 'result', delays: Float64Array.from(delays), events: delays.length, batchedReads, maxEventsPerRead: Math.max(0, ...eventsPerRead), outOfOrder });
  setTimeout(() => process.exit(0), 50);
}

async function idle() {
  const conns = [];
  let failed = 0;
  let firstError;
  await pool(job.conns, job.openConcurrency ?? 32, async () => {
    try {
      conns.push(new HttpConn(await openConnection(job.path, job.target, 30_000)));
    } catch (err) {
      failed++;
      firstError ??= String(err?.message ?? err);
    }
  });
  process.send({ type: 'ready', opened: conns.length, failed, firstError });
  await probeAsked;
  const request = jsonRpcRequest(job.target.hostHeader);
  let ok = 0;
  let bad = 0;
  const lat = [];
  await pool(conns.length, 64, async (i) => {
    const start = performance.now();
    try {
      const res = await Promise.race([conns[i].request(request), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 20_000))]);
      if (res.status === 200) ok++;
      else bad++;
      lat.push(performance.now() - start);
    } catch {
      bad++;
    }
  });
  process.send({ type: 'probed', ok, failed: bad, latencies: Float64Array.from(lat) });
  // The connections stay open until the parent says {type:'exit'} (handled above) or goes away.
}
