/**
 * The builtin proxy image, built for real with the legacy builder from a build context made by
 * writeBuildContext, on a base that holds nothing but `node` (no shell): it runs as 65532 on a read-only root
 * with every capability dropped and prints the package version.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBuildContext, findPackageRoot } from '../../src/deployment/build-context.js';
import { EnvironmentError } from '../../src/errors.js';
import { VERSION } from '../../src/version.js';
import {
  REPO_ROOT,
  buildImage,
  docker,
  dockerCleanup,
  ensureNodeBaseImage,
  mustDocker,
  requireDocker,
  uniqueName,
} from '../helpers/docker.js';

const dockerReady = await requireDocker();

describe('writeBuildContext', () => {
  const cleanup = dockerCleanup();
  afterAll(async () => {
    await cleanup.run();
  });

  it('finds the package root from src/ and copies Dockerfile + bundle into DIR/build (0644)', async () => {
    expect(findPackageRoot()).toBe(REPO_ROOT);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-ctx-'));
    cleanup.dir(dir);
    const ctx = await writeBuildContext(dir);
    expect(ctx.dir).toBe(path.join(dir, 'build'));
    expect((await fs.readdir(ctx.dir)).sort()).toEqual(['Dockerfile', 'mcp-proxy.cjs', 'mcp-tunnel.mjs']);
    for (const file of [ctx.dockerfile, ctx.bundle]) expect((await fs.stat(file)).mode & 0o777).toBe(0o644);
    expect(await fs.readFile(ctx.dockerfile, 'utf8')).toBe(await fs.readFile(path.join(REPO_ROOT, 'compose', 'Dockerfile'), 'utf8'));
  });

  it('fails with one clear EnvironmentError when the bundle was not built', async () => {
    const fakeRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-pkg-'));
    cleanup.dir(fakeRoot);
    await fs.mkdir(path.join(fakeRoot, 'compose'));
    await fs.copyFile(path.join(REPO_ROOT, 'compose', 'Dockerfile'), path.join(fakeRoot, 'compose', 'Dockerfile'));
    const dir = path.join(fakeRoot, 'deploy');
    const err = await writeBuildContext(dir, { packageRoot: fakeRoot }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).message).toMatch(/builtin proxy bundle .*(mcp-tunnel\.mjs|mcp-proxy\.cjs) is missing: run npm run build/);
    await expect(fs.stat(path.join(dir, 'build'))).rejects.toThrow(/ENOENT/);
  });

  it('finds the package root from dist/ and from a directory without package.json it says so', () => {
    expect(findPackageRoot(path.join(REPO_ROOT, 'dist', 'deployment', 'build-context.js'))).toBe(REPO_ROOT);
    expect(() => findPackageRoot('/nonexistent/a/b.js')).toThrow(EnvironmentError);
  });
});

describe.skipIf(!dockerReady)('the builtin proxy image (real Docker, legacy builder)', () => {
  const cleanup = dockerCleanup();
  const tag = `mcp-tunnel-test/proxy:${uniqueName('t')}`;
  let buildSeconds = 0;

  beforeAll(async () => {
    const base = await ensureNodeBaseImage();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-image-'));
    cleanup.dir(dir);
    const ctx = await writeBuildContext(dir);
    cleanup.image(tag);
    const started = Date.now();
    await buildImage({ context: ctx.dir, tag, buildArgs: { BASE_IMAGE: base } });
    buildSeconds = (Date.now() - started) / 1000;
  }, 300_000);

  afterAll(async () => {
    const problems = await cleanup.run();
    expect(problems).toEqual([]);
  });

  it('the test base has no shell: only node', async () => {
    const base = await ensureNodeBaseImage();
    const sh = await docker(['run', '--rm', '--entrypoint', '/bin/sh', base, '-c', 'true']);
    expect(sh.exitCode).not.toBe(0);
    const node = await mustDocker(['run', '--rm', base, 'node', '-p', 'process.versions.node']);
    expect(node).toBe(process.versions.node);
  });

  it(`builds in seconds`, () => {
    expect(buildSeconds).toBeGreaterThan(0);
    expect(buildSeconds).toBeLessThan(120);
  });

  it('prints the package version as 65532 on a read-only root with no capabilities', async () => {
    const out = await mustDocker([
      'run', '--rm', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true', '--user', '65532:65532',
      tag, '--version',
    ]);
    expect(out).toBe(VERSION);
    const who = await mustDocker(['run', '--rm', '--read-only', '--cap-drop', 'ALL', '--entrypoint', 'node', tag, '-p', 'process.getuid() + ":" + process.getgid()']);
    expect(who).toBe('65532:65532');
  });

  it('carries the user, entrypoint, default command and healthcheck compose relies on', async () => {
    const config = JSON.parse(await mustDocker(['image', 'inspect', '--format', '{{json .Config}}', tag])) as {
      User: string;
      Entrypoint: string[];
      Cmd: string[];
      Healthcheck: { Test: string[] };
      Env: string[];
      Labels: Record<string, string>;
    };
    expect(config.User).toBe('65532:65532');
    expect(config.Entrypoint).toEqual(['node', '/app/mcp-proxy.cjs']);
    expect(config.Cmd).toEqual(['proxy', '--config', '/etc/mcp-gateway/config.yaml']);
    expect(config.Healthcheck.Test).toEqual(['CMD', 'node', '/app/mcp-tunnel.mjs', 'health']);
    expect(config.Env).toContain('NODE_ENV=production');
    expect(config.Labels['mcp-tunnel-test']).toBe('1');
  });
});
