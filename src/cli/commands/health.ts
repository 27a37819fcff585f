import http from 'node:http';
import https from 'node:https';
import { Command, Option } from 'commander';
import { parseDuration } from '../../deployment/duration.js';
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
    .addOption(new Option('--timeout <duration>', 'give up after this long (e.g. 3s, 500ms)').env('MCP_TUNNEL_HEALTH_TIMEOUT').default('3s'))
    .action(async (options: HealthOptions) => {
      const { ok, line } = await checkHealth(options.url, parseDuration(options.timeout, '--timeout', { min: 100, max: 60_000 }));
      printLine(line);
      if (!ok) process.exitCode = 1;
    });
}

/** One GET; `line` says what was found in one line. Never throws. (node:http, not fetch: fetch refuses some ports.) */
export async function checkHealth(url: string, timeoutMs: number): Promise<{ ok: boolean; line: string }> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, line: `unhealthy: ${url} is not a URL` };
  }
  const get = target.protocol === 'https:' ? https.get : target.protocol === 'http:' ? http.get : undefined;
  if (!get) return { ok: false, line: `unhealthy: ${url} is not an http(s) URL` };
  const answer = await new Promise<{ status: number; text: string } | { error: string }>((resolve) => {
    const req = get(target, { headers: { accept: 'application/json' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (text.length < 65_536) text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs}ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code === 'ETIMEDOUT' ? err.message : (err.code ?? err.message) }));
  });
  if ('error' in answer) return { ok: false, line: `unhealthy: ${url} unreachable (${answer.error})` };
  let reason: string | undefined;
  let notAfter: string | undefined;
  try {
    const body = JSON.parse(answer.text) as { reason?: string; certificate?: { not_after?: string } };
    reason = body.reason;
    notAfter = body.certificate?.not_after;
  } catch {
    reason = undefined;
  }
  if (answer.status >= 200 && answer.status < 300) return { ok: true, line: `ready${notAfter ? ` (certificate valid until ${notAfter})` : ''}` };
  return { ok: false, line: `not ready: ${reason ?? `HTTP ${answer.status}`}` };
}
