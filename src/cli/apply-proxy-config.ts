import { COMPOSE_SERVICES } from '../deployment/compose-file.js';
import type { ProxyConfig } from '../deployment/proxy-config.js';
import { isUserError } from '../errors.js';
import { proxyAddress, restartProxyStack, stackRunning } from '../ops/stack.js';
import { runProbe, type ProbeResult } from '../probe/index.js';
import { printLine, printStep, printWarning } from './output.js';
import { restartCommand } from '../docker/compose-command.js';

/**
 * After an edit of config/mcp-proxy.yaml (routes, config set/unset): the official proxy does not reload
 * its config, so restart it (and cloudflared, in its namespace), then confirm through the stack with the
 * probe's full path (WebSocket, inner TLS, MCP initialize) to the proxy container's address.
 */
const restartByHand = (): string => restartCommand([COMPOSE_SERVICES.proxy, COMPOSE_SERVICES.cloudflared]);

export interface ApplyOptions {
  dir: string;
  restart: boolean;
  config: ProxyConfig;
  /** The route to probe after the restart (none: only the restart is confirmed). */
  probeRoute?: string;
  /** What to say when the change applies later. */
  appliesWhen: string;
}

export interface ApplyOutcome {
  state: 'not-restarted' | 'not-running' | 'restart-failed' | 'restarted';
  restarted?: string[];
  healthy?: boolean;
  probe?: { ok: boolean; step?: string; message?: string };
}

export async function applyProxyConfig(o: ApplyOptions, quiet = false): Promise<ApplyOutcome> {
  const say = (f: () => void): void => {
    if (!quiet) f();
  };
  const probeHint = o.probeRoute ? `then check it: mcp-tunnel probe ${o.probeRoute} --dir ${o.dir}` : '';
  if (!o.restart) {
    say(() => printLine(`The proxy reads its config at start only: restart it to apply (${restartByHand()}), ${probeHint || `then ${o.appliesWhen}`}`));
    return { state: 'not-restarted' };
  }
  const running = await stackRunning(o.dir);
  if (!running.running) {
    const next = o.probeRoute ? ` Then check it: mcp-tunnel probe ${o.probeRoute} --dir ${o.dir}` : '';
    say(() => printLine(`The stack is not running${running.detail ? ` (${running.detail})` : ''}: ${o.appliesWhen} when it starts (mcp-tunnel up).${next}`));
    return { state: 'not-running' };
  }
  let restarted;
  try {
    restarted = await restartProxyStack(o.dir);
  } catch (err) {
    if (!isUserError(err)) throw err;
    say(() => {
      printWarning(`the config is written, but the restart failed: ${err.message}`);
      printLine(`Restart by hand: ${restartByHand()}`);
    });
    process.exitCode = err.exitCode;
    return { state: 'restart-failed' };
  }
  say(() => printStep(`restarted ${restarted.restarted.join(' and ')}${restarted.healthy ? '' : ' (the proxy is not healthy yet: mcp-tunnel status)'}`));
  const outcome: ApplyOutcome = { state: 'restarted', restarted: restarted.restarted, healthy: restarted.healthy };
  if (!o.probeRoute) return outcome;

  const ip = proxyAddress(restarted.proxy);
  const port = o.config.listenAddr.port;
  if (!ip) {
    say(() => printLine(`Check it: mcp-tunnel probe ${o.probeRoute} --dir ${o.dir}`));
    return outcome;
  }
  let result: ProbeResult;
  try {
    result = await runProbe({ dir: o.dir, route: o.probeRoute, proxyUrl: `ws://${ip}:${port}/`, timeoutMs: 10_000 });
  } catch (err) {
    say(() => printWarning(`could not probe route ${o.probeRoute}: ${(err as Error).message}`));
    return { ...outcome, probe: { ok: false, message: (err as Error).message } };
  }
  if (result.ok) {
    say(() => printStep(`route ${o.probeRoute} is served: MCP initialize through the proxy answered (${result.server?.name ?? 'server'})`));
    return { ...outcome, probe: { ok: true } };
  }
  const f = result.failure!;
  say(() => {
    printWarning(`the proxy restarted, but the probe of route ${o.probeRoute} failed at ${f.step} (${f.layer}): ${f.message}`);
    if (f.hint) printLine(`hint: ${f.hint}`);
  });
  return { ...outcome, probe: { ok: false, step: f.step, message: f.message } };
}
