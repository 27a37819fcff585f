import { RENEW_BEFORE } from '../pki/renewal.js';
import YAML from 'yaml';
import { CLOUDFLARED_IMAGE, DEFAULT_BUILTIN_BASE_IMAGE, OFFICIAL_PROXY_IMAGE, builtinProxyImage } from './images.js';

/**
 * DIR/compose.yaml, rendered as text so it can carry comments for the person who opens it.
 *
 * Compatibility (both checked by the integration tests against a real docker-compose 1.29):
 * - No `version:` key (the Compose Specification; docker-compose >= 1.27 and `docker compose` read it).
 * - No top-level `name:`: docker-compose 1.29 refuses it ("'name' does not match any of the regexes").
 *   The project name comes from COMPOSE_PROJECT_NAME in .env, which both implementations read; without
 *   it both fall back to the directory name.
 * - `depends_on: { mcp-proxy: { condition: service_healthy } }` for the builtin engine (it has a
 *   healthcheck); docker-compose 1.29 accepts and honours it. The official image documents no health
 *   endpoint, so there cloudflared only waits for the proxy to start.
 * - TUNNEL_TOKEN uses `${TUNNEL_TOKEN:?message}`: compose refuses to start (and `config` fails) with our
 *   message instead of the official compose's silent empty token.
 */

export type ProxyEngine = 'official' | 'builtin';

export interface ComposeFileOptions {
  engine: ProxyEngine;
  /** The mcp-tunnel package version: tags the builtin image and is named in the header. */
  version: string;
  /** Adds the opt-in `cert-renewer` service (init --auto-renew, mcp-tunnel schedule-renewal). */
  autoRenew?: boolean;
  /** Adds the docs' `hello` sample MCP server (init --sample-server), routed as SAMPLE_SERVER.route. */
  sampleServer?: boolean;
  /** Pins other than the shipped ones (mcp-tunnel images moved them; a re-run keeps them). */
  images?: { proxy?: string; cloudflared?: string };
}

/** Service names are part of the contract (`docker compose logs cloudflared`, network_mode). */
export const COMPOSE_SERVICES = { proxy: 'mcp-proxy', cloudflared: 'cloudflared' } as const;

/** Where the proxy container finds its config and data (the official image's defaults). */
export const PROXY_CONFIG_MOUNT = './config/mcp-proxy.yaml:/etc/mcp-gateway/config.yaml:ro';
export const PROXY_DATA_MOUNT = './data:/data:ro';

/** cloudflared's exact command (docs/contract.md §1): `--url` is required, localhost is the proxy's namespace. */
export const CLOUDFLARED_COMMAND = 'tunnel --no-autoupdate run --url http://localhost:8080';

/** The builtin proxy's command and healthcheck (node is the only program in the image). */
export const BUILTIN_PROXY_COMMAND = ['proxy', '--config', '/etc/mcp-gateway/config.yaml'] as const;
export const BUILTIN_HEALTHCHECK = ['CMD', 'node', '/app/mcp-tunnel.mjs', 'health'] as const;

/** The message compose prints when TUNNEL_TOKEN is missing or empty (no `}` or `$`: compose syntax). */
export const TUNNEL_TOKEN_MISSING_MESSAGE =
  'TUNNEL_TOKEN is not set: put the tunnel token in .env beside compose.yaml (mcp-tunnel init or mcp-tunnel rotate-token writes it)';

export interface ComposeEnvVar {
  name: string;
  /** One line, used in env.example and in messages. */
  description: string;
  /** The value compose uses when the variable is unset; undefined when there is none. */
  default?: string;
  required: boolean;
  /** The engines whose compose file reads it. */
  engines: readonly ProxyEngine[];
}

/**
 * Every variable compose reads for a generated deployment (from .env beside compose.yaml, or the shell).
 * env.example at the repository root documents exactly these (a unit test keeps the two in sync).
 */
export const COMPOSE_ENV_VARS: readonly ComposeEnvVar[] = [
  {
    name: 'TUNNEL_TOKEN',
    description: 'The tunnel token (base64 JSON, starts with "eyJ") cloudflared connects with; compose refuses to start without it.',
    required: true,
    engines: ['official', 'builtin'],
  },
  {
    name: 'COMPOSE_PROJECT_NAME',
    description: 'Compose project name (container names <project>-<service>-1); both docker compose and docker-compose 1.29 read it here.',
    required: false,
    engines: ['official', 'builtin'],
  },
  {
    name: 'MCP_TUNNEL_UID',
    description: 'UID the containers run as; must be able to read data/tls.key (init sets your own UID, or 65532 as root).',
    default: '65532',
    required: false,
    engines: ['official', 'builtin'],
  },
  {
    name: 'MCP_TUNNEL_GID',
    description: 'GID the containers run as (init sets your own GID, or 65532 as root).',
    default: '65532',
    required: false,
    engines: ['official', 'builtin'],
  },
  {
    name: 'MCP_TUNNEL_BASE_IMAGE',
    description: 'Base image for building the builtin proxy image (needs node >= 22 on PATH); builtin engine only.',
    default: DEFAULT_BUILTIN_BASE_IMAGE,
    required: false,
    engines: ['builtin'],
  },
];

/** A Docker tag may hold [A-Za-z0-9_.-] only; semver build metadata ("+sha") becomes "-sha". */
function imageTagSafe(version: string): string {
  const tag = version.trim().replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[.-]+/, '');
  return tag.slice(0, 128) || 'latest';
}

function hardening(indent: string): string {
  return [
    '# Hardening (the same on every service, as in the official compose file).',
    'user: "${MCP_TUNNEL_UID:-65532}:${MCP_TUNNEL_GID:-65532}"',
    'read_only: true',
    'security_opt:',
    '  - "no-new-privileges:true"',
    'cap_drop:',
    '  - ALL',
    'restart: unless-stopped',
    'stop_grace_period: 30s',
    'logging:',
    '  driver: json-file',
    '  options:',
    '    max-size: "10m"',
    '    max-file: "3"',
  ]
    .map((line) => `${indent}${line}`)
    .join('\n');
}

const flow = (items: readonly string[]): string => `[${items.map((i) => JSON.stringify(i)).join(', ')}]`;

/** A compose file init wrote (its header says so); any other is the operator's, and init never rewrites it. */
export function isGeneratedComposeFile(text: string): boolean {
  return text.startsWith('# Generated by mcp-tunnel ');
}

/** Renders DIR/compose.yaml for the given engine. Pure: same options, same text. */
export function renderComposeFile(opts: ComposeFileOptions): string {
  const { engine, version } = opts;
  const i4 = '    ';
  const header = [
    `# Generated by mcp-tunnel ${version} (proxy engine: ${engine}). Run it with either of:`,
    '#   mcp-tunnel up            (pulls/builds, starts, waits for health, explains failures)',
    '#   docker compose up -d     (or docker-compose up -d with Compose v1.29)',
    '# The two are interchangeable on this directory: same project, services, containers and labels.',
    '# Stop with `mcp-tunnel down` or `docker compose down`; check with `mcp-tunnel status`.',
    '#',
    '# ${...} values come from .env beside this file (mode 0600; env.example in the mcp-tunnel package',
    '# documents each one). The project name is COMPOSE_PROJECT_NAME in .env: a top-level `name:` key would',
    '# be refused by docker-compose 1.29. Routes live in config/mcp-proxy.yaml (restart mcp-proxy after an',
    '# edit); certificates and the tunnel credentials in data/. Copy this whole directory to run another',
    '# replica on another host. No port is published: cloudflared dials out.',
  ].join('\n');

  const proxyLines: string[] = [`  ${COMPOSE_SERVICES.proxy}:`];
  if (engine === 'official') {
    proxyLines.push(
      `${i4}# Anthropic's proxy, pinned by digest. Reads /etc/mcp-gateway/config.yaml by default.`,
      `${i4}image: ${opts.images?.proxy ?? OFFICIAL_PROXY_IMAGE}`,
    );
  } else {
    proxyLines.push(
      `${i4}# mcp-tunnel's builtin proxy, built locally from ./build (Dockerfile + the single-file bundle).`,
      `${i4}image: ${builtinProxyImage(imageTagSafe(version))}`,
      `${i4}build:`,
      `${i4}  context: ./build`,
      `${i4}  args:`,
      `${i4}    BASE_IMAGE: "\${MCP_TUNNEL_BASE_IMAGE:-${DEFAULT_BUILTIN_BASE_IMAGE}}"`,
      `${i4}command: ${flow(BUILTIN_PROXY_COMMAND)}`,
      `${i4}# Readiness from the admin listener (127.0.0.1:9090 inside the container, never on the tunnel path).`,
      `${i4}healthcheck:`,
      `${i4}  test: ${flow(BUILTIN_HEALTHCHECK)}`,
      `${i4}  interval: 10s`,
      `${i4}  timeout: 5s`,
      `${i4}  retries: 3`,
      `${i4}  start_period: 10s`,
    );
  }
  proxyLines.push(
    `${i4}volumes:`,
    `${i4}  - ${PROXY_CONFIG_MOUNT}`,
    `${i4}  - ${PROXY_DATA_MOUNT}`,
    hardening(i4),
  );

  const cloudflaredLines = [
    `  ${COMPOSE_SERVICES.cloudflared}:`,
    `${i4}# Cloudflare's connector, pinned by digest. Dials out to the tunnel edge; healthy once its log shows`,
    `${i4}# "Registered tunnel connection" four times. It lives in the proxy's network namespace, so`,
    `${i4}# localhost:8080 is the proxy.`,
    `${i4}image: ${opts.images?.cloudflared ?? CLOUDFLARED_IMAGE}`,
    `${i4}command: ${CLOUDFLARED_COMMAND}`,
    `${i4}environment:`,
    `${i4}  TUNNEL_TOKEN: "\${TUNNEL_TOKEN:?${TUNNEL_TOKEN_MISSING_MESSAGE}}"`,
    `${i4}network_mode: "service:${COMPOSE_SERVICES.proxy}"`,
    `${i4}depends_on:`,
    ...(engine === 'builtin'
      ? [`${i4}  ${COMPOSE_SERVICES.proxy}:`, `${i4}    condition: service_healthy`]
      : [`${i4}  - ${COMPOSE_SERVICES.proxy}`]),
    hardening(i4),
  ];

  const renewer = opts.autoRenew ? `\n${renewerLines(version).join('\n')}\n` : '';
  const sample = opts.sampleServer ? `\n${sampleServerLines(version).join('\n')}\n` : '';
  return `${header}\n\nservices:\n${proxyLines.join('\n')}\n\n${cloudflaredLines.join('\n')}\n${renewer}${sample}`;
}

/**
 * The opt-in scheduled renewal (the Helm chart's daily CronJob on one host): `renew-cert --every 24h
 * --renew-before 720h` in a container of the builtin image, with the official hardening, no network, and
 * only ./data mounted (read-write: it replaces tls.crt and tls.key). It runs as the owner of tls.* (the
 * containers' MCP_TUNNEL_UID/GID) and needs to read data/ca.key and create files in data/:
 * - init run by a regular user: that user owns everything in data/ already; nothing else is needed;
 * - init run as root: ca.key stays root's but becomes group RENEWER_CA_GID, 0640, and data/ becomes
 *   root:RENEWER_CA_GID 1731 (group may create files, nobody but root may list, and the sticky bit lets
 *   the renewer replace only files it owns: tls.*). Only the renewer has that group (group_add), so the
 *   proxy and cloudflared still cannot read ca.key. See renewerAccess().
 */
export const RENEWER_SERVICE = 'cert-renewer';
/** A GID no account on a stock host uses (65534 is nogroup; 65532 the containers' own). */
export const RENEWER_CA_GID = 65533;
export const RENEWER_DATA_MOUNT = './data:/deployment/data';
export const RENEWER_COMMAND = ['renew-cert', '--dir', '/deployment', '--every', '24h', '--renew-before', RENEW_BEFORE] as const;

function renewerLines(version: string): string[] {
  const i4 = '    ';
  return [
    `  ${RENEWER_SERVICE}:`,
    `${i4}# Scheduled renewal (opt-in; mcp-tunnel schedule-renewal --disable removes it): once a day, a new server`,
    `${i4}# certificate from the SAME CA when less than 30 days remain; the proxy hot-reloads it. No network; only`,
    `${i4}# ./data is mounted. It reads data/ca.key through the extra group below (see README, "Scheduled renewal").`,
    // Quoted: existing.ts tells the engine apart by the proxy's unquoted `image: mcp-tunnel-proxy:` line.
    `${i4}image: "${builtinProxyImage(imageTagSafe(version))}"`,
    `${i4}build:`,
    `${i4}  context: ./build`,
    `${i4}  args:`,
    `${i4}    BASE_IMAGE: "\${MCP_TUNNEL_BASE_IMAGE:-${DEFAULT_BUILTIN_BASE_IMAGE}}"`,
    `${i4}command: ${flow(RENEWER_COMMAND)}`,
    `${i4}network_mode: none`,
    `${i4}group_add:`,
    `${i4}  - "${RENEWER_CA_GID}"`,
    `${i4}# The image's HEALTHCHECK probes the proxy's admin listener, which this container does not run.`,
    `${i4}healthcheck:`,
    `${i4}  disable: true`,
    `${i4}volumes:`,
    `${i4}  - ${RENEWER_DATA_MOUNT}`,
    hardening(i4),
  ];
}

/** True when a compose.yaml (ours or hand-edited) declares the cert-renewer service. */
export function hasRenewerService(composeText: string | undefined): boolean {
  return hasService(composeText, RENEWER_SERVICE);
}

/**
 * The cert-renewer's command as compose.yaml declares it (a hand edit may have changed the schedule), as
 * argv; undefined when there is no such service or its command is not a list or a string.
 */
export function renewerCommand(composeText: string): string[] | undefined {
  try {
    const doc = YAML.parse(composeText) as { services?: Record<string, { command?: unknown } | null> } | null;
    const command = doc?.services?.[RENEWER_SERVICE]?.command;
    if (Array.isArray(command)) return command.map(String);
    if (typeof command === 'string') return command.trim().split(/\s+/);
    return undefined;
  } catch {
    return undefined;
  }
}

/** True when a compose.yaml declares the sample `hello` MCP server. */
export function hasSampleService(composeText: string | undefined): boolean {
  return hasService(composeText, SAMPLE_SERVER.service);
}

function hasService(composeText: string | undefined, name: string): boolean {
  if (composeText === undefined) return false;
  try {
    const doc = YAML.parse(composeText) as { services?: Record<string, unknown> } | null;
    return Boolean(doc?.services && typeof doc.services === 'object' && name in doc.services);
  } catch {
    return false;
  }
}

/**
 * The docs' sample MCP server (tools `hello` and `echo`; src/demo/sample-server.ts) as a service of the
 * deployment, so `up` + `probe hello --call hello` prove the whole path before a real server exists. It
 * runs from the builtin image (`demo --serve-sample`), on the project network where the proxy reaches it
 * by service name: Docker gives it an address in a private range the default allowed_ips cover.
 * Undo: `mcp-tunnel routes remove hello`, then delete the service block (between its comment lines).
 */
export const SAMPLE_SERVER = { service: 'hello', route: 'hello', port: 3000, upstream: 'http://hello:3000' } as const;

function sampleServerLines(version: string): string[] {
  const i4 = '    ';
  return [
    `  ${SAMPLE_SERVER.service}:`,
    `${i4}# The sample MCP server (init --sample-server): tools hello and echo at http://${SAMPLE_SERVER.service}:${SAMPLE_SERVER.port}/mcp, route`,
    `${i4}# "${SAMPLE_SERVER.route}". Remove it with: mcp-tunnel routes remove ${SAMPLE_SERVER.route}, then delete this service block.`,
    `${i4}image: "${builtinProxyImage(imageTagSafe(version))}"`,
    `${i4}build:`,
    `${i4}  context: ./build`,
    `${i4}  args:`,
    `${i4}    BASE_IMAGE: "\${MCP_TUNNEL_BASE_IMAGE:-${DEFAULT_BUILTIN_BASE_IMAGE}}"`,
    `${i4}command: ${flow(['demo', '--serve-sample', `0.0.0.0:${SAMPLE_SERVER.port}`])}`,
    `${i4}# The image's HEALTHCHECK probes the proxy's admin listener, which this container does not run.`,
    `${i4}healthcheck:`,
    `${i4}  disable: true`,
    hardening(i4),
  ];
}

export interface RenewerAccess {
  caKey: { mode: number; gid: number };
  dataDir: { mode: number; gid: number };
}

/**
 * What data/ needs for the renewer when init ran as root (undefined otherwise: a regular user's
 * containers already run as the owner of every file in data/). uid stays root's.
 */
export function renewerAccess(identity: { chownProxyFiles: boolean }): RenewerAccess | undefined {
  if (!identity.chownProxyFiles) return undefined;
  return { caKey: { mode: 0o640, gid: RENEWER_CA_GID }, dataDir: { mode: 0o1731, gid: RENEWER_CA_GID } };
}
