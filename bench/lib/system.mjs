// Process management (everything the harness starts is tracked and killed on exit, even on failure) and
// /proc readings (CPU time and RSS per process, whole-machine CPU), plus percentiles.
import { execFileSync, fork, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  CLK_TCK = 100;
}

/** Every child process of the harness. */
export class Children {
  constructor() {
    this.set = new Set();
    const killNow = () => this.killAllSync();
    process.on('exit', killNow);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(sig, () => {
        process.stderr.write(`\nbench: ${sig}, stopping everything it started\n`);
        killNow();
        process.exit(130);
      });
    }
  }

  track(child, { group = false, name = 'child' } = {}) {
    const entry = { child, group, name };
    this.set.add(entry);
    child.once('exit', () => this.set.delete(entry));
    return child;
  }

  fork(script, args = [], options = {}, name = script) {
    return this.track(fork(script, args, { serialization: 'advanced', ...options }), { name });
  }

  /** A non-Node program in its own process group (so its workers go with it). */
  spawnGroup(cmd, args, options = {}, name = cmd) {
    return this.track(spawn(cmd, args, { detached: true, ...options }), { group: true, name });
  }

  static signal(entry, sig) {
    try {
      if (entry.group) process.kill(-entry.child.pid, sig);
      else entry.child.kill(sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, wait up to `graceMs`, then SIGKILL what is left. */
  async stop(child, graceMs = 3_000) {
    const entry = [...this.set].find((e) => e.child === child);
    if (!entry || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    Children.signal(entry, 'SIGTERM');
    const timer = setTimeout(() => Children.signal(entry, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    // A group leader's exit does not prove its workers are gone.
    if (entry.group) Children.signal(entry, 'SIGKILL');
  }

  async stopAll() {
    await Promise.all([...this.set].map((e) => this.stop(e.child)));
  }

  killAllSync() {
    for (const entry of this.set) Children.signal(entry, 'SIGKILL');
  }
}

/** Waits for the first IPC message of `type` (or rejects on exit / timeout). */
export function nextMessage(child, type, timeoutMs, what = type) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg?.type === type) {
        cleanup();
        resolve(msg);
      } else if (msg?.type === 'error') {
        cleanup();
        reject(new Error(`${what}: ${msg.error}`));
      }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`${what}: process exited (${code ?? signal}) before "${type}"`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no "${type}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** CPU seconds (user + system) a process has used so far; undefined when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** { user, sys } CPU seconds and { syscr, syscw } read/write system call counts of a process. */
export function procDetail(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const syscr = Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0);
    const syscw = Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0);
    return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK, syscr, syscw };
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` (e.g. nginx's worker). */
export function childPids(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whole-machine CPU jiffies: { busy, total }. */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * A CPU meter over a window: snapshot() at the start, read() at the end gives, per named group of pids,
 * the CPU used as a percentage of ONE core, plus the machine's busy share of all its cores.
 */
export function cpuMeter(groups) {
  const start = performance.now();
  const m0 = machineCpu();
  const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, pids.map((p) => cpuSeconds(p) ?? 0)]));
  const detail0 = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, pids.map((p) => procDetail(p))]));
  return () => {
    const secs = (performance.now() - start) / 1000;
    const m1 = machineCpu();
    const out = {};
    for (const [k, pids] of Object.entries(groups)) {
      const used = pids.reduce((sum, p, i) => sum + ((cpuSeconds(p) ?? before[k][i]) - before[k][i]), 0);
      out[k] = round((100 * used) / secs, 1);
      // user/system split and read/write system calls (a syscall count per request says what batching does)
      const d = { user: 0, sys: 0, syscr: 0, syscw: 0 };
      pids.forEach((p, i) => {
        const a = detail0[k][i];
        const b = procDetail(p);
        if (!a || !b) return;
        for (const f of Object.keys(d)) d[f] += b[f] - a[f];
      });
      out.detail ??= {};
      out.detail[k] = { userPct: round((100 * d.user) / secs, 1), sysPct: round((100 * d.sys) / secs, 1), syscr: d.syscr, syscw: d.syscw };
    }
    out.machineBusyPct = round((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total), 1);
    out.seconds = round(secs, 2);
    return out;
  };
}

export function round(x, digits = 2) {
  if (x === undefined || x === null || Number.isNaN(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Nearest-rank percentiles of a numeric array. */
export function summarize(values) {
  const a = Float64Array.from(values).sort();
  const n = a.length;
  const pct = (p) => (n === 0 ? null : a[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
  let sum = 0;
  for (const x of a) sum += x;
  return {
    n,
    mean: n ? round(sum / n, 3) : null,
    p50: round(pct(50), 3),
    p90: round(pct(90), 3),
    p99: round(pct(99), 3),
    p999: round(pct(99.9), 3),
    max: n ? round(a[n - 1], 3) : null,
    min: n ? round(a[0], 3) : null,
  };
}

export function loadAvg() {
  return os.loadavg().map((x) => round(x, 2));
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
