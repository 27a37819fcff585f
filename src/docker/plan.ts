import type { ComposeProject, ComposeService } from './compose-model.js';
import { LABELS, MOUNTS_DIGEST_LABEL } from './labels.js';

/**
 * The converge plan, as docker compose makes it: from the containers as they are (observed) and the
 * services as the files describe them, decide per service what to create, recreate, start or leave, and
 * why. Pure: no Docker, no file system; stack.ts observes before and executes after.
 */

/** One container of a service, as observed (listContainers + the start time from inspect). */
export interface ObservedContainer {
  id: string;
  name: string;
  /** Docker's State: running, exited, created, ... */
  state: string;
  labels: Record<string, string>;
  networkMode: string;
  /** When it last started (ms since epoch); undefined when never started or unknown. */
  startedAtMs?: number;
}

/**
 * The single-file bind mounts of a service (the proxy config): the engines read them at start only, and
 * compose's config hash covers the mount spec, not the file's content.
 */
export interface MountState {
  /** sha256 over every single-file mount's target and content; undefined when the service mounts no file. */
  digest?: string;
  /** The newest modification time among those files (ms since epoch). */
  newestMtimeMs?: number;
  /** The mounted files, relative to the project (for the reason shown to the user). */
  files: string[];
}

export type PlanAction = 'create' | 'recreate' | 'start' | 'noop';

export interface ServicePlan {
  service: string;
  /** The config hash the (new) container carries. */
  hash: string;
  /** The mounts digest the (new) container carries, when the service mounts files. */
  mountsDigest?: string;
  existing?: ObservedContainer;
  /** Further containers of the service (scaled by hand, or left over): removed. */
  extras: ObservedContainer[];
  action: PlanAction;
  reason?: string;
  /**
   * Start the new container before retiring the old one (compose stops first). Only for a service that
   * publishes no port and hosts no other service's network namespace, when nothing it depends on changes:
   * cloudflared after a token rotation keeps serving while its replacement registers.
   */
  overlap: boolean;
}

export interface PlanInput {
  project: Pick<ComposeProject, 'services'>;
  /** Per service, its containers (lowest container number first). */
  observed: ReadonlyMap<string, readonly ObservedContainer[]>;
  /** Per service, the config hash computed from the files and the image id. */
  hashes: ReadonlyMap<string, string>;
  mounts?: ReadonlyMap<string, MountState>;
  /** Only these services are planned (the others are observed for namespace ids only). */
  only?: ReadonlySet<string>;
  /** Recreate these even when unchanged. */
  force?: ReadonlySet<string>;
}

export function dependencies(svc: Pick<ComposeService, 'dependsOn' | 'networkMode'>): string[] {
  const deps = new Set(Object.keys(svc.dependsOn));
  if (svc.networkMode.kind === 'service') deps.add(svc.networkMode.service);
  return [...deps];
}

/**
 * Whether a running container still runs the mounted files as they are now. The label holds the digest
 * of the files when the container was created; a restart since then (routes add, config set) reads the
 * files again, so a file older than the last start counts as applied. A container without the label
 * (created by docker compose) is judged by the times alone.
 */
export function mountsChanged(container: Pick<ObservedContainer, 'labels' | 'startedAtMs'>, mounts: MountState | undefined): boolean {
  if (!mounts?.digest) return false;
  const recorded = container.labels[MOUNTS_DIGEST_LABEL];
  if (recorded === mounts.digest) return false;
  if (container.startedAtMs === undefined || mounts.newestMtimeMs === undefined) return recorded !== undefined;
  return mounts.newestMtimeMs > container.startedAtMs;
}

/** Services in the project's order (dependencies first), each with its action and reason. */
export function planConverge(input: PlanInput): ServicePlan[] {
  const { project, observed } = input;
  const force = input.force ?? new Set<string>();
  const plans: ServicePlan[] = [];
  const changed = new Set<string>();

  for (const svc of project.services) {
    if (input.only && !input.only.has(svc.name)) continue;
    const containers = observed.get(svc.name) ?? [];
    const existing = containers[0];
    const hash = input.hashes.get(svc.name);
    if (hash === undefined) throw new Error(`internal: no config hash for service ${svc.name}`);
    const mounts = input.mounts?.get(svc.name);
    let action: PlanAction = 'noop';
    let reason: string | undefined;
    const changedDep = dependencies(svc).find((d) => changed.has(d));
    const host = svc.networkMode.kind === 'service' ? svc.networkMode.service : undefined;
    const hostId = host ? observed.get(host)?.[0]?.id : undefined;
    if (!existing) {
      action = 'create';
    } else if (force.has(svc.name)) {
      action = 'recreate';
      reason = 'recreate requested';
    } else if (existing.labels[LABELS.configHash] !== hash) {
      action = 'recreate';
      reason = 'configuration changed';
    } else if (changedDep) {
      action = 'recreate';
      reason = `${changedDep} was recreated`;
    } else if (host && existing.networkMode !== `container:${hostId ?? ''}`) {
      action = 'recreate';
      reason = `${host} has a new container (network namespace)`;
    } else if (existing.state === 'running' && mountsChanged(existing, mounts)) {
      action = 'recreate';
      reason = `${mounts!.files.join(', ')} changed since it started`;
    } else if (existing.state !== 'running') {
      action = 'start';
    }
    if (action === 'create' || action === 'recreate') changed.add(svc.name);
    const hostsOthers = project.services.some((o) => o.networkMode.kind === 'service' && o.networkMode.service === svc.name);
    const overlap =
      action === 'recreate' && !changedDep && svc.ports.length === 0 && !hostsOthers && (reason === 'recreate requested' || reason === 'configuration changed');
    plans.push({ service: svc.name, hash, mountsDigest: mounts?.digest, existing, extras: containers.slice(1), action, reason, overlap });
  }
  return plans;
}
