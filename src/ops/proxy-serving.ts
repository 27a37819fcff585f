import { openTunnel } from '../probe/index.js';
import type { ServingCheck } from './ca-rotate.js';

/**
 * Whether the proxy at `proxyUrl` presents the expected certificate to a NEW tunnel connection, seen the way
 * Anthropic's side sees it (WebSocket, inner TLS verified against `caPem` alone). Polls until it does or
 * `timeoutMs` passes: the proxy picks up a renewed tls.crt on its next poll of the file.
 */
export async function proxyServes(
  proxyUrl: string,
  expected: { caPem: string; serverFingerprint: string; domain: string },
  timeoutMs: number,
  intervalMs = 250,
): Promise<ServingCheck> {
  const deadline = Date.now() + timeoutMs;
  let reason = 'no answer yet';
  for (let attempt = 0; attempt < 10_000; attempt++) {
    try {
      const tunnel = await openTunnel({ proxyUrl, servername: expected.domain, caPem: expected.caPem, timeoutMs: Math.max(1_000, Math.min(5_000, deadline - Date.now())), domain: expected.domain, caSource: 'the new CA' });
      const fp = tunnel.peerCertificate.fingerprint256.replace(/:/g, '').toLowerCase();
      tunnel.close();
      if (fp === expected.serverFingerprint) return { ok: true };
      reason = `it still serves certificate ${fp.slice(0, 16)}…`;
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() + intervalMs > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return { ok: false, reason: `${proxyUrl}: ${reason}` };
}
