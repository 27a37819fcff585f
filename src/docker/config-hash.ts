import { createHash } from 'node:crypto';
import type { ComposeProject, ComposeService } from './compose-model.js';
import { pythonJsonDumps, type PyJson } from './py-compat.js';

/**
 * `com.docker.compose.config-hash`, computed as docker-compose 1.29 computes it (Service.config_dict() ->
 * json_hash): sha256 of the sorted, compact JSON of the service's options, its image ID and its
 * networking. Same files + same image => same hash, so `docker-compose up -d` leaves the containers
 * mcp-tunnel created alone, and mcp-tunnel leaves docker-compose's alone.
 */
export function configDict(project: Pick<ComposeProject, 'networkName'>, service: ComposeService, imageId: string | null): PyJson {
  let net: string;
  let networks: Record<string, PyJson>;
  switch (service.networkMode.kind) {
    case 'default':
      net = project.networkName;
      networks = { [project.networkName]: {} };
      break;
    case 'service':
      net = service.networkMode.service;
      networks = {};
      break;
    default:
      net = service.networkMode.mode;
      networks = {};
  }
  return {
    options: service.options,
    image_id: imageId,
    links: [],
    net,
    ipc_mode: null,
    networks,
    secrets: [],
    volumes_from: [],
  };
}

export function configHash(project: Pick<ComposeProject, 'networkName'>, service: ComposeService, imageId: string | null): string {
  return createHash('sha256').update(pythonJsonDumps(configDict(project, service, imageId)), 'utf8').digest('hex');
}
