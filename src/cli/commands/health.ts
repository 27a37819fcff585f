import { Command, Option } from 'commander';
import { printLine } from '../output.js';

/** The builtin proxy's readiness endpoint with the default admin.listen_addr. */
export const DEFAULT_HEALTH_URL = 'http://127.0.0.1:9090/readyz';

interface HealthOptions {
  url: string;
  timeout: string;
}

export function registerHealth(program: Command): void {
  program
    .command('health')
    .description("Check the builtin proxy's readiness (exit 0 when ready, 1 otherwise); the container HEALTHCHECK")
    .addOption(new Option('--url <url>', 'readiness URL of the admin listener').env('MCP_TUNNEL_HEALTH_URL').default(DEFAULT_HEALTH_URL))
    .addOption(new Option('--timeout <ms>', 'give up after this many milliseconds').default('3000'))
    .action(async (options: HealthOptions) => {
      const { ok, line } = await checkHealth(options.url, Number(options.timeout) || 3000);
      printLine(line);
      if (!ok) process.exitCode = 1;
    });
}

/** One GET; `line` says what was found in one line. Never throws. */
export async function checkHealth(url: string, timeoutMs: number): Promise<{ ok: boolean; line: string }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs}ms` : (cause ?? (err as Error).message);
    return { ok: false, line: `unhealthy: ${url} unreachable (${why})` };
  }
  const text = await res.text().catch(() => '');
  let reason: string | undefined;
  let notAfter: string | undefined;
  try {
    const body = JSON.parse(text) as { reason?: string; certificate?: { not_after?: string } };
    reason = body.reason;
    notAfter = body.certificate?.not_after;
  } catch {
    reason = undefined;
  }
  if (res.ok) return { ok: true, line: `ready${notAfter ? ` (certificate valid until ${notAfter})` : ''}` };
  return { ok: false, line: `not ready: ${reason ?? `HTTP ${res.status}`}` };
}
