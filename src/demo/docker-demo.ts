import fs from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeBuildContext } from '../deployment/build-context.js';
import { deploymentPaths } from '../deployment/layout.js';
import { DEFAULT_BUILTIN_BASE_IMAGE } from '../deployment/images.js';
import { ExitCode, UserError } from '../errors.js';
import { composeDown, composeUp, connectDocker, pingDocker, type DockerConnection } from '../docker/index.js';
import { createCa, issueServerCert } from '../pki/index.js';
import type { DemoResult, RunDemoOptions } from './types.js';
import { DEMO_DOMAIN, DEMO_ROUTE, DemoRun } from './steps.js';

/** The sample server's port inside its container. */
const UPSTREAM_PORT = 3000;
const PROXY_SERVICE = 'mcp-proxy';
const UPSTREAM_SERVICE = 'upstream';

export interface DockerDemoOptions extends RunDemoOptions {
  /** Base image of the local build (node >= 22); default node:24-slim (MCP_TUNNEL_BASE_IMAGE). */
  baseImage?: string;
  /** Bound for building and starting the containers. Default 180 s. */
  upTimeoutMs?: number;
  /** Where DOCKER_HOST comes from. */
  env?: NodeJS.ProcessEnv;
}

/**
 * `mcp-tunnel demo --docker`: the same checks as the loopback demo, with the proxy and the sample MCP server
 * in containers built from this package (compose/Dockerfile + the single-file bundle), brought up and torn
 * down through src/docker (the Engine API, as `mcp-tunnel up` does). The proxy's port is published on
 * 127.0.0.1 only, at an ephemeral port; the upstream is reached over the project network by service name,
 * with the upstream guard at its default (RFC 1918 only). Containers, network, image and temp directory are
 * removed in `finally`.
 */
export async function runDockerDemo(opts: DockerDemoOptions = {}): Promise<DemoResult> {
  const run = new DemoRun(opts);
  const result = run.result;
  let dir: string | undefined;
  let conn: DockerConnection | undefined;
  let started = false;
  let madeDir = false;
  let imageTag: string | undefined;
  const onExit = (): void => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  try {
    conn = await run.step(
      'docker',
      async () => {
        const c = connectDocker({ env: opts.env });
        await pingDocker(c);
        return c;
      },
      (c) => `Docker Engine reachable at ${c.endpoint}`,
    );

    dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-demo-'));
    madeDir = true;
    const paths = deploymentPaths(dir);
    const project = path.basename(dir).toLowerCase().replace(/[^a-z0-9_-]/g, '');
    imageTag = `mcp-tunnel-demo:${project}`;
    const workDir = dir;

    await run.step(
      'certificates',
      async () => {
        const ca = await createCa({ commonName: 'mcp-tunnel demo CA (throwaway)', validityDays: 1 });
        const server = await issueServerCert({ ca, domain: DEMO_DOMAIN, validityMs: 86_400_000 });
        // Throwaway material in a private temp dir (mkdtemp: 0700): the proxy container (UID 65532) must read
        // tls.key through the bind mount, so data/ is 0755 and tls.key 0644. The CA key is not written at all.
        await mkdir(paths.dataDir, { recursive: true });
        await chmod(paths.dataDir, 0o755);
        await mkdir(paths.configDir, { recursive: true });
        await writeFile(paths.caCert, ca.certPem, { mode: 0o644 });
        await writeFile(paths.tlsCert, server.certPem, { mode: 0o644 });
        await writeFile(paths.tlsKey, server.keyPem, { mode: 0o644 });
        await chmod(paths.tlsKey, 0o644);
        await writeFile(paths.tunnelDomain, `${DEMO_DOMAIN}\n`, { mode: 0o644 });
        return ca;
      },
      () => `throwaway CA and a server certificate for ${DEMO_DOMAIN} and *.${DEMO_DOMAIN} in ${workDir}`,
    );

    await writeFile(
      paths.proxyConfig,
      [
        '# mcp-tunnel demo --docker: a throwaway deployment',
        'listen_addr: ":8080"',
        'log_level: info',
        'shutdown_timeout: 2s',
        `tunnel_domain: ${DEMO_DOMAIN}`,
        'tls:',
        '  cert_file: /data/tls.crt',
        '  key_file: /data/tls.key',
        'routes:',
        `  ${DEMO_ROUTE}: "http://${UPSTREAM_SERVICE}:${UPSTREAM_PORT}"`,
        '# upstream.allowed_ips: the default (10/8, 172.16/12, 192.168/16) admits the project network; the guard stays on.',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    await writeBuildContext(dir);
    const baseImage = opts.baseImage ?? DEFAULT_BUILTIN_BASE_IMAGE;
    await writeFile(paths.compose, demoComposeFile(imageTag, baseImage), { mode: 0o644 });
    await writeFile(paths.env, `COMPOSE_PROJECT_NAME=${project}\n`, { mode: 0o600 });

    started = true;
    const up = await run.step(
      'containers',
      () => composeUp(workDir, { conn, timeoutMs: opts.upTimeoutMs ?? 180_000, processEnv: {} }),
      (r) => `built ${imageTag} (base ${baseImage}); ${r.containers.map((c) => c.name).join(', ')} up; proxy ${r.proxy?.state ?? 'running'}`,
    );

    const proxyContainer = up.containers.find((c) => c.service === PROXY_SERVICE);
    const port = proxyContainer ? await publishedPort(conn, proxyContainer.id) : undefined;
    if (!port) throw new UserError('the proxy container published no port for 8080', { code: 'DEMO_FAILED', hint: 'check `docker ps` for the demo project', exitCode: ExitCode.environment });

    const proxyUrl = `ws://127.0.0.1:${port}/`;
    if (!(await run.probe(proxyUrl, paths.caCert))) return result;
    if (opts.whileRunning) {
      await opts.whileRunning({ dir, proxyUrl, adminUrl: undefined, upstreamUrl: `http://${UPSTREAM_SERVICE}:${UPSTREAM_PORT}/mcp (inside the project network)`, domain: DEMO_DOMAIN, route: DEMO_ROUTE });
    }
    return result;
  } catch (err) {
    return run.settle(err);
  } finally {
    run.startCleanup();
    const problems: string[] = [];
    if (conn && dir && started) {
      await composeDown(dir, { conn, timeoutSeconds: 2, processEnv: {} }).catch((e: unknown) => problems.push(`containers: ${(e as Error).message}`));
    }
    if (conn && imageTag) {
      await conn.docker
        .getImage(imageTag)
        .remove({ force: true, noprune: false })
        .catch((e: unknown) => {
          if ((e as { statusCode?: number }).statusCode !== 404) problems.push(`image ${imageTag}: ${(e as Error).message}`);
        });
    }
    if (dir) {
      await rm(dir, { recursive: true, force: true }).catch((e: unknown) => problems.push(`temp dir: ${(e as Error).message}`));
      if (!fs.existsSync(dir)) dir = undefined;
    }
    process.removeListener('exit', onExit);
    run.finishCleanup(
      problems,
      dir,
      `${started ? `containers, network and image ${imageTag} removed, ` : ''}temp directory removed`,
      'remove what is left by hand (docker ps -a, docker images mcp-tunnel-demo)',
      madeDir,
    );
  }
}

async function publishedPort(conn: DockerConnection, id: string): Promise<number | undefined> {
  const info = (await conn.docker.getContainer(id).inspect()) as { NetworkSettings?: { Ports?: Record<string, Array<{ HostIp: string; HostPort: string }> | null> } };
  const bindings = info.NetworkSettings?.Ports?.['8080/tcp'] ?? [];
  const port = Number(bindings?.[0]?.HostPort);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/** The demo's compose file: the builtin proxy (published on 127.0.0.1 only) and the sample server, same image. */
export function demoComposeFile(imageTag: string, baseImage: string): string {
  const hardening = [
    '    user: "65532:65532"',
    '    read_only: true',
    '    security_opt:',
    '      - "no-new-privileges:true"',
    '    cap_drop:',
    '      - ALL',
    '    stop_grace_period: 5s',
  ];
  const build = ['    build:', '      context: ./build', '      args:', `        BASE_IMAGE: ${JSON.stringify(baseImage)}`];
  return [
    '# mcp-tunnel demo --docker (throwaway; removed when the demo ends)',
    'services:',
    `  ${PROXY_SERVICE}:`,
    `    image: ${imageTag}`,
    ...build,
    '    command: ["proxy", "--config", "/etc/mcp-gateway/config.yaml"]',
    '    healthcheck:',
    '      test: ["CMD", "node", "/app/mcp-tunnel.mjs", "health"]',
    '      interval: 1s',
    '      timeout: 5s',
    '      retries: 30',
    '      start_period: 30s',
    '    volumes:',
    '      - ./config/mcp-proxy.yaml:/etc/mcp-gateway/config.yaml:ro',
    '      - ./data:/data:ro',
    '    ports:',
    '      - "127.0.0.1::8080"',
    '    depends_on:',
    `      - ${UPSTREAM_SERVICE}`,
    ...hardening,
    `  ${UPSTREAM_SERVICE}:`,
    `    image: ${imageTag}`,
    ...build,
    `    command: ["demo", "--serve-sample", "0.0.0.0:${UPSTREAM_PORT}"]`,
    "    # The image's HEALTHCHECK asks the proxy's admin listener, which the sample server does not have.",
    '    healthcheck:',
    '      disable: true',
    ...hardening,
    '',
  ].join('\n');
}
