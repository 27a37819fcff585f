import type Docker from 'dockerode';
import type { ComposeProject, ComposeService } from './compose-model.js';
import { containerLabels, containerName } from './labels.js';

/**
 * The Engine API create-container body for a compose service: every setting the compose file carries,
 * mapped the way docker-compose 1.29 (docker-py) maps it.
 */
export interface SpecContext {
  project: ComposeProject;
  configHash: string;
  /** The digest of the service's mounted files (labels.ts MOUNTS_DIGEST_LABEL). */
  mountsDigest?: string;
  /** For network_mode service:NAME: the id of NAME's container. */
  serviceContainerIds: ReadonlyMap<string, string>;
}

export function portKey(p: { target: number; protocol: string | null }): string {
  return `${p.target}/${p.protocol ?? 'tcp'}`;
}

export function containerCreateOptions(service: ComposeService, ctx: SpecContext): Docker.ContainerCreateOptions {
  const { project } = ctx;
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of service.ports) {
    const key = portKey(p);
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp ?? '', HostPort: p.published === null ? '' : String(p.published) });
  }

  let networkMode: string;
  let networkingConfig: Docker.ContainerCreateOptions['NetworkingConfig'];
  switch (service.networkMode.kind) {
    case 'default':
      networkMode = project.networkName;
      networkingConfig = { EndpointsConfig: { [project.networkName]: { Aliases: [service.name], IPAMConfig: {} } } };
      break;
    case 'service': {
      const id = ctx.serviceContainerIds.get(service.networkMode.service);
      if (!id) throw new Error(`internal: no container for service ${service.networkMode.service} (network_mode of ${service.name})`);
      networkMode = `container:${id}`;
      break;
    }
    default:
      networkMode = service.networkMode.mode;
  }

  const hc = service.healthcheck;
  const volumes: Record<string, Record<string, never>> = {};
  for (const b of service.binds) volumes[b.target] = {};

  const hostConfig: Docker.HostConfig = {
    Binds: service.binds.map((b) => `${b.source}:${b.target}:${b.mode}`),
    NetworkMode: networkMode,
    PortBindings: bindings,
    ...(service.restart ? { RestartPolicy: service.restart } : {}),
    ...(service.capAdd ? { CapAdd: service.capAdd } : {}),
    ...(service.capDrop ? { CapDrop: service.capDrop } : {}),
    ...(service.groupAdd ? { GroupAdd: service.groupAdd } : {}),
    ...(service.readOnly !== undefined ? { ReadonlyRootfs: service.readOnly } : {}),
    ...(service.securityOpt ? { SecurityOpt: service.securityOpt } : {}),
    ...(service.logging ? { LogConfig: { Type: service.logging.driver, Config: service.logging.options ?? {} } } : {}),
  };

  return {
    name: containerName(project.name, service.name),
    Image: service.image,
    ...(service.command ? { Cmd: service.command } : {}),
    Env: service.env,
    Labels: containerLabels({
      project: project.name,
      service: service.name,
      workingDir: project.dir,
      configFiles: project.configFilesLabel,
      configHash: ctx.configHash,
      userLabels: service.labels,
      mountsDigest: ctx.mountsDigest,
    }),
    ...(service.user !== undefined ? { User: service.user } : {}),
    ...(service.stopTimeoutSeconds !== undefined ? { StopTimeout: service.stopTimeoutSeconds } : {}),
    ...(hc
      ? {
          Healthcheck: {
            Test: hc.test,
            ...(hc.intervalNs !== undefined ? { Interval: hc.intervalNs } : {}),
            ...(hc.timeoutNs !== undefined ? { Timeout: hc.timeoutNs } : {}),
            ...(hc.startPeriodNs !== undefined ? { StartPeriod: hc.startPeriodNs } : {}),
            ...(hc.retries !== undefined ? { Retries: hc.retries } : {}),
          },
        }
      : {}),
    ExposedPorts: exposed,
    Volumes: volumes,
    HostConfig: hostConfig,
    ...(networkingConfig ? { NetworkingConfig: networkingConfig } : {}),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
  };
}
