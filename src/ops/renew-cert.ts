import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { readTextIfExists } from '../bundle/atomic-file.js';
import { parseEnvFile } from '../bundle/env-file.js';
import { deploymentPaths, type DeploymentPaths } from '../bundle/layout.js';
import { OFFICIAL_CONTAINER_ID, proxyContainerUser } from '../bundle/ownership.js';
import { validateDomain } from '../bundle/validate.js';
import { EnvironmentError, ValidationError } from '../errors.js';
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
 *  1. the current pair is copied to tls.crt.previous / tls.key.previous (rollback; key 0600, same owner);
 *  2. the new key and certificate are written completely to temporary files in data/ (same file system:
 *     rename is atomic), fsynced, with their final owner and mode already set;
 *  3. tls.key is renamed into place, then tls.crt immediately after (two consecutive rename(2) calls).
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
      throw new EnvironmentError(`cannot read ${label}: permission denied`, 'run renew-cert as the user who ran init (root if init ran as root)');
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
      `${missing} missing in ${paths.dir}: renew-cert signs with the existing CA and never creates one`,
      'pass --dir to the deployment directory, or restore the CA from your backup (a new CA would have to be registered with the tunnel)',
    );
  }
  let info: CertInfo;
  try {
    info = inspectCertificate(certPem, 'data/ca.crt');
  } catch (err) {
    throw new ValidationError(`data/ca.crt cannot be read: ${(err as Error).message}`, 'restore the CA certificate registered with the tunnel');
  }
  if (!keyMatchesCertificate(certPem, keyPem)) throw new ValidationError('data/ca.key does not belong to data/ca.crt', 'restore the matching pair from your backup');
  const failed = blockingFailures(checkCaCertificate(info, now, { pemCount: countPemCertificates(certPem) }))[0];
  if (failed) throw new ValidationError(`data/ca.crt cannot sign: ${failed.message}`, failed.hint);
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
  const stat = await fs.stat(paths.dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new ValidationError(`deployment directory ${paths.dir} does not exist`, 'pass --dir to the directory mcp-tunnel init wrote');

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
    throw new ValidationError(`${judged.detail}; not renewed`, judged.hint);
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
  const written = await swapCertificatePair(paths, pair, {
    owner,
    certMode: await certMode(paths.tlsCert),
    keyMode: await keyMode(paths.tlsKey),
    keepPrevious: certPem !== undefined && keyPem !== undefined ? { certPem, keyPem } : undefined,
  });
  let previous: CertSummary | undefined;
  if (judged.kind !== 'missing' && 'info' in judged && judged.info) previous = summary(judged.info);
  return { status: 'renewed', reason, detail, domain, previous, current: summary(info), cappedByCa, written, owner };
}

export interface SwapOptions {
  owner: { uid: number; gid: number };
  certMode: number;
  /** Default 0600. */
  keyMode?: number;
  /** The pair being replaced, kept as tls.crt.previous / tls.key.previous. */
  keepPrevious?: PemPair;
}

/**
 * Writes the new pair as described in the module comment. Any failure before the renames removes the
 * temporary files and leaves tls.crt and tls.key exactly as they were.
 */
export async function swapCertificatePair(paths: DeploymentPaths, pair: PemPair, options: SwapOptions): Promise<string[]> {
  const files = renewalFiles(paths);
  const rel = (p: string): string => path.relative(paths.dir, p);
  const written: string[] = [];
  const staged: string[] = [];
  try {
    if (options.keepPrevious) {
      for (const [file, content, mode] of [
        [files.prevKey, options.keepPrevious.keyPem, 0o600],
        [files.prevCert, options.keepPrevious.certPem, options.certMode],
      ] as const) {
        const tmp = await stage(file, content, mode, options.owner);
        staged.push(tmp);
        await rename(tmp, file);
        staged.pop();
        written.push(rel(file));
      }
    }
    const tmpKey = await stage(files.key, pair.keyPem, options.keyMode ?? 0o600, options.owner);
    staged.push(tmpKey);
    const tmpCert = await stage(files.cert, pair.certPem, options.certMode, options.owner);
    staged.push(tmpCert);
    // The two renames, back to back: key first (see the module comment).
    await rename(tmpKey, files.key);
    staged.shift();
    await rename(tmpCert, files.cert);
    staged.shift();
    written.push(rel(files.key), rel(files.cert));
  } finally {
    for (const tmp of staged) await fs.unlink(tmp).catch(() => undefined);
  }
  await syncDir(paths.dataDir);
  return written;
}

/** A complete, fsynced file beside `target` with its final mode and owner; returns its path. */
async function stage(target: string, content: string, mode: number, owner: { uid: number; gid: number }): Promise<string> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: fs.FileHandle | undefined;
  try {
    // O_EXCL: never follow or reuse something already there; created 0600 whatever the umask says.
    handle = await fs.open(tmp, 'wx', 0o600);
    await handle.writeFile(content);
    await handle.sync();
    await handle.chown(owner.uid, owner.gid);
    await handle.chmod(mode);
    await handle.close();
    handle = undefined;
    return tmp;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM') {
      throw new EnvironmentError(
        `cannot hand ${path.basename(target)} to ${owner.uid}:${owner.gid} (the owner of the current certificate): operation not permitted`,
        'run renew-cert as root, or as the user that owns data/tls.crt and data/tls.key',
        err,
      );
    }
    throw new EnvironmentError(
      `cannot write in ${path.dirname(target)}: ${code ?? (err as Error).message}`,
      'run renew-cert as the user who ran init (root if init ran as root); the cert-renewer service needs mcp-tunnel schedule-renewal to have prepared data/',
      err,
    );
  }
}

async function rename(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (err) {
    throw new EnvironmentError(`cannot replace ${to}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'check the permissions of data/ (mcp-tunnel doctor explains them)', err);
  }
}

/** Makes the renames durable. Best effort: without read permission on data/ (the renewer) it cannot open it. */
async function syncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // the renames are done; only their durability across a power cut is left to the file system
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
