// The CLI's own costs: `--help` cold start, `init --non-interactive` (manual flow) wall time, and where the
// cold start goes (the isolated import time of each command module and of each heavy dependency).
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { round, summarize } from './system.mjs';

// The CLI processes still running if the harness stops early (Ctrl-C, watchdog) are killed with it.
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs a command to completion (bounded by `timeoutMs`); resolves { ms, code, stdout, stderr }. */
export function timed(cmd, args, { cwd, env, timeoutMs = 30_000, input } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    running.add(child);
    child.once('exit', () => running.delete(child));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - t0, code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

// A CLI run must not see the developer's CI/TTY settings or a deployment in the environment.
function cliEnv() {
  const env = { ...process.env, NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('MCP_TUNNEL_') || k === 'TUNNEL_TOKEN') delete env[k];
  return env;
}

/**
 * Cold starts of what a user runs: `mcp-tunnel --help` and `mcp-tunnel init --help` through the installed
 * command (bin/mcp-tunnel.cjs: Node check, then the code-split bundle in dist/app/), beside Node's own start
 * and `--help` from the image's single-file bundle.
 */
export async function measureHelp(root, runs) {
  const env = cliEnv();
  const main = path.join(root, 'bin/mcp-tunnel.cjs');
  const bundle = path.join(root, 'dist/bundle/mcp-tunnel.mjs');
  const series = { nodeFloor: [], help: [], initHelp: [], helpBundle: [] };
  for (let i = 0; i < runs; i++) {
    series.nodeFloor.push((await timed(process.execPath, ['-e', '0'], { cwd: root, env })).ms);
    const r = await timed(process.execPath, [main, '--help'], { cwd: root, env });
    if (r.code !== 0 || !r.stdout.includes('Usage')) throw new Error(`mcp-tunnel --help failed (${r.code}): ${r.stderr.slice(0, 300)}`);
    series.help.push(r.ms);
    const ih = await timed(process.execPath, [main, 'init', '--help'], { cwd: root, env });
    if (ih.code !== 0 || !ih.stdout.includes('Usage')) throw new Error(`mcp-tunnel init --help failed (${ih.code}): ${ih.stderr.slice(0, 300)}`);
    series.initHelp.push(ih.ms);
    const b = await timed(process.execPath, [bundle, '--help'], { cwd: root, env });
    if (b.code !== 0) throw new Error(`bundle --help failed (${b.code}): ${b.stderr.slice(0, 300)}`);
    series.helpBundle.push(b.ms);
  }
  return Object.fromEntries(Object.entries(series).map(([k, v]) => [k, { ...summarize(v), runs: v.map((x) => round(x, 1)) }]));
}

export const FAKE_TOKEN = Buffer.from(JSON.stringify({ a: 'bench', t: 'bench', s: 'bench' })).toString('base64');

export async function measureInit(root, runs) {
  const env = cliEnv();
  const work = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-bench-init-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  process.on('exit', cleanup);
  try {
    const tokenFile = path.join(work, 'token');
    await writeFile(tokenFile, `${FAKE_TOKEN}\n`, { mode: 0o600 });
    const times = [];
    for (let i = 0; i < runs; i++) {
      const dir = path.join(work, `dep-${i}`);
      const args = [
        path.join(root, 'dist/cli/main.js'),
        'init',
        '--non-interactive',
        '--dir',
        dir,
        '--flow',
        'manual',
        '--tunnel-id',
        'tnl_bench01',
        '--tunnel-domain',
        'abcd1234.tunnel.anthropic.com',
        '--tunnel-token-file',
        tokenFile,
        '--route',
        'docs=http://10.0.0.5:8080',
        '--proxy',
        'builtin',
      ];
      const r = await timed(process.execPath, args, { cwd: work, env, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`init --non-interactive failed (${r.code}): ${(r.stderr || r.stdout).slice(0, 400)}`);
      times.push(r.ms);
    }
    return { ...summarize(times), runs: times.map((x) => round(x, 1)) };
  } finally {
    process.off('exit', cleanup);
    await rm(work, { recursive: true, force: true });
  }
}

// The dependencies the command modules import (bare specifiers, resolved from the repo root).
const DEPENDENCIES = [
  'commander',
  'dockerode',
  '@anthropic-ai/sdk',
  '@modelcontextprotocol/sdk/client/index.js',
  '@modelcontextprotocol/sdk/client/streamableHttp.js',
  '@modelcontextprotocol/sdk/server/mcp.js',
  '@inquirer/prompts',
  '@peculiar/x509',
  'undici',
  'prom-client',
  'execa',
  'yaml',
  'zod',
  'ws',
  'dotenv',
];

/**
 * Isolated import cost: a fresh `node` imports one module and reports how long the import() took (Node's own
 * start is excluded). Shared dependencies are counted in every module that pulls them in, so the figures
 * overlap: they say what each one costs on its own, i.e. what loading it lazily would save at most.
 */
export async function measureImports(root, { runs = 2, budgetMs = 90_000 } = {}) {
  const commandsDir = path.join(root, 'dist/cli/commands');
  const commandFiles = (await readdir(commandsDir)).filter((f) => f.endsWith('.js')).sort();
  const targets = [
    { kind: 'program', name: 'dist/cli/program.js (everything --help loads)', spec: pathToFileURL(path.join(root, 'dist/cli/program.js')).href },
    ...commandFiles.map((f) => ({ kind: 'command', name: `commands/${f}`, spec: pathToFileURL(path.join(commandsDir, f)).href })),
    ...DEPENDENCIES.map((d) => ({ kind: 'dependency', name: d, spec: d })),
  ];
  const started = performance.now();
  const out = [];
  for (const t of targets) {
    if (performance.now() - started > budgetMs) {
      out.push({ ...t, ms: null, note: 'skipped: time budget' });
      continue;
    }
    const samples = [];
    let error;
    for (let i = 0; i < runs; i++) {
      const code = `const t=performance.now(); await import(${JSON.stringify(t.spec)}); process.stdout.write(String(performance.now()-t));`;
      const r = await timed(process.execPath, ['--input-type=module', '-e', code], { cwd: root, env: cliEnv(), timeoutMs: 30_000 });
      if (r.code !== 0) {
        error = r.stderr.split('\n').find((l) => l.trim()) ?? `exit ${r.code}`;
        break;
      }
      samples.push(Number(r.stdout));
    }
    out.push({ kind: t.kind, name: t.name, ms: samples.length ? round(Math.min(...samples), 1) : null, ...(error ? { error } : {}) });
  }
  return out;
}
