import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeTunnelToken, REPO_ROOT } from '../helpers/cli.js';

/**
 * What a user gets from the registry: the packed tarball, installed into an empty prefix, runs init
 * with compiled JS only (no TypeScript tooling in the tarball or at run time). The package is lean: the
 * CLI is bundled (no runtime dependencies, so nothing else is installed and no install script runs), no
 * source map points at files it does not ship, and the LICENSE is in it.
 */
let work: string;
let tarball: string;
let bin: string;
let prefix: string;
let installOutput: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-pack-'));
  // dist/ is fresh: `npm test` builds before running the suite, so the prepack build is skipped here.
  const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO_ROOT });
  const info = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(work, info[0]!.filename);
  (globalThis as Record<string, unknown>).packedFiles = info[0]!.files.map((f) => f.path);
  prefix = path.join(work, 'prefix');
  fs.mkdirSync(prefix);
  // --loglevel=warn: the checkout's .npmrc quiets npm for `npm ci` on old nodes; a user's install does not.
  const installed = await execa('npm', ['install', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', '--loglevel=warn', tarball], { cwd: work, timeout: 240_000, all: true });
  installOutput = String(installed.all);
  bin = path.join(prefix, 'node_modules', '.bin', 'mcp-tunnel');
}, 300_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('the npm package', () => {
  it('ships compiled JavaScript, the compose assets and the docs, and no tests or sources', () => {
    const files = (globalThis as Record<string, unknown>).packedFiles as string[];
    expect(files).toEqual(expect.arrayContaining(['bin/mcp-tunnel.cjs', 'dist/app/main.mjs', 'dist/bundle/mcp-tunnel.mjs', 'dist/bundle/mcp-proxy.cjs', 'compose/Dockerfile', 'env.example', 'README.md', 'LICENSE', 'package.json']));
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.ts'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(fs.readFileSync(path.join(REPO_ROOT, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
  });

  it('installs alone, small, without install scripts or warnings', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    expect(pkg.dependencies ?? {}).toEqual({});
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts?.[hook], hook).toBeUndefined();
    expect(fs.readdirSync(path.join(prefix, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(['mcp-tunnel']);
    expect(installOutput).not.toMatch(/warn|ERR/i);
    expect(installOutput).toMatch(/added 1 package/);
    let bytes = 0;
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else bytes += fs.lstatSync(p).size;
      }
    };
    walk(prefix);
    expect(bytes).toBeLessThanOrEqual(15 * 1024 * 1024);
  });

  it('installs from the tarball and runs init end to end', async () => {
    const version = await execa(bin, ['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version);

    const dir = path.join(work, 'deployment');
    const tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, fakeTunnelToken(), { mode: 0o600 });
    const r = await execa(bin, ['init', '--non-interactive', '--dir', dir, '--tunnel-id', 'tnl_pack1', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', tokenFile, '--route', 'docs=http://10.0.0.5:8080', '--proxy', 'builtin'], {
      env: { CI: 'true' },
    });
    expect(r.stdout).toContain('create compose.yaml');
    for (const f of ['compose.yaml', '.env', 'config/mcp-proxy.yaml', 'data/ca.crt', 'data/ca.key', 'data/tls.crt', 'data/tls.key', 'data/tunnel-id', 'data/tunnel-domain', 'build/Dockerfile', 'build/mcp-tunnel.mjs', 'build/mcp-proxy.cjs']) {
      expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
    }
    expect(fs.statSync(path.join(dir, '.env')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, 'data/ca.key')).mode & 0o777).toBe(0o600);
    const verify = await execa('openssl', ['verify', '-CAfile', path.join(dir, 'data/ca.crt'), path.join(dir, 'data/tls.crt')]);
    expect(verify.stdout).toContain('OK');
    const config = await execa('docker-compose', ['config', '--quiet'], { cwd: dir, reject: false });
    expect(config.stderr).toBe('');
    expect(config.exitCode).toBe(0);
  });
});
