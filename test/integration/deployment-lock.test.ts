import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import YAML from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT, fakeTunnelToken, runCli, snapshotTree, type CliResult } from '../helpers/cli.js';

/**
 * Two real CLI processes on one deployment: a command that changes it waits for the other (or, with
 * --lock-timeout 0, fails at once with one line, exit 3, and changes nothing); a holder that is killed
 * (SIGTERM: released on the way out; SIGKILL: freed by the stale interval) does not block the next one;
 * read-only commands never wait. The holder is a real `rotate-token --tunnel-token-stdin` that has taken
 * the lock and waits for its token on stdin.
 */
const DOMAIN = 'abcd1234.tunnel.anthropic.com';
let work: string;
let tokenFile: string;
const children: ResultPromise[] = [];

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-lock-'));
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, fakeTunnelToken('lock'), { mode: 0o600 });
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function newDeployment(): Promise<string> {
  const dir = path.join(fs.mkdtempSync(path.join(work, 'dep-')), 'deployment');
  const r = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_lock1', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile, '--route', 'docs=http://docs-mcp:8080', '--non-interactive']);
  expect(r.exitCode, r.stderr).toBe(0);
  return dir;
}

/** The CLI as a long-running child (runCli's environment: no TTY, CI set, our variables scrubbed). */
function startCli(args: string[]): ResultPromise {
  const env: Record<string, string | undefined> = { ...process.env, CI: 'true', NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key.startsWith('MCP_TUNNEL_') || key === 'TUNNEL_TOKEN') delete env[key];
  const child = execa(process.execPath, [CLI, ...args], { env, extendEnv: false, cwd: REPO_ROOT, reject: false, timeout: 60_000, stdin: 'pipe' });
  children.push(child);
  return child;
}

const lockDir = (dir: string): string => path.join(dir, 'data', '.mcp-tunnel.lock');

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A real command holding the lock: rotate-token takes it, then waits for the token on stdin. Wrapped in
 * an object: the child is a promise, and returning it from an async function would wait for its end.
 */
async function startHolder(dir: string): Promise<{ child: ResultPromise; pid: number }> {
  const holder = startCli(['rotate-token', '--tunnel-token-stdin', '--dir', dir, '--wait-timeout', '1s']);
  await waitFor('the holder to take the lock', () => {
    try {
      return JSON.parse(fs.readFileSync(path.join(lockDir(dir), 'holder.json'), 'utf8')).pid === holder.pid;
    } catch {
      return false;
    }
  });
  return { child: holder, pid: holder.pid! };
}

const routesOf = (dir: string): string[] => Object.keys((YAML.parse(fs.readFileSync(path.join(dir, 'config', 'mcp-proxy.yaml'), 'utf8')) as { routes: object }).routes);
const errorLines = (r: CliResult): string[] => r.stderr.trimEnd().split('\n');

describe('one lock per deployment directory', () => {
  it('--lock-timeout 0: a second writer fails at once with one line naming the holder, exit 3, nothing changed', async () => {
    const dir = await newDeployment();
    const holder = await startHolder(dir);
    const before = snapshotTree(path.join(dir, 'config'));
    const started = Date.now();
    const r = await runCli(['routes', 'add', 'wiki', 'http://wiki-mcp:3000', '--dir', dir, '--no-restart', '--lock-timeout', '0']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.exitCode).toBe(3);
    const lines = errorLines(r);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^error: .* is being changed by mcp-tunnel rotate-token \\(pid ${holder.pid} on ${os.hostname()}, since \\d{4}-`));
    expect(lines[1]).toMatch(/^hint: .*--lock-timeout/);
    expect(snapshotTree(path.join(dir, 'config'))).toEqual(before);

    // The environment twin says the same.
    const viaEnv = await runCli(['config', 'set', 'log_level', 'debug', '--dir', dir, '--no-restart'], { env: { MCP_TUNNEL_LOCK_TIMEOUT: '0' } });
    expect(viaEnv.exitCode).toBe(3);
    expect(viaEnv.stderr).toContain('is being changed by mcp-tunnel rotate-token');
    expect(snapshotTree(path.join(dir, 'config'))).toEqual(before);
    holder.child.kill('SIGTERM');
    await holder.child;
  });

  it('read-only commands run while the lock is held, without waiting', async () => {
    const dir = await newDeployment();
    const holder = await startHolder(dir);
    for (const args of [['routes', 'list'], ['config', 'get', 'log_level'], ['doctor', '--offline'], ['images']]) {
      const started = Date.now();
      const r = await runCli([...args, '--dir', dir]);
      expect(r.stderr, args.join(' ')).not.toContain('being changed');
      expect(r.stderr, args.join(' ')).not.toContain('waiting for another');
      expect([0, 1], `${args.join(' ')}: ${r.stderr}`).toContain(r.exitCode);
      expect(Date.now() - started, args.join(' ')).toBeLessThan(15_000);
    }
    expect(fs.existsSync(lockDir(dir))).toBe(true);
    holder.child.kill('SIGTERM');
    await holder.child;
  });

  it('a second writer waits, says so on stderr, and goes ahead as soon as a SIGTERM ends the holder', async () => {
    const dir = await newDeployment();
    const holder = await startHolder(dir);
    const waiter = startCli(['routes', 'add', 'wiki', 'http://wiki-mcp:3000', '--dir', dir, '--no-restart']);
    let stderr = '';
    waiter.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('the wait notice', () => stderr.includes('waiting for another mcp-tunnel command on this deployment'));
    expect(stderr).toContain(`mcp-tunnel rotate-token (pid ${holder.pid}`);
    expect(routesOf(dir)).toEqual(['docs']);
    const killedAt = Date.now();
    holder.child.kill('SIGTERM');
    const r = await waiter;
    const afterKill = Date.now() - killedAt;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    // Released on the way out, not left for the stale interval (10s).
    expect(afterKill).toBeLessThan(5_000);
    expect(routesOf(dir)).toEqual(['docs', 'wiki']);
    expect(fs.existsSync(lockDir(dir))).toBe(false);
  });

  it('a holder killed with SIGKILL on this host does not block the next writer: its pid is gone', async () => {
    const dir = await newDeployment();
    const holder = await startHolder(dir);
    holder.child.kill('SIGKILL');
    await holder.child;
    expect(fs.existsSync(lockDir(dir))).toBe(true);
    const started = Date.now();
    const r = await runCli(['routes', 'add', 'tools', 'http://tools-mcp:9000', '--dir', dir, '--no-restart']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(routesOf(dir)).toEqual(['docs', 'tools']);
    expect(fs.existsSync(lockDir(dir))).toBe(false);
  });

  it('a crashed holder of another PID namespace (the cert-renewer container) is waited out for the stale interval only', async () => {
    const dir = await newDeployment();
    // What a renewer killed with SIGKILL leaves: the lock, its holder file, no more refreshes.
    fs.mkdirSync(lockDir(dir));
    fs.writeFileSync(path.join(lockDir(dir), 'holder.json'), JSON.stringify({ command: 'renew-cert --every', pid: 1, hostname: 'c0ffee123456', startedAt: new Date().toISOString(), writer: '00000000' }));
    const started = Date.now();
    const r = await runCli(['routes', 'add', 'tools', 'http://tools-mcp:9000', '--dir', dir, '--no-restart']);
    const waited = Date.now() - started;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('waiting for another mcp-tunnel command on this deployment (up to 30s): mcp-tunnel renew-cert --every (pid 1 on c0ffee123456');
    // LOCK_STALE_MS (10s) after the holder's last refresh, plus process start-up.
    expect(waited).toBeGreaterThanOrEqual(8_000);
    expect(waited).toBeLessThan(14_000);
    expect(routesOf(dir)).toEqual(['docs', 'tools']);
    expect(fs.existsSync(lockDir(dir))).toBe(false);
  });

  it('concurrent writers all land: four routes add at once keep every route', async () => {
    const dir = await newDeployment();
    const names = ['alpha', 'beta', 'gamma', 'delta'];
    const results = await Promise.all(names.map((n) => runCli(['routes', 'add', n, `http://${n}-mcp:8080`, '--dir', dir, '--no-restart'])));
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    expect(routesOf(dir).sort()).toEqual(['docs', ...names].sort());
  });

  it('two renew-cert --force at once both renew, one after the other: the pair on disk matches', async () => {
    const dir = await newDeployment();
    const serial = (): string => new X509Certificate(fs.readFileSync(path.join(dir, 'data', 'tls.crt'))).serialNumber.toLowerCase();
    const first = serial();
    const [a, b] = await Promise.all([0, 1].map(() => runCli(['renew-cert', '--force', '--dir', dir, '--json'])));
    for (const r of [a!, b!]) expect(r.exitCode, r.stderr).toBe(0);
    const reports = [a!, b!].map((r) => JSON.parse(r.stdout) as { serial: string; previousSerial?: string });
    // Serialised: one renewed the original, the other renewed that one's certificate.
    const bySecond = reports.find((r) => r.previousSerial !== first)!;
    const byFirst = reports.find((r) => r.previousSerial === first)!;
    expect(byFirst).toBeDefined();
    expect(bySecond.previousSerial).toBe(byFirst.serial);
    expect(serial()).toBe(bySecond.serial);
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'data', 'tls.crt')));
    expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'data', 'tls.key'))))).toBe(true);
    expect(cert.verify(new X509Certificate(fs.readFileSync(path.join(dir, 'data', 'ca.crt'))).publicKey)).toBe(true);
  });

  it('renew-cert --every holds the lock for each run only: a run that meets it fails and retries later', async () => {
    const dir = await newDeployment();
    const holder = await startHolder(dir);
    const loop = startCli(['renew-cert', '--every', '1m', '--dir', dir, '--json', '--lock-timeout', '0']);
    let stdout = '';
    loop.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    await waitFor('the first run to report', () => stdout.includes('"status"'));
    expect(stdout).toContain('"status": "failed"');
    expect(stdout).toContain('is being changed by mcp-tunnel rotate-token');
    holder.child.kill('SIGTERM');
    await holder.child;
    // Between runs the loop holds nothing: a writer goes ahead at once.
    const r = await runCli(['routes', 'add', 'wiki', 'http://wiki-mcp:3000', '--dir', dir, '--no-restart', '--lock-timeout', '0']);
    expect(r.exitCode, r.stderr).toBe(0);
    loop.kill('SIGTERM');
    const ended = await loop;
    expect(ended.exitCode).toBe(0);
    expect(fs.existsSync(lockDir(dir))).toBe(false);
  });

  it('--lock-timeout takes Go durations only', async () => {
    const dir = await newDeployment();
    const r = await runCli(['routes', 'add', 'wiki', 'http://wiki-mcp:3000', '--dir', dir, '--no-restart', '--lock-timeout', 'soon']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--lock-timeout');
    expect(routesOf(dir)).toEqual(['docs']);
  });
});
