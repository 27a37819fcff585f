/**
 * Issue 4, point 3: each preflight failure produced for real, each printing its one line.
 * - Docker unreachable: a socket path that does not exist; a socket nobody listens on; the real socket as a
 *   user outside the docker group (setpriv), i.e. permission denied.
 * - A rootless daemon: a rootless dockerd cannot run in this sandbox, so a fake Engine API on a unix socket
 *   answers /info with the SecurityOptions a rootless daemon reports ("name=rootless").
 * - An image that cannot be pulled: a real pull of the official proxy image (no registry is reachable here).
 * - Files in data/ the container user cannot read, and a missing TUNNEL_TOKEN: real files, real checks.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFICIAL_PROXY_IMAGE } from '../../src/deployment/images.js';
import { CLI, REPO_ROOT, fakeTunnelToken, runCli } from '../helpers/cli.js';
import { docker, dockerCleanup, ensureNodeBaseImage, projectContainers, projectNetworks, requireDocker, uniqueName } from '../helpers/docker.js';
import { TEST_DOMAIN, TEST_TUNNEL_ID } from '../helpers/stack.js';

const dockerReady = await requireDocker();
const isRoot = process.getuid?.() === 0;
const hasSetpriv = existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv');

describe.skipIf(!dockerReady)('preflight: one clear line per failure, produced for real', () => {
  const cleanup = dockerCleanup();
  let root = '';
  let tokenFile = '';

  const templates: Partial<Record<'builtin' | 'official', Promise<string>>> = {};

  /** `mcp-tunnel init` once per engine; each test gets its own copy (cp -a keeps owners and modes) and project name. */
  async function initDir(engine: 'builtin' | 'official'): Promise<{ dir: string; project: string }> {
    templates[engine] ??= (async () => {
      const dir = path.join(root, `template-${engine}`);
      const args = ['init', '--dir', dir, '--proxy', engine, '--tunnel-id', TEST_TUNNEL_ID, '--tunnel-domain', TEST_DOMAIN, '--tunnel-token-file', tokenFile];
      if (engine === 'builtin') args.push('--base-image', await ensureNodeBaseImage());
      const r = await runCli([...args, '--route', 'echo=http://10.0.0.5:8080', '--non-interactive', '-y']);
      if (r.exitCode !== 0) throw new Error(`init failed: ${r.stderr}`);
      return dir;
    })();
    const template = await templates[engine]!;
    const project = uniqueName('mcppre');
    const dir = path.join(root, project);
    cleanup.project(project, dir);
    await execa('cp', ['-a', template, dir]);
    const envFile = path.join(dir, '.env');
    await fs.writeFile(envFile, (await fs.readFile(envFile, 'utf8')).replace(/^COMPOSE_PROJECT_NAME=.*$/m, `COMPOSE_PROJECT_NAME=${project}`));
    return { dir, project };
  }

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-preflight-'));
    await fs.chmod(root, 0o755);
    cleanup.dir(root);
    tokenFile = path.join(root, 'token');
    await fs.writeFile(tokenFile, `${fakeTunnelToken('pre')}\n`, { mode: 0o600 });
    await Promise.all([initDir('builtin'), initDir('official')]);
  }, 120_000);

  afterAll(async () => {
    await cleanup.run();
  }, 120_000);

  it('Docker not running / not installed: no socket at DOCKER_HOST', async () => {
    const { dir } = await initDir('builtin');
    const cmds = [['up'], ['status'], ['down', '--timeout', '0'], ['logs']];
    const results = await Promise.all(cmds.map((cmd) => runCli([...cmd, '--dir', dir], { env: { DOCKER_HOST: 'unix:///nonexistent.sock' } })));
    for (const [i, r] of results.entries()) {
      expect(r.exitCode, cmds[i]![0]).toBe(3);
      expect(r.stderr).toBe(
        'error: Docker is not running or not installed: no Docker socket at /nonexistent.sock\n' +
          'hint: install Docker and start it (sudo systemctl start docker), or point DOCKER_HOST at the daemon',
      );
    }
  });

  it('Docker not running: a socket file nobody listens on', async () => {
    const sock = path.join(root, 'stale.sock');
    // bind without listen: the file exists, connections are refused (a daemon that died)
    await execa('/usr/bin/python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(sock)})`]);
    const r = await runCli(['status', '--dir', root], { env: { DOCKER_HOST: `unix://${sock}` } });
    expect(r.exitCode).toBe(3);
    expect(r.stderr.split('\n')[0]).toBe(`error: Docker is not running: nothing listens on ${sock}`);
  });

  it.skipIf(!isRoot || !hasSetpriv)('permission denied on the Docker socket (a user outside the docker group)', async () => {
    const { dir } = await initDir('builtin');
    const st = await fs.stat('/var/run/docker.sock');
    expect(st.mode & 0o006).toBe(0); // not world-accessible: the docker group is what grants access
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'up', '--dir', dir], {
      reject: false,
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', CI: 'true', NO_COLOR: '1', HOME: '/tmp' },
      extendEnv: false,
      timeout: 30_000,
    });
    expect(r.exitCode).toBe(3);
    expect(String(r.stderr)).toBe(
      'error: permission denied connecting to the Docker socket /var/run/docker.sock\n' +
        'hint: add yourself to the docker group (sudo usermod -aG docker $USER, then log in again) or use sudo',
    );
  });

  it('a rootless daemon (fake Engine API answering /info as rootless dockerd does) warns about UID mapping', async () => {
    const { dir } = await initDir('builtin');
    const sock = path.join(root, 'rootless.sock');
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      const url = (req.url ?? '').replace(/^\/v[\d.]+/, '');
      seen.push(`${req.method} ${url.split('?')[0]}`);
      if (url.startsWith('/_ping')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'api-version': '1.41' }).end('OK');
      } else if (url.startsWith('/info')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({ ServerVersion: '20.10.24', SecurityOptions: ['name=seccomp,profile=default', 'name=rootless', 'name=cgroupns'], DockerRootDir: '/home/u/.local/share/docker' }),
        );
      } else {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'fake rootless daemon: not implemented' }));
      }
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const r = await runCli(['up', '--dir', dir], { env: { DOCKER_HOST: `unix://${sock}` } });
      expect(r.stderr).toContain(
        'warning: the Docker daemon is rootless: container user 65532:65532 is mapped to a subordinate UID on the host, so files in data/ owned by you (mode 0600) are not readable by it',
      );
      expect(r.stderr).toContain('set MCP_TUNNEL_UID=0 and MCP_TUNNEL_GID=0 in .env');
      expect(seen).toContain('GET /info');
      // the fake daemon ends the run at the first real API call, with Docker's message on one line
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toMatch(/^error: inspecting image \S+ failed: fake rootless daemon: not implemented$/m);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('an image that cannot be pulled: a real pull attempt fails with the reason and a hint, within a bound', async () => {
    const { dir, project } = await initDir('official');
    expect((await docker(['image', 'inspect', OFFICIAL_PROXY_IMAGE])).exitCode).not.toBe(0);
    const started = Date.now();
    const r = await runCli(['up', '--dir', dir], { timeoutMs: 120_000 });
    expect(Date.now() - started).toBeLessThan(120_000);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toContain(`mcp-proxy: pulling ${OFFICIAL_PROXY_IMAGE}`);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^error: image ${OFFICIAL_PROXY_IMAGE.replace(/[.@/]/g, '\\$&')} cannot be pulled: .+`));
    expect(lines[1]).toMatch(/^hint: check that this host can reach us-docker\.pkg\.dev .*registry-mirrors/);
    expect(await projectContainers(project)).toEqual([]);
  }, 150_000);

  it.skipIf(!isRoot)('data/tls.key not readable by the container user (owned by another uid, 0600)', async () => {
    const { dir, project } = await initDir('builtin');
    const env = await fs.readFile(path.join(dir, '.env'), 'utf8');
    expect(env).toMatch(/^MCP_TUNNEL_UID=65532$/m);
    await fs.chown(path.join(dir, 'data', 'tls.key'), 12345, 12345);
    await fs.chmod(path.join(dir, 'data', 'tls.key'), 0o600);
    const r = await runCli(['up', '--dir', dir]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toBe(
      'error: data/tls.key is not readable by the container user 65532:65532 of mcp-proxy (owner 12345:12345, mode 0600)\n' +
        'hint: set MCP_TUNNEL_UID=12345 and MCP_TUNNEL_GID=12345 in .env (the files\' owner), or run: sudo chown 65532:65532 data/tls.key',
    );
    // nothing was created
    expect(await projectContainers(project)).toEqual([]);
    expect(await projectNetworks(project)).toEqual([]);

    // a data/ directory the user cannot enter is named as such
    await fs.chown(path.join(dir, 'data', 'tls.key'), 65532, 65532);
    await fs.chmod(path.join(dir, 'data'), 0o700);
    const r2 = await runCli(['up', '--dir', dir]);
    expect(r2.exitCode).toBe(3);
    expect(r2.stderr.split('\n')[0]).toBe('error: data/ cannot be entered by the container user 65532:65532 of mcp-proxy (owner 0:0, mode 0700)');
  });

  it('missing TUNNEL_TOKEN: the generated file\'s own message, and the same line for a compose file without ${VAR:?}', async () => {
    const { dir, project } = await initDir('builtin');
    const envFile = path.join(dir, '.env');
    await fs.writeFile(envFile, (await fs.readFile(envFile, 'utf8')).replace(/^TUNNEL_TOKEN=.*\n/m, ''));
    const expected =
      'error: TUNNEL_TOKEN is not set: put the tunnel token in .env beside compose.yaml (mcp-tunnel init or mcp-tunnel rotate-token writes it)';
    const r = await runCli(['up', '--dir', dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.startsWith(expected)).toBe(true);
    expect(r.stderr.trim().split('\n')).toHaveLength(2);

    // The official compose file reads ${TUNNEL_TOKEN} with no default: compose would start cloudflared with an empty token.
    const composeFile = path.join(dir, 'compose.yaml');
    await fs.writeFile(composeFile, (await fs.readFile(composeFile, 'utf8')).replace(/\$\{TUNNEL_TOKEN:\?[^}]*\}/, '${TUNNEL_TOKEN}'));
    const r2 = await runCli(['up', '--dir', dir]);
    expect(r2.exitCode).toBe(2);
    expect(r2.stderr).toContain('warning: the TUNNEL_TOKEN variable is not set; defaulting to a blank string\n');
    expect(r2.stderr).toContain(expected);
    expect(await projectContainers(project)).toEqual([]);
  });
});
