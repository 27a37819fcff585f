/**
 * Docker for the tests: a real daemon, images built locally (no registry is reachable here), and a
 * cleanup that removes everything a test made even when it fails.
 *
 * - requireDocker(): fails the test file with one clear message when the daemon is unreachable; the ONLY way
 *   to skip the docker tests is MCP_TUNNEL_SKIP_DOCKER=1 (then they are reported as skipped).
 * - ensureNodeBaseImage(): `mcp-tunnel-test/node-base:local`, made by `docker import` of a root file system
 *   holding the node binary running the tests, the libraries `ldd` lists and the dynamic loader: no shell,
 *   no package manager, no /etc/passwd. If our images run on that, they run on any base with `node`.
 * - Everything a test makes carries the label mcp-tunnel-test=1.
 */
import { execa, type Options as ExecaOptions } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPOSE_SERVICES } from '../../src/deployment/compose-file.js';

export const TEST_LABEL = 'mcp-tunnel-test';
export const TEST_LABEL_FILTER = `label=${TEST_LABEL}=1`;
export const NODE_BASE_IMAGE = 'mcp-tunnel-test/node-base:local';
export const STANDIN_IMAGE = 'mcp-tunnel-test/cloudflared-standin:local';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const STANDIN_CONTEXT = path.join(REPO_ROOT, 'test', 'fixtures', 'cloudflared-standin');

/** A tunnel token of the right shape: base64 of {"a":"x","t":"y","s":"z"} (starts with "eyJ"). */
export const FAKE_TUNNEL_TOKEN = Buffer.from(JSON.stringify({ a: 'x', t: 'y', s: 'z' })).toString('base64');

/** The legacy builder, as on a stock Docker 20.10 host and as docker-compose 1.29 builds. */
const DOCKER_ENV = { DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0', DOCKER_CLI_HINTS: 'false' };

export function docker(args: string[], options: ExecaOptions = {}) {
  return execa('docker', args, { reject: false, timeout: 300_000, ...options, env: { ...options.env, ...DOCKER_ENV } });
}

/** docker-compose v1.29 (the Compose implementation on this machine). */
export function dockerCompose(args: string[], options: ExecaOptions & { cwd: string }) {
  return execa('docker-compose', args, { reject: false, timeout: 300_000, ...options, env: { ...options.env, ...DOCKER_ENV } });
}

/** Throws with the command's output when it failed. */
export async function mustDocker(args: string[], options: ExecaOptions = {}): Promise<string> {
  const r = await docker(args, options);
  if (r.exitCode !== 0) {
    throw new Error(`docker ${args.join(' ')} failed (exit ${r.exitCode}):\n${String(r.stderr)}\n${String(r.stdout)}`.trim());
  }
  return String(r.stdout).trim();
}

export const skipDockerRequested = process.env.MCP_TUNNEL_SKIP_DOCKER === '1';

let reachable: Promise<boolean> | undefined;

/**
 * true when the docker tests should run; false only when MCP_TUNNEL_SKIP_DOCKER=1. Throws (failing the test
 * file) when the daemon is unreachable: a missing Docker must never pass silently as "skipped".
 * Use at the top of a test file: `const dockerReady = await requireDocker();` then `describe.skipIf(!dockerReady)`.
 */
export async function requireDocker(): Promise<boolean> {
  if (skipDockerRequested) return false;
  reachable ??= (async () => {
    const r = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false, timeout: 30_000 }).catch((err: Error) => ({
      exitCode: -1,
      stdout: '',
      stderr: err.message,
    }));
    if (r.exitCode !== 0 || String(r.stdout).trim() === '') {
      throw new Error(
        `Docker is unreachable (docker info: ${String(r.stderr).trim().split('\n').at(-1) || `exit ${r.exitCode}`}). ` +
          'The docker tests need a running daemon (.ci/run installs and starts one). ' +
          'To skip them explicitly, set MCP_TUNNEL_SKIP_DOCKER=1.',
      );
    }
    return true;
  })();
  return reachable;
}

/** A short random suffix for names a test makes (compose projects, image tags). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------------------
// The node base image

interface LddEntry {
  /** The path the loader will look the library up at (as ldd printed it). */
  path: string;
}

async function lddLibraries(binary: string): Promise<LddEntry[]> {
  const { stdout } = await execa('ldd', [binary]);
  const out: LddEntry[] = [];
  for (const line of stdout.split('\n')) {
    const arrow = /=>\s+(\/\S+)\s+\(/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p) out.push({ path: p });
  }
  if (!out.some((e) => /ld-linux|ld-musl/.test(e.path))) {
    throw new Error(`ldd ${binary} listed no dynamic loader:\n${stdout}`);
  }
  return out;
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(os.tmpdir(), `${name}.lock`);
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      await fs.mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fs.stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 300_000) await fs.rm(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

let baseImage: Promise<string> | undefined;

/**
 * `mcp-tunnel-test/node-base:local`: built once per machine and node version (the image label
 * mcp-tunnel-test.node records which node it holds), reused by every test file afterwards.
 */
export function ensureNodeBaseImage(): Promise<string> {
  baseImage ??= withLock('mcp-tunnel-test-node-base', async () => {
    const nodeBinary = await fs.realpath(process.execPath);
    // Which node the image holds: the version and the binary's size (not its path: CI's and a developer's
    // copies of the same release share one image).
    const stamp = `${process.version} ${(await fs.stat(nodeBinary)).size}`;
    const existing = await docker(['image', 'inspect', '--format', `{{.Id}} {{ index .Config.Labels "${TEST_LABEL}.node" }}`, NODE_BASE_IMAGE]);
    const [oldId, ...oldStamp] = String(existing.stdout).trim().split(' ');
    if (existing.exitCode === 0 && oldStamp.join(' ') === stamp) return NODE_BASE_IMAGE;

    const major = Number(process.versions.node.split('.')[0]);
    if (major < 22) throw new Error(`the node base image needs node >= 22, but the tests run on ${process.version}`);
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-node-base-'));
    try {
      const rootfs = path.join(work, 'rootfs');
      for (const dir of ['usr/local/bin', 'etc', 'tmp', 'proc', 'sys', 'dev']) await fs.mkdir(path.join(rootfs, dir), { recursive: true });
      await fs.chmod(path.join(rootfs, 'tmp'), 0o1777);
      await fs.copyFile(nodeBinary, path.join(rootfs, 'usr/local/bin/node'));
      await fs.chmod(path.join(rootfs, 'usr/local/bin/node'), 0o755);
      for (const lib of await lddLibraries(nodeBinary)) {
        const dest = path.join(rootfs, lib.path);
        await fs.mkdir(path.dirname(dest), { recursive: true });
        await fs.copyFile(await fs.realpath(lib.path), dest); // the content, under the name the loader asks for
        await fs.chmod(dest, 0o755);
      }
      const tarball = path.join(work, 'rootfs.tar');
      await execa('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, '.']);
      await mustDocker([
        'import',
        '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        '--change', `LABEL ${TEST_LABEL}=1`,
        '--change', `LABEL ${TEST_LABEL}.node="${stamp}"`,
        '--change', 'CMD ["node"]',
        '--message', `mcp-tunnel test base: ${stamp}`,
        tarball,
        NODE_BASE_IMAGE,
      ]);
      // The base of another node is dropped, unless an image still builds on it (then docker refuses).
      if (existing.exitCode === 0 && oldId) await docker(['image', 'rm', oldId]);
      return NODE_BASE_IMAGE;
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
  // A failed build must not poison later calls in the same process.
  baseImage.catch(() => {
    baseImage = undefined;
  });
  return baseImage;
}

// ---------------------------------------------------------------------------------------------------------
// Images built from a context

export interface BuildImageOptions {
  context: string;
  tag: string;
  buildArgs?: Record<string, string>;
}

/** `docker build` with the legacy builder, labelled mcp-tunnel-test=1. Returns the tag. */
export async function buildImage(opts: BuildImageOptions): Promise<string> {
  const args = ['build', '--label', `${TEST_LABEL}=1`, '-t', opts.tag];
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  args.push(opts.context);
  await mustDocker(args);
  return opts.tag;
}

/** The cloudflared stand-in (test/fixtures/cloudflared-standin) on the node base. Cached by Docker's layers. */
export async function buildCloudflaredStandin(): Promise<string> {
  const base = await ensureNodeBaseImage();
  return withLock('mcp-tunnel-test-standin', () => buildImage({ context: STANDIN_CONTEXT, tag: STANDIN_IMAGE, buildArgs: { BASE_IMAGE: base } }));
}

// ---------------------------------------------------------------------------------------------------------
// Compose override for tests

export interface TestOverrideOptions {
  /** The stand-in image (buildCloudflaredStandin()). */
  standinImage: string;
  /** Publish the stand-in's forwarder on 127.0.0.1:<random> (declared on mcp-proxy: it owns the namespace). */
  publish?: boolean;
  /** Port the stand-in listens on inside the namespace (STANDIN_LISTEN), default 8081. */
  standinPort?: number;
  /** Retag the builtin proxy image (a test-owned tag, so a test never clobbers a real one). */
  proxyImage?: string;
}

/**
 * A compose override file (`-f compose.yaml -f compose.test.yaml`) that swaps cloudflared for the stand-in,
 * labels both containers mcp-tunnel-test=1 and optionally publishes the stand-in's port.
 */
export function renderTestOverride(opts: TestOverrideOptions): string {
  const port = opts.standinPort ?? 8081;
  const proxy = [`  ${COMPOSE_SERVICES.proxy}:`, '    labels:', `      ${TEST_LABEL}: "1"`];
  if (opts.proxyImage) proxy.push(`    image: ${opts.proxyImage}`);
  if (opts.publish) proxy.push('    ports:', `      - "127.0.0.1::${port}"`);
  const cloudflared = [
    `  ${COMPOSE_SERVICES.cloudflared}:`,
    `    image: ${opts.standinImage}`,
    '    labels:',
    `      ${TEST_LABEL}: "1"`,
    '    environment:',
    `      STANDIN_LISTEN: "${port}"`,
  ];
  return ['# Test override: cloudflared replaced by a local stand-in (no network here).', 'services:', ...proxy, ...cloudflared, ''].join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Cleanup

export interface DockerCleanup {
  /** A compose project to take down (and whose leftovers to remove) at the end. */
  project(name: string, cwd: string, files?: string[]): void;
  image(ref: string): void;
  container(idOrName: string): void;
  /** A network to remove (its remaining endpoints are disconnected first). */
  network(name: string): void;
  dir(p: string): void;
  /** Removes everything registered, in reverse order; never throws, reports what it could not remove. */
  run(): Promise<string[]>;
}

export function dockerCleanup(): DockerCleanup {
  const steps: Array<() => Promise<void>> = [];
  return {
    project(name, cwd, files = []) {
      steps.push(async () => {
        if (existsSync(cwd)) {
          const f = files.flatMap((file) => ['-f', file]);
          await dockerCompose(['-p', name, ...f, 'down', '--volumes', '--remove-orphans', '--timeout', '0'], { cwd, timeout: 120_000 });
        }
        const ids = String((await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${name}`])).stdout).split('\n').filter(Boolean);
        if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
        const nets = String((await docker(['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${name}`])).stdout).split('\n').filter(Boolean);
        if (nets.length) await docker(['network', 'rm', ...nets]);
        // docker-compose 1.29 names the default network <project>_default, docker compose v2 the same.
        await docker(['network', 'rm', `${name}_default`]);
      });
    },
    image(ref) {
      steps.push(async () => {
        await docker(['image', 'rm', '-f', ref]);
      });
    },
    container(idOrName) {
      steps.push(async () => {
        await docker(['rm', '-f', '-v', idOrName]);
      });
    },
    network(name) {
      steps.push(async () => {
        const attached = await docker(['network', 'inspect', '--format', '{{range $id, $c := .Containers}}{{$id}} {{end}}', name]);
        for (const id of String(attached.stdout).split(/\s+/).filter(Boolean)) await docker(['network', 'disconnect', '-f', name, id]);
        await docker(['network', 'rm', name]);
      });
    },
    dir(p) {
      steps.push(() => fs.rm(p, { recursive: true, force: true }));
    },
    async run() {
      const problems: string[] = [];
      for (const step of steps.splice(0).reverse()) {
        try {
          await step();
        } catch (err) {
          problems.push((err as Error).message);
        }
      }
      return problems;
    },
  };
}

/** Containers of a compose project (running or not), by compose's own label. */
export async function projectContainers(project: string): Promise<string[]> {
  const r = await mustDocker(['ps', '-a', '--format', '{{.Names}}', '--filter', `label=com.docker.compose.project=${project}`]);
  return r.split('\n').filter(Boolean);
}

export async function projectNetworks(project: string): Promise<string[]> {
  const r = await mustDocker(['network', 'ls', '--format', '{{.Name}}', '--filter', `label=com.docker.compose.project=${project}`]);
  return r.split('\n').filter(Boolean);
}
