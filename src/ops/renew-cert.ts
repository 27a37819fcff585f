import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { readTextIfExists } from '../deployment/atomic-file.js';
import { writeFilesTogether, type TransactionChange } from '../deployment/transaction.js';
import { parseEnvFile } from '../deployment/env-file.js';
import { deploymentPaths, type DeploymentPaths } from '../deployment/layout.js';
import { requireDeploymentDir } from '../deployment/deployment-dir.js';
import { OFFICIAL_CONTAINER_ID, proxyContainerUser } from '../deployment/ownership.js';
import { validateDomain } from '../deployment/validate.js';
import { EnvironmentError, ValidationError, isUserError } from '../errors.js';
import {
  blockingFailures,
  checkCaCertificate,
  checkServerCertificate,
  countPemCertificates,
  decideRenewal,
  inspectCertificate,
  issueServerCert,
  keyMatchesCertificate,
  RENEW_BEFORE,
  verifySignedBy,
  type CertInfo,
  type PemPair,
} from '../pki/index.js';

/**
 * renew-cert: a new server certificate signed by the EXISTING CA (data/ca.crt + data/ca.key; never a new
 * CA: a second one would have to be registered with the tunnel), swapped in without a restart.
 *
 * The swap. tls.crt and tls.key are two files, and no file system renames two files at once. So:
 *  1. the current pair (only if it is a matching pair) and the new one are written completely to temporary
 *     files in data/ (same file system: rename is atomic), fsynced, with their final owner and mode set;
 *  2. a journal commits the four renames (deployment/transaction.ts: a run killed after this point is
 *     completed by the next one, before it, rolled back);
 *  3. the rollback copy becomes tls.crt.previous / tls.key.previous, then tls.key is renamed into place,
 *     then tls.crt immediately after (consecutive rename(2) calls).
 * A reader that reloads when tls.crt changes (the official proxy polls the certificate file) therefore
 * always finds the matching key already in place. The residual window is the few microseconds between
 * the two renames: a reader that opens tls.key inside it AND tls.crt before the second rename sees the new
 * key with the old certificate. The builtin proxy never acts on that (it waits until both files are
 * unchanged for two polls and swaps only a pair whose key matches); a reader that does load it gets a
 * key-mismatch error, keeps serving the old pair, and sees tls.crt change right after. No reader ever
 * sees a half-written file.
 */

/** renew-cert exits with this when the certificate had enough validity left (documented in its help). */
export const RENEW_NOT_NEEDED_EXIT_CODE = 10;
export const DEFAULT_RENEW_BEFORE = RENEW_BEFORE;
export const DEFAULT_CERT_DURATION = '2160h';

export interface RenewOptions {
  dir: string;
  renewBeforeMs: number;
  certDurationMs: number;
  force?: boolean;
  now?: Date;
}

export interface CertSummary {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

export type RenewReason = 'forced' | 'expires-soon' | 'expired' | 'missing' | 'invalid';

export type RenewResult =
  | { status: 'not-needed'; domain: string; current: CertSummary; remainingMs: number; renewBeforeMs: number }
  | {
      status: 'renewed';
      reason: RenewReason;
      /** Why the old pair was unusable (reason 'invalid'). */
      detail?: string;
      domain: string;
      previous?: CertSummary;
      current: CertSummary;
      /** The new certificate ends with the CA (it would otherwise outlive it). */
      cappedByCa: boolean;
      /** Relative to the deployment directory, in write order. */
      written: string[];
      owner: { uid: number; gid: number };
    };

const summary = (info: CertInfo): CertSummary => ({ serial: info.serialHex, notBefore: info.notBefore, notAfter: info.notAfter, fingerprint: info.fingerprintSha256 });

/** The two files and their rollback copies. */
export function renewalFiles(paths: DeploymentPaths): { cert: string; key: string; prevCert: string; prevKey: string } {
  return { cert: paths.tlsCert, key: paths.tlsKey, prevCert: `${paths.tlsCert}.previous`, prevKey: `${paths.tlsKey}.previous` };
}

async function readOrExplain(file: string, label: string): Promise<string | undefined> {
  try {
    return await readTextIfExists(file);
  } catch (err) {
    const code = ((err as { cause?: NodeJS.ErrnoException }).cause ?? (err as NodeJS.ErrnoException)).code;
    if (code === 'EACCES') {
      throw new EnvironmentError(`cannot read ${label}: permission denied`, 'run it as the user who ran init (root if init ran as root)', undefined, 'FS_PERMISSION_DENIED');
    }
    throw err;
  }
}

/** data/ca.crt + data/ca.key, both present, matching and usable. Never creates a CA. */
export async function loadExistingCa(paths: DeploymentPaths, now: Date): Promise<{ pair: PemPair; info: CertInfo }> {
  const [certPem, keyPem] = [await readOrExplain(paths.caCert, 'data/ca.crt'), await readOrExplain(paths.caKey, 'data/ca.key')];
  if (certPem === undefined || keyPem === undefined) {
    const missing = [certPem === undefined ? 'data/ca.crt' : '', keyPem === undefined ? 'data/ca.key' : ''].filter(Boolean).join(' and ');
    throw new ValidationError(
      `${missing} missing in ${paths.dir}: this command works with the existing CA and never creates one`,
      'pass --dir to the deployment directory, or restore the CA from your backup (a new CA would have to be registered with the tunnel)',
      'CA_MISSING',
    );
  }
  let info: CertInfo;
  try {
    info = inspectCertificate(certPem, 'data/ca.crt');
  } catch (err) {
    throw new ValidationError(`data/ca.crt cannot be read: ${(err as Error).message}`, 'restore the CA certificate registered with the tunnel', 'CA_CERT_INVALID');
  }
  if (!keyMatchesCertificate(certPem, keyPem)) throw new ValidationError('data/ca.key does not belong to data/ca.crt', 'restore the matching pair from your backup', 'CA_KEY_MISMATCH');
  const failed = blockingFailures(checkCaCertificate(info, now, { pemCount: countPemCertificates(certPem) }))[0];
  if (failed) throw new ValidationError(`data/ca.crt cannot sign: ${failed.message}`, failed.hint, 'CA_CERT_INVALID');
  return { pair: { certPem, keyPem }, info };
}

/**
 * The tunnel domain the certificate must cover, as the proxy sees it: tunnel_domain in
 * config/mcp-proxy.yaml, else data/tunnel-domain (all the renewer container mounts), else the current
 * certificate's SAN.
 */
export async function resolveRenewalDomain(paths: DeploymentPaths, current?: CertInfo): Promise<string> {
  const configText = await readTextIfExists(paths.proxyConfig).catch(() => undefined);
  if (configText !== undefined) {
    try {
      const doc = YAML.parse(configText) as { tunnel_domain?: unknown } | null;
      if (typeof doc?.tunnel_domain === 'string' && doc.tunnel_domain.trim()) return validateDomain(doc.tunnel_domain, 'tunnel_domain in config/mcp-proxy.yaml');
    } catch (err) {
      if (err instanceof ValidationError) throw err;
      // An unparsable config is doctor's business; the other sources may still name the domain.
    }
  }
  const fromFile = (await readTextIfExists(paths.tunnelDomain).catch(() => undefined))?.split('\n')[0]?.trim();
  if (fromFile) return validateDomain(fromFile, 'data/tunnel-domain');
  const fromCert = current?.dnsNames.find((n) => !n.startsWith('*.'));
  if (fromCert) return validateDomain(fromCert, 'the current certificate');
  throw new ValidationError(
    `the tunnel domain is unknown: neither config/mcp-proxy.yaml (tunnel_domain) nor data/tunnel-domain names it`,
    'write the tunnel domain from the Console into data/tunnel-domain, or re-run mcp-tunnel init',
    'TUNNEL_DOMAIN_UNKNOWN',
  );
}

/** Who must own the new tls.* files: whoever owns the current ones (init's choice), else .env's identity. */
async function targetOwner(paths: DeploymentPaths): Promise<{ uid: number; gid: number }> {
  for (const file of [paths.tlsKey, paths.tlsCert]) {
    const st = await fs.stat(file).catch(() => undefined);
    if (st) return { uid: st.uid, gid: st.gid };
  }
  const self = { uid: process.getuid?.() ?? OFFICIAL_CONTAINER_ID, gid: process.getgid?.() ?? OFFICIAL_CONTAINER_ID };
  if (self.uid !== 0) return self;
  const env = parseEnvFile((await readTextIfExists(paths.env).catch(() => undefined)) ?? '');
  const { uid, gid } = proxyContainerUser(env, await readTextIfExists(paths.compose).catch(() => undefined));
  return { uid, gid };
}

async function certMode(file: string): Promise<number> {
  const st = await fs.stat(file).catch(() => undefined);
  // Never looser than init's 0644, never executable.
  return st ? st.mode & 0o644 : 0o644;
}

/**
 * The key keeps the mode the proxy reads it with: a directory laid out by the official guide has a 0644
 * key owned by root for a 65532 container, and a 0600 key there would stop the next reload. Never looser
 * than 0644; doctor offers the tightening (owner + 0600) that keeps the proxy reading.
 */
async function keyMode(file: string): Promise<number> {
  const st = await fs.stat(file).catch(() => undefined);
  return st ? (st.mode & 0o644) | 0o600 : 0o600;
}

/** Owner and modes for a new tls pair: what the current files have (the proxy container reads them so). */
export async function pairWriteOptions(paths: DeploymentPaths): Promise<{ owner: { uid: number; gid: number }; certMode: number; keyMode: number }> {
  return { owner: await targetOwner(paths), certMode: await certMode(paths.tlsCert), keyMode: await keyMode(paths.tlsKey) };
}

type Judgement = { kind: 'ok'; info: CertInfo } | { kind: 'missing' } | { kind: 'invalid'; detail: string; info?: CertInfo } | { kind: 'foreign'; detail: string; hint: string; info: CertInfo };

function judgeCurrent(certPem: string | undefined, keyPem: string | undefined, ca: { pair: PemPair; info: CertInfo }, domain: string | undefined, now: Date): Judgement {
  if (certPem === undefined) return { kind: 'missing' };
  let info: CertInfo;
  try {
    info = inspectCertificate(certPem, 'data/tls.crt');
  } catch (err) {
    return { kind: 'invalid', detail: `data/tls.crt is not a certificate (${(err as Error).message})` };
  }
  if (keyPem === undefined) return { kind: 'invalid', detail: 'data/tls.key is missing', info };
  let matches = false;
  try {
    matches = keyMatchesCertificate(certPem, keyPem);
  } catch {
    matches = false;
  }
  if (!matches) return { kind: 'invalid', detail: 'data/tls.key does not belong to data/tls.crt', info };
  if (!verifySignedBy(certPem, ca.pair.certPem)) {
    return {
      kind: 'foreign',
      detail: 'data/tls.crt was not signed by data/ca.crt',
      hint: 'if data/ca.crt is the CA registered with the tunnel, pass --force to replace tls.crt with one it signs; if you are rotating CAs, put the new CA in data/ca.crt and data/ca.key first',
      info,
    };
  }
  if (domain !== undefined) {
    const san = checkServerCertificate(info, ca.info, { domain, now, signedByCa: true }).find((f) => f.rule === 'server.san' && !f.ok);
    if (san) {
      return { kind: 'foreign', detail: san.message, hint: `pass --force to issue one for ${domain} and *.${domain} (tunnel_domain in the proxy config)`, info };
    }
  }
  return { kind: 'ok', info };
}

/**
 * One renewal: decides (decideRenewal with --renew-before), issues, validates and swaps. Throws a
 * UserError (nothing changed) when the CA is unusable, the files cannot be read or written, or the
 * current certificate belongs to another CA or domain (without force).
 */
export async function renewServerCertificate(options: RenewOptions): Promise<RenewResult> {
  const now = options.now ?? new Date();
  const paths = deploymentPaths(options.dir);
  await requireDeploymentDir(paths.dir, 'pass --dir to the directory mcp-tunnel init wrote');

  const ca = await loadExistingCa(paths, now);
  const certPem = await readOrExplain(paths.tlsCert, 'data/tls.crt');
  const keyPem = await readOrExplain(paths.tlsKey, 'data/tls.key');
  let currentInfo: CertInfo | undefined;
  try {
    currentInfo = certPem === undefined ? undefined : inspectCertificate(certPem);
  } catch {
    currentInfo = undefined;
  }
  const domain = await resolveRenewalDomain(paths, currentInfo);
  const judged = judgeCurrent(certPem, keyPem, ca, domain, now);

  let reason: RenewReason;
  let detail: string | undefined;
  if (judged.kind === 'missing') reason = 'missing';
  else if (judged.kind === 'invalid') {
    reason = 'invalid';
    detail = judged.detail;
  } else if (judged.kind === 'foreign' && !options.force) {
    throw new ValidationError(`${judged.detail}; not renewed`, judged.hint, 'TLS_CERT_FOREIGN');
  } else {
    const decision = decideRenewal({ notAfter: judged.info.notAfter, now, renewBeforeMs: options.renewBeforeMs, force: Boolean(options.force) });
    if (!decision.renew) {
      return { status: 'not-needed', domain, current: summary(judged.info), remainingMs: decision.remainingMs, renewBeforeMs: options.renewBeforeMs };
    }
    reason = decision.reason;
  }

  // Never outlive the CA: the tunnel would refuse the certificate once the CA expired.
  const wanted = new Date(now.getTime() + options.certDurationMs);
  const cappedByCa = wanted.getTime() > ca.info.notAfter.getTime();
  const pair = await issueServerCert({ ca: ca.pair, domain, now, validityMs: options.certDurationMs, notAfter: cappedByCa ? ca.info.notAfter : undefined });

  const info = inspectCertificate(pair.certPem);
  const problems = blockingFailures(checkServerCertificate(info, ca.info, { domain, now, signedByCa: verifySignedBy(pair.certPem, ca.pair.certPem) }));
  if (problems.length > 0 || !keyMatchesCertificate(pair.certPem, pair.keyPem)) {
    // A bug, not the user's doing: never swap in something the tunnel would refuse.
    throw new Error(`the new certificate fails the tunnel's rules: ${problems.map((p) => p.message).join('; ') || 'key mismatch'}`);
  }

  const owner = await targetOwner(paths);
  // Only a pair that works is worth rolling back to; a broken rollback copy goes rather than waits to be used.
  const currentIsPair = certPem !== undefined && keyPem !== undefined && (judged.kind === 'ok' || judged.kind === 'foreign');
  const written = await swapCertificatePair(paths, pair, {
    owner,
    certMode: await certMode(paths.tlsCert),
    keyMode: await keyMode(paths.tlsKey),
    keepPrevious: currentIsPair ? { certPem, keyPem } : undefined,
    dropPrevious: !currentIsPair && (await judgePreviousPair(paths)) === 'broken',
  });
  let previous: CertSummary | undefined;
  if (currentIsPair && 'info' in judged && judged.info) previous = summary(judged.info);
  return { status: 'renewed', reason, detail, domain, previous, current: summary(info), cappedByCa, written, owner };
}

export interface SwapOptions {
  owner: { uid: number; gid: number };
  certMode: number;
  /** Default 0600. */
  keyMode?: number;
  /** The pair being replaced, kept as tls.crt.previous / tls.key.previous (only ever a matching pair). */
  keepPrevious?: PemPair;
  /** Remove the rollback copy (it does not match, or half of it is missing): a rollback must never break the proxy. */
  dropPrevious?: boolean;
}

/**
 * Writes the new pair (and its rollback copy) as one transaction (deployment/transaction.ts): a run killed
 * at any moment is completed or rolled back by the next one, so tls.key and tls.crt never stay a
 * mismatched pair, nor the .previous copy a half-written one. Within it the renames go key first, then
 * the certificate (see the module comment).
 */
export async function swapCertificatePair(paths: DeploymentPaths, pair: PemPair, options: SwapOptions): Promise<string[]> {
  const files = renewalFiles(paths);
  const rel = (p: string): string => path.relative(paths.dir, p);
  const changes: TransactionChange[] = [];
  const write = (file: string, content: string, mode: number): TransactionChange => ({ path: file, content, options: { mode, owner: options.owner } });
  if (options.keepPrevious) {
    changes.push(write(files.prevKey, options.keepPrevious.keyPem, 0o600), write(files.prevCert, options.keepPrevious.certPem, options.certMode));
  } else if (options.dropPrevious) {
    changes.push({ path: files.prevKey, remove: true }, { path: files.prevCert, remove: true });
  }
  changes.push(write(files.key, pair.keyPem, options.keyMode ?? 0o600), write(files.cert, pair.certPem, options.certMode));
  try {
    await writeFilesTogether(paths.dataDir, 'renew-cert', changes);
  } catch (err) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    if (cause?.code === 'EPERM' && /chown/.test(cause.syscall ?? '')) {
      throw new EnvironmentError(
        `cannot hand the new tls.key and tls.crt to ${options.owner.uid}:${options.owner.gid} (the owner of the current certificate): operation not permitted`,
        'run renew-cert as root, or as the user that owns data/tls.crt and data/tls.key',
        err,
        'RENEW_OWNER_NOT_PERMITTED',
      );
    }
    if (isUserError(err)) {
      throw new EnvironmentError(
        `${err.message}`,
        'run renew-cert as the user who ran init (root if init ran as root); the cert-renewer service needs mcp-tunnel schedule-renewal to have prepared data/',
        err,
        err.code,
      );
    }
    throw err;
  }
  return changes.filter((c) => !('remove' in c)).map((c) => rel(c.path));
}

/** The rollback copy as it is: 'ok' (a matching pair), 'absent', or 'broken' (half of it, or not a pair). */
export async function judgePreviousPair(paths: DeploymentPaths): Promise<'ok' | 'absent' | 'broken'> {
  const files = renewalFiles(paths);
  const [certPem, keyPem] = [await readOrExplain(files.prevCert, 'data/tls.crt.previous'), await readOrExplain(files.prevKey, 'data/tls.key.previous')];
  if (certPem === undefined && keyPem === undefined) return 'absent';
  if (certPem === undefined || keyPem === undefined) return 'broken';
  try {
    return keyMatchesCertificate(certPem, keyPem) ? 'ok' : 'broken';
  } catch {
    return 'broken';
  }
}
