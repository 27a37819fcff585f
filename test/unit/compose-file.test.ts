import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  CLOUDFLARED_COMMAND,
  COMPOSE_ENV_VARS,
  COMPOSE_SERVICES,
  TUNNEL_TOKEN_MISSING_MESSAGE,
  renderComposeFile,
  type ProxyEngine,
} from '../../src/deployment/compose-file.js';
import { CLOUDFLARED_IMAGE, OFFICIAL_PROXY_IMAGE } from '../../src/deployment/images.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENGINES: ProxyEngine[] = ['official', 'builtin'];

type Service = Record<string, unknown> & {
  user?: string;
  logging?: { driver?: string; options?: Record<string, string> };
  volumes?: string[];
  environment?: Record<string, string>;
  depends_on?: unknown;
  healthcheck?: { test?: string[] };
  build?: { context?: string; args?: Record<string, string> };
};

function parse(engine: ProxyEngine, autoRenew = false): { services: Record<string, Service>; text: string; doc: Record<string, unknown> } {
  const text = renderComposeFile({ engine, version: '1.2.3', autoRenew });
  const doc = YAML.parse(text) as Record<string, unknown>;
  return { services: doc.services as Record<string, Service>, text, doc };
}

describe('renderComposeFile', () => {
  it.each(ENGINES)('%s: valid YAML with exactly the two services and no name/version key', (engine) => {
    const { doc, services } = parse(engine);
    expect(Object.keys(doc)).toEqual(['services']);
    expect(Object.keys(services).sort()).toEqual([COMPOSE_SERVICES.cloudflared, COMPOSE_SERVICES.proxy].sort());
    expect(COMPOSE_SERVICES).toEqual({ proxy: 'mcp-proxy', cloudflared: 'cloudflared' });
  });

  it.each(ENGINES.flatMap((e) => [[e, false], [e, true]] as Array<[ProxyEngine, boolean]>))('%s (autoRenew %s): every service carries the full hardening of docs/contract.md §2', (engine, autoRenew) => {
    const { services } = parse(engine, autoRenew);
    expect(Object.keys(services).length).toBe(autoRenew ? 3 : 2);
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.user, name).toBe('${MCP_TUNNEL_UID:-65532}:${MCP_TUNNEL_GID:-65532}');
      expect(svc.read_only, name).toBe(true);
      expect(svc.security_opt, name).toEqual(['no-new-privileges:true']);
      expect(svc.cap_drop, name).toEqual(['ALL']);
      expect(svc.restart, name).toBe('unless-stopped');
      expect(svc.stop_grace_period, name).toBe('30s');
      expect(svc.logging, name).toEqual({ driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
      expect(svc.ports, name).toBeUndefined();
      expect(svc.privileged, name).toBeUndefined();
    }
  });

  it.each(ENGINES)('%s: cloudflared is pinned, wired into the proxy namespace, and requires TUNNEL_TOKEN', (engine) => {
    const { services, text } = parse(engine);
    const cf = services.cloudflared!;
    expect(cf.image).toBe(CLOUDFLARED_IMAGE);
    expect(CLOUDFLARED_IMAGE).toBe('cloudflare/cloudflared@sha256:6b599ca3e974349ead3286d178da61d291961182ec3fe9c505e1dd02c8ac31b0');
    expect(cf.command).toBe('tunnel --no-autoupdate run --url http://localhost:8080');
    expect(CLOUDFLARED_COMMAND).toBe(cf.command);
    expect(cf.network_mode).toBe('service:mcp-proxy');
    expect(cf.environment).toEqual({ TUNNEL_TOKEN: `\${TUNNEL_TOKEN:?${TUNNEL_TOKEN_MISSING_MESSAGE}}` });
    expect(text).toContain('${TUNNEL_TOKEN:?');
    // compose's ${VAR:?err} ends at the first "}": the message must hold none (nor a "$").
    expect(TUNNEL_TOKEN_MISSING_MESSAGE).not.toMatch(/[}$]/);
    if (engine === 'builtin') expect(cf.depends_on).toEqual({ 'mcp-proxy': { condition: 'service_healthy' } });
    else expect(cf.depends_on).toEqual(['mcp-proxy']);
  });

  it.each(ENGINES)('%s: the proxy mounts its config and data read-only', (engine) => {
    const proxy = parse(engine).services['mcp-proxy']!;
    expect(proxy.volumes).toEqual(['./config/mcp-proxy.yaml:/etc/mcp-gateway/config.yaml:ro', './data:/data:ro']);
    expect(proxy.environment).toBeUndefined(); // no secret reaches the proxy
  });

  it('official: the pinned proxy digest and no command', () => {
    const proxy = parse('official').services['mcp-proxy']!;
    expect(proxy.image).toBe(OFFICIAL_PROXY_IMAGE);
    expect(OFFICIAL_PROXY_IMAGE).toBe(
      'us-docker.pkg.dev/anthropic-public-registry/images/mcp-proxy@sha256:efb27b299d627e4134815663cb8896641eeaee025d734c0f695582b4df38f013',
    );
    expect(proxy.command).toBeUndefined();
    expect(proxy.build).toBeUndefined();
    expect(proxy.healthcheck).toBeUndefined();
  });

  it('builtin: a versioned local image built from ./build, the proxy command and a node healthcheck', () => {
    const proxy = parse('builtin').services['mcp-proxy']!;
    expect(proxy.image).toBe('mcp-tunnel-proxy:1.2.3');
    expect(proxy.build).toEqual({ context: './build', args: { BASE_IMAGE: '${MCP_TUNNEL_BASE_IMAGE:-node:24-slim}' } });
    expect(proxy.command).toEqual(['proxy', '--config', '/etc/mcp-gateway/config.yaml']);
    expect(proxy.healthcheck?.test).toEqual(['CMD', 'node', '/app/mcp-tunnel.mjs', 'health']);
  });

  it('builtin: an image tag stays a valid Docker tag whatever the version string', () => {
    const doc = YAML.parse(renderComposeFile({ engine: 'builtin', version: '1.0.0-rc.1+sha.abc' })) as { services: Record<string, Service> };
    expect(doc.services['mcp-proxy']!.image).toBe('mcp-tunnel-proxy:1.0.0-rc.1-sha.abc');
  });

  it.each(ENGINES)('%s: a commented header says who wrote it and how to run it', (engine) => {
    const { text } = parse(engine);
    const header = text.split('\n').filter((l) => l.startsWith('#')).join('\n');
    expect(header).toMatch(/Generated by mcp-tunnel 1\.2\.3/);
    expect(header).toContain('mcp-tunnel up');
    expect(header).toContain('docker compose up -d');
    expect(header).toMatch(/interchangeable/);
    expect(header).toContain('COMPOSE_PROJECT_NAME');
  });

  it('is pure: the same options give the same text', () => {
    expect(renderComposeFile({ engine: 'builtin', version: '0.1.0' })).toBe(renderComposeFile({ engine: 'builtin', version: '0.1.0' }));
  });

  it('every ${VAR} the file interpolates is documented in COMPOSE_ENV_VARS', () => {
    const documented = new Set(COMPOSE_ENV_VARS.map((v) => v.name));
    for (const engine of ENGINES) {
      const body = parse(engine, true)
        .text.split('\n')
        .filter((l) => !l.trimStart().startsWith('#'))
        .join('\n');
      const used = [...body.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!);
      expect(used.length).toBeGreaterThan(0);
      for (const name of used) expect(documented.has(name), `${name} (${engine})`).toBe(true);
      for (const v of COMPOSE_ENV_VARS.filter((e) => e.engines.includes(engine) && e.name !== 'COMPOSE_PROJECT_NAME')) {
        expect(used, `${v.name} should be read by the ${engine} file`).toContain(v.name);
      }
    }
  });
});

describe('env.example', () => {
  const text = readFileSync(path.join(ROOT, 'env.example'), 'utf8');
  const assigned = [...text.matchAll(/^#?([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]!);

  it('documents exactly the variables of COMPOSE_ENV_VARS, in the same order, each once', () => {
    expect(assigned).toEqual(COMPOSE_ENV_VARS.map((v) => v.name));
  });

  it('carries each description and default, and leaves only required variables uncommented', () => {
    for (const v of COMPOSE_ENV_VARS) {
      const doc = new RegExp(`^# ${v.name} \\((required|optional[^)]*)\\): (.*)$`, 'm').exec(text);
      expect(doc, v.name).not.toBeNull();
      expect(doc![1]!.startsWith('required'), v.name).toBe(v.required);
      expect(doc![2], v.name).toBe(v.description);
      if (v.default !== undefined) {
        expect(doc![1], v.name).toContain(`default: ${v.default}`);
        expect(text, v.name).toMatch(new RegExp(`^#${v.name}=${v.default.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
      }
      expect(new RegExp(`^${v.name}=`, 'm').test(text), `${v.name} uncommented`).toBe(v.required);
    }
  });
});
