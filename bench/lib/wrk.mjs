// The cross-check: wrk (C, from Debian) against the direct and nginx paths. If a much cheaper generator gets
// about the same throughput as the Node.js generator, the Node.js generator was not what limited those paths.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cpuMeter, round, sleep } from './system.mjs';

function parseMs(text) {
  const m = /([\d.]+)(us|ms|s)\b/.exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

export async function runWrk(children, { bin, dir, url, host, conns, durationMs, serverPids, upstreamPid, close = false }) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello from the benchmark' } } });
  const script = path.join(dir, close ? 'post-close.lua' : 'post.lua');
  await writeFile(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Host"] = "${host}"\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Accept"] = "application/json, text/event-stream"\n${close ? 'wrk.headers["Connection"] = "close"\n' : ''}`,
  );
  const seconds = Math.max(2, Math.round(durationMs / 1000) + 1);
  const child = children.spawnGroup(bin, ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '--timeout', '10s', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] }, 'wrk');
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Skip the first second (connection set-up), measure CPU over the rest while wrk is still running (its
  // /proc entry is gone once it has exited).
  await sleep(1_000);
  const read = cpuMeter({ wrk: [child.pid], server: serverPids, upstream: [upstreamPid] });
  await sleep((seconds - 1) * 1000 - 300);
  const cpu = read();
  delete cpu.detail;
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /\n\s+50%\s+(\S+)/.exec(out)?.[1];
  const p99 = /\n\s+99%\s+(\S+)/.exec(out)?.[1];
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1];
  return { rps: round(rps, 0), p50Ms: p50 ? round(parseMs(p50), 3) : null, p99Ms: p99 ? round(parseMs(p99), 3) : null, non2xx: errors ? Number(errors) : 0, socketErrors: socketErrors ?? null, cpu };
}
