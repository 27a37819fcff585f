import { EnvironmentError } from '../errors.js';
import type { DockerConnection } from './client.js';
import { inspectContainer, type ContainerDetails } from './containers.js';
import { diagnose, relevantLines, type Diagnosis } from './diagnose.js';
import { noEvents, type EventSink } from './events.js';
import { countRegistrations, FULL_STRENGTH_CONNECTIONS, readContainerLogs, type LogLine } from './logs.js';

/**
 * Waiting for the stack to be really up: the proxy ready (its Docker healthcheck, when it has one) and
 * cloudflared registered with the edge ("Registered tunnel connection", four at full strength). Every wait
 * is bounded; a failure carries the last relevant log lines and the likely fix.
 */

export type Role = 'proxy' | 'cloudflared';

export interface WaitTarget {
  service: string;
  id: string;
  role?: Role;
}

/** A stack that did not become healthy: the message, the likely fix as hint, and the log lines that show it. */
export class StackHealthError extends EnvironmentError {
  constructor(
    message: string,
    hint: string,
    /** The last relevant lines per service, oldest first. */
    readonly logs: Array<{ service: string; lines: string[] }>,
    readonly diagnosis?: Diagnosis,
  ) {
    super(message, hint, undefined, 'STACK_UNHEALTHY');
  }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

const seconds = (ms: number): string => `${Math.round(ms / 1000)}s`;

async function logsOf(conn: DockerConnection, target: WaitTarget, details: ContainerDetails | undefined, since?: Date): Promise<LogLine[]> {
  const lines = await readContainerLogs(conn, target.id, { tail: 200, since, tty: details?.tty }).catch(() => [] as LogLine[]);
  // The healthcheck's own output explains an unhealthy container as well as the log does.
  for (const out of details?.healthLog.slice(-2) ?? []) lines.push({ stream: 'stderr', text: `healthcheck: ${out.split('\n')[0]}` });
  return lines;
}

/**
 * Builds the failure: diagnoses the failing service's log first, then the others' (a proxy refusing its
 * config explains cloudflared's "origin not reachable").
 */
export async function healthFailure(
  conn: DockerConnection,
  failing: WaitTarget,
  message: string,
  defaultHint: string,
  others: WaitTarget[] = [],
): Promise<StackHealthError> {
  const logs: Array<{ service: string; lines: string[] }> = [];
  let found: Diagnosis | undefined;
  for (const t of [failing, ...others]) {
    const details = await inspectContainer(conn, t.id).catch(() => undefined);
    const lines = await logsOf(conn, t, details);
    const d = diagnose(t.service, t.role, lines.slice(-60));
    // Prefer a root cause in the proxy over cloudflared's symptom of it.
    if (d && (!found || (found.rule === 'origin-unreachable' && t.role === 'proxy'))) found = d;
    const shown = relevantLines(lines);
    if (shown.length) logs.push({ service: t.service, lines: shown.map((l) => l.text) });
  }
  return new StackHealthError(found ? `${message}: ${found.problem}` : message, found?.fix ?? defaultHint, logs, found);
}

export interface WaitReadyOptions {
  deadline: number;
  onEvent?: EventSink;
  pollMs?: number;
  /** Require Docker's health status to be healthy (depends_on: condition: service_healthy). */
  requireHealthcheck?: boolean;
  /** Services whose logs may explain a failure. */
  related?: WaitTarget[];
  signal?: AbortSignal;
}

/** Waits until the container is healthy (with a healthcheck) or running (without). */
export async function waitForReady(conn: DockerConnection, target: WaitTarget, options: WaitReadyOptions): Promise<'healthy' | 'running'> {
  const emit = options.onEvent ?? noEvents;
  const started = Date.now();
  const related = options.related ?? [];
  let lastEmit = 0;
  for (;;) {
    const d = await inspectContainer(conn, target.id);
    if (!d) throw await healthFailure(conn, target, `${target.service} disappeared (its container was removed)`, 'run mcp-tunnel up again', related);
    if (options.requireHealthcheck && !d.hasHealthcheck) {
      throw new EnvironmentError(`${target.service} has no healthcheck, but a service depends on it being healthy`, 'add a healthcheck to it in compose.yaml, or use condition: service_started', undefined, 'SERVICE_NO_HEALTHCHECK');
    }
    if (d.hasHealthcheck) {
      if (d.health === 'healthy') {
        emit({ type: 'healthy', service: target.service, detail: 'healthy' });
        return 'healthy';
      }
      if (d.health === 'unhealthy') throw await healthFailure(conn, target, `${target.service} is unhealthy`, `see its logs: mcp-tunnel logs ${target.service}`, related);
    }
    if (!d.running || d.restarting) {
      const how = d.restarting ? `keeps restarting (exit code ${d.exitCode})` : `exited with code ${d.exitCode}${d.error ? ` (${d.error})` : ''}`;
      throw await healthFailure(conn, target, `${target.service} ${how}`, `see its logs: mcp-tunnel logs ${target.service}`, related);
    }
    if (!d.hasHealthcheck) {
      emit({ type: 'healthy', service: target.service, detail: 'running (no healthcheck)' });
      return 'running';
    }
    const now = Date.now();
    if (now >= options.deadline) {
      throw await healthFailure(
        conn,
        target,
        `${target.service} did not become healthy within ${seconds(now - started)} (health: ${d.health ?? 'unknown'})`,
        `see its logs (mcp-tunnel logs ${target.service}); a slow host may need a longer --timeout`,
        related,
      );
    }
    if (now - lastEmit >= 1000) {
      emit({ type: 'waiting', service: target.service, what: `health: ${d.health ?? 'starting'}`, elapsedMs: now - started });
      lastEmit = now;
    }
    await sleep(options.pollMs ?? 500, options.signal);
  }
}

export interface RegistrationResult {
  registered: number;
  full: number;
  /** Registered, but fewer than full strength. */
  degraded: boolean;
}

export interface WaitRegistrationOptions extends WaitReadyOptions {
  /** Count only lines logged at or after this time (default: the container's start). */
  since?: Date;
  /** Once at least one connection registered, how long to wait for the rest before reporting degraded. */
  settleMs?: number;
  full?: number;
}

/** Waits for cloudflared's "Registered tunnel connection" lines: full strength, or degraded after settleMs. */
export async function waitForRegistrations(conn: DockerConnection, target: WaitTarget, options: WaitRegistrationOptions): Promise<RegistrationResult> {
  const emit = options.onEvent ?? noEvents;
  const full = options.full ?? FULL_STRENGTH_CONNECTIONS;
  const settleMs = options.settleMs ?? 20_000;
  const related = options.related ?? [];
  const started = Date.now();
  let firstSeen: number | undefined;
  let last = -1;
  let lastEmit = 0;
  for (;;) {
    const d = await inspectContainer(conn, target.id);
    if (!d) throw await healthFailure(conn, target, `${target.service} disappeared (its container was removed)`, 'run mcp-tunnel up again', related);
    if (!d.running || d.restarting) {
      const how = d.restarting ? `keeps restarting (exit code ${d.exitCode})` : `exited with code ${d.exitCode}`;
      throw await healthFailure(conn, target, `${target.service} ${how} before registering its tunnel connections`, `see its logs: mcp-tunnel logs ${target.service}`, related);
    }
    const since = laterOf(d.startedAt, options.since);
    const registered = countRegistrations(await readContainerLogs(conn, target.id, { since, tty: d.tty }));
    const now = Date.now();
    if (registered !== last) {
      emit({ type: 'registered', service: target.service, connections: registered, full });
      last = registered;
    }
    if (registered >= full) return { registered, full, degraded: false };
    if (registered > 0) firstSeen ??= now;
    if (firstSeen !== undefined && now - firstSeen >= settleMs) return { registered, full, degraded: true };
    if (now >= options.deadline) {
      if (registered > 0) return { registered, full, degraded: true };
      throw await healthFailure(
        conn,
        target,
        `${target.service} registered no tunnel connection within ${seconds(now - started)}`,
        `see its logs (mcp-tunnel logs ${target.service}); cloudflared needs outbound port 7844 to Cloudflare's edge and a valid TUNNEL_TOKEN`,
        related,
      );
    }
    if (now - lastEmit >= 1000) {
      emit({ type: 'waiting', service: target.service, what: `${registered}/${full} tunnel connections`, elapsedMs: now - started });
      lastEmit = now;
    }
    await sleep(options.pollMs ?? 500, options.signal);
  }
}

function laterOf(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() >= b.getTime() ? a : b;
}
