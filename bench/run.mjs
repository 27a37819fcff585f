#!/usr/bin/env node
// `npm run bench`: what the builtin proxy and the CLI cost, measured in one run against nginx and against no
// proxy at all. Everything runs on 127.0.0.1; every process the harness starts is killed when it ends, even on
// failure; every loop is bounded in count and time.
//
//   npm run bench                         full run (~3 min): writes bench/results/latest.{json,md},
//                                          docs/benchmarks.md (results section) and docs/benchmarks.svg
//   node bench/run.mjs --quick            short windows, results/ only (docs untouched)
//   node bench/run.mjs --only throughput,sse   (throughput|handshake|sse|idle|cli|wrk), results/ only
//   options: --duration MS --warmup MS --generators N --no-wrk --no-go --docs (write docs even for a partial run)
//            --paths direct,nginx,tunnel,go --conns 1,16,64 --goref DIR (the Go peer's sources) --idle-conns N --proxy-node-options "--cpu-prof ..."
//   node bench/run.mjs --render bench/results/latest.json   re-renders docs/ from a saved run (no measuring)
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { measureHelp, measureImports, measureInit } from './lib/cli.mjs';
import { ensureNginx, freePort, startNginx } from './lib/nginx.mjs';
import { renderMarkdown, renderSvg, updateDocs } from './lib/report.mjs';
import { Children, childPids, cpuMeter, loadAvg, nextMessage, round, rssBytes, sleep, summarize, cpuSeconds } from './lib/system.mjs';
import { runWrk } from './lib/wrk.mjs';
// The same network guard as the tests, here and in every node process the bench starts.
import '../test/guard/net-guard.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${path.join(HERE, '..', 'test', 'guard', 'net-guard.mjs')}`.trim();
const ROOT = path.resolve(HERE, '..');
const LIB = path.join(HERE, 'lib');
const OVERALL_LIMIT_MS = 12 * 60_000;

// ---------------------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  if (i !== -1 && argv[i + 1] !== undefined) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : dflt;
};
const QUICK = flag('quick');
const ALL = ['throughput', 'handshake', 'sse', 'idle', 'cli', 'wrk'];
const ONLY = opt('only', undefined)?.split(',').map((s) => s.trim()).filter(Boolean);
const parts = new Set(ONLY ?? ALL);
if (flag('no-wrk')) parts.delete('wrk');
const FULL = !QUICK && ONLY === undefined;
const WRITE_DOCS = FULL || flag('docs');
const DURATION_MS = Number(opt('duration', QUICK ? 2_000 : 5_000));
const WARMUP_MS = Number(opt('warmup', QUICK ? 500 : 1_000));
const GENERATORS = Number(opt('generators', 2));
const CONCURRENCY = [1, 16, 64];
const PATHS = ['direct', 'nginx', 'tunnel', 'go'];
const SSE_EVENTS = QUICK ? 150 : 1000;
const SSE_INTERVAL_MS = 10;
const IDLE_CONNS = Number(opt('idle-conns', 1000));
const HELP_RUNS = QUICK ? 3 : 9;
const INIT_RUNS = QUICK ? 1 : 3;
// e.g. --proxy-node-options "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the proxy under load.
const PROXY_EXEC_ARGV = opt('proxy-node-options', '').split(' ').filter(Boolean);
const ONLY_PATHS = opt('paths', undefined)?.split(',');
const PROXY_LOG_LEVEL = opt('proxy-log-level', 'info');
const ONLY_CONNS = opt('conns', undefined)?.split(',').map(Number);

const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const children = new Children();
const watchdog = setTimeout(() => {
  log(`overall time limit (${OVERALL_LIMIT_MS / 60_000} min) reached: stopping everything`);
  children.killAllSync();
  process.exit(3);
}, OVERALL_LIMIT_MS);
watchdog.unref();
process.on('uncaughtException', (err) => {
  log(`uncaught: ${err?.stack ?? err}`);
  children.killAllSync();
  process.exit(1);
});

// ---------------------------------------------------------------------------------------------------------
// Machine

function machine(nginx) {
  const cpus = os.cpus();
  let kernel = os.release();
  let distro = '';
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    distro = '';
  }
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${distro} (Linux ${kernel})`.trim(),
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    nginx: nginx ? `${nginx.version} (OpenSSL ${nginx.openssl})` : null,
    loadAvgAtStart: loadAvg(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures: certificates, upstream, nginx, proxy

const DOMAIN = 'abcd1234.tunnel.example.com';
const ROUTE_HOST = `mcp.${DOMAIN}`;

async function makePki(dir) {
  const { createCa, issueServerCert } = await import(path.join(ROOT, 'dist/pki/index.js'));
  const ca = await createCa();
  const server = await issueServerCert({ ca, domain: DOMAIN });
  const files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
  await writeFile(files.ca, ca.certPem);
  await writeFile(files.cert, server.certPem);
  await writeFile(files.key, server.keyPem, { mode: 0o600 });
  return { ...files, caPem: ca.certPem };
}

async function startUpstream() {
  const child = children.fork(path.join(LIB, 'upstream.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, 'upstream');
  const { port } = await nextMessage(child, 'ready', 10_000, 'upstream');
  return { child, port };
}

function proxyConfigYaml({ listen, upstreamPort, pki, admin = '127.0.0.1:0' }) {
  return [
    `listen_addr: "${listen}"`,
    `log_level: ${PROXY_LOG_LEVEL}`,
    'shutdown_timeout: 2s',
    `tunnel_domain: ${DOMAIN}`,
    'tls:',
    `  cert_file: ${pki.cert}`,
    `  key_file: ${pki.key}`,
    'routes:',
    `  mcp: "http://127.0.0.1:${upstreamPort}"`,
    'upstream:',
    '  allowed_ips: ["127.0.0.1/32"]',
    'admin:',
    `  listen_addr: "${admin}"`,
    '',
  ].join('\n');
}

/** Counts the proxy's log lines (its stdout is a pipe, as in a container) without keeping them. */
function drainLogs(child, stats) {
  let tail = '';
  // Development aid: BENCH_PROXY_STDOUT_FILE=F keeps a copy of everything the proxy wrote (e.g. --trace-gc).
  const copy = process.env.BENCH_PROXY_STDOUT_FILE ? createWriteStream(process.env.BENCH_PROXY_STDOUT_FILE, { flags: 'a' }) : undefined;
  child.stdout.on('data', (chunk) => {
    copy?.write(chunk);
    const text = tail + chunk.toString('utf8');
    const lines = text.split('\n');
    tail = lines.pop();
    stats.lines += lines.length;
    stats.bytes += chunk.length;
    for (const line of lines) {
      if (line.includes('"level":"warn"') || line.includes('"level":"error"')) {
        stats.warnings++;
        if (stats.samples.length < 5) stats.samples.push(line.slice(0, 300));
      }
      if (stats.onLine) stats.onLine(line);
    }
  });
}

/** The builtin proxy via bench/lib/proxy-runner.mjs (startProxy only) or the production bundle entry. */
async function startProxy(dir, upstreamPort, pki, entry = 'lean') {
  const logStats = { lines: 0, bytes: 0, warnings: 0, samples: [] };
  if (entry === 'lean') {
    const config = path.join(dir, 'proxy-lean.yaml');
    await writeFile(config, proxyConfigYaml({ listen: '127.0.0.1:0', upstreamPort, pki }));
    const child = children.fork(path.join(LIB, 'proxy-runner.mjs'), [config], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: PROXY_EXEC_ARGV }, 'proxy');
    drainLogs(child, logStats);
    const { port } = await nextMessage(child, 'ready', 20_000, 'proxy');
    return { child, port, logStats, entry };
  }
  // entry === 'bundle': exactly what the builtin image runs (node /app/mcp-proxy.cjs proxy --config F).
  const port = await freePort();
  const config = path.join(dir, 'proxy-bundle.yaml');
  await writeFile(config, proxyConfigYaml({ listen: `127.0.0.1:${port}`, upstreamPort, pki }));
  const child = children.track(spawn(process.execPath, [...PROXY_EXEC_ARGV, path.join(ROOT, 'dist/bundle/mcp-proxy.cjs'), 'proxy', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] }), { name: 'proxy-bundle' });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bundled proxy: no "proxy listening" within 30 s')), 30_000);
    logStats.onLine = (line) => {
      if (line.includes('"msg":"proxy listening"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.once('exit', (code) => reject(new Error(`bundled proxy exited (${code})`)));
  });
  drainLogs(child, logStats);
  await ready;
  logStats.onLine = undefined;
  return { child, port, logStats, entry };
}

/**
 * The Go peer (../shared/peers/goref: stdlib + gorilla/websocket, the same wire protocol and config file),
 * built offline into the bench's temporary directory (never into the repository). build.sh installs Go and
 * gorilla/websocket from Debian when they are missing. Null when it cannot be built (its rows are skipped).
 */
function buildGoref(dir) {
  if (flag('no-go')) return null;
  const candidates = [opt('goref', undefined), process.env.BENCH_GOREF_DIR, path.resolve(ROOT, '../shared/peers/goref'), path.resolve(ROOT, '../../shared/peers/goref')].filter(Boolean);
  const src = candidates.find((d) => existsSync(path.join(d, 'build.sh')));
  if (!src) {
    log('Go peer: sources not found (--goref DIR): its rows are skipped');
    return null;
  }
  const out = path.join(dir, 'goref');
  log(`Go peer: building ${src} -> ${out}`);
  const r = spawnSync('bash', [path.join(src, 'build.sh'), out], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0 || !existsSync(out)) {
    log(`Go peer: build failed (${(r.stderr || r.stdout || '').trim().split('\n').slice(-2).join(' ')}): its rows are skipped`);
    return null;
  }
  log(`  ${r.stdout.trim().split('\n').at(-1)}`);
  return { bin: out, version: /go version (\S+)/.exec(r.stdout)?.[1] ?? 'go' };
}

async function startGo(dir, upstreamPort, pki, bin) {
  const port = await freePort();
  const config = path.join(dir, `goref-${port}.yaml`);
  await writeFile(config, proxyConfigYaml({ listen: `127.0.0.1:${port}`, upstreamPort, pki }));
  const child = children.track(spawn(bin, ['-config', config], { stdio: ['ignore', 'pipe', 'inherit'] }), { name: 'goref' });
  const logStats = { lines: 0, bytes: 0, warnings: 0, samples: [] };
  drainLogs(child, logStats);
  const net = await import('node:net');
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('Go peer: not listening within 20 s');
    await sleep(100);
  }
  return { child, port, logStats, entry: 'go' };
}

// ---------------------------------------------------------------------------------------------------------
// Generators

function split(total, parts) {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/**
 * Runs one job on `gens` generator processes (connections split between them) and measures the CPU of every
 * process involved over the measured window.
 */
async function runJob(job, { gens, serverPids, upstreamPid, warmupMs = WARMUP_MS, durationMs = DURATION_MS, timeoutMs }) {
  const shares = job.kind === 'sse' ? [1] : split(job.conns, gens);
  const procs = shares.map((conns, i) => children.fork(path.join(LIB, 'generator.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, `generator-${i}`));
  try {
    const readies = procs.map((p, i) => nextMessage(p, 'ready', 60_000, `generator ${i} (${job.kind} ${job.path})`));
    procs.forEach((p, i) => p.send({ type: 'job', job: { ...job, conns: shares[i] } }));
    await Promise.all(readies);
    const results = procs.map((p, i) => nextMessage(p, 'result', timeoutMs ?? warmupMs + durationMs + 60_000, `generator ${i} (${job.kind} ${job.path})`));
    const load = loadAvg();
    for (const p of procs) p.send({ type: 'go', warmupMs, durationMs });
    await sleep(warmupMs);
    const read = cpuMeter({ generators: procs.map((p) => p.pid), server: serverPids, upstream: [upstreamPid] });
    await sleep(durationMs);
    const cpu = read();
    const out = await Promise.all(results);
    return { results: out, cpu, loadAvg: load };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  }
}

function serverPidsFor(pathName, env) {
  if (pathName === 'nginx') return [env.nginx.child.pid, ...childPids(env.nginx.child.pid)];
  if (pathName === 'tunnel') return [env.proxy.child.pid];
  if (pathName === 'go') return [env.go.child.pid];
  return [];
}

function targetFor(pathName, env) {
  if (pathName === 'direct') return { host: '127.0.0.1', port: env.upstream.port, hostHeader: ROUTE_HOST };
  if (pathName === 'nginx') return { host: '127.0.0.1', port: env.nginx.port, servername: ROUTE_HOST, ca: env.pki.caPem, hostHeader: ROUTE_HOST };
  const port = pathName === 'go' ? env.go.port : env.proxy.port;
  return { wsUrl: `ws://127.0.0.1:${port}/`, servername: ROUTE_HOST, ca: env.pki.caPem, hostHeader: ROUTE_HOST };
}

/** Whether a path can be measured in this run. */
function available(p, env) {
  if (p === 'nginx') return Boolean(env.nginx);
  if (p === 'go') return Boolean(env.go);
  return true;
}

function mergeLatencies(results) {
  const total = results.reduce((s, r) => s + r.latencies.length, 0);
  const all = new Float64Array(total);
  let off = 0;
  for (const r of results) {
    all.set(r.latencies, off);
    off += r.latencies.length;
  }
  return all;
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios

async function throughput(env) {
  const rows = [];
  for (const c of CONCURRENCY) {
    if (ONLY_CONNS && !ONLY_CONNS.includes(c)) continue;
    for (const p of PATHS) {
      if (!available(p, env)) continue;
      if (ONLY_PATHS && !ONLY_PATHS.includes(p)) continue;
      log(`throughput: ${p}, ${c} connection(s), ${DURATION_MS} ms`);
      const gens = c === 1 ? 1 : GENERATORS;
      const { results, cpu, loadAvg: load } = await runJob(
        { kind: 'throughput', path: p, target: targetFor(p, env), conns: c },
        { gens, serverPids: serverPidsFor(p, env), upstreamPid: env.upstream.child.pid },
      );
      const lat = mergeLatencies(results);
      const count = results.reduce((s, r) => s + r.count, 0);
      const errors = results.reduce((s, r) => s + r.errors + r.badStatus, 0);
      const rps = count / (DURATION_MS / 1000);
      const row = { path: p, conns: c, generators: gens, rps: round(rps, 0), perProxyCpuSecond: cpu.server ? round(rps / (cpu.server / 100), 0) : null, latencyMs: summarize(lat), errors, cpu, loadAvg: load };
      const sd = cpu.detail?.server;
      if (sd && count) row.serverPerRequest = { cpuUs: round(((sd.userPct + sd.sysPct) / 100) * (DURATION_MS / 1000) * 1e6 / count, 0), userUs: round((sd.userPct / 100) * (DURATION_MS / 1000) * 1e6 / count, 0), sysUs: round((sd.sysPct / 100) * (DURATION_MS / 1000) * 1e6 / count, 0), reads: round(sd.syscr / count, 2), writes: round(sd.syscw / count, 2) };
      log(`  ${row.rps} req/s, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms; CPU % of a core: generators ${cpu.generators}, ${p === 'direct' ? '-' : p} ${cpu.server}, upstream ${cpu.upstream}; machine busy ${cpu.machineBusyPct}%`);
      if (row.serverPerRequest) log(`  per request in ${p}: ${JSON.stringify(row.serverPerRequest)}`);
      rows.push(row);
    }
  }
  return rows;
}

async function handshakes(env) {
  const rows = [];
  const conc = 16;
  // The third row: the same tunnel handshake with the client offering X25519 only, the key exchange nginx
  // (OpenSSL 3.0, no ML-KEM) ends up with; Node.js 24 on both ends otherwise agrees on X25519MLKEM768.
  const variants = [
    { path: 'nginx', variant: 'nginx' },
    { path: 'tunnel', variant: 'tunnel' },
    { path: 'tunnel', variant: 'tunnel-x25519', tlsOptions: { ecdhCurve: 'X25519' } },
    { path: 'go', variant: 'go' },
  ];
  for (const { path: p, variant, tlsOptions } of variants) {
    if (!available(p, env)) continue;
    if (ONLY_PATHS && !ONLY_PATHS.includes(p)) continue;
    log(`handshakes: ${variant}, new connection per request, ${conc} concurrent`);
    const { results, cpu, loadAvg: load } = await runJob(
      { kind: 'handshake', path: p, target: { ...targetFor(p, env), ...(tlsOptions ? { tlsOptions } : {}) }, conns: conc },
      { gens: GENERATORS, serverPids: serverPidsFor(p, env), upstreamPid: env.upstream.child.pid },
    );
    const lat = mergeLatencies(results);
    const count = results.reduce((s, r) => s + r.count, 0);
    const errors = results.reduce((s, r) => s + r.errors, 0);
    const row = {
      path: p,
      variant,
      concurrency: conc,
      perSecond: round(count / (DURATION_MS / 1000), 0),
      perProxyCpuSecond: cpu.server ? round(count / (DURATION_MS / 1000) / (cpu.server / 100), 0) : null,
      latencyMs: summarize(lat),
      errors,
      firstError: results.find((r) => r.firstError)?.firstError,
      tls: results[0].info,
      cpu,
      loadAvg: load,
    };
    log(`  ${row.perSecond} handshakes/s (${row.tls?.protocol}, ${row.tls?.keyExchange}), p50 ${row.latencyMs.p50} ms; CPU: generators ${cpu.generators}, server ${cpu.server}`);
    rows.push(row);
  }
  return rows;
}

async function sse(env) {
  // The three streams run side by side (one generator process each), staggered within the 10 ms interval so
  // their events do not wake everything at the same instant: a stall of this shared machine then hits all
  // paths alike instead of whichever path happened to be measured at that moment.
  const paths = PATHS.filter((p) => available(p, env) && (!ONLY_PATHS || ONLY_PATHS.includes(p) || p === 'direct'));
  const serverPids = [...new Set(paths.flatMap((p) => serverPidsFor(p, env)))];
  let measured;
  for (const [events, label] of [
    [50, 'warm-up'],
    [SSE_EVENTS, 'measured'],
  ]) {
    log(`sse (${label}): ${paths.join(', ')} side by side, ${events} events every ${SSE_INTERVAL_MS} ms each`);
    const gens = paths.map((p) => children.fork(path.join(LIB, 'generator.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, `sse-${p}`));
    try {
      const ready = gens.map((g, i) => nextMessage(g, 'ready', 30_000, `sse generator ${paths[i]}`));
      paths.forEach((p, i) =>
        gens[i].send({
          type: 'job',
          job: { kind: 'sse', path: p, target: targetFor(p, env), events, intervalMs: SSE_INTERVAL_MS, phaseMs: round((i * SSE_INTERVAL_MS) / paths.length, 1), timeoutMs: events * SSE_INTERVAL_MS + 30_000 },
        }),
      );
      await Promise.all(ready);
      const results = gens.map((g, i) => nextMessage(g, 'result', events * SSE_INTERVAL_MS + 40_000, `sse generator ${paths[i]}`));
      const read = cpuMeter({ generators: gens.map((g) => g.pid), server: serverPids, upstream: [env.upstream.child.pid] });
      for (const g of gens) g.send({ type: 'go', warmupMs: 0, durationMs: 0 });
      const out = await Promise.all(results);
      measured = { out, cpu: read() };
    } finally {
      for (const g of gens) if (g.exitCode === null) g.kill('SIGKILL');
    }
  }
  const rows = paths.map((p, i) => {
    const r = measured.out[i];
    const delays = summarize(r.delays);
    const held = Array.from(r.delays).filter((d) => d >= SSE_INTERVAL_MS).length;
    log(`  ${p}: one-way delay p50 ${delays.p50} ms, p99 ${delays.p99} ms, max ${delays.max} ms; reads with >1 event: ${r.batchedReads}; held >= ${SSE_INTERVAL_MS} ms: ${held}`);
    return { path: p, events: r.events, delayMs: delays, batchedReads: r.batchedReads, maxEventsPerRead: r.maxEventsPerRead, heldBackEvents: held, outOfOrder: r.outOfOrder, phaseMs: round((i * SSE_INTERVAL_MS) / paths.length, 1), cpu: measured.cpu };
  });
  const direct = rows.find((r) => r.path === 'direct');
  for (const row of rows) {
    row.addedMs = direct
      ? { p50: round(row.delayMs.p50 - direct.delayMs.p50, 3), p99: round(row.delayMs.p99 - direct.delayMs.p99, 3), max: round(row.delayMs.max - direct.delayMs.max, 3) }
      : null;
  }
  return rows;
}

async function askMemory(child) {
  const reply = nextMessage(child, 'memory', 5_000, 'proxy memory');
  child.send({ type: 'memory' });
  const { usage, open } = await reply;
  return { ...Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, round(v / 1e6, 1)])), openConnections: open };
}

/** Node's own floor for the idle test (bench/lib/tls-floor.mjs): TLS sessions over a JS stream, nothing else. */
async function startTlsFloor(pki) {
  const child = children.fork(path.join(LIB, 'tls-floor.mjs'), [pki.cert, pki.key], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }, 'tls-floor');
  const { port } = await nextMessage(child, 'ready', 20_000, 'tls floor');
  return { child, port, logStats: { warnings: 0 }, entry: 'floor' };
}

async function idle(env, entry) {
  log(`idle: fresh proxy (${entry} entry), ${IDLE_CONNS} tunnel connections`);
  const proxy =
    entry === 'go'
      ? await startGo(env.dir, env.upstream.port, env.pki, env.goBin.bin)
      : entry === 'floor'
        ? await startTlsFloor(env.pki)
        : await startProxy(env.dir, env.upstream.port, env.pki, entry);
  const gens = [];
  try {
    await sleep(1_500);
    const rssBaseline = rssBytes(proxy.child.pid);
    const target = { wsUrl: `ws://127.0.0.1:${proxy.port}/`, host: '127.0.0.1', port: proxy.port, servername: ROUTE_HOST, ca: env.pki.caPem, hostHeader: ROUTE_HOST };
    const shares = split(IDLE_CONNS, GENERATORS);
    const cpu0 = cpuSeconds(proxy.child.pid);
    const t0 = performance.now();
    for (const [i, n] of shares.entries()) {
      const g = children.fork(path.join(LIB, 'generator.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, `idle-generator-${i}`);
      gens.push(g);
      // The floor has no WebSocket: the same client speaks TLS straight over TCP to it (its 'nginx' path).
      g.send({ type: 'job', job: { kind: 'idle', path: entry === 'floor' ? 'nginx' : 'tunnel', target, conns: n, openConcurrency: 16 } });
    }
    const readies = await Promise.all(gens.map((g, i) => nextMessage(g, 'ready', 120_000, `idle generator ${i}`)));
    const openMs = performance.now() - t0;
    const openCpu = (cpuSeconds(proxy.child.pid) ?? 0) - (cpu0 ?? 0);
    const opened = readies.reduce((s, r) => s + r.opened, 0);
    const failed = readies.reduce((s, r) => s + r.failed, 0);
    log(`  opened ${opened} (failed ${failed}) in ${round(openMs / 1000, 1)} s`);
    await sleep(2_000);
    const rssSamples = [];
    const meter = cpuMeter({ proxy: [proxy.child.pid] });
    for (let i = 0; i < 5; i++) {
      await sleep(1_000);
      rssSamples.push(rssBytes(proxy.child.pid));
    }
    const idleCpu = meter();
    const rssHolding = Math.max(...rssSamples);
    const memory = entry === 'lean' ? await askMemory(proxy.child) : undefined;
    const probes = gens.map((g, i) => nextMessage(g, 'probed', 120_000, `idle generator ${i} probe`));
    for (const g of gens) g.send({ type: 'probe' });
    const probed = await Promise.all(probes);
    const rssAfterRequests = rssBytes(proxy.child.pid);
    const ok = probed.reduce((s, r) => s + r.ok, 0);
    const probeFailed = probed.reduce((s, r) => s + r.failed, 0);
    const row = {
      entry,
      entryCommand:
        entry === 'lean'
          ? 'node bench/lib/proxy-runner.mjs (startProxy, default metrics on)'
          : entry === 'go'
            ? `Go peer (goref, ${env.goBin.version})`
            : entry === 'floor'
              ? "Node's floor: bare TLS sessions over a JS stream (bench/lib/tls-floor.mjs)"
              : 'node dist/bundle/mcp-proxy.cjs proxy --config F (the builtin image entry)',
      connections: IDLE_CONNS,
      opened,
      openFailed: failed,
      firstOpenError: readies.find((r) => r.firstError)?.firstError,
      openSeconds: round(openMs / 1000, 2),
      openHandshakesPerSecond: round(opened / (openMs / 1000), 0),
      proxyCpuSecondsToOpen: round(openCpu, 2),
      rssBaselineMB: round(rssBaseline / 1e6, 1),
      rssHoldingMB: round(rssHolding / 1e6, 1),
      rssAfterRequestsMB: round(rssAfterRequests / 1e6, 1),
      perConnectionKB: round((rssHolding - rssBaseline) / IDLE_CONNS / 1e3, 1),
      memoryMB: memory,
      idleCpuPct: idleCpu.proxy,
      idleWindowSeconds: idleCpu.seconds,
      answered: ok,
      unanswered: probeFailed,
      requestLatencyMs: summarize(mergeLatencies(probed)),
      proxyOpenConnectionsLogWarnings: proxy.logStats.warnings,
    };
    if (memory) log(`  memoryUsage (MB): ${JSON.stringify(memory)}`);
    log(`  RSS ${row.rssBaselineMB} MB -> ${row.rssHoldingMB} MB holding (${row.perConnectionKB} KB/conn), idle CPU ${row.idleCpuPct}%, answered ${ok}/${opened}`);
    return row;
  } finally {
    for (const g of gens) if (g.exitCode === null) g.kill('SIGKILL');
    await children.stop(proxy.child);
  }
}

// ---------------------------------------------------------------------------------------------------------

function ensureWrk() {
  const has = () => spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim();
  let bin = has();
  if (!bin && process.getuid?.() === 0) {
    log('wrk not found: installing it from Debian (apt-get) for the cross-check');
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'wrk'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'ignore', timeout: 240_000 });
    bin = has();
  }
  return bin || null;
}

async function main() {
  const started = Date.now();
  const results = { version: 1, startedAt: new Date().toISOString(), options: { quick: QUICK, parts: [...parts], durationMs: DURATION_MS, warmupMs: WARMUP_MS, generators: GENERATORS } };
  log(`load average at start: ${loadAvg().join(' ')} on ${os.cpus().length} cores`);
  const needsServers = ['throughput', 'handshake', 'sse', 'idle', 'wrk'].some((p) => parts.has(p));
  let nginxBin;
  if (needsServers) {
    try {
      nginxBin = ensureNginx(log);
    } catch (err) {
      log(`nginx unavailable: ${err.message} (nginx rows are skipped)`);
    }
  }
  results.machine = machine(nginxBin);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-bench-'));
  // Also on Ctrl-C or a watchdog exit (the processes are killed first: their handler was registered first).
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const env = { dir };
  try {
    if (needsServers) {
      env.pki = await makePki(dir);
      env.upstream = await startUpstream();
      if (nginxBin) env.nginx = await startNginx(children, { bin: nginxBin.bin, dir, upstreamPort: env.upstream.port, certFile: env.pki.cert, keyFile: env.pki.key });
      if (['throughput', 'handshake', 'sse'].some((p) => parts.has(p))) env.proxy = await startProxy(dir, env.upstream.port, env.pki, 'lean');
      env.goBin = buildGoref(dir);
      results.machine.go = env.goBin?.version ?? null;
      if (env.goBin && ['throughput', 'handshake', 'sse'].some((p) => parts.has(p))) env.go = await startGo(dir, env.upstream.port, env.pki, env.goBin.bin);
      results.setup = {
        certificate: 'RSA-2048 server certificate from src/pki (issueServerCert), the same file for nginx and the builtin proxy',
        nginx: nginxBin ? { worker_processes: 1, access_log: 'on (file)', proxy_buffering: 'off', upstream_keepalive: 128 } : null,
        proxy: { log_level: 'info (2 JSON lines per request, stdout is a pipe)', entry: 'bench/lib/proxy-runner.mjs: startProxy from dist/proxy' },
      };
    }
    // Streaming first, while the proxy is fresh: what it measures is the per-event path, not the garbage the
    // load tests leave behind for the collector.
    if (parts.has('sse')) results.sse = await sse(env);
    if (parts.has('throughput')) results.throughput = await throughput(env);
    if (parts.has('wrk') && env.nginx) {
      const wrk = ensureWrk();
      if (wrk) {
        results.wrk = [];
        for (const p of ['direct', 'nginx']) {
          log(`wrk cross-check: ${p}, 64 connections`);
          const r = await runWrk(children, { bin: wrk, dir, url: p === 'direct' ? `http://127.0.0.1:${env.upstream.port}/mcp` : `https://127.0.0.1:${env.nginx.port}/mcp`, host: ROUTE_HOST, conns: 64, durationMs: DURATION_MS, serverPids: serverPidsFor(p, env), upstreamPid: env.upstream.child.pid });
          log(`  wrk: ${r.rps} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms; CPU wrk ${r.cpu.wrk}%`);
          results.wrk.push({ path: p, conns: 64, ...r });
        }
        // nginx's handshake rate with a generator that costs far less than Node.js's TLS client.
        log('wrk cross-check: nginx, a new connection per request (Connection: close), 16 connections');
        const h = await runWrk(children, { bin: wrk, dir, url: `https://127.0.0.1:${env.nginx.port}/mcp`, host: ROUTE_HOST, conns: 16, durationMs: DURATION_MS, serverPids: serverPidsFor('nginx', env), upstreamPid: env.upstream.child.pid, close: true });
        log(`  wrk: ${h.rps} handshakes/s; CPU wrk ${h.cpu.wrk}%, nginx ${h.cpu.server}%`);
        results.wrkHandshakes = { path: 'nginx', conns: 16, ...h, perProxyCpuSecond: h.cpu.server ? round(h.rps / (h.cpu.server / 100), 0) : null };
      } else log('wrk unavailable: cross-check skipped');
    }
    if (parts.has('handshake')) results.handshakes = await handshakes(env);
    if (env.proxy) {
      results.proxyLog = { lines: env.proxy.logStats.lines, bytes: env.proxy.logStats.bytes, warnings: env.proxy.logStats.warnings, warningSamples: env.proxy.logStats.samples };
      await children.stop(env.proxy.child);
      env.proxy = undefined;
    }
    if (env.go) {
      await children.stop(env.go.child);
      env.go = undefined;
    }
    if (parts.has('idle')) {
      results.idle = [];
      for (const entry of ['lean', 'bundle', 'floor', ...(env.goBin ? ['go'] : [])]) results.idle.push(await idle(env, entry));
    }
  } finally {
    await children.stopAll();
  }
  try {
    if (parts.has('cli')) {
      log(`cli: --help cold start x${HELP_RUNS}`);
      const help = await measureHelp(ROOT, HELP_RUNS);
      log(`  --help median ${help.help.p50} ms, init --help ${help.initHelp.p50} ms (node -e 0: ${help.nodeFloor.p50} ms, bundle: ${help.helpBundle.p50} ms)`);
      log(`cli: init --non-interactive x${INIT_RUNS}`);
      const init = await measureInit(ROOT, INIT_RUNS);
      log(`  init median ${init.p50} ms`);
      log('cli: isolated import cost of each command module and dependency');
      const imports = await measureImports(ROOT, { runs: QUICK ? 1 : 2 });
      results.cli = { loadAvg: loadAvg(), help, init, imports };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  results.loadAvgAtEnd = loadAvg();
  results.durationSeconds = round((Date.now() - started) / 1000, 1);

  const outDir = path.join(HERE, 'results');
  await mkdir(outDir, { recursive: true });
  const md = renderMarkdown(results);
  await writeFile(path.join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(path.join(outDir, 'latest.md'), md);
  const svg = renderSvg(results);
  if (svg) await writeFile(path.join(outDir, 'latest.svg'), svg);
  if (WRITE_DOCS) {
    if (svg) await writeFile(path.join(ROOT, 'docs/benchmarks.svg'), svg);
    await updateDocs(path.join(ROOT, 'docs/benchmarks.md'), md);
    log('docs/benchmarks.md and docs/benchmarks.svg updated');
  }
  process.stdout.write(md);
  log(`done in ${results.durationSeconds} s; results in bench/results/latest.json`);
}

// --render FILE: re-render the Markdown, the chart and the docs section from a results JSON (no measuring).
async function renderOnly(file) {
  const results = JSON.parse(await readFile(path.resolve(file), 'utf8'));
  const md = renderMarkdown(results);
  const svg = renderSvg(results);
  if (svg) await writeFile(path.join(ROOT, 'docs/benchmarks.svg'), svg);
  await updateDocs(path.join(ROOT, 'docs/benchmarks.md'), md);
  log(`docs/benchmarks.md and docs/benchmarks.svg re-rendered from ${file} (run of ${results.startedAt})`);
}

const RENDER = opt('render', undefined);
(RENDER ? renderOnly(RENDER) : main()).then(
  () => process.exit(0),
  (err) => {
    log(`FAILED: ${err?.stack ?? err}`);
    children.killAllSync();
    process.exit(1);
  },
);
