import fs from 'node:fs/promises';
import path from 'node:path';
import { readTextIfExists, writeFileSafely } from '../deployment/atomic-file.js';
import { deploymentPaths, type DeploymentPaths } from '../deployment/layout.js';
import { EnvironmentError, ExitCode, UserError } from '../errors.js';
import { archiveCertificate, listActive, registerCa, type TunnelsApi } from '../anthropic/index.js';
import { readStoredTunnelId } from '../anthropic/provision.js';
import {
  createCa,
  DEFAULT_SERVER_CERT_VALIDITY_MS,
  inspectCertificate,
  issueServerCert,
  keyMatchesCertificate,
  verifySignedBy,
  type CaKeyType,
  type PemPair,
} from '../pki/index.js';
import { loadExistingCa, pairWriteOptions, resolveRenewalDomain, swapCertificatePair } from './renew-cert.js';

/*
 * `ca rotate`: replace the CA without a moment in which the proxy serves a certificate from a CA the tunnel
 * does not trust. A tunnel holds two CAs, so: the new CA is registered while the old one still is, then the
 * proxy's pair is swapped (it hot-reloads tls.crt), the proxy is seen serving the new certificate, and only
 * then is the old CA archived (programmatic) or the operator told to revoke it (manual). The old CA stays
 * on disk as ca.previous.crt/.key for a rollback until the operator removes it.
 *
 * Every step is recorded in data/ca-rotation.json before the next one starts and each step checks the
 * files before it acts, so a run interrupted anywhere completes when run again.
 */

export type CaRotateFlow = 'wif' | 'manual';
export type RotationStep = 'created' | 'registered' | 'swapped';

export interface RotationState {
  version: 1;
  flow: CaRotateFlow;
  step: RotationStep;
  startedAt: string;
  oldFingerprint: string;
  newFingerprint: string;
  /** The new CA's certificate ID on the tunnel (programmatic flow). */
  newCertificateId?: string;
}

export type ServingCheck = { ok: true } | { ok: false; reason: string };

export interface CaRotateOptions {
  dir: string;
  flow: CaRotateFlow;
  /** Programmatic flow: the Tunnels API. */
  api?: TunnelsApi;
  /** Key type of the new CA. Default ecdsa (P-256). */
  keyType?: CaKeyType;
  dryRun?: boolean;
  /** Manual flow: the operator says the new CA is registered in the Console. */
  registered?: boolean;
  /** Whether the proxy now serves the new certificate (the CLI asks the proxy through the tunnel protocol). */
  confirmServing: (expected: { caPem: string; serverFingerprint: string; domain: string }) => Promise<ServingCheck>;
  /** Archive the old CA without seeing the proxy serve the new certificate (a stack that is not running). */
  skipConfirm?: boolean;
  now?: Date;
  onProgress?: (event: CaRotateEvent) => void;
}

export type CaRotateEvent =
  | { type: 'resumed'; step: RotationStep }
  | { type: 'created'; fingerprint: string; keyType: CaKeyType }
  | { type: 'registered'; certificateId: string; fingerprint: string; already: boolean }
  | { type: 'swapped'; serverFingerprint: string }
  | { type: 'confirmed' }
  | { type: 'archived'; certificateId: string; fingerprint: string };

export type CaRotateResult =
  | { status: 'dry-run'; flow: CaRotateFlow; steps: string[]; oldFingerprint: string; resumeFrom?: RotationStep }
  | { status: 'awaiting-registration'; caPem: string; fingerprint: string; oldFingerprint: string; caFile: string }
  | {
      status: 'done';
      flow: CaRotateFlow;
      oldFingerprint: string;
      newFingerprint: string;
      archived?: { id: string };
      /** The old CA, kept for a rollback (relative to the deployment directory). */
      rollbackFiles: string[];
    };

export function rotationFiles(paths: DeploymentPaths): { state: string; nextCert: string; nextKey: string; prevCert: string; prevKey: string } {
  const d = paths.dataDir;
  return {
    state: path.join(d, 'ca-rotation.json'),
    nextCert: path.join(d, 'ca.next.crt'),
    nextKey: path.join(d, 'ca.next.key'),
    prevCert: path.join(d, 'ca.previous.crt'),
    prevKey: path.join(d, 'ca.previous.key'),
  };
}

const fingerprintOf = (pem: string): string => inspectCertificate(pem).fingerprintSha256;

function rotationError(message: string, hint: string, code: string, exitCode: ExitCode = ExitCode.usage): UserError {
  return new UserError(message, { hint, code, exitCode });
}

async function readState(file: string): Promise<RotationState | undefined> {
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  try {
    const s = JSON.parse(text) as RotationState;
    if (s.version === 1 && typeof s.oldFingerprint === 'string' && typeof s.newFingerprint === 'string' && ['created', 'registered', 'swapped'].includes(s.step)) return s;
  } catch {
    // fall through
  }
  throw rotationError(`${file} is not a CA rotation record`, 'restore it, or remove it (and data/ca.next.*) to start the rotation again', 'CA_ROTATION_STATE_INVALID');
}

async function writeState(file: string, state: RotationState): Promise<void> {
  await writeFileSafely(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** ca.key's owner and mode, so the new key is readable by exactly who could read the old one (e.g. the renewer). */
async function caKeyAccess(paths: DeploymentPaths): Promise<{ owner: { uid: number; gid: number }; mode: number }> {
  const st = await fs.stat(paths.caKey);
  return { owner: { uid: st.uid, gid: st.gid }, mode: (st.mode & 0o640) | 0o600 };
}

export async function rotateCa(options: CaRotateOptions): Promise<CaRotateResult> {
  const emit = options.onProgress ?? (() => undefined);
  const now = options.now ?? new Date();
  const paths = deploymentPaths(options.dir);
  const files = rotationFiles(paths);
  let state = await readState(files.state);
  // Mid-swap, ca.key may already be the new key while ca.crt is still the old certificate: only a run
  // that starts a rotation needs the pair to match.
  const currentFp = state ? fingerprintOf(await readRequired(paths.caCert, 'data/ca.crt')) : (await loadExistingCa(paths, now)).info.fingerprintSha256;
  if (state && currentFp !== state.oldFingerprint && currentFp !== state.newFingerprint) {
    throw rotationError(
      `data/ca-rotation.json records a rotation from ${state.oldFingerprint.slice(0, 16)}… but data/ca.crt is ${currentFp.slice(0, 16)}…`,
      'the CA changed since the rotation began: remove data/ca-rotation.json and data/ca.next.* to start again',
      'CA_ROTATION_STATE_MISMATCH',
    );
  }
  if (state && state.flow !== options.flow) {
    throw rotationError(`a ${state.flow} rotation is in progress, but this deployment now uses the ${options.flow} flow`, 'finish it with the same flow, or remove data/ca-rotation.json and data/ca.next.*', 'CA_ROTATION_FLOW_CHANGED');
  }
  const tunnelId = options.flow === 'wif' ? await readStoredTunnelId(paths) : undefined;
  if (options.flow === 'wif' && (tunnelId === undefined || options.api === undefined)) {
    throw rotationError('the programmatic flow needs data/tunnel-id and the Tunnels API', `re-run mcp-tunnel init --flow wif --dir ${options.dir}`, 'CA_ROTATION_NO_TUNNEL');
  }
  const oldFingerprint = state?.oldFingerprint ?? currentFp;

  if (options.dryRun) {
    const steps: string[] = [];
    if (!state) {
      if (options.flow === 'wif') await checkSlots(options.api!, tunnelId!, oldFingerprint, undefined);
      steps.push(`create a new ${options.keyType ?? 'ecdsa'} CA in data/ca.next.crt and data/ca.next.key`);
    }
    if (!state || state.step === 'created') {
      steps.push(options.flow === 'wif' ? `register it on tunnel ${tunnelId} (the old CA stays registered)` : 'wait until you have registered it in the Console (--registered)');
    }
    if (!state || state.step !== 'swapped') steps.push('issue a server certificate from it and swap data/tls.crt + tls.key (the proxy hot-reloads it); the old CA becomes data/ca.previous.*');
    steps.push('confirm the proxy serves the new certificate');
    steps.push(options.flow === 'wif' ? "archive the old CA's certificate on the tunnel" : 'tell you to revoke the old CA in the Console');
    return { status: 'dry-run', flow: options.flow, steps, oldFingerprint, resumeFrom: state?.step };
  }

  if (state) emit({ type: 'resumed', step: state.step });

  // 1. The new CA, on disk before anything refers to it (a registered CA lost locally would cost a slot).
  if (!state) {
    if (options.flow === 'wif') await checkSlots(options.api!, tunnelId!, oldFingerprint, undefined);
    const next = await adoptOrCreateNext(paths, files, options.keyType ?? 'ecdsa', now);
    state = { version: 1, flow: options.flow, step: 'created', startedAt: now.toISOString(), oldFingerprint, newFingerprint: fingerprintOf(next.certPem) };
    await writeState(files.state, state);
    emit({ type: 'created', fingerprint: state.newFingerprint, keyType: options.keyType ?? 'ecdsa' });
  }

  // 2. Registered alongside the old one: from here on both CAs are trusted.
  if (state.step === 'created') {
    const nextPem = await readRequired(files.nextCert, 'data/ca.next.crt');
    if (options.flow === 'wif') {
      await checkSlots(options.api!, tunnelId!, oldFingerprint, state.newFingerprint);
      const r = await registerCa(options.api!, tunnelId!, { certPem: nextPem, fingerprint: state.newFingerprint });
      state = { ...state, step: 'registered', newCertificateId: r.certificate.id };
      await writeState(files.state, state);
      emit({ type: 'registered', certificateId: r.certificate.id, fingerprint: state.newFingerprint, already: r.action === 'already-registered' });
    } else {
      if (!options.registered) return { status: 'awaiting-registration', caPem: nextPem, fingerprint: state.newFingerprint, oldFingerprint, caFile: files.nextCert };
      state = { ...state, step: 'registered' };
      await writeState(files.state, state);
    }
  }

  // 3. The swap: the proxy's pair first (its CA is trusted already), then the CA files.
  if (state.step === 'registered') {
    const serverFingerprint = await swapToNext(paths, files, state, now);
    state = { ...state, step: 'swapped' };
    await writeState(files.state, state);
    emit({ type: 'swapped', serverFingerprint });
  }

  // 4. Seen serving the new certificate before the old CA goes.
  const caPem = await readRequired(paths.caCert, 'data/ca.crt');
  const tlsPem = await readRequired(paths.tlsCert, 'data/tls.crt');
  if (!options.skipConfirm) {
    const domain = await resolveRenewalDomain(paths, inspectCertificate(tlsPem));
    const seen = await options.confirmServing({ caPem, serverFingerprint: fingerprintOf(tlsPem), domain });
    if (!seen.ok) {
      throw rotationError(
        `the new certificate is in place, but the proxy was not seen serving it (${seen.reason}); the old CA stays registered`,
        'start the stack (or wait for the proxy to reload tls.crt) and run mcp-tunnel ca rotate again; --proxy URL if the proxy is not at the default address',
        'CA_ROTATION_UNCONFIRMED',
        ExitCode.environment,
      );
    }
  }
  emit({ type: 'confirmed' });

  // 5. The old CA leaves the tunnel (programmatic) or the operator is told to remove it (manual).
  let archived: { id: string } | undefined;
  if (options.flow === 'wif') {
    const active = await listActive(options.api!, tunnelId!);
    const old = active.find((c) => c.fingerprint === state.oldFingerprint);
    if (old) {
      await archiveCertificate(options.api!, tunnelId!, old.id);
      archived = { id: old.id };
      emit({ type: 'archived', certificateId: old.id, fingerprint: old.fingerprint });
    }
  }
  await fs.unlink(files.state).catch(() => undefined);
  return {
    status: 'done',
    flow: options.flow,
    oldFingerprint: state.oldFingerprint,
    newFingerprint: state.newFingerprint,
    archived,
    rollbackFiles: ['data/ca.previous.crt', 'data/ca.previous.key'],
  };
}

async function readRequired(file: string, label: string): Promise<string> {
  const text = await readTextIfExists(file);
  if (text === undefined) {
    throw rotationError(`${label} is missing in the middle of a CA rotation`, 'restore it from your backup, or remove data/ca-rotation.json and data/ca.next.* to start again', 'CA_ROTATION_FILE_MISSING');
  }
  return text;
}

/** Refuses before anything changes when the tunnel has no free slot for the new CA. */
async function checkSlots(api: TunnelsApi, tunnelId: string, oldFingerprint: string, newFingerprint: string | undefined): Promise<void> {
  const active = await listActive(api, tunnelId);
  if (newFingerprint !== undefined && active.some((c) => c.fingerprint === newFingerprint)) return;
  if (active.length < 2) return;
  const list = active.map((c) => `${c.id} ${c.fingerprint}${c.fingerprint === oldFingerprint ? ' (data/ca.crt)' : ''}`).join(', ');
  throw new UserError(`tunnel ${tunnelId} already holds 2 active CA certificates, so the new CA cannot be registered beside the current one: ${list}`, {
    hint: 'archive the one that is not data/ca.crt (Console, or POST /v1/tunnels/{id}/certificates/{cid}/archive), then run ca rotate again; nothing was changed',
    code: 'CA_SLOTS_FULL',
    exitCode: ExitCode.environment,
  });
}

/** ca.next.* from an interrupted run are taken as they are; otherwise a new CA is written there, key first. */
async function adoptOrCreateNext(paths: DeploymentPaths, files: ReturnType<typeof rotationFiles>, keyType: CaKeyType, now: Date): Promise<PemPair> {
  const [certPem, keyPem] = await Promise.all([readTextIfExists(files.nextCert), readTextIfExists(files.nextKey)]);
  if (certPem !== undefined && keyPem !== undefined && keyMatchesCertificate(certPem, keyPem)) return { certPem, keyPem };
  const pair = await createCa({ keyType, now });
  const access = await caKeyAccess(paths);
  await writeFileSafely(files.nextKey, pair.keyPem, { mode: access.mode, owner: access.owner });
  await writeFileSafely(files.nextCert, pair.certPem, { mode: 0o644 });
  return pair;
}

/** Idempotent: each part looks at the files first, so a re-run after an interruption does only what is left. */
async function swapToNext(paths: DeploymentPaths, files: ReturnType<typeof rotationFiles>, state: RotationState, now: Date): Promise<string> {
  const caPem = await readRequired(paths.caCert, 'data/ca.crt');
  const caIsNew = fingerprintOf(caPem) === state.newFingerprint;
  const next: PemPair = caIsNew
    ? { certPem: caPem, keyPem: await readRequired(paths.caKey, 'data/ca.key') }
    : { certPem: await readRequired(files.nextCert, 'data/ca.next.crt'), keyPem: (await readTextIfExists(files.nextKey)) ?? (await readRequired(paths.caKey, 'data/ca.key')) };

  const tlsPem = await readTextIfExists(paths.tlsCert);
  const tlsKeyPem = await readTextIfExists(paths.tlsKey);
  let serverPem = tlsPem;
  const servesNew = tlsPem !== undefined && tlsKeyPem !== undefined && verifySignedBy(tlsPem, next.certPem) && keyMatchesCertificate(tlsPem, tlsKeyPem);
  if (!servesNew) {
    const domain = await resolveRenewalDomain(paths, tlsPem === undefined ? undefined : inspectCertificate(tlsPem));
    const caInfo = inspectCertificate(next.certPem);
    const wanted = now.getTime() + DEFAULT_SERVER_CERT_VALIDITY_MS;
    const pair = await issueServerCert({ ca: next, domain, now, notAfter: wanted > caInfo.notAfter.getTime() ? caInfo.notAfter : undefined });
    const write = await pairWriteOptions(paths);
    await swapCertificatePair(paths, pair, { ...write, keepPrevious: tlsPem !== undefined && tlsKeyPem !== undefined ? { certPem: tlsPem, keyPem: tlsKeyPem } : undefined });
    serverPem = pair.certPem;
  }

  if (!caIsNew) {
    // The rollback pair is the old CA as it is now; written only while ca.key still is the old key.
    const nextKey = await readTextIfExists(files.nextKey);
    const oldKey = await readRequired(paths.caKey, 'data/ca.key');
    if (nextKey !== undefined && keyMatchesCertificate(caPem, oldKey)) {
      const access = await caKeyAccess(paths);
      await writeFileSafely(files.prevKey, oldKey, { mode: 0o600, owner: access.owner });
      await writeFileSafely(files.prevCert, caPem, { mode: 0o644 });
      await rename(files.nextKey, paths.caKey);
    }
    await rename(files.nextCert, paths.caCert);
  }
  return fingerprintOf(serverPem!);
}

async function rename(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (err) {
    throw new EnvironmentError(`cannot replace ${to}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'check the permissions of data/ (mcp-tunnel doctor explains them)', err, 'CA_ROTATION_WRITE_FAILED');
  }
}
