/**
 * How the non-root containers read tls.key without it being world-readable (docs/contract.md §2).
 *
 * The official docs make tls.key 0644. We keep every key 0600 instead and make the container run as the
 * file's owner:
 * - invoked by a regular user: the containers run as that user's UID:GID (MCP_TUNNEL_UID/GID in .env),
 *   so a 0600 key owned by the user is readable by the container and by nobody else on the host;
 * - invoked as root: running containers as root would undo the hardening, so they keep the official
 *   65532:65532 and the files the proxy reads (tls.crt, tls.key) are handed to 65532 with chown, still 0600.
 *   ca.key and the tunnel token stay root's: the proxy never needs them.
 */
export const OFFICIAL_CONTAINER_ID = 65532;

export interface ContainerIdentity {
  uid: number;
  gid: number;
  /** chown tls.crt/tls.key to uid:gid (only possible, and only needed, when we are root). */
  chownProxyFiles: boolean;
  /** data/: private to the owner, or traversable (not listable) when the container is another user. */
  dataDirMode: number;
}

export function containerIdentity(invoker: { uid: number; gid: number }): ContainerIdentity {
  if (invoker.uid === 0) {
    return { uid: OFFICIAL_CONTAINER_ID, gid: OFFICIAL_CONTAINER_ID, chownProxyFiles: true, dataDirMode: 0o711 };
  }
  return { uid: invoker.uid, gid: invoker.gid, chownProxyFiles: false, dataDirMode: 0o700 };
}

export function currentInvoker(): { uid: number; gid: number } {
  return { uid: process.getuid?.() ?? OFFICIAL_CONTAINER_ID, gid: process.getgid?.() ?? OFFICIAL_CONTAINER_ID };
}

/**
 * The user the proxy container runs as, and where that was read: MCP_TUNNEL_UID/GID in .env (what
 * mcp-tunnel's compose.yaml interpolates), else a literal `user: "UID:GID"` on the proxy service (what
 * Anthropic's docker-compose.yaml has), else the official 65532.
 */
export function proxyContainerUser(env: Readonly<Record<string, string | undefined>>, composeText: string | undefined, composeName = 'the compose file'): { uid: number; gid: number; source: string } {
  const num = (v: string | undefined): number | undefined => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined);
  const uid = num(env.MCP_TUNNEL_UID);
  if (uid !== undefined) return { uid, gid: num(env.MCP_TUNNEL_GID) ?? uid, source: 'MCP_TUNNEL_UID/GID in .env' };
  // A line scan, not a YAML parse: this only has to recognise the literal the official guide writes.
  const literal = composeText === undefined ? null : /^\s+user:\s*["']?(\d+)(?::(\d+))?["']?\s*$/m.exec(composeText);
  if (literal !== null) {
    const u = Number(literal[1]);
    return { uid: u, gid: literal[2] === undefined ? u : Number(literal[2]), source: `user: in ${composeName}` };
  }
  return { uid: OFFICIAL_CONTAINER_ID, gid: OFFICIAL_CONTAINER_ID, source: `no MCP_TUNNEL_UID in .env: compose's default ${OFFICIAL_CONTAINER_ID}` };
}
