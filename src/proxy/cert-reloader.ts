import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import tls from 'node:tls';
import type { Logger } from './logger.js';
import { errorText } from './logger.js';
import type { ProxyMetrics } from './metrics.js';

/**
 * The served certificate and key, hot-reloaded (docs/contract.md 3: "the certificate file is polled and hot-reloaded").
 *
 * Both files are polled (stat every `pollIntervalMs`). When their signature (size, mtime, ctime, inode)
 * differs from the served pair's, the pair is read and checked at once: both parse, the key belongs to the
 * certificate, and the signature did not move while they were read. Such a pair is complete whatever the
 * writer does next, so the SecureContext is swapped, in one assignment: new handshakes use the new one,
 * established TLS sessions keep theirs. A half-replaced pair (tls.crt new, tls.key not yet) fails the key
 * check and is simply looked at again at the next poll; only a broken pair that stays the same for two
 * polls is logged ("certificate reload failed") and then ignored until the files change again.
 *
 * Why not "unchanged for two polls, then read": under back-to-back renewals the files never stay unchanged
 * for two polls, so nothing was ever reloaded (a pair replaced 22 s earlier was still not served). Checking
 * the pair itself picks up the newest complete pair within one poll (two, when a poll lands mid-write).
 */
export const DEFAULT_CERT_POLL_INTERVAL_MS = 2_000;
export const INNER_TLS_MIN_VERSION = 'TLSv1.2' as const;

export interface ServedCertificate {
  subject: string;
  serialNumber: string;
  fingerprint256: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificatePair {
  secureContext: tls.SecureContext;
  certificate: ServedCertificate;
}

/** Why a pair could not be used; the message names the file and never contains key material. */
export class CertificatePairError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificatePairError';
  }
}

/** Reads, parses and cross-checks a certificate file and its key file. */
export async function loadCertificatePair(certFile: string, keyFile: string): Promise<CertificatePair> {
  const [certPem, keyPem] = await Promise.all([readPem(certFile), readPem(keyFile)]);
  return buildCertificatePair(certPem, keyPem, certFile, keyFile);
}

export function buildCertificatePair(certPem: string, keyPem: string, certLabel = 'the certificate', keyLabel = 'the key'): CertificatePair {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new CertificatePairError(`${certLabel} is not a PEM certificate (${errorText(err)})`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    // The parser's message could quote the input; say only what is wrong.
    throw new CertificatePairError(`${keyLabel} is not a PEM private key`);
  }
  if (!x509.checkPrivateKey(key)) throw new CertificatePairError(`${keyLabel} does not match the certificate in ${certLabel}`);
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ cert: certPem, key: keyPem, minVersion: INNER_TLS_MIN_VERSION });
  } catch (err) {
    throw new CertificatePairError(`${certLabel} and ${keyLabel} cannot be used for TLS (${errorText(err)})`);
  }
  return {
    secureContext,
    certificate: {
      subject: x509.subject.replace(/\n/g, ', '),
      serialNumber: x509.serialNumber.toLowerCase(),
      fingerprint256: x509.fingerprint256,
      notBefore: x509.validFromDate,
      notAfter: x509.validToDate,
    },
  };
}

async function readPem(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CertificatePairError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`);
  }
}

export interface CertReloaderOptions {
  certFile: string;
  keyFile: string;
  logger: Logger;
  metrics?: ProxyMetrics;
  pollIntervalMs?: number;
}

export type ReloadOutcome = 'unchanged' | 'pending' | 'reloaded' | 'failed';

export class CertReloader {
  private current: CertificatePair;
  private loadedSignature: string;
  private failedSignature: string | undefined;
  private pendingSignature: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private polling: Promise<ReloadOutcome> | undefined;
  private readonly pollIntervalMs: number;

  private constructor(
    private readonly options: CertReloaderOptions,
    initial: CertificatePair,
    signature: string,
  ) {
    this.current = initial;
    this.loadedSignature = signature;
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_CERT_POLL_INTERVAL_MS;
    options.metrics?.certificateLoaded(initial.certificate.notAfter);
  }

  /** Loads the pair once; throws CertificatePairError when it cannot be served. Polling starts with start(). */
  static async load(options: CertReloaderOptions): Promise<CertReloader> {
    const signature = await filesSignature(options.certFile, options.keyFile);
    const pair = await loadCertificatePair(options.certFile, options.keyFile);
    return new CertReloader(options, pair, signature);
  }

  /** The context new handshakes must use. */
  get secureContext(): tls.SecureContext {
    return this.current.secureContext;
  }

  get certificate(): ServedCertificate {
    return this.current.certificate;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * One poll (see the module comment). `force`: a broken pair is reported at once instead of being given
   * one more poll (tests, or a caller that knows the writer is done).
   */
  checkNow(force = false): Promise<ReloadOutcome> {
    // Never two polls at once: a slow disk must not make reloads overlap.
    this.polling ??= this.poll(force).finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.checkNow().finally(() => this.schedule());
    }, this.pollIntervalMs);
    this.timer.unref();
  }

  private async poll(force: boolean): Promise<ReloadOutcome> {
    const { logger, metrics, certFile, keyFile } = this.options;
    const signature = await filesSignature(certFile, keyFile);
    if (signature === this.loadedSignature || signature === this.failedSignature) {
      this.pendingSignature = undefined;
      return 'unchanged';
    }
    let pair: CertificatePair | undefined;
    let error: unknown;
    try {
      pair = await loadCertificatePair(certFile, keyFile);
    } catch (err) {
      error = err;
    }
    // Moved while being read: whatever was read may mix two generations; the next poll sees where it settled.
    if ((await filesSignature(certFile, keyFile)) !== signature) {
      this.pendingSignature = undefined;
      return 'pending';
    }
    if (pair) {
      this.pendingSignature = undefined;
      this.current = pair;
      this.loadedSignature = signature;
      this.failedSignature = undefined;
      metrics?.certificateReloaded(true);
      metrics?.certificateLoaded(pair.certificate.notAfter);
      logger.info('certificate reloaded', {
        cert_file: certFile,
        serial: pair.certificate.serialNumber,
        not_after: pair.certificate.notAfter.toISOString(),
      });
      return 'reloaded';
    }
    // Broken now, maybe because the writer is between the two files: give it one more poll.
    if (!force && signature !== this.pendingSignature) {
      this.pendingSignature = signature;
      return 'pending';
    }
    this.pendingSignature = undefined;
    this.failedSignature = signature;
    metrics?.certificateReloaded(false);
    logger.warn('certificate reload failed', { cert_file: certFile, key_file: keyFile, reason: errorText(error), action: 'keeping the previous certificate' });
    return 'failed';
  }
}

async function fileSignature(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.size}:${s.mtimeMs}:${s.ctimeMs}:${s.ino}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

async function filesSignature(certFile: string, keyFile: string): Promise<string> {
  const [a, b] = await Promise.all([fileSignature(certFile), fileSignature(keyFile)]);
  return `${a}|${b}`;
}
