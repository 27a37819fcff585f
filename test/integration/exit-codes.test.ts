import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, fakeTunnelToken, runCli, snapshotTree, type CliResult } from '../helpers/cli.js';

/**
 * Exit codes are honest: 2 for what the user typed, 3 for the environment (permissions, a path under a
 * regular file, a read-only file system), 1 only for bugs. Every refusal is one line and a hint, and
 * changes nothing on disk.
 */
let work: string;
let deployment: string;
let tokenFile: string;
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-exit-'));
  fs.chmodSync(work, 0o755);
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, fakeTunnelToken(), { mode: 0o644 });
  deployment = path.join(work, 'dep');
  const r = await runCli(['init', '--dir', deployment, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', tokenFile, '--route', 'docs=http://docs-mcp:8080']);
  expect(r.exitCode).toBe(0);
  // Writable by root only (0755 root-owned; 0555 when the tests are not root).
  fs.mkdirSync(path.join(work, 'locked'), { mode: 0o755 });
  if (!isRoot) fs.chmodSync(path.join(work, 'locked'), 0o555);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function expectOneLineAndHint(r: CliResult, exitCode: number, message: RegExp): void {
  expect(r.exitCode, r.stderr).toBe(exitCode);
  const lines = r.stderr.split('\n');
  expect(lines, r.stderr).toHaveLength(2);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(message);
  expect(lines[1]).toMatch(/^hint: \S/);
  expect(r.stderr).not.toMatch(/unexpected failure|at .*\.js:\d+/);
}

const initArgs = (dir: string): string[] => ['init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', tokenFile, '--route', 'docs=http://docs-mcp:8080'];

interface Case {
  name: string;
  run: () => Promise<CliResult>;
  exitCode: 2 | 3;
  message: RegExp;
  /** Directory whose every file must be unchanged. */
  watch: () => string;
  skip?: () => string | undefined;
}

/** A path on a read-only tmpfs (root only; undefined when mounting is not allowed here). */
let readOnlyMount: string | undefined;
function mountReadOnly(): string | undefined {
  if (!isRoot) return undefined;
  const dir = path.join(work, 'ro');
  fs.mkdirSync(dir, { recursive: true });
  try {
    // Bounded and local: a 1 MiB tmpfs of our own, unmounted in afterAll.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir], { stdio: 'ignore', timeout: 10_000 });
    readOnlyMount = dir;
  } catch {
    return undefined;
  }
  return dir;
}
afterAll(async () => {
  if (readOnlyMount) await execa('umount', [readOnlyMount], { reject: false, timeout: 10_000 });
});

/**
 * Runs the CLI as an unprivileged user (nobody) so EACCES is real even when the tests run as root. The
 * node binary is hard-linked (or copied) to where that user can execute it.
 */
async function runAsNobody(args: string[]): Promise<CliResult> {
  if (!isRoot) return runCli(args);
  const node = path.join(work, 'node');
  if (!fs.existsSync(node)) {
    try {
      fs.linkSync(process.execPath, node);
    } catch {
      fs.copyFileSync(process.execPath, node);
    }
    fs.chmodSync(node, 0o755);
  }
  const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', node, CLI, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CI: 'true', NO_COLOR: '1', HOME: '/nonexistent' },
    extendEnv: false,
    cwd: '/',
    reject: false,
    input: '',
    timeout: 60_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const CASES: Case[] = [
  {
    name: 'tunnel show in a directory that is not a deployment',
    run: () => runCli(['tunnel', 'show', '--dir', work, '--offline']),
    exitCode: 2,
    message: /is not a deployment \(no \.env, no data\/tunnel-id, no data\/ca\.crt\)/,
    watch: () => work,
  },
  {
    // A --dir typo must not report "torn down" (nor delete a .env and data/ that belong to something else).
    name: 'teardown --yes in a directory that is not a deployment',
    run: async () => {
      const other = path.join(work, 'not-a-deployment');
      fs.mkdirSync(path.join(other, 'data'), { recursive: true });
      fs.writeFileSync(path.join(other, '.env'), 'SOMETHING=else\n', { mode: 0o600 });
      fs.writeFileSync(path.join(other, 'data', 'keep.txt'), 'not ours\n');
      const r = await runCli(['teardown', '--dir', other, '--yes']);
      // Built inside run(), so the snapshot cannot watch it: a deleted file shows up as an extra stderr line.
      for (const f of ['.env', 'data/keep.txt']) if (!fs.existsSync(path.join(other, f))) r.stderr += `\n${f} was deleted`;
      return r;
    },
    exitCode: 2,
    message: /not-a-deployment is not a deployment \(no compose file, no config\/mcp-proxy\.yaml\): nothing was stopped or deleted/,
    watch: () => path.join(work, 'not-a-deployment'),
  },
  {
    name: 'init --dir under a regular file (ENOTDIR)',
    run: () => runCli(initArgs(path.join(tokenFile, 'sub'))),
    exitCode: 3,
    message: /cannot use --dir .*token\/sub: a part of the path is a file, not a directory/,
    watch: () => work,
  },
  {
    name: 'init --dir that cannot be created (EACCES, as an unprivileged user)',
    run: () => runAsNobody(initArgs(path.join(work, 'locked', 'dep'))),
    exitCode: 3,
    message: /cannot create the directory .*locked\/dep: permission denied/,
    watch: () => path.join(work, 'locked'),
  },
  {
    name: 'init --dir on a read-only file system (EROFS)',
    run: () => runCli(initArgs(path.join(readOnlyMount!, 'dep'))),
    exitCode: 3,
    message: /cannot create the directory .*ro\/dep: the file system is read-only/,
    watch: () => readOnlyMount!,
    skip: () => (mountReadOnly() ? undefined : 'needs root and permission to mount a tmpfs'),
  },
  {
    name: 'export helm --out naming a file',
    run: () => runCli(['export', 'helm', '--dir', deployment, '--out', tokenFile]),
    exitCode: 2,
    message: /--out .*token is a file, not a directory; nothing was written/,
    watch: () => work,
  },
  {
    name: 'export helm --out under a file (ENOTDIR)',
    run: () => runCli(['export', 'helm', '--dir', deployment, '--out', path.join(tokenFile, 'helm')]),
    exitCode: 3,
    message: /cannot use --out .*token\/helm: a part of the path is a file, not a directory/,
    watch: () => work,
  },
  {
    name: 'status --dir under a regular file (ENOTDIR)',
    run: () => runCli(['status', '--dir', path.join(tokenFile, 'sub')]),
    exitCode: 3,
    message: /cannot use --dir .*token\/sub: a part of the path is a file, not a directory/,
    watch: () => work,
  },
  ...[['renew-cert'], ['rotate-token'], ['routes', 'list'], ['doctor'], ['probe', 'docs'], ['up'], ['export', 'helm']].map(
    (cmd): Case => ({
      name: `${cmd.join(' ')} --dir under a regular file (ENOTDIR)`,
      run: () => runCli([...cmd, '--dir', path.join(tokenFile, 'sub')]),
      exitCode: 3,
      message: /cannot (use --dir|read) .*token\/sub.*: a part of the path is a file, not a directory/,
      watch: () => work,
    }),
  ),
  {
    name: 'rotate-token with "!!" pasted into the token',
    run: async () => {
      const bad = path.join(work, 'bang-token');
      const t = fakeTunnelToken('y');
      fs.writeFileSync(bad, `${t.slice(0, 12)}!!${t.slice(12)}\n`);
      return runCli(['rotate-token', '--dir', deployment, '--tunnel-token-file', bad]);
    },
    exitCode: 2,
    message: /the tunnel token from --tunnel-token-file .* contains "!" at position 13, which is not a base64 character/,
    watch: () => deployment,
  },
  {
    name: 'rotate-token on a .env holding binary garbage',
    run: async () => {
      const dir = path.join(work, 'garbage');
      fs.cpSync(deployment, dir, { recursive: true });
      fs.appendFileSync(path.join(dir, '.env'), Buffer.from([0x47, 0x3d, 0xff, 0xfe, 0x00, 0x0a]));
      return runCli(['rotate-token', '--dir', dir, '--tunnel-token-file', tokenFileFor('z')]);
    },
    exitCode: 2,
    message: /^error: \.env is not UTF-8 text \(line \d+: byte 0xff\); nothing was changed$/,
    watch: () => path.join(work, 'garbage'),
  },
];

function tokenFileFor(seed: string): string {
  const file = path.join(work, `token-${seed}`);
  const t = Buffer.from(JSON.stringify({ a: 'account-x', t: 'tunnel-x', s: Buffer.from(`other-${seed}`).toString('base64') })).toString('base64');
  fs.writeFileSync(file, t);
  return file;
}

describe('exit codes: 2 for input, 3 for the environment, one line and a hint, nothing changed', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const skipped = c.skip?.();
    if (skipped) {
      process.stdout.write(`skipped "${c.name}": ${skipped}\n`);
      return;
    }
    // The garbage case builds its directory inside run(): snapshot what exists before, compare after.
    const before = fs.existsSync(c.watch()) ? snapshotTree(c.watch()) : undefined;
    const r = await c.run();
    expectOneLineAndHint(r, c.exitCode, c.message);
    if (before) expect(snapshotTree(c.watch())).toEqual(before);
  });

  it('binary .env: the refusal changes no byte of it', async () => {
    const dir = path.join(work, 'garbage2');
    fs.cpSync(deployment, dir, { recursive: true });
    fs.appendFileSync(path.join(dir, '.env'), Buffer.from([0x47, 0x3d, 0xff, 0x0a]));
    const before = snapshotTree(dir);
    for (const args of [['rotate-token', '--dir', dir, '--tunnel-token-file', tokenFileFor('w')], initArgs(dir), [...initArgs(dir), '--force']]) {
      const r = await runCli(args);
      expectOneLineAndHint(r, 2, /\.env is not UTF-8 text \(line \d+: byte 0xff\)/);
    }
    expect(snapshotTree(dir)).toEqual(before);
  });
});

describe('moved and copied deployments, and root in a user-owned directory', () => {
  it('init with no flags in a moved directory changes nothing (COMPOSE_PROJECT_NAME is kept)', async () => {
    const from = path.join(work, 'before-move');
    expect((await runCli(initArgs(from))).exitCode).toBe(0);
    const to = path.join(work, 'after-move');
    fs.renameSync(from, to);
    const copy = path.join(work, 'a-copy');
    fs.cpSync(to, copy, { recursive: true, preserveTimestamps: true });
    for (const dir of [to, copy]) {
      const before = snapshotTree(dir);
      const r = await runCli(['init', '--dir', dir]);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(snapshotTree(dir)).toEqual(before);
      expect(fs.readFileSync(path.join(dir, '.env'), 'utf8')).toMatch(/^COMPOSE_PROJECT_NAME=before-move$/m);
    }
  });

  it('run as root in a user-owned directory, rotate-token leaves files the user owns', async () => {
    if (!isRoot) return;
    const dir = path.join(work, 'users');
    fs.mkdirSync(dir);
    fs.chownSync(dir, 1000, 1000);
    expect((await runCli(initArgs(dir))).exitCode).toBe(0);
    const r = await runCli(['rotate-token', '--dir', dir, '--tunnel-token-file', tokenFileFor('owner')]);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const rel of ['.env', '.env.previous', 'compose.yaml', 'data', 'data/tunnel-token', 'data/ca.key', 'config/mcp-proxy.yaml']) {
      const st = fs.statSync(path.join(dir, rel));
      expect([rel, st.uid, st.gid]).toEqual([rel, 1000, 1000]);
    }
    expect(fs.statSync(path.join(dir, '.env.previous')).mode & 0o777).toBe(0o600);
  });
});

