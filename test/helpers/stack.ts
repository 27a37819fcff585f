/**
 * A real deployment directory for the orchestration tests: `mcp-tunnel init --proxy builtin` on the shell-less
 * node base, plus a compose.override.yaml (read by docker-compose and by mcp-tunnel alike) that swaps cloudflared
 * for the local stand-in, publishes the stand-in's port on 127.0.0.1 and gives both containers test-owned images
 * and the mcp-tunnel-test=1 label. Everything is registered with a DockerCleanup.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fakeTunnelToken, runCli, type CliResult } from './cli.js';
import {
  STANDIN_CONTEXT,
  TEST_LABEL,
  buildImage,
  docker,
  dockerCompose,
  ensureNodeBaseImage,
  mustDocker,
  renderTestOverride,
  uniqueName,
  type DockerCleanup,
} from './docker.js';

export const TEST_DOMAIN = 'abcd1234.tunnel.example.com';
export const TEST_TUNNEL_ID = 'tnl_01ABCDEFGHJKMNPQRSTVWXYZ0';

/** The environment docker-compose and the CLI run with: none of our variables leak in from the host. */
export function scrubbedEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith('MCP_TUNNEL_') || k.startsWith('COMPOSE_') || k === 'TUNNEL_TOKEN' || k === 'DOCKER_HOST') continue;
    env[k] = v;
  }
  return { ...env, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0', ...extra };
}

/** A test-owned tag of the cloudflared stand-in (other test files rebuild the shared tag concurrently). */
export async function buildStandin(tag = `mcp-tunnel-test/cloudflared-standin:${uniqueName('orch')}`): Promise<string> {
  const base = await ensureNodeBaseImage();
  return buildImage({ context: STANDIN_CONTEXT, tag, buildArgs: { BASE_IMAGE: base } });
}

export interface TestDeployment {
  dir: string;
  project: string;
  proxyImage: string;
  standinImage: string;
  base: string;
  cli(args: string[], options?: { env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  compose(args: string[], timeoutMs?: number): ReturnType<typeof dockerCompose>;
}

export interface DeploymentOptions {
  cleanup: DockerCleanup;
  standinImage: string;
  routes: string[];
  /** Healthcheck interval of the proxy in the override (the generated 10s makes every start take 10s). */
  healthInterval?: string;
  prefix?: string;
  /** More init flags (e.g. --sample-server). */
  initArgs?: string[];
  /** More override lines at the end of the services map (e.g. a test-owned image for another service). */
  extraOverride?: (proxyImage: string) => string[];
}

/** `mcp-tunnel init --proxy builtin` + the test override, in a fresh temp directory. */
export async function createDeployment(opts: DeploymentOptions): Promise<TestDeployment> {
  const base = await ensureNodeBaseImage();
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-orch-'));
  const project = uniqueName(opts.prefix ?? 'mcporch');
  const dir = path.join(parent, project);
  const proxyImage = `mcp-tunnel-test/proxy:${project}`;
  opts.cleanup.dir(parent);
  opts.cleanup.image(proxyImage);
  opts.cleanup.project(project, dir);
  await fs.mkdir(dir, { recursive: true });
  await fs.chmod(parent, 0o755);
  const tokenFile = path.join(parent, 'token');
  await fs.writeFile(tokenFile, `${fakeTunnelToken('orch')}\n`, { mode: 0o600 });

  const cli: TestDeployment['cli'] = (args, o = {}) => runCli(args, { env: { ...o.env }, timeoutMs: o.timeoutMs ?? 240_000, cwd: dir });
  const init = await cli([
    'init',
    '--dir', dir,
    '--proxy', 'builtin',
    '--base-image', base,
    '--tunnel-id', TEST_TUNNEL_ID,
    '--tunnel-domain', TEST_DOMAIN,
    '--tunnel-token-file', tokenFile,
    ...opts.routes.flatMap((r) => ['--route', r]),
    ...(opts.initArgs ?? []),
    '--non-interactive',
    '-y',
  ]);
  if (init.exitCode !== 0) throw new Error(`init failed (exit ${init.exitCode}):\n${init.stderr}\n${init.stdout}`);
  await writeOverride(dir, { standinImage: opts.standinImage, proxyImage, healthInterval: opts.healthInterval ?? '1s', extraCloudflared: opts.extraOverride?.(proxyImage) });
  const compose: TestDeployment['compose'] = (args, timeoutMs = 240_000) =>
    dockerCompose(args, { cwd: dir, env: scrubbedEnv(), extendEnv: false, timeout: timeoutMs });
  return { dir, project, proxyImage, standinImage: opts.standinImage, base, cli, compose };
}

/** compose.override.yaml: the stand-in, a published port, test-owned images, the test label, a faster healthcheck. */
export async function writeOverride(
  dir: string,
  o: { standinImage: string; proxyImage: string; healthInterval?: string; extraProxy?: string[]; extraCloudflared?: string[] },
): Promise<void> {
  const lines = renderTestOverride({ standinImage: o.standinImage, publish: true, proxyImage: o.proxyImage }).split('\n');
  const at = lines.findIndex((l) => l.startsWith('  cloudflared:'));
  const proxyExtra = [...(o.healthInterval ? ['    healthcheck:', `      interval: ${o.healthInterval}`] : []), ...(o.extraProxy ?? [])];
  lines.splice(at, 0, ...proxyExtra);
  const text = [...lines.filter((l, i) => i < lines.length - 1 || l !== ''), ...(o.extraCloudflared ?? []), ''].join('\n');
  await fs.writeFile(path.join(dir, 'compose.override.yaml'), text);
}

/** The published host port of the stand-in (declared on mcp-proxy, which owns the network namespace). */
export async function standinPort(project: string): Promise<number> {
  const out = await mustDocker(['port', `${project}-mcp-proxy-1`, '8081/tcp']).catch(() => mustDocker(['port', `${project}_mcp-proxy_1`, '8081/tcp']));
  const m = /127\.0\.0\.1:(\d+)/.exec(out);
  if (!m) throw new Error(`no published port for 8081/tcp: ${out}`);
  return Number(m[1]);
}

export interface UpstreamNetwork {
  name: string;
  /** An address for the upstream MCP server container inside it. */
  upstreamIp: string;
}

/** A labelled network with a random 10.x/24 (inside the proxy's default allowed_ips, away from Docker's pools). */
export async function createUpstreamNetwork(cleanup: DockerCleanup): Promise<UpstreamNetwork> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const octets = [200 + Math.floor(Math.random() * 50), Math.floor(Math.random() * 250)];
    const subnet = `10.${octets[0]}.${octets[1]}.0/24`;
    const name = uniqueName('mcptest-upstream-');
    const r = await docker(['network', 'create', '--label', `${TEST_LABEL}=1`, '--subnet', subnet, name]);
    if (r.exitCode === 0) {
      cleanup.network(name);
      cleanup.container(`${name}-server`);
      return { name, upstreamIp: `10.${octets[0]}.${octets[1]}.10` };
    }
    if (!/overlap|Pool/i.test(String(r.stderr))) throw new Error(`docker network create failed: ${String(r.stderr)}`);
  }
  throw new Error('could not find a free 10.x subnet for the upstream network');
}

/**
 * The sample MCP server (`mcp-tunnel demo --serve-sample`, the SDK server with `hello` and `echo`) in a container
 * of the builtin proxy image, at a fixed address on the upstream network.
 */
export async function startUpstreamServer(net: UpstreamNetwork, image: string): Promise<string> {
  const name = `${net.name}-server`;
  await mustDocker([
    'run', '-d',
    '--name', name,
    '--label', `${TEST_LABEL}=1`,
    '--network', net.name,
    '--ip', net.upstreamIp,
    '--read-only',
    '--cap-drop', 'ALL',
    '--user', '65532:65532',
    image,
    'demo', '--serve-sample', '0.0.0.0:8080',
  ]);
  // Ready once it logs its listening line.
  for (let i = 0; i < 100; i++) {
    const logs = await docker(['logs', name]);
    if (/listening on/.test(String(logs.stdout) + String(logs.stderr))) return name;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = await docker(['logs', name]);
  throw new Error(`the upstream MCP server did not start:\n${String(logs.stdout)}${String(logs.stderr)}`);
}

/** Compose labels of a container, by name. */
export async function containerLabels(name: string): Promise<Record<string, string>> {
  return JSON.parse(await mustDocker(['inspect', '--format', '{{json .Config.Labels}}', name])) as Record<string, string>;
}

export async function containerId(name: string): Promise<string> {
  return mustDocker(['inspect', '--format', '{{.Id}}', name]);
}
