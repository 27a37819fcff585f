import fs from 'node:fs/promises';
import { asEnvironmentError } from '../bundle/fs-errors.js';
import { ValidationError } from '../errors.js';
import type { ExistingDeployment } from '../bundle/existing.js';
import type { InitSettings, ProxyEngine } from '../bundle/init.js';
import { parseIpv4Cidr, parseRouteFlag } from '../bundle/validate.js';
import { countPemCertificates, pemContainsPrivateKey } from '../pki/index.js';
import * as wizard from './prompts/init-wizard.js';

/**
 * What both credential flows of `init` take from the user besides the tunnel itself: routes, allowed IPs,
 * the upstream CA, the engine. Flags are checked first, all of them, so a typo fails before any prompt
 * or API request; then the missing values are asked for (in a terminal) or taken from the deployment.
 */
export interface InitOptions {
  dir: string;
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
}

export async function checkDir(dir: string): Promise<void> {
  try {
    const stat = await fs.stat(dir);
    if (!stat.isDirectory()) throw new ValidationError(`--dir ${dir} is not a directory`, 'pass the deployment directory (it is created if missing)');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw asEnvironmentError(err, { action: 'use --dir', file: dir, hint: 'pass --dir to a directory you can write (it is created if missing)' });
  }
}

export function missing(flag: string, env: string, what: string): never {
  throw new ValidationError(`missing ${flag} (or ${env}): ${what}`, 'run init in a terminal to be asked, or pass the flag');
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
    if (names.has(r.name)) throw new ValidationError(`route "${r.name}" is given twice`, 'give each --route a distinct name');
    names.add(r.name);
  }
  return {
    routes: routes.map((r) => ({ name: r.name, url: r.upstream.url })),
    allowedIps: options.allowedIp.map((ip) => parseIpv4Cidr(ip).text),
    upstreamCaPem: options.upstreamCaFile === undefined ? undefined : await readUpstreamCa(options.upstreamCaFile),
  };
}

export interface SharedSettings {
  routes: InitSettings['routes'];
  allowedIps: string[] | undefined;
  engine: ProxyEngine;
}

/** Fills in what the flags left open: asked in a terminal, else what the deployment already has. */
export async function resolveSharedSettings(flags: CheckedFlags, options: InitOptions, existing: ExistingDeployment, interactive: boolean): Promise<SharedSettings> {
  let routes = flags.routes;
  if (routes.length === 0) routes = interactive ? await wizard.askRoutes(existing.routes) : (existing.routes ?? []);
  if (routes.length === 0) missing('--route', 'MCP_TUNNEL_ROUTES', 'at least one route NAME=http://host:port');

  let allowedIps: string[] | undefined = flags.allowedIps.length ? flags.allowedIps : existing.allowedIps;
  if (!flags.allowedIps.length && interactive && flags.routes.length === 0) allowedIps = await wizard.askAllowedIps(existing.allowedIps);

  const engine = options.proxy ?? (interactive ? await wizard.askEngine(existing.engine ?? 'official') : (existing.engine ?? 'official'));
  return { routes, allowedIps, engine };
}

async function readUpstreamCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ValidationError(`--upstream-ca-file ${file} cannot be read (${(err as NodeJS.ErrnoException).code})`, 'pass the PEM file of the CA that signed your https upstreams');
  }
  if (pemContainsPrivateKey(pem)) throw new ValidationError(`--upstream-ca-file ${file} contains a private key`, 'pass the CA certificate only; the key never leaves the CA');
  if (countPemCertificates(pem) === 0) throw new ValidationError(`--upstream-ca-file ${file} holds no PEM certificate`, 'pass a file with -----BEGIN CERTIFICATE----- blocks');
  return pem;
}
