import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { CLI, REPO_ROOT, runCli } from '../helpers/cli.js';
import { runDemo } from '../../src/demo/index.js';

/*
 * `mcp-tunnel demo` as a user runs it: the built CLI as a child process (npm test builds dist/ first), with
 * its own TMPDIR so "nothing left behind" can be checked, and the ports it printed checked closed afterwards.
 */

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-demo-test-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function portsIn(text: string): number[] {
  return [...new Set([...text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function expectNothingLeft(output: string, minPorts = 2): Promise<void> {
  expect(await fs.readdir(tmp)).toEqual([]);
  const ports = portsIn(output);
  expect(ports.length).toBeGreaterThanOrEqual(minPorts);
  for (const port of ports) expect(await isListening(port)).toBe(false);
}

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MCP_TUNNEL_')) env[k] = v;
  return { ...env, TMPDIR: tmp, CI: 'true', NO_COLOR: '1' };
}

describe('mcp-tunnel demo', () => {
  it('runs every step, prints the tool answer, exits 0 and leaves nothing behind', async () => {
    const started = Date.now();
    const r = await runCli(['demo'], { env: { TMPDIR: tmp, USER: 'tester' }, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const step of ['certificates', 'upstream', 'proxy', 'websocket', 'tls', 'initialize', 'tools/list', 'tools/call', 'cleanup']) {
      expect(r.stdout).toMatch(new RegExp(`^✓ ${step.replace('/', '\\/')}\\s+\\d`, 'm'));
    }
    expect(r.stdout).toMatch(/hello → Hello, .+!/);
    expect(r.stdout).toContain('demo.tunnel.localhost');
    expect(r.stdout).toMatch(/temp directory removed/);
    expect(Date.now() - started).toBeLessThan(30_000);
    await expectNothingLeft(r.stdout);
  });

  it('Ctrl-C while it runs: stops, cleans up, exits 130', async () => {
    const child = execa(process.execPath, [CLI, 'demo'], { cwd: REPO_ROOT, env: childEnv(), extendEnv: false, reject: false, timeout: 60_000 });
    let out = '';
    let interrupted = false;
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      // One Ctrl-C: a second one means "exit now, skip the cleanup", which is another test.
      if (!interrupted && out.includes('✓ upstream')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const r = await child;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(130);
    expect(String(r.stderr)).toMatch(/^error: demo interrupted; everything it started was stopped/m);
    // interrupted right after the sample server started: its port must be closed again
    await expectNothingLeft(out, 1);
  });

  it('--keep keeps it running until Ctrl-C, then cleans up and exits 0', async () => {
    const child = execa(process.execPath, [CLI, 'demo', '--keep'], { cwd: REPO_ROOT, env: childEnv(), extendEnv: false, reject: false, timeout: 60_000 });
    let out = '';
    let probed: Promise<{ exitCode: number; stdout: string; stderr: string }> | undefined;
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (!probed && out.includes('press Ctrl-C')) {
        // While it runs, the printed probe command works from another process.
        const cmd = /mcp-tunnel (probe .*)$/m.exec(out)![1]!;
        const args = cmd.match(/'[^']*'|\S+/g)!.map((a) => a.replace(/^'|'$/g, ''));
        probed = runCli(args).then(async (res) => {
          child.kill('SIGINT');
          return res;
        });
      }
    });
    const r = await child;
    const p = await probed!;
    expect(p.exitCode, `${p.stdout}\n${p.stderr}`).toBe(0);
    expect(p.stdout).toMatch(/Hello, you!/);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(out).toMatch(/✓ cleanup/);
    await expectNothingLeft(out);
  });

  it('--base-image without --docker: one line + hint, exit 2', async () => {
    const r = await runCli(['demo', '--base-image', 'node:24-slim'], { env: { TMPDIR: tmp } });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: --base-image only applies with --docker\nhint: /);
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
    expect(await fs.readdir(tmp)).toEqual([]);
  });

  it('library: an abort before the end still cleans up', async () => {
    const controller = new AbortController();
    let dir: string | undefined;
    const run = runDemo({
      signal: controller.signal,
      onStep: (s) => {
        if (s.step === 'certificates') dir = /in (\S+)$/.exec(s.detail)?.[1];
        if (s.step === 'proxy') controller.abort(new Error('stop'));
      },
    });
    await expect(run).rejects.toThrow('stop');
    expect(dir).toBeTruthy();
    await expect(fs.stat(dir!)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
