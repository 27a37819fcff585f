import fs from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import YAML, { isMap, isScalar, type Pair } from 'yaml';
import { readTextIfExists, writeFileSafely } from '../deployment/atomic-file.js';
import { writeBuildContext } from '../deployment/build-context.js';
import { RENEWER_CA_GID, RENEWER_SERVICE, hasRenewerService, renderComposeFile, renewerAccess, renewerCommand, type ProxyEngine } from '../deployment/compose-file.js';
import { parseEnvFile } from '../deployment/env-file.js';
import { readExistingDeployment } from '../deployment/existing.js';
import { deploymentPaths, projectNameFor, type DeploymentPaths } from '../deployment/layout.js';
import { OFFICIAL_CONTAINER_ID } from '../deployment/ownership.js';
import { EnvironmentError, ValidationError } from '../errors.js';

/**
 * schedule-renewal: adds (or removes) the cert-renewer service of compose.yaml on an existing deployment,
 * writes DIR/build/ (the renewer runs the builtin image, whatever the proxy engine) and gives the renewer
 * what it needs in data/ (compose-file.ts, renewerAccess): nothing when the containers' user owns
 * data/ca.key; otherwise ca.key 0640 group RENEWER_CA_GID and data/ 1731 group RENEWER_CA_GID.
 *
 * compose.yaml is re-rendered when it is exactly what mcp-tunnel wrote; a hand-edited file gets a YAML
 * document edit (the service added or removed, everything else kept) as long as that does not reformat
 * the rest of the file; otherwise --force is needed.
 */
export interface ScheduleOptions {
  dir: string;
  version: string;
  force?: boolean;
  /** Build context source (tests); default: this package. */
  packageRoot?: string;
}

export type AccessChange = 'none-needed' | 'granted' | 'already' | 'revoked';

/** A file schedule-renewal wrote, or whose group and mode it changed (for the renewer, or back). */
export interface TouchedFile {
  path: string;
  change: 'written' | 'permissions';
  mode: number;
  /** The group given (permission changes only). */
  gid?: number;
}

/** The renewer as compose.yaml runs it: the service, its command and the two flags that make the schedule. */
export interface RenewerSchedule {
  service: string;
  command: string[];
  /** `--every`: how often it checks (undefined when a hand edit removed the flag). */
  every?: string;
  /** `--renew-before`: how much validity left triggers a new certificate. */
  renewBefore?: string;
}

export interface ScheduleResult {
  compose: 'added' | 'removed' | 'unchanged';
  /** How compose.yaml was changed. */
  method?: 'rendered' | 'edited';
  buildContext?: string;
  access: AccessChange;
  /** The containers' identity from .env. */
  identity: { uid: number; gid: number };
  project: string;
  /** Every file written or re-permissioned, in the order it happened; empty when nothing changed. */
  files: TouchedFile[];
  /** The renewer compose.yaml now declares; undefined after --disable. */
  renewer?: RenewerSchedule;
}

const flagValue = (argv: string[], flag: string): string | undefined => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
};

export function describeRenewer(composeText: string): RenewerSchedule | undefined {
  if (!hasRenewerService(composeText)) return undefined;
  const command = renewerCommand(composeText) ?? [];
  return { service: RENEWER_SERVICE, command, every: flagValue(command, '--every'), renewBefore: flagValue(command, '--renew-before') };
}

async function readDeployment(dir: string): Promise<{ paths: DeploymentPaths; compose: string; engine: ProxyEngine; identity: { uid: number; gid: number }; project: string }> {
  const paths = deploymentPaths(dir);
  const compose = await readTextIfExists(paths.compose);
  if (compose === undefined) {
    throw new ValidationError(`${paths.dir} has no compose.yaml`, 'run mcp-tunnel init first (init --auto-renew schedules renewal from the start), or pass --dir', 'COMPOSE_FILE_MISSING');
  }
  for (const [file, label] of [[paths.caCert, 'data/ca.crt'], [paths.caKey, 'data/ca.key']] as const) {
    if (!(await fs.stat(file).catch(() => undefined))) throw new ValidationError(`${label} is missing: the renewer signs with the existing CA`, 'restore the CA from your backup, or run mcp-tunnel init', 'CA_MISSING');
  }
  const existing = await readExistingDeployment(paths);
  const env = parseEnvFile(existing.envText ?? '');
  const num = (v: string | undefined): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : OFFICIAL_CONTAINER_ID);
  return {
    paths,
    compose,
    engine: existing.engine ?? 'official',
    identity: { uid: num(env.MCP_TUNNEL_UID), gid: num(env.MCP_TUNNEL_GID) },
    project: env.COMPOSE_PROJECT_NAME || projectNameFor(dir),
  };
}

/** The compose text with the renewer added (or removed). */
export function editComposeForRenewer(
  text: string,
  enable: boolean,
  ctx: { engine: ProxyEngine; version: string; force?: boolean },
): { text: string; method: 'rendered' | 'edited' } {
  const without = renderComposeFile({ engine: ctx.engine, version: ctx.version, autoRenew: false });
  const withRenewer = renderComposeFile({ engine: ctx.engine, version: ctx.version, autoRenew: true });
  if (text === (enable ? without : withRenewer)) return { text: enable ? withRenewer : without, method: 'rendered' };

  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new ValidationError(`compose.yaml is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, 'fix the file, or re-run mcp-tunnel init --force to rewrite it', 'COMPOSE_FILE_INVALID');
  const services = doc.get('services', true);
  if (!isMap(services)) throw new ValidationError('compose.yaml has no services mapping', 're-run mcp-tunnel init --force to rewrite it', 'COMPOSE_FILE_INVALID');

  // The Document edit says what the result must mean; a splice of the text keeps every other byte.
  const expected = doc.clone();
  let spliced: string | undefined;
  if (enable) {
    const rendered = YAML.parseDocument(withRenewer).getIn(['services', RENEWER_SERVICE], true);
    expected.setIn(['services', RENEWER_SERVICE], rendered);
    // The service block exactly as init renders it (it is appended after the other services).
    const block = withRenewer.startsWith(without) ? withRenewer.slice(without.length) : undefined;
    const end = (services as { range?: [number, number, number] }).range?.[1];
    if (block !== undefined && end !== undefined && !services.flow) {
      const at = lineEnd(text, Math.max(0, end - 1));
      const head = text.slice(0, at);
      spliced = `${head}${head.endsWith('\n') ? '' : '\n'}${block}${text.slice(at).replace(/^\n/, '')}`;
    }
  } else {
    expected.deleteIn(['services', RENEWER_SERVICE]);
    const pair = (services.items as Pair[]).find((p) => isScalar(p.key) && p.key.value === RENEWER_SERVICE);
    const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
    const valueRange = (pair?.value as { range?: [number, number, number] } | undefined)?.range;
    if (keyRange && valueRange && !services.flow) {
      let start = text.lastIndexOf('\n', keyRange[0] - 1) + 1;
      // The blank line that separated it from the service before.
      if (text.slice(0, start).endsWith('\n\n')) start -= 1;
      const stop = lineEnd(text, Math.max(keyRange[0], valueRange[1] - 1));
      spliced = text.slice(0, start) + text.slice(Math.min(stop + 1, text.length));
    }
  }
  if (spliced !== undefined) {
    try {
      if (isDeepStrictEqual(YAML.parse(spliced), expected.toJS())) return { text: spliced, method: 'edited' };
    } catch {
      // fall through
    }
  }
  if (!ctx.force) {
    throw new ValidationError(
      `compose.yaml was edited by hand, and ${enable ? 'adding' : 'removing'} the ${RENEWER_SERVICE} service cannot be done without reformatting it`,
      `pass --force to let mcp-tunnel rewrite its layout (your settings and comments are kept), or ${enable ? 'add' : 'remove'} the service by hand`,
      'COMPOSE_EDITED_BY_HAND',
    );
  }
  return { text: expected.toString(), method: 'edited' };
}

function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl === -1 ? text.length : nl;
}

/** Whether the renewer (running as `identity`) can read ca.key without help. */
async function needsGroupAccess(paths: DeploymentPaths, identity: { uid: number }): Promise<boolean> {
  const st = await fs.stat(paths.caKey);
  return st.uid !== identity.uid;
}

async function grantAccess(paths: DeploymentPaths, files: TouchedFile[]): Promise<AccessChange> {
  const access = renewerAccess({ chownProxyFiles: true })!;
  const [key, dir] = await Promise.all([fs.stat(paths.caKey), fs.stat(paths.dataDir)]);
  const already = key.gid === access.caKey.gid && (key.mode & 0o777) === access.caKey.mode && dir.gid === access.dataDir.gid && (dir.mode & 0o7777) === access.dataDir.mode;
  if (already) return 'already';
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError(
      `data/ca.key belongs to uid ${key.uid}, not to the containers' user: only root can let the renewer read it`,
      'run mcp-tunnel schedule-renewal as root (sudo), the user that ran init',
      undefined, 'RENEWER_NEEDS_ROOT',
    );
  }
  try {
    // Owners stay as they are; only the group and the modes change.
    await fs.chown(paths.caKey, -1, access.caKey.gid);
    await fs.chmod(paths.caKey, access.caKey.mode);
    files.push({ path: paths.caKey, change: 'permissions', mode: access.caKey.mode, gid: access.caKey.gid });
    await fs.chown(paths.dataDir, -1, access.dataDir.gid);
    await fs.chmod(paths.dataDir, access.dataDir.mode);
    files.push({ path: paths.dataDir, change: 'permissions', mode: access.dataDir.mode, gid: access.dataDir.gid });
  } catch (err) {
    throw new EnvironmentError(`cannot prepare data/ for the renewer: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'run as root on the host that holds the deployment', err, 'DATA_PERMISSIONS_FAILED');
  }
  return 'granted';
}

async function revokeAccess(paths: DeploymentPaths, files: TouchedFile[]): Promise<AccessChange> {
  const [key, dir, caCert] = await Promise.all([fs.stat(paths.caKey), fs.stat(paths.dataDir), fs.stat(paths.caCert)]);
  if (key.gid !== RENEWER_CA_GID && dir.gid !== RENEWER_CA_GID && (dir.mode & 0o1000) === 0) return 'none-needed';
  try {
    // Back to init's arrangement (ownership.ts): ca.key 0600; data/ 0711 when root owns it, else 0700.
    if (key.gid === RENEWER_CA_GID) await fs.chown(paths.caKey, -1, caCert.gid);
    await fs.chmod(paths.caKey, 0o600);
    files.push({ path: paths.caKey, change: 'permissions', mode: 0o600, gid: key.gid === RENEWER_CA_GID ? caCert.gid : key.gid });
    if (dir.gid === RENEWER_CA_GID) await fs.chown(paths.dataDir, -1, caCert.gid);
    const dirMode = dir.uid === 0 ? 0o711 : 0o700;
    await fs.chmod(paths.dataDir, dirMode);
    files.push({ path: paths.dataDir, change: 'permissions', mode: dirMode, gid: dir.gid === RENEWER_CA_GID ? caCert.gid : dir.gid });
  } catch (err) {
    throw new EnvironmentError(`cannot restore the permissions of data/: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'run as root (the user that ran init)', err, 'DATA_PERMISSIONS_FAILED');
  }
  return 'revoked';
}

export async function enableAutoRenew(options: ScheduleOptions): Promise<ScheduleResult> {
  const dep = await readDeployment(options.dir);
  const files: TouchedFile[] = [];
  let compose: ScheduleResult['compose'] = 'unchanged';
  let method: ScheduleResult['method'];
  let next: string | undefined;
  if (!hasRenewerService(dep.compose)) {
    const edited = editComposeForRenewer(dep.compose, true, { engine: dep.engine, version: options.version, force: options.force });
    next = edited.text;
    method = edited.method;
    compose = 'added';
  }
  // Everything the service needs is in place before compose.yaml names it.
  const access = (await needsGroupAccess(dep.paths, dep.identity)) ? await grantAccess(dep.paths, files) : 'none-needed';
  const build = await writeBuildContext(dep.paths.dir, { packageRoot: options.packageRoot });
  files.push(...build.written.map((path): TouchedFile => ({ path, change: 'written', mode: 0o644 })));
  if (next !== undefined) {
    await writeFileSafely(dep.paths.compose, next, { mode: 0o644 });
    files.push({ path: dep.paths.compose, change: 'written', mode: 0o644 });
  }
  return { compose, method, buildContext: build.dir, access, identity: dep.identity, project: dep.project, files, renewer: describeRenewer(next ?? dep.compose) };
}

export async function disableAutoRenew(options: ScheduleOptions): Promise<ScheduleResult> {
  const dep = await readDeployment(options.dir);
  const files: TouchedFile[] = [];
  let compose: ScheduleResult['compose'] = 'unchanged';
  let method: ScheduleResult['method'];
  if (hasRenewerService(dep.compose)) {
    const edited = editComposeForRenewer(dep.compose, false, { engine: dep.engine, version: options.version, force: options.force });
    await writeFileSafely(dep.paths.compose, edited.text, { mode: 0o644 });
    files.push({ path: dep.paths.compose, change: 'written', mode: 0o644 });
    method = edited.method;
    compose = 'removed';
  }
  const access = await revokeAccess(dep.paths, files);
  return { compose, method, access, identity: dep.identity, project: dep.project, files };
}
