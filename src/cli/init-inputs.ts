import fs from 'node:fs/promises';
import { asEnvironmentError } from '../deployment/fs-errors.js';
import { ExitCode, UserError, ValidationError } from '../errors.js';
import { SAMPLE_SERVER } from '../deployment/compose-file.js';
import type { ExistingDeployment } from '../deployment/existing.js';
import type { InitSettings, ProxyEngine } from '../deployment/init.js';
import { parseIpv4Cidr, parseRouteFlag } from '../deployment/validate.js';
import { countPemCertificates, pemContainsPrivateKey } from '../pki/index.js';
import { isInteractive } from './interactive.js';
import * as wizard from './prompts/init-wizard.js';

/**
 * What both credential flows of `init` take from the user besides the tunnel itself: routes, allowed IPs,
 * the upstream CA, the engine. Flags are checked first, all of them, so a typo fails before any prompt
 * or API request; then the missing values are asked for (in a terminal) or taken from the deployment.
 */
export interface InitOptions {
  dir: string;
  /** --lock-timeout (command-lock.ts adds the flag to every command that takes the deployment lock). */
  lockTimeout?: string;
  flow: 'manual' | 'wif';
  tunnelId?: string;
  tunnelDomain?: string;
  tunnelTokenFile?: string;
  tunnelTokenStdin?: boolean;
  route: string[];
  proxy?: ProxyEngine;
  allowedIp: string[];
  baseImage?: string;
  upstreamCaFile?: string;
  upstreamSystemCas?: boolean;
  nonInteractive?: boolean;
  force?: boolean;
  yes?: boolean;
  printCa?: boolean;
  autoRenew?: boolean;
  caKey?: 'ecdsa' | 'rsa';
  sampleServer?: boolean;
  dryRun?: boolean;
  json?: boolean;
  /** Set by the command: true when --flow was neither given nor remembered, so the wizard asks it first. */
  flowOpen?: boolean;
}

/**
 * Prompts only for a person who can answer: not with --yes (it never prompts), not with --json (its
 * output is for a program), and not without a terminal (interactive.ts).
 */
export function initIsInteractive(options: InitOptions): boolean {
  return !options.yes && !options.json && isInteractive(options);
}

export async function checkDir(dir: string): Promise<void> {
  try {
    const stat = await fs.stat(dir);
    if (!stat.isDirectory()) throw new ValidationError(`--dir ${dir} is not a directory`, 'pass the deployment directory (it is created if missing)', 'DIR_NOT_A_DIRECTORY');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw asEnvironmentError(err, { action: 'use --dir', file: dir, hint: 'pass --dir to a directory you can write (it is created if missing)' });
  }
}

export function missing(flag: string, env: string, what: string): never {
  throw new ValidationError(`missing ${flag} (or ${env}): ${what}`, 'run init in a terminal to be asked, or pass the flag', 'INIT_MISSING_FLAGS');
}

/**
 * Collects every required value a non-interactive init lacks, so one run names all of them (one line,
 * exit 2, code INIT_MISSING_FLAGS) instead of one per try.
 */
export class MissingValues {
  private readonly items: Array<{ flag: string; env: string; what: string }> = [];

  add(flag: string, env: string, what: string): void {
    this.items.push({ flag, env, what });
  }

  get count(): number {
    return this.items.length;
  }

  throwIfAny(): void {
    if (this.items.length === 0) return;
    if (this.items.length === 1) {
      const [m] = this.items;
      throw new UserError(`missing ${m!.flag} (or ${m!.env}): ${m!.what}`, { hint: 'pass the flag, or run init in a terminal (without --yes/--json) to be asked', code: 'INIT_MISSING_FLAGS', exitCode: ExitCode.usage });
    }
    const list = this.items.map((m) => `${m.flag} (or ${m.env}): ${m.what}`).join('; ');
    throw new UserError(`missing ${this.items.length} values: ${list}`, {
      hint: 'pass these flags, or run init in a terminal (without --yes/--json) to be asked',
      code: 'INIT_MISSING_FLAGS',
      exitCode: ExitCode.usage,
    });
  }
}

export interface CheckedFlags {
  routes: InitSettings['routes'];
  allowedIps: string[];
  upstreamCaPem: string | undefined;
}

/** Validates the shared flags (no prompt, no network). */
export async function checkSharedFlags(options: InitOptions): Promise<CheckedFlags> {
  const routes = options.route.map(parseRouteFlag);
  const names = new Set<string>();
  for (const r of routes) {
    if (names.has(r.name)) throw new ValidationError(`route "${r.name}" is given twice`, 'give each --route a distinct name', 'ROUTE_DUPLICATE');
    names.add(r.name);
  }
  return {
    routes: routes.map((r) => ({ name: r.name, url: r.upstream.url, ...(r.upstream.writtenHost ? { writtenHost: r.upstream.writtenHost } : {}) })),
    allowedIps: options.allowedIp.map((ip) => parseIpv4Cidr(ip).text),
    upstreamCaPem: options.upstreamCaFile === undefined ? undefined : await readUpstreamCa(options.upstreamCaFile),
  };
}

export interface SharedSettings {
  routes: InitSettings['routes'];
  allowedIps: string[] | undefined;
  engine: ProxyEngine;
  sampleServer: boolean | undefined;
}

/**
 * Fills in what the flags left open: asked in a terminal (allowed ranges before routes, so each upstream
 * is checked against them at its own prompt), else what the deployment already has; a value neither
 * gives is recorded in `need`.
 */
export async function resolveSharedSettings(
  flags: CheckedFlags,
  options: InitOptions,
  existing: ExistingDeployment,
  interactive: boolean,
  need: MissingValues = new MissingValues(),
): Promise<SharedSettings> {
  let allowedIps: string[] | undefined = flags.allowedIps.length ? flags.allowedIps : existing.allowedIps;
  if (!flags.allowedIps.length && interactive && flags.routes.length === 0) allowedIps = await wizard.askAllowedIps(existing.allowedIps);

  const sampleAlready = existing.routes?.some((r) => r.name === SAMPLE_SERVER.route) ?? false;
  let sampleServer = options.sampleServer;
  if (sampleServer === undefined && interactive && !sampleAlready && flags.routes.length === 0) sampleServer = await wizard.askSampleServer(false);

  let routes = flags.routes;
  if (routes.length === 0) {
    const tls = { caFile: flags.upstreamCaPem !== undefined ? 'given' : existing.upstreamTls?.caFile, includeSystemCas: options.upstreamSystemCas ?? existing.upstreamTls?.includeSystemCas };
    if (!interactive) {
      if (existing.routesProblem && !existing.routes?.length && !sampleServer) throw existing.routesProblem;
      routes = existing.routes ?? [];
    }
    else if (sampleServer && !existing.routes?.length) {
      routes = (await wizard.askConfirm('Also add a route for your own MCP server now?', false)) ? await wizard.askRoutes(undefined, { allowedIps, tls }) : [];
    } else routes = await wizard.askRoutes(existing.routes, { allowedIps, tls });
  }
  if (sampleServer && !routes.some((r) => r.name === SAMPLE_SERVER.route)) routes = [...routes, { name: SAMPLE_SERVER.route, url: SAMPLE_SERVER.upstream }];
  if (routes.length === 0) need.add('--route', 'MCP_TUNNEL_ROUTES', 'at least one route NAME=http://host:port (or --sample-server)');

  const engine = options.proxy ?? (interactive ? await wizard.askEngine(existing.engine ?? 'official') : (existing.engine ?? 'official'));
  return { routes, allowedIps, engine, sampleServer };
}

async function readUpstreamCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ValidationError(`--upstream-ca-file ${file} cannot be read (${(err as NodeJS.ErrnoException).code})`, 'pass the PEM file of the CA that signed your https upstreams', 'UPSTREAM_CA_FILE_INVALID');
  }
  if (pemContainsPrivateKey(pem)) throw new ValidationError(`--upstream-ca-file ${file} contains a private key`, 'pass the CA certificate only; the key never leaves the CA', 'UPSTREAM_CA_FILE_INVALID');
  if (countPemCertificates(pem) === 0) throw new ValidationError(`--upstream-ca-file ${file} holds no PEM certificate`, 'pass a file with -----BEGIN CERTIFICATE----- blocks', 'UPSTREAM_CA_FILE_INVALID');
  return pem;
}
