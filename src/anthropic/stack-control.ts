import { FULL_STRENGTH_CONNECTIONS } from '../docker/logs.js';

/**
 * What rotate-token needs from the running stack, and nothing more: src/docker's dockerStackControl
 * implements it from compose.yaml + .env (the one source of truth); tests of the rotation logic use a double.
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

/** cloudflared is healthy once it logged "Registered tunnel connection" four times (SPEC.md 1). */
export const HEALTHY_CONNECTIONS = FULL_STRENGTH_CONNECTIONS;
