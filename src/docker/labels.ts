/**
 * Compose's labels, as docker-compose 1.29 writes them (checked by inspecting what the local
 * docker-compose creates; see test/integration/docker-orchestration.test.ts). docker compose v2 reads the
 * same labels, so both implementations find, list and remove what mcp-tunnel creates.
 */
export const LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  oneoff: 'com.docker.compose.oneoff',
  containerNumber: 'com.docker.compose.container-number',
  version: 'com.docker.compose.version',
  configHash: 'com.docker.compose.config-hash',
  workingDir: 'com.docker.compose.project.working_dir',
  configFiles: 'com.docker.compose.project.config_files',
  network: 'com.docker.compose.network',
} as const;

/**
 * The compose version we write into com.docker.compose.version. docker-compose < 1.21 treated containers
 * with an older version label as "legacy project name" and recreated them; 1.29.2 is what the local
 * docker-compose writes, and docker compose v2 does not look at it.
 */
export const COMPOSE_VERSION_LABEL = '1.29.2';

/**
 * Our own label beside compose's: the digest of the single files a service bind-mounts (the proxy config),
 * which the engines read at start only. compose ignores labels it does not know, and the config hash is
 * computed from the compose file alone, so this label changes nothing for `docker compose up`.
 */
export const MOUNTS_DIGEST_LABEL = 'io.mcp-tunnel.mounts-digest';

/** Container name: compose v2's `<project>-<service>-1` (docker-compose 1.29 finds containers by label, not name). */
export function containerName(project: string, service: string, number = 1): string {
  return `${project}-${service}-${number}`;
}

export function projectFilter(project: string): { label: string[] } {
  return { label: [`${LABELS.project}=${project}`] };
}

export function serviceFilter(project: string, service: string): { label: string[] } {
  return { label: [`${LABELS.project}=${project}`, `${LABELS.service}=${service}`, `${LABELS.oneoff}=False`] };
}

export interface ContainerLabelInput {
  project: string;
  service: string;
  workingDir: string;
  configFiles: string;
  configHash: string;
  /** The service's own labels (compose.yaml labels:). */
  userLabels: Record<string, string>;
  number?: number;
  /** The digest of the mounted files (MOUNTS_DIGEST_LABEL), when the service mounts any. */
  mountsDigest?: string;
}

/** The label set docker-compose 1.29 puts on a service container (user labels first, compose's win). */
export function containerLabels(input: ContainerLabelInput): Record<string, string> {
  return {
    ...input.userLabels,
    [LABELS.project]: input.project,
    [LABELS.service]: input.service,
    [LABELS.oneoff]: 'False',
    [LABELS.workingDir]: input.workingDir,
    [LABELS.configFiles]: input.configFiles,
    [LABELS.containerNumber]: String(input.number ?? 1),
    [LABELS.version]: COMPOSE_VERSION_LABEL,
    [LABELS.configHash]: input.configHash,
    ...(input.mountsDigest ? { [MOUNTS_DIGEST_LABEL]: input.mountsDigest } : {}),
  };
}

/** The project network's labels, as docker-compose 1.29 labels `<project>_default`. */
export function networkLabels(project: string): Record<string, string> {
  return { [LABELS.network]: 'default', [LABELS.project]: project, [LABELS.version]: COMPOSE_VERSION_LABEL };
}
