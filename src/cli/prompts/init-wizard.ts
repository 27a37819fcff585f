import { confirm, input, password, select } from '@inquirer/prompts';
import { ValidationError } from '../../errors.js';
import {
  parseIpv4Cidr,
  parseUpstream,
  validateDomain,
  validateRouteName,
  validateTunnelId,
  validateTunnelToken,
} from '../../bundle/validate.js';
import type { ProxyEngine } from '../../bundle/init.js';

/** inquirer wants `true | message`; our validators throw one clear line. */
export function check(fn: (value: string) => unknown): (value: string) => true | string {
  return (value) => {
    try {
      fn(value);
      return true;
    } catch (err) {
      return err instanceof ValidationError || err instanceof Error ? err.message : String(err);
    }
  };
}

export const askTunnelId = (current?: string): Promise<string> =>
  input({ message: 'Tunnel ID (Console, tnl_...):', default: current, validate: check(validateTunnelId) }).then(validateTunnelId);

export const askTunnelDomain = (current?: string): Promise<string> =>
  input({ message: 'Tunnel domain (e.g. abcd1234.tunnel.anthropic.com):', default: current, validate: check(validateDomain) }).then((d) =>
    validateDomain(d),
  );

export const askTunnelToken = (): Promise<string> =>
  password({ message: 'Tunnel token (hidden; starts with eyJ):', mask: true, validate: check((t) => validateTunnelToken(t, 'the prompt')) }).then((t) =>
    validateTunnelToken(t, 'the prompt'),
  );

export const askEngine = (current: ProxyEngine): Promise<ProxyEngine> =>
  select({
    message: 'Proxy engine:',
    default: current,
    choices: [
      { name: "official — Anthropic's pinned mcp-proxy image (recommended for production)", value: 'official' as const },
      { name: 'builtin — mcp-tunnel\'s own proxy, built locally (health, metrics, JSON logs)', value: 'builtin' as const },
    ],
  });

/** Asks for routes until the user has at least one and says they are done. */
export async function askRoutes(current: Array<{ name: string; url: string }> | undefined): Promise<Array<{ name: string; url: string }>> {
  if (current?.length) {
    const keep = await confirm({ message: `Keep the configured routes (${current.map((r) => r.name).join(', ')})?`, default: true });
    if (keep) return current;
  }
  const routes: Array<{ name: string; url: string }> = [];
  do {
    const name = validateRouteName(
      await input({
        message: 'Route name (becomes <name>.<tunnel-domain>):',
        validate: check((n) => {
          const v = validateRouteName(n);
          if (routes.some((r) => r.name === v)) throw new ValidationError(`route "${v}" is already listed`);
        }),
      }),
    );
    const url = await input({ message: `Upstream for ${name} (http://host:port, no path):`, validate: check((u) => parseUpstream(u, name)) });
    routes.push({ name, url: parseUpstream(url, name).url });
  } while (await confirm({ message: 'Add another route?', default: false }));
  return routes;
}

export async function askAllowedIps(current: string[] | undefined): Promise<string[] | undefined> {
  const custom = await confirm({
    message: 'Restrict upstreams to specific IP ranges (instead of the default 10/8, 172.16/12, 192.168/16)?',
    default: Boolean(current?.length),
  });
  if (!custom) return undefined;
  const answer = await input({
    message: 'Allowed IPv4 ranges, comma-separated:',
    default: current?.join(', '),
    validate: check((v) => v.split(',').map((s) => parseIpv4Cidr(s))),
  });
  return answer.split(',').map((s) => parseIpv4Cidr(s).text);
}

export const askConfirm = (message: string, defaultValue = false): Promise<boolean> => confirm({ message, default: defaultValue });
