import { confirm, input, password, select } from '@inquirer/prompts';
import { ValidationError } from '../../errors.js';
import {
  parseIpv4Cidr,
  parseUpstream,
  validateDomain,
  validateRouteName,
  validateTunnelId,
  validateTunnelToken,
} from '../../deployment/validate.js';
import { checkHttpsUpstreams, checkUpstreamsAllowed, type ProxyEngine } from '../../deployment/init.js';

/*
 * The questions of `mcp-tunnel init`, one function per question. Each answer is validated at its own
 * prompt (inquirer re-asks in place, earlier answers stay), so nothing typed is thrown away by a check
 * that could only fail later. The order and the single final confirmation live in commands/init*.ts.
 */

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

/** What an upstream must satisfy beyond its syntax: the allowed ranges and, for https, a CA to verify it. */
export interface UpstreamRules {
  allowedIps?: string[];
  tls: { caFile?: string; includeSystemCas?: boolean };
}

/** Asks for routes until the user has at least one and says they are done; each upstream checked at its prompt. */
export async function askRoutes(current: Array<{ name: string; url: string }> | undefined, rules: UpstreamRules = { tls: {} }): Promise<Array<{ name: string; url: string }>> {
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
          if (routes.some((r) => r.name === v)) throw new ValidationError(`route "${v}" is already listed`, undefined, 'ROUTE_DUPLICATE');
        }),
      }),
    );
    const url = await input({
      message: `Upstream for ${name} (http://host:port, no path):`,
      validate: check((u) => {
        const route = { name, url: parseUpstream(u, name).url };
        checkUpstreamsAllowed([route], rules.allowedIps);
        checkHttpsUpstreams([route], rules.tls);
      }),
    });
    routes.push({ name, url: parseUpstream(url, name).url });
  } while (await confirm({ message: 'Add another route?', default: false }));
  return routes;
}

export type Flow = 'manual' | 'wif';

export const askFlow = (current: Flow = 'wif'): Promise<Flow> =>
  select({
    message: 'Credential flow:',
    default: current,
    choices: [
      {
        name: 'programmatic (recommended): the Tunnels API creates or reuses the tunnel, registers the CA and fetches the token; needs a federation rule, the organization ID and an OIDC identity token',
        value: 'wif' as const,
      },
      { name: 'manual: you copy the tunnel ID, domain and token from the Console and upload the CA there yourself', value: 'manual' as const },
    ],
  });

export const askWorkspaceId = (current: string | undefined, validate: (v: string) => unknown): Promise<string | undefined> =>
  input({
    message: "Workspace ID (wrkspc_...; Enter if the federation rule names one workspace):",
    default: current,
    validate: check((v) => (v.trim() === '' ? true : validate(v.trim()))),
  }).then((v) => (v.trim() === '' ? undefined : v.trim()));

export type IdentityAnswer = { kind: 'file'; path: string } | { kind: 'command'; command: string };

/** Where the OIDC JWT comes from: a file re-read on every exchange, or a command printing it. */
export async function askIdentitySource(checkFile: (path: string) => Promise<void>): Promise<IdentityAnswer> {
  const kind = await select({
    message: 'OIDC identity token (JWT) from:',
    choices: [
      { name: 'a file (re-read on every exchange, e.g. a projected service-account token)', value: 'file' as const },
      { name: 'a command that prints it (run without a shell on every exchange)', value: 'command' as const },
    ],
  });
  if (kind === 'command') {
    const command = await input({ message: 'Command printing the identity token:', validate: check((c) => { if (!c.trim()) throw new ValidationError('give a command', undefined, 'IDENTITY_TOKEN_COMMAND_INVALID'); }) });
    return { kind, command: command.trim() };
  }
  let problem: string | undefined;
  const file = await input({
    message: 'File holding the identity token:',
    validate: async (f) => {
      try {
        await checkFile(f.trim());
        return true;
      } catch (err) {
        problem = err instanceof Error ? err.message : String(err);
        return problem;
      }
    },
  });
  return { kind, path: file.trim() };
}

/** Attach to an existing tunnel (its ID) or let the Tunnels API create one. */
export async function askTunnelChoice(): Promise<{ create: true } | { create: false; tunnelId: string }> {
  const choice = await select({
    message: 'Tunnel:',
    choices: [
      { name: 'use an existing tunnel (its ID, tnl_...)', value: 'existing' as const },
      { name: 'create a new tunnel', value: 'create' as const },
    ],
  });
  if (choice === 'create') return { create: true };
  return { create: false, tunnelId: await askTunnelId() };
}

export const askSampleServer = (current = false): Promise<boolean> =>
  confirm({ message: 'Add the sample "hello" MCP server (route hello) to prove the path before your own server is ready?', default: current });

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
