#!/usr/bin/env node
// Before/after for a proxy change, measured side by side so both builds see the same machine load:
// two proxies (build A and build B) run at the same time, behind the same upstream, each loaded by its own
// two generator processes over WebSocket + inner TLS; the figure compared is each proxy's CPU time per
// request (from /proc), which a shared, noisy machine disturbs far less than req/s.
//
//   # build A from the last commit's source (the working tree is not touched), build B = the working tree:
//   mkdir -p bench/results/base-src
//   git archive HEAD src tsconfig.json tsconfig.build.json | tar -x -C bench/results/base-src
//   npx tsc -p bench/results/base-src/tsconfig.build.json --outDir bench/results/base
//   npm run build
//   node bench/ab.mjs --a bench/results/base --b dist [--conns 64] [--seconds 5] [--reps 5]
//   node bench/ab.mjs --a dist --b dist --b-node-options "--max-semi-space-size=2"   (one build, two settings)
//
// A build must live inside the repository (bench/results/ is git-ignored) so its imports resolve to
// node_modules. Everything is on 127.0.0.1; every process is stopped at the end, even on failure.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Children, nextMessage, procDetail, sleep } from './lib/system.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const LIB = path.join(HERE, 'lib');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i !== -1 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const A = path.resolve(ROOT, opt('a', 'dist'));
const B = path.resolve(ROOT, opt('b', 'dist'));
const CONNS = Math.max(2, Number(opt('conns', 16)));
// Node options of each proxy process (e.g. --a-node-options "--max-semi-space-size=2"): compares settings
// of one build as well as two builds.
const A_NODE_OPTIONS = (opt('a-node-options', '') ?? '').split(' ').filter(Boolean);
const B_NODE_OPTIONS = (opt('b-node-options', '') ?? '').split(' ').filter(Boolean);
const SECONDS = Math.min(30, Math.max(1, Number(opt('seconds', 5))));
const REPS = Math.min(20, Math.max(1, Number(opt('reps', 5))));
const DOMAIN = 'abcd1234.tunnel.example.com';
const HOST = `mcp.${DOMAIN}`;

const children = new Children();
const limit = setTimeout(() => {
  process.stderr.write('ab: time limit reached\n');
  children.killAllSync();
  process.exit(3);
}, (REPS * (SECONDS + 15) + 60) * 1000);
limit.unref();

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-ab-'));
  try {
    const { createCa, issueServerCert } = await import(path.join(ROOT, 'dist/pki/index.js'));
    const ca = await createCa();
    const server = await issueServerCert({ ca, domain: DOMAIN });
    await writeFile(path.join(dir, 'tls.crt'), server.certPem);
    await writeFile(path.join(dir, 'tls.key'), server.keyPem, { mode: 0o600 });
    const up = children.fork(path.join(LIB, 'upstream.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, 'upstream');
    const { port: upstreamPort } = await nextMessage(up, 'ready', 10_000, 'upstream');
    const start = async (name, dist, nodeOptions) => {
      const config = path.join(dir, `${name}.yaml`);
      await writeFile(
        config,
        `listen_addr: "127.0.0.1:0"\nlog_level: info\ntunnel_domain: ${DOMAIN}\ntls:\n  cert_file: ${dir}/tls.crt\n  key_file: ${dir}/tls.key\nroutes:\n  mcp: "http://127.0.0.1:${upstreamPort}"\nupstream:\n  allowed_ips: ["127.0.0.1/32"]\nadmin:\n  listen_addr: "127.0.0.1:0"\n`,
      );
      // Logs go to a pipe that is read, as a container's stdout is read by Docker's log driver: their cost
      // (one write per flush, a reader woken) is part of the proxy's cost per request.
      const child = children.fork(path.join(LIB, 'proxy-runner.mjs'), [config], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: nodeOptions, env: { ...process.env, BENCH_PROXY_DIST: dist } }, `proxy-${name}`);
      child.stdout.resume();
      const { port } = await nextMessage(child, 'ready', 20_000, `proxy ${name}`);
      return { name, child, target: { wsUrl: `ws://127.0.0.1:${port}/`, servername: HOST, ca: ca.certPem, hostHeader: HOST } };
    };
    const proxies = [await start('A', A, A_NODE_OPTIONS), await start('B', B, B_NODE_OPTIONS)];
    const perRequest = { A: [], B: [] };
    for (let rep = 0; rep < REPS; rep++) {
      const gens = proxies.flatMap((p) =>
        [0, 1].map((i) => ({ p, g: children.fork(path.join(LIB, 'generator.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, `gen-${p.name}-${i}`) })),
      );
      const ready = gens.map(({ g }) => nextMessage(g, 'ready', 60_000, 'generator'));
      for (const { p, g } of gens) g.send({ type: 'job', job: { kind: 'throughput', path: 'tunnel', target: p.target, conns: CONNS / 2 } });
      await Promise.all(ready);
      const results = gens.map(({ g }) => nextMessage(g, 'result', (SECONDS + 60) * 1000, 'generator'));
      for (const { g } of gens) g.send({ type: 'go', warmupMs: 1_000, durationMs: SECONDS * 1000 });
      await sleep(1_000);
      const before = proxies.map((p) => procDetail(p.child.pid));
      await sleep(SECONDS * 1000);
      const after = proxies.map((p) => procDetail(p.child.pid));
      const out = await Promise.all(results);
      proxies.forEach((p, i) => {
        const count = out.filter((_, j) => gens[j].p === p).reduce((s, r) => s + r.count, 0);
        const us = ((after[i].user + after[i].sys - before[i].user - before[i].sys) * 1e6) / Math.max(1, count);
        perRequest[p.name].push(us);
        console.log(`rep ${rep + 1}/${REPS} ${p.name}: ${Math.round(count / SECONDS)} req/s, ${Math.round(us)} µs CPU per request`);
      });
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const a = median(perRequest.A);
    const b = median(perRequest.B);
    // Each repetition loads A and B at the same moment: the ratio within a repetition is the robust figure.
    const ratios = perRequest.B.map((x, i) => x / perRequest.A[i]);
    console.log(
      `\nA = ${path.relative(ROOT, A) || '.'}: ${Math.round(a)} µs/request (median)\nB = ${path.relative(ROOT, B) || '.'}: ${Math.round(b)} µs/request (median)\n` +
        `B/A per repetition: ${ratios.map((r) => r.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(3)}`,
    );
  } finally {
    await children.stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`ab: FAILED: ${err?.stack ?? err}\n`);
    children.killAllSync();
    process.exit(1);
  },
);
