import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { RENEWER_CA_GID } from '../../deployment/compose-file.js';
import type { DeploymentPaths } from '../../deployment/layout.js';
import { fail, ok, warn, type DoctorFinding } from './types.js';
import { formatMode as octal } from '../../deployment/file-mode.js';

/**
 * Whether the containers' user (MCP_TUNNEL_UID/GID in .env) can read what the proxy mounts, judged the
 * way the kernel does it for a process without capabilities (cap_drop: ALL, so not even a container root
 * bypasses the modes): the owner bits if the user owns the file, else the group bits if one of its groups
 * does, else the other bits. Only the bind-mount sources matter (./data, ./config/mcp-proxy.yaml): the
 * directories above them are not on the container's path.
 */
export interface ContainerUser {
  uid: number;
  gids: number[];
}

const R = 4;
const W = 2;
const X = 1;

export function permits(st: Pick<Stats, 'uid' | 'gid' | 'mode'>, user: ContainerUser, want: number): boolean {
  const bits = st.uid === user.uid ? (st.mode >> 6) & 7 : user.gids.includes(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & want) === want;
}

const describe = (st: Stats): string => `${st.uid}:${st.gid} ${octal(st.mode)}`;

export interface PermissionContext {
  paths: DeploymentPaths;
  identity: { uid: number; gid: number };
  /** e.g. "MCP_TUNNEL_UID/GID in .env" */
  identitySource: string;
  /** compose.yaml has the cert-renewer service. */
  renewer: boolean;
  /** Files under /data the proxy config names besides tls.* (upstream.tls.ca_file). */
  extraDataFiles: string[];
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  return fs.stat(p).catch(() => undefined);
}

export async function checkPermissions(ctx: PermissionContext): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  const user: ContainerUser = { uid: ctx.identity.uid, gids: [ctx.identity.gid] };
  const who = `the containers' user ${ctx.identity.uid}:${ctx.identity.gid} (${ctx.identitySource})`;
  const dataDir = await statOrUndefined(ctx.paths.dataDir);
  if (!dataDir) {
    out.push(fail('files.data-dir', 'data/ is missing', 'run mcp-tunnel init'));
    return out;
  }
  const chownFix = (file: string): string =>
    `sudo chown ${ctx.identity.uid}:${ctx.identity.gid} ${file} && sudo chmod ${file.endsWith('.key') ? '600' : '644'} ${file}   (or re-run mcp-tunnel init, which repairs permissions)`;

  for (const name of ['tls.crt', 'tls.key', ...ctx.extraDataFiles]) {
    const file = path.join(ctx.paths.dataDir, name);
    const st = await statOrUndefined(file);
    const id = `files.container-read.${name}`;
    if (!st) {
      if (ctx.extraDataFiles.includes(name)) out.push(fail(id, `data/${name} (named in the proxy config) is missing`, `put the file there, or fix upstream.tls.ca_file in config/mcp-proxy.yaml`));
      continue; // tls.* missing is reported by the certificate checks
    }
    if (!permits(dataDir, user, X)) {
      out.push(fail(id, `${who} cannot enter data/ (${describe(dataDir)}), so the proxy cannot read data/${name}`, `sudo chmod o+x ${ctx.paths.dataDir}   (or chown it to ${ctx.identity.uid})`));
    } else if (!permits(st, user, R)) {
      out.push(fail(id, `${who} cannot read data/${name} (${describe(st)}): the proxy fails to start`, chownFix(file)));
    } else {
      out.push(ok(id, `data/${name} is readable by ${ctx.identity.uid}:${ctx.identity.gid} (${describe(st)})`));
    }
  }

  const config = await statOrUndefined(ctx.paths.proxyConfig);
  if (config) {
    out.push(
      permits(config, user, R)
        ? ok('files.container-read.config', `config/mcp-proxy.yaml is readable by ${ctx.identity.uid}:${ctx.identity.gid}`)
        : fail('files.container-read.config', `${who} cannot read config/mcp-proxy.yaml (${describe(config)})`, `sudo chmod 644 ${ctx.paths.proxyConfig}`),
    );
  }

  // Secrets no one else needs.
  for (const [file, label] of [
    [ctx.paths.caKey, 'data/ca.key'],
    [ctx.paths.tunnelToken, 'data/tunnel-token'],
    [ctx.paths.env, '.env'],
    [ctx.paths.tlsKey, 'data/tls.key'],
  ] as const) {
    const st = await statOrUndefined(file);
    if (st && (st.mode & 0o004) !== 0) {
      // tls.key is world-readable in the official guide so the 65532 container can read it: tightening it
      // alone would lock the proxy out, so the fix hands it to the containers' user first
      const fix =
        file === ctx.paths.tlsKey
          ? `sudo chown ${ctx.identity.uid}:${ctx.identity.gid} ${file} && sudo chmod 600 ${file}   (the proxy runs as ${ctx.identity.uid}:${ctx.identity.gid}, ${ctx.identitySource}, and keeps reading it)`
          : `chmod o-rwx ${file}`;
      out.push(warn(`files.secret-mode.${path.basename(file)}`, `${label} is readable by every user of this host (${octal(st.mode)})`, fix));
    }
  }

  if (ctx.renewer) {
    const renewer: ContainerUser = { uid: ctx.identity.uid, gids: [ctx.identity.gid, RENEWER_CA_GID] };
    const caKey = await statOrUndefined(ctx.paths.caKey);
    const tls = await statOrUndefined(ctx.paths.tlsCert);
    const fix = 'sudo mcp-tunnel schedule-renewal --dir ' + ctx.paths.dir;
    if (caKey && !permits(caKey, renewer, R)) {
      out.push(fail('files.renewer', `the cert-renewer (${ctx.identity.uid}, groups ${renewer.gids.join(',')}) cannot read data/ca.key (${describe(caKey)}): renewals will fail`, fix));
    } else if (!permits(dataDir, renewer, W | X)) {
      out.push(fail('files.renewer', `the cert-renewer cannot create files in data/ (${describe(dataDir)}): renewals will fail`, fix));
    } else if ((dataDir.mode & 0o1000) !== 0 && dataDir.uid !== ctx.identity.uid && tls && tls.uid !== ctx.identity.uid) {
      out.push(fail('files.renewer', `data/ is sticky and data/tls.crt belongs to ${tls.uid}, not the renewer (${ctx.identity.uid}): it cannot replace it`, chownFix(ctx.paths.tlsCert)));
    } else {
      out.push(ok('files.renewer', 'the cert-renewer can read data/ca.key and replace data/tls.*'));
    }
  }
  return out;
}
