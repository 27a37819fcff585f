import { COMPOSE_SERVICES } from '../deployment/compose-file.js';
import { EnvironmentError, ExitCode, UserError } from '../errors.js';
import { connectDocker, pingDocker } from './client.js';
import { resolveProjectName } from './compose-model.js';
import { inspectContainer, listServiceContainers } from './containers.js';
import { StackHealthError, waitForRegistrations, type RegistrationResult } from './health.js';
import { FULL_STRENGTH_CONNECTIONS } from './logs.js';
import { composeUp, type CommonOptions, type ContainerOutcome, type UpOptions } from './stack.js';

/**
 * What rotate-token needs from the running stack, and nothing more: dockerStackControl below implements it
 * from compose.yaml + .env (the one source of truth); tests of the rotation logic use a double.
 */
export type CloudflaredState = 'running' | 'stopped' | 'absent' | 'unreachable';

export interface StackControl {
  /** Where this deployment's cloudflared stands: running; created/exited (stopped); no container; Docker unreachable. */
  cloudflaredState(): Promise<{ state: CloudflaredState; detail?: string }>;
  /** Replaces cloudflared so it runs with the TUNNEL_TOKEN now in .env (compose's `up -d --force-recreate cloudflared`). */
  recreateCloudflared(): Promise<void>;
  /**
   * Waits until the (re)created cloudflared has logged "Registered tunnel connection" as often as a
   * healthy connector does (four), it stopped, or timeoutMs passed; returns how many it saw.
   */
  waitForRegistration(timeoutMs: number): Promise<{ registered: number }>;
}

/** cloudflared is healthy once it logged "Registered tunnel connection" four times (docs/contract.md §1). */
export const HEALTHY_CONNECTIONS = FULL_STRENGTH_CONNECTIONS;

/**
 * What other parts of mcp-tunnel need from the running stack, without going through the CLI: rotate-token
 * recreates cloudflared with the new TUNNEL_TOKEN from .env and waits until it registers again.
 */

export interface RecreateOptions extends CommonOptions {
  /** Bound for the dependencies' health wait (the proxy must be healthy before cloudflared starts). */
  timeoutMs?: number;
}

/**
 * Recreates one service from the current compose.yaml + .env (always: a changed .env value such as the
 * token is exactly what must be picked up), leaving every other container alone. Returns its container.
 */
export async function recreateService(dir: string, service: string, options: RecreateOptions = {}): Promise<ContainerOutcome> {
  const up: UpOptions = { ...options, services: [service], forceRecreate: [service], wait: false };
  const result = await composeUp(dir, up);
  const outcome = result.containers.find((c) => c.service === service);
  if (!outcome) throw new EnvironmentError(`${service} was not recreated`, 'run mcp-tunnel up', undefined, 'SERVICE_NOT_RECREATED');
  return outcome;
}

export interface WaitForCloudflaredOptions extends CommonOptions {
  timeoutMs?: number;
  /** Count only registrations logged at or after this time (default: the container's start). */
  since?: Date;
  /** The cloudflared service's name (default "cloudflared"). */
  service?: string;
  /** With at least one connection, how long to wait for full strength before reporting degraded. */
  settleMs?: number;
}

/** Waits for cloudflared's "Registered tunnel connection" lines; throws a StackHealthError with the likely fix when none come. */
export async function waitForCloudflared(dir: string, options: WaitForCloudflaredOptions = {}): Promise<RegistrationResult> {
  const conn = options.conn ?? connectDocker({ env: options.processEnv });
  await pingDocker(conn);
  const project = await resolveProjectName(dir, options);
  const service = options.service ?? COMPOSE_SERVICES.cloudflared;
  const container = (await listServiceContainers(conn, project, service))[0];
  if (!container) throw new EnvironmentError(`${service} is not running (no container in compose project ${project})`, 'start the stack: mcp-tunnel up', undefined, 'SERVICE_NOT_RUNNING');
  const proxy = (await listServiceContainers(conn, project, COMPOSE_SERVICES.proxy))[0];
  const details = await inspectContainer(conn, container.id);
  if (!details) throw new EnvironmentError(`${service} is not running`, 'start the stack: mcp-tunnel up', undefined, 'SERVICE_NOT_RUNNING');
  return waitForRegistrations(
    conn,
    { service, id: container.id, role: 'cloudflared' },
    {
      deadline: Date.now() + (options.timeoutMs ?? 120_000),
      since: options.since,
      settleMs: options.settleMs,
      onEvent: options.onEvent,
      related: proxy ? [{ service: COMPOSE_SERVICES.proxy, id: proxy.id, role: 'proxy' }] : [],
    },
  );
}

/**
 * src/anthropic's StackControl (rotate-token), implemented with the orchestration above: recreate
 * cloudflared from compose.yaml + .env (so it picks up the new TUNNEL_TOKEN), then wait for its
 * registrations. waitForRegistration never throws for a connector that does not register: it returns the
 * count, plus the likely problem and fix from the logs.
 */
export interface DockerStackControl extends StackControl {
  waitForRegistration(timeoutMs: number): Promise<{ registered: number; full: number; degraded: boolean; problem?: string; fix?: string; logs?: StackHealthError['logs'] }>;
}

export function dockerStackControl(dir: string, options: CommonOptions = {}): DockerStackControl {
  let recreatedAt: Date | undefined;
  return {
    async cloudflaredState() {
      try {
        const conn = options.conn ?? connectDocker({ env: options.processEnv });
        await pingDocker(conn);
        const project = await resolveProjectName(dir, options);
        const found = await listServiceContainers(conn, project, COMPOSE_SERVICES.cloudflared);
        if (found.length === 0) return { state: 'absent' as const };
        return { state: found.some((c) => c.state === 'running' || c.state === 'restarting') ? ('running' as const) : ('stopped' as const) };
      } catch (err) {
        if (err instanceof UserError && err.exitCode === ExitCode.environment) return { state: 'unreachable' as const, detail: err.message };
        throw err;
      }
    },
    async recreateCloudflared() {
      recreatedAt = new Date();
      await recreateService(dir, COMPOSE_SERVICES.cloudflared, options);
    },
    async waitForRegistration(timeoutMs: number) {
      try {
        return await waitForCloudflared(dir, { ...options, timeoutMs, since: recreatedAt });
      } catch (err) {
        if (err instanceof StackHealthError) {
          return { registered: 0, full: FULL_STRENGTH_CONNECTIONS, degraded: false, problem: err.message, fix: err.hint, logs: err.logs };
        }
        throw err;
      }
    },
  };
}
