/**
 * The rendered compose.yaml against the real docker-compose 1.29: `config` accepts it for both engines with a
 * sample .env, interpolates what .env says (and the defaults when it says nothing), and refuses to go on
 * with our message when TUNNEL_TOKEN is missing or empty.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TUNNEL_TOKEN_MISSING_MESSAGE, renderComposeFile, type ProxyEngine } from '../../src/deployment/compose-file.js';
import { CLOUDFLARED_IMAGE, OFFICIAL_PROXY_IMAGE } from '../../src/deployment/images.js';
import { VERSION } from '../../src/version.js';
import { FAKE_TUNNEL_TOKEN, dockerCleanup, dockerCompose, renderTestOverride, requireDocker } from '../helpers/docker.js';
import { scrubbedEnv } from '../helpers/stack.js';

const dockerReady = await requireDocker();

interface Deployment {
  dir: string;
}

const cleanup = dockerCleanup();
afterAll(async () => {
  await cleanup.run();
});

async function deployment(engine: ProxyEngine, env: string, autoRenew = false): Promise<Deployment> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `mcp-tunnel-config-${engine}-`));
  cleanup.dir(dir);
  await fs.writeFile(path.join(dir, 'compose.yaml'), renderComposeFile({ engine, version: VERSION, autoRenew }));
  await fs.writeFile(path.join(dir, '.env'), env, { mode: 0o600 });
  // docker-compose 1.29 refuses a build context that does not exist ("build path ... does not exist").
  if (engine === 'builtin' || autoRenew) await fs.mkdir(path.join(dir, 'build'));
  return { dir };
}

async function config(d: Deployment, files: string[] = []) {
  const f = files.flatMap((file) => ['-f', file]);
  return dockerCompose([...f, 'config'], { cwd: d.dir, env: scrubbedEnv(), extendEnv: false, timeout: 60_000 });
}

type Services = Record<string, Record<string, unknown>>;

describe.skipIf(!dockerReady)('docker-compose 1.29 config on the rendered file', () => {
  it.each<ProxyEngine>(['official', 'builtin'])('%s: accepted with a sample .env, values interpolated from it', async (engine) => {
    const d = await deployment(
      engine,
      [
        `TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}`,
        'COMPOSE_PROJECT_NAME=mcp-tunnel-sample',
        'MCP_TUNNEL_UID=1234',
        'MCP_TUNNEL_GID=5678',
        'MCP_TUNNEL_BASE_IMAGE=example.test/node:24',
        '',
      ].join('\n'),
    );
    const r = await config(d);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = YAML.parse(String(r.stdout)) as { services: Services };
    const proxy = out.services['mcp-proxy']!;
    const cf = out.services.cloudflared!;
    expect(proxy.user).toBe('1234:5678');
    expect(cf.user).toBe('1234:5678');
    expect((cf.environment as Record<string, string>).TUNNEL_TOKEN).toBe(FAKE_TUNNEL_TOKEN);
    expect(cf.image).toBe(CLOUDFLARED_IMAGE);
    expect(cf.network_mode).toBe('service:mcp-proxy');
    expect(proxy.volumes).toEqual([
      `${d.dir}/config/mcp-proxy.yaml:/etc/mcp-gateway/config.yaml:ro`,
      `${d.dir}/data:/data:ro`,
    ]);
    for (const svc of [proxy, cf]) {
      expect(svc.read_only).toBe(true);
      expect(svc.cap_drop).toEqual(['ALL']);
      expect(svc.security_opt).toEqual(['no-new-privileges:true']);
      expect(svc.restart).toBe('unless-stopped');
      expect(svc.stop_grace_period).toBe('30s');
      expect(svc.logging).toEqual({ driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
    }
    if (engine === 'builtin') {
      expect(proxy.image).toBe(`mcp-tunnel-proxy:${VERSION}`);
      expect(proxy.build).toEqual({ context: path.join(d.dir, 'build'), args: { BASE_IMAGE: 'example.test/node:24' } });
      expect(cf.depends_on).toEqual({ 'mcp-proxy': { condition: 'service_healthy' } });
    } else {
      expect(proxy.image).toBe(OFFICIAL_PROXY_IMAGE);
      expect(Object.keys(cf.depends_on as object)).toEqual(['mcp-proxy']);
    }
  });

  it.each<ProxyEngine>(['official', 'builtin'])('%s with autoRenew: accepted, every service hardened', async (engine) => {
    const d = await deployment(engine, `TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}\n`, true);
    const r = await config(d);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = YAML.parse(String(r.stdout)) as { services: Services };
    expect(Object.keys(out.services).length).toBe(3);
    for (const svc of Object.values(out.services)) {
      expect(svc.user).toBe('65532:65532');
      expect(svc.read_only).toBe(true);
      expect(svc.cap_drop).toEqual(['ALL']);
      expect(svc.security_opt).toEqual(['no-new-privileges:true']);
    }
  });

  it.each<ProxyEngine>(['official', 'builtin'])('%s: defaults when .env holds only the token', async (engine) => {
    const d = await deployment(engine, `TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}\n`);
    const r = await config(d);
    expect(r.exitCode).toBe(0);
    const out = YAML.parse(String(r.stdout)) as { services: Services };
    expect(out.services['mcp-proxy']!.user).toBe('65532:65532');
    expect(out.services.cloudflared!.user).toBe('65532:65532');
    if (engine === 'builtin') expect((out.services['mcp-proxy']!.build as { args: Record<string, string> }).args.BASE_IMAGE).toBe('node:24-slim');
  });

  it.each<[ProxyEngine, string]>([
    ['official', 'COMPOSE_PROJECT_NAME=x\n'],
    ['builtin', 'COMPOSE_PROJECT_NAME=x\n'],
    ['builtin', 'TUNNEL_TOKEN=\n'],
  ])('%s: refused with our message when TUNNEL_TOKEN is missing or empty (.env: %j)', async (engine, env) => {
    const d = await deployment(engine, env);
    const r = await config(d);
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toContain(TUNNEL_TOKEN_MISSING_MESSAGE);
  });

  it('accepts the test override (stand-in cloudflared, published port) on top of the builtin file', async () => {
    const d = await deployment('builtin', `TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}\n`);
    await fs.writeFile(
      path.join(d.dir, 'compose.test.yaml'),
      renderTestOverride({ standinImage: 'mcp-tunnel-test/cloudflared-standin:local', publish: true, proxyImage: 'mcp-tunnel-test/proxy:x' }),
    );
    const r = await config(d, ['compose.yaml', 'compose.test.yaml']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = YAML.parse(String(r.stdout)) as { services: Services };
    expect(out.services.cloudflared!.image).toBe('mcp-tunnel-test/cloudflared-standin:local');
    expect(out.services.cloudflared!.network_mode).toBe('service:mcp-proxy');
    expect(out.services['mcp-proxy']!.image).toBe('mcp-tunnel-test/proxy:x');
    expect(out.services['mcp-proxy']!.ports).toEqual(['127.0.0.1::8081/tcp']);
    expect(out.services.cloudflared!.ports).toBeUndefined();
  });
});
