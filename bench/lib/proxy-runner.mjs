// The builtin proxy in a process of its own, started the way the `proxy` command starts it (config file
// through parseProxyConfig, JSON logs on stdout at the config's log_level, default metrics on), but without
// loading the rest of the CLI: its RSS and CPU are the proxy's alone.
// Usage (by run.mjs, with fork()): node proxy-runner.mjs CONFIG_FILE
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// BENCH_PROXY_DIST: another build of the package (a tsc --outDir of a variant) to compare against dist/.
const dist = process.env.BENCH_PROXY_DIST ? path.resolve(process.env.BENCH_PROXY_DIST) : new URL('../../dist/', import.meta.url).pathname;
const { parseProxyConfig } = await import(pathToFileURL(path.join(dist, 'deployment/proxy-config.js')).href);
const { startProxy } = await import(pathToFileURL(path.join(dist, 'proxy/index.js')).href);

const configPath = process.argv[2];
const config = parseProxyConfig(await readFile(configPath, 'utf8'));
const proxy = await startProxy({ config, configPath });
process.send?.({ type: 'ready', port: proxy.address().port });
// Where the memory is (V8 heap vs buffers vs native), for the idle-connections scenario.
process.on('message', (msg) => {
  if (msg?.type === 'memory') process.send?.({ type: 'memory', usage: process.memoryUsage(), open: proxy.openConnections() });
  // Development aid (bench/results/ab/*): a heap snapshot of the proxy as it is now.
  if (msg?.type === 'heapsnapshot') import('node:v8').then((v8) => process.send?.({ type: 'heapsnapshot', file: v8.writeHeapSnapshot(msg.file) }));
});

// BENCH_GC_STATS=1: a summary of the proxy's garbage-collection pauses on stderr when it stops.
const gcPauses = [];
if (process.env.BENCH_GC_STATS) {
  const { PerformanceObserver } = await import('node:perf_hooks');
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (gcPauses.length < 1_000_000) gcPauses.push([e.detail?.kind ?? e.kind, e.duration]);
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => {
    const byKind = new Map();
    for (const [kind, ms] of gcPauses) byKind.set(kind, [...(byKind.get(kind) ?? []), ms]);
    for (const [kind, list] of byKind) {
      list.sort((a, b) => a - b);
      process.stderr.write(`proxy gc kind ${kind}: ${list.length} pauses, p50 ${list[Math.floor(list.length / 2)].toFixed(2)} ms, max ${list.at(-1).toFixed(2)} ms, total ${list.reduce((a, b) => a + b, 0).toFixed(0)} ms\n`);
    }
  });
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(1), 5_000);
  timer.unref();
  await proxy.close();
  process.exit(0);
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
