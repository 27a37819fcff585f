import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvText, parseEnvFile } from '../../src/deployment/env-file.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { decodeTunnelToken } from '../../src/deployment/validate.js';
import { CLI, REPO_ROOT, runCli } from '../helpers/cli.js';

/**
 * kill -9 at random moments of each writing command; after each kill a re-run of the command succeeds,
 * every live file parses, every pair matches, and no temp file or journal survives the re-run.
 *
 * Bounded: MCP_TUNNEL_KILL_TRIALS kills per command (CI default 10; the full count is 50), each
 * at a moment drawn from its own slice of the command's measured duration (stratified, so start-up, key
 * generation and the writes are all hit), each run with a timeout.
 */
const TRIALS = Math.max(1, Math.min(200, Number(process.env.MCP_TUNNEL_KILL_TRIALS ?? 10)));
const RUN_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 20_000 + TRIALS * 4_000;

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-kill9-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Tokens of one tunnel (same a and t), each with its own secret: rotate-token takes them without --force. */
let tokenSerial = 0;
function tokenFile(): string {
  const n = ++tokenSerial;
  const file = path.join(work, `token-${n}`);
  const token = Buffer.from(JSON.stringify({ a: 'account-kill', t: 'tunnel-kill', s: Buffer.from(`secret-${n}`).toString('base64') })).toString('base64');
  fs.writeFileSync(file, token, { mode: 0o600 });
  return file;
}

const initArgs = (dir: string, i: number, extra: string[] = []): string[] => [
  'init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', `k${String(i).padStart(7, '0')}.tunnel.anthropic.com`,
  '--tunnel-token-file', tokenFile(), '--route', `r${i}=http://10.0.0.${(i % 250) + 1}:8080`, ...extra,
];

const TEMP_OR_JOURNAL = /\.mcp-tunnel\.tmp$|^\.mcp-tunnel-txn\./;

function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (TEMP_OR_JOURNAL.test(e.name)) out.push(path.relative(dir, p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/** Every live file parses and every pair matches. */
function assertConsistent(dir: string): void {
  const read = (rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
  const has = (rel: string): boolean => fs.existsSync(path.join(dir, rel));
  const ca = new X509Certificate(read('data/ca.crt'));
  expect(ca.checkPrivateKey(createPrivateKey(read('data/ca.key'))), 'ca.key matches ca.crt').toBe(true);
  const tls = new X509Certificate(read('data/tls.crt'));
  expect(tls.checkPrivateKey(createPrivateKey(read('data/tls.key'))), 'tls.key matches tls.crt').toBe(true);
  expect(tls.verify(ca.publicKey), 'tls.crt signed by ca.crt').toBe(true);
  expect(has('data/tls.crt.previous'), 'rollback copy whole').toBe(has('data/tls.key.previous'));
  if (has('data/tls.crt.previous')) {
    expect(new X509Certificate(read('data/tls.crt.previous')).checkPrivateKey(createPrivateKey(read('data/tls.key.previous'))), 'rollback pair matches').toBe(true);
  }
  const env = parseEnvFile(decodeEnvText(fs.readFileSync(path.join(dir, '.env'))));
  expect(decodeTunnelToken(env.TUNNEL_TOKEN ?? ''), '.env holds a tunnel token').toBeDefined();
  expect(read('data/tunnel-token').trim(), 'data/tunnel-token agrees with .env').toBe(env.TUNNEL_TOKEN);
  if (has('.env.previous')) expect(decodeTunnelToken(parseEnvFile(read('.env.previous')).TUNNEL_TOKEN ?? '')).toBeDefined();
  expect(() => parseProxyConfig(read('config/mcp-proxy.yaml'))).not.toThrow();
  expect(() => YAML.parse(read('compose.yaml'))).not.toThrow();
  expect(leftovers(dir), 'no temp file or journal survives the re-run').toEqual([]);
}

async function timed(args: string[]): Promise<number> {
  const started = performance.now();
  const r = await runCli(args, { timeoutMs: RUN_TIMEOUT_MS });
  expect(r.exitCode, r.stderr).toBe(0);
  return performance.now() - started;
}

/** The command's duration: the median of three uninterrupted runs (one run is at the mercy of the load). */
async function measure(next: () => string[]): Promise<number> {
  const runs = [await timed(next()), await timed(next()), await timed(next())].sort((a, b) => a - b);
  return runs[1]!;
}

interface Stats {
  killed: number;
  leftBehind: number;
  recoveries: number;
}

/** One kill: start `args`, SIGKILL it after `delayMs`; reports whether it died and what it left. */
async function killAt(args: string[], delayMs: number, dir: string): Promise<{ killed: boolean; left: number }> {
  const child = execa(process.execPath, [CLI, ...args], { env: { CI: 'true', NO_COLOR: '1' }, cwd: REPO_ROOT, reject: false, input: '', timeout: RUN_TIMEOUT_MS });
  const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  const result = await child;
  clearTimeout(timer);
  return { killed: result.signal === 'SIGKILL', left: leftovers(dir).length };
}

/** Runs TRIALS kills of one command; after each, `rerun` must succeed and leave a consistent directory. */
async function trials(name: string, measured: number, setup: (i: number) => Promise<{ dir: string; killed: string[]; rerun: string[] }>): Promise<Stats> {
  const stats: Stats = { killed: 0, leftBehind: 0, recoveries: 0 };
  for (let i = 0; i < TRIALS; i++) {
    const { dir, killed, rerun } = await setup(i);
    const delay = (measured * (i + Math.random())) / TRIALS;
    const k = await killAt(killed, delay, dir);
    if (k.killed) stats.killed++;
    if (k.left > 0) stats.leftBehind++;
    const r = await runCli(rerun, { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.exitCode, `${name} trial ${i} (kill at ${Math.round(delay)} ms): re-run ${r.stderr}`).toBe(0);
    if (/interrupted/.test(r.stderr)) stats.recoveries++;
    assertConsistent(dir);
  }
  // The summary the report quotes: how many kills landed mid-run and how many left something to recover.
  process.stdout.write(`kill -9 ${name}: ${TRIALS} trials over ${Math.round(measured)} ms, ${stats.killed} killed mid-run, ${stats.leftBehind} left temp files or a journal, ${stats.recoveries} re-runs reported a recovery\n`);
  expect(stats.killed).toBeGreaterThan(0);
  return stats;
}

describe('kill -9 at random moments, then a re-run', () => {
  it('init (fresh directory)', async () => {
    let n = 0;
    const measured = await measure(() => initArgs(path.join(work, `fresh-measure-${n++}`), 0));
    await trials('init (fresh)', measured, async (i) => {
      const dir = path.join(work, `fresh-${n++}`);
      const args = initArgs(dir, i);
      return { dir, killed: args, rerun: args };
    });
  }, TEST_TIMEOUT_MS);

  it('init --force (existing deployment, new domain and route each time)', async () => {
    const dir = path.join(work, 'force');
    let m = 0;
    const measured = await measure(() => initArgs(dir, 3000 + m++, ['--force']));
    await trials('init --force', measured, async (i) => ({ dir, killed: initArgs(dir, 1000 + i, ['--force']), rerun: initArgs(dir, 2000 + i, ['--force']) }));
  }, TEST_TIMEOUT_MS);

  it('renew-cert --force', async () => {
    const dir = path.join(work, 'renew');
    await timed(initArgs(dir, 0));
    const measured = await measure(() => ['renew-cert', '--dir', dir, '--force']);
    await trials('renew-cert --force', measured, async () => ({ dir, killed: ['renew-cert', '--dir', dir, '--force'], rerun: ['renew-cert', '--dir', dir, '--force'] }));
  }, TEST_TIMEOUT_MS);

  it('rotate-token', async () => {
    const dir = path.join(work, 'rotate');
    await timed(initArgs(dir, 0));
    const rotate = (): string[] => ['rotate-token', '--dir', dir, '--tunnel-token-file', tokenFile(), '--wait-timeout', '5s'];
    const measured = await measure(rotate);
    await trials('rotate-token', measured, async () => ({ dir, killed: rotate(), rerun: rotate() }));
  }, TEST_TIMEOUT_MS);

  it('routes add --no-restart', async () => {
    const dir = path.join(work, 'routes');
    await timed(initArgs(dir, 0));
    let n = 0;
    const add = (): string[] => ['routes', 'add', `x${n++}`, `http://10.0.1.${(n % 250) + 1}:8080`, '--dir', dir, '--no-restart'];
    const measured = await measure(add);
    await trials('routes add --no-restart', measured, async () => ({ dir, killed: add(), rerun: add() }));
  }, TEST_TIMEOUT_MS);
});
