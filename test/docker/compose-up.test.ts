/**
 * A rendered builtin deployment brought up for real by docker-compose 1.29, exactly as a user would (`up -d`
 * in the deployment directory), with cloudflared swapped for the local stand-in by an override file:
 * the proxy image is built from DIR/build on the shell-less node base, the proxy becomes healthy, the
 * stand-in (in the proxy's network namespace) registers its four connections and forwards a published port
 * to localhost:8080, tls.key stays 0600, and `down` leaves no container and no network.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBuildContext } from '../../src/deployment/build-context.js';
import { renderComposeFile } from '../../src/deployment/compose-file.js';
import { VERSION } from '../../src/version.js';
import {
  FAKE_TUNNEL_TOKEN,
  buildCloudflaredStandin,
  docker,
  dockerCleanup,
  dockerCompose,
  ensureNodeBaseImage,
  mustDocker,
  projectContainers,
  projectNetworks,
  renderTestOverride,
  requireDocker,
  uniqueName,
} from '../helpers/docker.js';
import { scrubbedEnv } from '../helpers/stack.js';
import { writeTestPki } from '../helpers/pki.js';

const dockerReady = await requireDocker();

const DOMAIN = 'abcd1234.tunnel.example.com';
const FILES = ['compose.yaml', 'compose.test.yaml'];

/** One HTTP/1.1 request over a raw socket; resolves with what came back before the socket closed or 3 s. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(data);
    }, 3000);
    s.on('connect', () => s.write(request));
    s.on('data', (chunk) => (data += chunk.toString('latin1')));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      if (data) resolve(data);
      else reject(err);
    });
  });
}

describe.skipIf(!dockerReady)('docker-compose up -d on a rendered builtin deployment (stand-in cloudflared)', () => {
  const cleanup = dockerCleanup();
  const project = uniqueName('mcptest');
  const proxyImage = `mcp-tunnel-test/proxy:${uniqueName('up')}`;
  let dir = '';
  let upSeconds = 0;
  let up: Awaited<ReturnType<typeof dockerCompose>>;

  const compose = (args: string[], timeout = 240_000) =>
    dockerCompose([...FILES.flatMap((f) => ['-f', f]), ...args], { cwd: dir, env: scrubbedEnv(), extendEnv: false, timeout });

  beforeAll(async () => {
    const [base, standin] = await Promise.all([ensureNodeBaseImage(), buildCloudflaredStandin()]);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-up-'));
    cleanup.dir(dir);
    cleanup.image(proxyImage);
    cleanup.project(project, dir, FILES);

    // The deployment directory, as init lays it out.
    await fs.writeFile(path.join(dir, 'compose.yaml'), renderComposeFile({ engine: 'builtin', version: VERSION }));
    await fs.writeFile(path.join(dir, 'compose.test.yaml'), renderTestOverride({ standinImage: standin, publish: true, proxyImage }));
    await writeBuildContext(dir);
    await fs.mkdir(path.join(dir, 'config'));
    await fs.writeFile(
      path.join(dir, 'config', 'mcp-proxy.yaml'),
      [
        'listen_addr: ":8080"',
        `tunnel_domain: ${DOMAIN}`,
        'tls:',
        '  cert_file: /data/tls.crt',
        '  key_file: /data/tls.key',
        'routes:',
        '  echo: "http://10.0.0.5:8080"',
        '',
      ].join('\n'),
    );
    const data = path.join(dir, 'data');
    await writeTestPki(data, DOMAIN);
    await fs.writeFile(path.join(data, 'tunnel-domain'), `${DOMAIN}\n`);
    // As init does: as root the containers keep 65532 and the proxy's files are handed to it (still 0600);
    // as a regular user the containers run as that user instead.
    const asRoot = process.getuid?.() === 0;
    const env = [`TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}`, `COMPOSE_PROJECT_NAME=${project}`, `MCP_TUNNEL_BASE_IMAGE=${base}`];
    if (asRoot) {
      await fs.chown(path.join(data, 'tls.crt'), 65532, 65532);
      await fs.chown(path.join(data, 'tls.key'), 65532, 65532);
      await fs.chmod(data, 0o711);
    } else {
      env.push(`MCP_TUNNEL_UID=${process.getuid!()}`, `MCP_TUNNEL_GID=${process.getgid!()}`);
      await fs.chmod(data, 0o700);
    }
    await fs.chmod(dir, 0o755);
    await fs.writeFile(path.join(dir, '.env'), `${env.join('\n')}\n`, { mode: 0o600 });

    // No -p: the project name must come from COMPOSE_PROJECT_NAME in .env.
    const started = Date.now();
    up = await compose(['up', '-d']);
    upSeconds = (Date.now() - started) / 1000;
    if (up.exitCode !== 0) {
      const logs = await compose(['logs', '--no-color', '--tail', '50'], 60_000);
      throw new Error(`docker-compose up -d failed (exit ${up.exitCode}):\n${String(up.stderr)}\n--- logs ---\n${String(logs.stdout)}`);
    }
  }, 400_000);

  afterAll(async () => {
    await cleanup.run();
  }, 180_000);

  it('comes up within the budget, named by COMPOSE_PROJECT_NAME from .env', async () => {
    expect(upSeconds).toBeLessThan(180);
    const names = await projectContainers(project);
    expect(names.sort()).toEqual([`${project}_cloudflared_1`, `${project}_mcp-proxy_1`].sort());
  });

  it('the proxy is healthy (its healthcheck, `node /app/mcp-tunnel.mjs health`, passes)', async () => {
    const status = await mustDocker(['inspect', '--format', '{{.State.Health.Status}}', `${project}_mcp-proxy_1`]);
    expect(status).toBe('healthy');
  });

  it('runs hardened: 65532, read-only root, no capabilities, no-new-privileges, json-file logs, no port but the test one', async () => {
    for (const name of [`${project}_mcp-proxy_1`, `${project}_cloudflared_1`]) {
      const hc = JSON.parse(await mustDocker(['inspect', '--format', '{{json .HostConfig}}', name])) as Record<string, unknown>;
      const cfg = JSON.parse(await mustDocker(['inspect', '--format', '{{json .Config}}', name])) as Record<string, unknown>;
      if (process.getuid?.() === 0) expect(cfg.User, name).toBe('65532:65532');
      expect(hc.ReadonlyRootfs, name).toBe(true);
      expect(hc.CapDrop, name).toEqual(['ALL']);
      expect(hc.SecurityOpt, name).toEqual(['no-new-privileges:true']);
      expect(hc.RestartPolicy, name).toMatchObject({ Name: 'unless-stopped' });
      expect(hc.LogConfig, name).toEqual({ Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } });
    }
    const cfNet = await mustDocker(['inspect', '--format', '{{.HostConfig.NetworkMode}}', `${project}_cloudflared_1`]);
    expect(cfNet).toMatch(/^container:[0-9a-f]{64}$/);
  });

  it('the stand-in registers four tunnel connections once the proxy answers on localhost:8080', async () => {
    let logs = '';
    for (let i = 0; i < 40; i++) {
      logs = String((await compose(['logs', '--no-color', 'cloudflared'], 30_000)).stdout);
      if ((logs.match(/Registered tunnel connection/g) ?? []).length >= 4) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect((logs.match(/Registered tunnel connection connIndex=\d/g) ?? []).length).toBe(4);
  });

  it('the published stand-in port reaches the proxy listener (plain HTTP, not TLS) through the shared namespace', async () => {
    const port = await compose(['port', 'mcp-proxy', '8081'], 30_000);
    expect(port.exitCode).toBe(0);
    const m = /^127\.0\.0\.1:(\d+)$/.exec(String(port.stdout).trim());
    expect(m, String(port.stdout)).not.toBeNull();
    const answer = await rawHttp(Number(m![1]), `GET / HTTP/1.1\r\nHost: echo.${DOMAIN}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.[01] \d{3} /);
  });

  it('tls.key stays 0600 and owned by the container user', async () => {
    const st = await fs.stat(path.join(dir, 'data', 'tls.key'));
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(process.getuid?.() === 0 ? 65532 : process.getuid!());
  });

  it('docker-compose down leaves no container and no network', async () => {
    const down = await compose(['down', '--timeout', '10'], 120_000);
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(await projectContainers(project)).toEqual([]);
    expect(await projectNetworks(project)).toEqual([]);
    const byName = await docker(['network', 'inspect', `${project}_default`]);
    expect(byName.exitCode).not.toBe(0);
  });
});

