/**
 * TEST ONLY: a local stand-in for the parts of the Anthropic API the programmatic flow uses (docs/contract.md §4):
 * the token endpoint (POST /v1/oauth/token, RFC 7523 jwt-bearer with the oidc-federation beta) and the
 * Tunnels API (tunnels, tokens, CA certificates). Shapes, headers, limits and errors follow the
 * documentation; the real @anthropic-ai/sdk is pointed at it by base URL.
 *
 * It records every call (method, path, query, body with secrets removed, status) for the tests to assert
 * on, and injects faults: the next N calls to a path answer 429/500/403/404 (before or after taking
 * effect, the latter being "the answer was lost").
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes, randomUUID, X509Certificate } from 'node:crypto';

export const FEDERATION_BETA = 'oidc-federation-2026-04-01';
export const TUNNELS_BETA = 'mcp-tunnels-2026-06-22';
/**
 * The one version docs/contract.md §4 documents for the Tunnels API. @anthropic-ai/sdk 1.11 sends
 * "2026-10-21" unless told otherwise; a stand-in written from the docs alone refuses that, and so does this one.
 */
export const API_VERSIONS = ['2023-06-01'];
export const MANAGE_TUNNELS_SCOPE = 'workspace:manage_tunnels';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface CallRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** The JSON body, secrets replaced (assertion, PEM); undefined without a body. */
  body?: Record<string, unknown>;
  /** The token exchange: the claims of the JWT assertion (never the JWT). */
  assertion?: { sub?: unknown; aud?: unknown; jti?: unknown };
  /** Answered by an injected fault. */
  fault?: boolean;
  beta?: string;
  version?: string;
}

export interface Fault {
  method?: string;
  /** Exact path, or a pattern (e.g. /\/certificates$/). */
  path: string | RegExp;
  status: number;
  /** How many matching calls fail. Default 1. */
  count?: number;
  type?: string;
  message?: string;
  /** Do the work, then answer with the fault: the client never learns it happened. */
  afterEffect?: boolean;
  headers?: Record<string, string>;
}

export interface StandinOptions {
  organizationId?: string;
  federationRuleId?: string;
  /** Workspaces the rule covers; tokens without workspace_id get the first. */
  workspaces?: string[];
  /** JWTs the federation rule accepts (audience/subject "match"). */
  acceptedJwts?: string[];
  scope?: string;
  accessTokenTtlSec?: number;
  maxTunnelsPerOrg?: number;
  maxCertificatesPerTunnel?: number;
}

interface Tunnel {
  id: string;
  domain: string;
  display_name: string | null;
  created_at: string;
  archived_at: string | null;
  type: 'tunnel';
  seq: number;
  workspace: string;
  token: { id: string; value: string };
}

interface Certificate {
  id: string;
  tunnel_id: string;
  fingerprint: string;
  created_at: string;
  expires_at: string | null;
  archived_at: string | null;
  type: 'tunnel_certificate';
  seq: number;
}

interface AccessToken {
  expiresAt: number;
  scope: string;
  workspace: string;
}

type Answer = { status: number; body: unknown; headers?: Record<string, string> };

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const tag = (prefix: string, n = 24): string => `${prefix}_${Array.from(randomBytes(n), (b) => B62[b % 62]).join('')}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A JWT-shaped assertion with the given claims (unsigned: the stand-in matches it by value). */
export function fakeJwt(claims: Record<string, unknown> = {}): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'https://issuer.example', aud: 'https://api.anthropic.com', sub: 'system:serviceaccount:mcp:tunnel', jti: randomUUID(), ...claims })}.${randomBytes(16).toString('base64url')}`;
}

function claimsOf(jwt: unknown): CallRecord['assertion'] {
  if (typeof jwt !== 'string') return undefined;
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    return { sub: payload.sub, aud: payload.aud, jti: payload.jti };
  } catch {
    return undefined;
  }
}

const error = (status: number, type: string, message: string, headers?: Record<string, string>): Answer => ({
  status,
  body: { type: 'error', error: { type, message } },
  headers,
});

export class AnthropicStandin {
  readonly calls: CallRecord[] = [];
  readonly organizationId: string;
  readonly federationRuleId: string;
  readonly workspaces: string[];
  scope: string;
  accessTokenTtlSec: number;
  maxTunnelsPerOrg: number;
  maxCertificatesPerTunnel: number;
  private readonly accepted = new Set<string>();
  private readonly tunnels = new Map<string, Tunnel>();
  private readonly certificates = new Map<string, Certificate>();
  private readonly accessTokens = new Map<string, AccessToken>();
  private readonly faults: Array<Fault & { remaining: number }> = [];
  private seq = 0;
  private server!: http.Server;
  url = '';

  constructor(options: StandinOptions = {}) {
    this.organizationId = options.organizationId ?? randomUUID();
    this.federationRuleId = options.federationRuleId ?? tag('fdrl');
    this.workspaces = options.workspaces ?? [tag('wrkspc')];
    this.scope = options.scope ?? `${MANAGE_TUNNELS_SCOPE} workspace:read`;
    this.accessTokenTtlSec = options.accessTokenTtlSec ?? 3600;
    this.maxTunnelsPerOrg = options.maxTunnelsPerOrg ?? 10;
    this.maxCertificatesPerTunnel = options.maxCertificatesPerTunnel ?? 2;
    for (const jwt of options.acceptedJwts ?? []) this.accepted.add(jwt);
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- test controls ---------------------------------------------------------------------------------------

  acceptJwt(jwt: string): void {
    this.accepted.add(jwt);
  }

  rejectJwt(jwt: string): void {
    this.accepted.delete(jwt);
  }

  /** The next `count` calls matching answer `status` (Claude error shape). */
  failNext(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.count ?? 1 });
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  /** Calls to `method path` (path exact or pattern), in order. */
  callsTo(method: string, path: string | RegExp): CallRecord[] {
    return this.calls.filter((c) => c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path)));
  }

  /** Expire every access token issued so far (the next API call gets a 401). */
  expireAccessTokens(): void {
    for (const t of this.accessTokens.values()) t.expiresAt = 0;
  }

  seedTunnel(options: { displayName?: string; workspace?: string; archived?: boolean } = {}): { id: string; domain: string; token: string } {
    const t = this.newTunnel(options.displayName ?? null, options.workspace ?? this.workspaces[0]!);
    if (options.archived) t.archived_at = new Date().toISOString();
    return { id: t.id, domain: t.domain, token: t.token.value };
  }

  /** Registers a certificate directly (a PEM, or just a fingerprint for a CA we do not hold). */
  seedCertificate(tunnelId: string, ca: { pem: string } | { fingerprint: string; expiresAt?: string }): { id: string; fingerprint: string } {
    const fields = 'pem' in ca ? certificateFields(ca.pem) : { fingerprint: ca.fingerprint, expires_at: ca.expiresAt ?? null };
    if (typeof fields === 'string') throw new Error(fields);
    const c = this.newCertificate(tunnelId, fields.fingerprint, fields.expires_at);
    return { id: c.id, fingerprint: c.fingerprint };
  }

  tunnelList(includeArchived = true): Array<Omit<Tunnel, 'seq' | 'token' | 'workspace'>> {
    return [...this.tunnels.values()].filter((t) => includeArchived || !t.archived_at).map((t) => this.tunnelObject(t));
  }

  activeCertificates(tunnelId: string): Array<Omit<Certificate, 'seq'>> {
    return [...this.certificates.values()].filter((c) => c.tunnel_id === tunnelId && !c.archived_at).map((c) => this.certificateObject(c));
  }

  currentToken(tunnelId: string): { id: string; value: string } | undefined {
    const t = this.tunnels.get(tunnelId);
    return t && { ...t.token };
  }

  // --- the server ------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = req.method ?? 'GET';
    const record: CallRecord = { method, path: url.pathname, query: Object.fromEntries(url.searchParams), status: 0 };
    const beta = req.headers['anthropic-beta'];
    if (beta !== undefined) record.beta = String(beta);
    if (req.headers['anthropic-version'] !== undefined) record.version = String(req.headers['anthropic-version']);
    let body: Record<string, unknown> | undefined;
    let badJson = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        badJson = true;
      }
    }
    if (body) record.body = redact(body);
    if (url.pathname === '/v1/oauth/token' && body) record.assertion = claimsOf(body.assertion);
    this.calls.push(record);

    const fault = this.takeFault(method, url.pathname);
    let answer: Answer;
    if (fault && !fault.afterEffect) {
      answer = this.faultAnswer(fault);
      record.fault = true;
    } else {
      answer = badJson ? error(400, 'invalid_request_error', 'The request body is not valid JSON') : this.route(method, url, req.headers, body ?? {});
      if (fault) {
        answer = this.faultAnswer(fault);
        record.fault = true;
      }
    }
    record.status = answer.status;
    res.writeHead(answer.status, { 'content-type': 'application/json', 'request-id': tag('req', 12), ...answer.headers });
    res.end(JSON.stringify(answer.body));
  }

  private takeFault(method: string, path: string): Fault | undefined {
    const at = this.faults.findIndex(
      (f) => f.remaining > 0 && (!f.method || f.method === method) && (typeof f.path === 'string' ? f.path === path : f.path.test(path)),
    );
    if (at < 0) return undefined;
    const fault = this.faults[at]!;
    fault.remaining -= 1;
    if (fault.remaining === 0) this.faults.splice(at, 1);
    return fault;
  }

  private faultAnswer(fault: Fault): Answer {
    const type =
      fault.type ??
      ({ 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 409: 'conflict_error', 429: 'rate_limit_error', 529: 'overloaded_error' } as Record<number, string>)[
        fault.status
      ] ??
      'api_error';
    return error(fault.status, type, fault.message ?? `Injected ${fault.status}`, fault.headers);
  }

  private route(method: string, url: URL, headers: http.IncomingHttpHeaders, body: Record<string, unknown>): Answer {
    const path = url.pathname;
    if (path === '/v1/oauth/token') return method === 'POST' ? this.exchange(headers, body) : error(405, 'invalid_request_error', 'Method not allowed');

    const m = /^\/v1\/tunnels(?:\/([^/]+)(?:\/(archive|reveal_token|rotate_token|certificates)(?:\/([^/]+)(?:\/(archive))?)?)?)?$/.exec(path);
    if (!m) return error(404, 'not_found_error', `No route for ${method} ${path}`);
    const auth = this.authenticate(headers);
    if ('status' in auth) return auth;
    const [, tunnelId, sub, certId, certSub] = m;

    if (!tunnelId) {
      if (method === 'POST') return this.createTunnel(auth, body);
      if (method === 'GET') return this.list([...this.tunnels.values()].filter((t) => t.workspace === auth.workspace), url, (t) => this.tunnelObject(t));
      return error(405, 'invalid_request_error', 'Method not allowed');
    }
    if (!/^tnl_[A-Za-z0-9]+$/.test(tunnelId)) return error(400, 'invalid_request_error', `tunnel_id: invalid tagged ID "${tunnelId.slice(0, 40)}"`);
    const tunnel = this.tunnels.get(tunnelId);
    if (!tunnel) return error(404, 'not_found_error', `Tunnel ${tunnelId} not found`);
    if (tunnel.workspace !== auth.workspace) return error(403, 'permission_error', "The service account is not a member of this tunnel's workspace");

    if (!sub) return method === 'GET' ? { status: 200, body: this.tunnelObject(tunnel) } : error(405, 'invalid_request_error', 'Method not allowed');
    if (sub === 'archive' && method === 'POST') {
      if (!tunnel.archived_at) {
        const now = new Date().toISOString();
        tunnel.archived_at = now;
        for (const c of this.certificates.values()) if (c.tunnel_id === tunnel.id && !c.archived_at) c.archived_at = now;
        tunnel.token = { id: tag('ttkn'), value: '' };
      }
      return { status: 200, body: this.tunnelObject(tunnel) };
    }
    if (sub === 'reveal_token' && method === 'POST') {
      if (tunnel.archived_at) return error(400, 'invalid_request_error', 'The tunnel is archived');
      return { status: 200, body: { id: tunnel.token.id, tunnel_token: tunnel.token.value, type: 'tunnel_token' } };
    }
    if (sub === 'rotate_token' && method === 'POST') {
      if (tunnel.archived_at) return error(400, 'invalid_request_error', 'The tunnel is archived');
      if (body.reason !== undefined && body.reason !== null && typeof body.reason !== 'string') return error(400, 'invalid_request_error', 'reason: must be a string');
      tunnel.token = { id: tag('ttkn'), value: tunnelToken() };
      return { status: 200, body: { id: tunnel.token.id, tunnel_token: tunnel.token.value, type: 'tunnel_token' } };
    }
    if (sub === 'certificates') {
      const mine = [...this.certificates.values()].filter((c) => c.tunnel_id === tunnel.id);
      if (!certId) {
        if (method === 'GET') return this.list(mine, url, (c) => this.certificateObject(c));
        if (method === 'POST') return this.createCertificate(tunnel, mine, body);
        return error(405, 'invalid_request_error', 'Method not allowed');
      }
      const cert = mine.find((c) => c.id === certId);
      if (!cert) return error(404, 'not_found_error', `Certificate ${certId} not found`);
      if (!certSub && method === 'GET') return { status: 200, body: this.certificateObject(cert) };
      if (certSub === 'archive' && method === 'POST') {
        cert.archived_at ??= new Date().toISOString();
        return { status: 200, body: this.certificateObject(cert) };
      }
    }
    return error(405, 'invalid_request_error', 'Method not allowed');
  }

  private exchange(headers: http.IncomingHttpHeaders, body: Record<string, unknown>): Answer {
    const betas = String(headers['anthropic-beta'] ?? '').split(',').map((s) => s.trim());
    if (!betas.includes(FEDERATION_BETA)) return error(400, 'invalid_request_error', `the token exchange requires the anthropic-beta header ${FEDERATION_BETA}`);
    if (!String(headers['content-type'] ?? '').includes('application/json')) return error(400, 'invalid_request_error', 'Content-Type must be application/json');
    if (body.grant_type !== JWT_BEARER) return error(400, 'invalid_request_error', `grant_type: must be ${JWT_BEARER}`);
    if (typeof body.assertion !== 'string' || body.assertion === '') return error(400, 'invalid_request_error', 'assertion: required');
    if (typeof body.federation_rule_id !== 'string' || !/^fdrl_[A-Za-z0-9]+$/.test(body.federation_rule_id)) {
      return error(400, 'invalid_request_error', 'federation_rule_id: invalid tagged ID');
    }
    if (typeof body.organization_id !== 'string' || !UUID.test(body.organization_id)) return error(400, 'invalid_request_error', 'organization_id: must be a UUID');
    const ws = body.workspace_id;
    if (ws !== undefined && (typeof ws !== 'string' || !(ws === 'default' || /^wrkspc_[A-Za-z0-9]+$/.test(ws)))) {
      return error(400, 'invalid_request_error', 'workspace_id: invalid tagged ID');
    }
    const workspace = ws === undefined || ws === 'default' ? this.workspaces[0]! : ws;
    const ok =
      body.federation_rule_id === this.federationRuleId &&
      body.organization_id.toLowerCase() === this.organizationId.toLowerCase() &&
      this.accepted.has(body.assertion) &&
      this.workspaces.includes(workspace);
    // Denials are deliberately opaque: the reason is only in the Console's authentication history.
    if (!ok) return error(401, 'authentication_error', 'Authentication failed');
    const accessToken = `sk-ant-oat01-${randomBytes(24).toString('base64url')}`;
    this.accessTokens.set(accessToken, { expiresAt: Date.now() + this.accessTokenTtlSec * 1000, scope: this.scope, workspace });
    return { status: 200, body: { access_token: accessToken, token_type: 'Bearer', expires_in: this.accessTokenTtlSec, scope: this.scope } };
  }

  private authenticate(headers: http.IncomingHttpHeaders): AccessToken | Answer {
    const authz = String(headers.authorization ?? '');
    const token = /^Bearer (.+)$/.exec(authz)?.[1];
    const known = token === undefined ? undefined : this.accessTokens.get(token);
    if (!known || known.expiresAt <= Date.now()) return error(401, 'authentication_error', 'Invalid bearer token');
    if (!API_VERSIONS.includes(String(headers['anthropic-version']))) {
      return error(400, 'invalid_request_error', `anthropic-version: must be one of ${API_VERSIONS.join(', ')}`);
    }
    const betas = String(headers['anthropic-beta'] ?? '').split(',').map((s) => s.trim());
    if (!betas.includes(TUNNELS_BETA)) return error(400, 'invalid_request_error', `The Tunnels API requires the anthropic-beta header ${TUNNELS_BETA}`);
    if (!known.scope.split(' ').includes(MANAGE_TUNNELS_SCOPE)) return error(403, 'permission_error', `The token lacks the scope ${MANAGE_TUNNELS_SCOPE}`);
    return known;
  }

  private createTunnel(auth: AccessToken, body: Record<string, unknown>): Answer {
    const name = body.display_name;
    if (name !== undefined && name !== null && (typeof name !== 'string' || name.length < 1 || name.length > 255)) {
      return error(400, 'invalid_request_error', 'display_name: must be 1-255 characters');
    }
    const active = [...this.tunnels.values()].filter((t) => !t.archived_at).length;
    if (active >= this.maxTunnelsPerOrg) {
      return error(409, 'conflict_error', `The organization has reached the limit of ${this.maxTunnelsPerOrg} non-archived tunnels`);
    }
    return { status: 200, body: this.tunnelObject(this.newTunnel((name as string | null | undefined) ?? null, auth.workspace)) };
  }

  private createCertificate(tunnel: Tunnel, mine: Certificate[], body: Record<string, unknown>): Answer {
    if (tunnel.archived_at) return error(400, 'invalid_request_error', 'The tunnel is archived');
    const pem = body.ca_certificate_pem;
    if (typeof pem !== 'string') return error(400, 'invalid_request_error', 'ca_certificate_pem: required');
    const fields = certificateFields(pem);
    if (typeof fields === 'string') return error(400, 'invalid_request_error', `ca_certificate_pem: ${fields}`);
    const active = mine.filter((c) => !c.archived_at);
    if (active.some((c) => c.fingerprint === fields.fingerprint)) return error(409, 'conflict_error', 'This certificate is already registered on the tunnel');
    if (active.length >= this.maxCertificatesPerTunnel) {
      return error(409, 'conflict_error', `A tunnel holds at most ${this.maxCertificatesPerTunnel} non-archived certificates`);
    }
    return { status: 200, body: this.certificateObject(this.newCertificate(tunnel.id, fields.fingerprint, fields.expires_at)) };
  }

  private list<T extends { seq: number; archived_at: string | null }>(items: T[], url: URL, view: (item: T) => unknown): Answer {
    const limitRaw = url.searchParams.get('limit');
    const limit = limitRaw === null ? 20 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) return error(400, 'invalid_request_error', 'limit: must be between 1 and 100');
    const includeArchived = url.searchParams.get('include_archived') === 'true';
    const page = url.searchParams.get('page');
    let offset = 0;
    if (page !== null) {
      offset = Number(Buffer.from(page, 'base64url').toString('utf8').replace(/^o:/, ''));
      if (!Number.isInteger(offset) || offset < 0) return error(400, 'invalid_request_error', 'page: invalid cursor');
    }
    const all = items.filter((i) => includeArchived || !i.archived_at).sort((a, b) => b.seq - a.seq);
    const slice = all.slice(offset, offset + limit);
    const next = offset + limit < all.length ? Buffer.from(`o:${offset + limit}`).toString('base64url') : null;
    return { status: 200, body: { data: slice.map(view), next_page: next } };
  }

  private newTunnel(displayName: string | null, workspace: string): Tunnel {
    const domain = `${Array.from(randomBytes(8), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')}.tunnel.anthropic.com`;
    const t: Tunnel = {
      id: tag('tnl'),
      domain,
      display_name: displayName,
      created_at: new Date().toISOString(),
      archived_at: null,
      type: 'tunnel',
      seq: ++this.seq,
      workspace,
      token: { id: tag('ttkn'), value: tunnelToken() },
    };
    this.tunnels.set(t.id, t);
    return t;
  }

  private newCertificate(tunnelId: string, fingerprint: string, expiresAt: string | null): Certificate {
    const c: Certificate = {
      id: tag('tcrt'),
      tunnel_id: tunnelId,
      fingerprint,
      created_at: new Date().toISOString(),
      expires_at: expiresAt,
      archived_at: null,
      type: 'tunnel_certificate',
      seq: ++this.seq,
    };
    this.certificates.set(c.id, c);
    return c;
  }

  private tunnelObject(t: Tunnel): Omit<Tunnel, 'seq' | 'token' | 'workspace'> {
    return { id: t.id, domain: t.domain, display_name: t.display_name, created_at: t.created_at, archived_at: t.archived_at, type: 'tunnel' };
  }

  private certificateObject(c: Certificate): Omit<Certificate, 'seq'> {
    return { id: c.id, tunnel_id: c.tunnel_id, fingerprint: c.fingerprint, created_at: c.created_at, expires_at: c.expires_at, archived_at: c.archived_at, type: 'tunnel_certificate' };
  }
}

/** base64 of {"a","t","s"}, as cloudflared's tunnel tokens are. */
function tunnelToken(): string {
  return Buffer.from(JSON.stringify({ a: randomBytes(16).toString('hex'), t: randomUUID(), s: randomBytes(32).toString('base64') })).toString('base64');
}

/** The checks the API documents for a CA upload; a string is the reason it is refused. */
function certificateFields(pem: string): { fingerprint: string; expires_at: string | null } | string {
  if (Buffer.byteLength(pem) > 8192) return 'must be at most 8 KB';
  if (/PRIVATE KEY/.test(pem)) return 'must not contain private key material';
  if ((pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length !== 1) return 'must contain exactly one certificate';
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    return 'is not a PEM-encoded X.509 certificate';
  }
  if (!x509.ca) return 'is not a CA certificate (basicConstraints CA:TRUE)';
  return { fingerprint: createHash('sha256').update(x509.raw).digest('hex'), expires_at: new Date(x509.validTo).toISOString() };
}

function redact(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  if ('assertion' in out) out.assertion = '[redacted]';
  if (typeof out.ca_certificate_pem === 'string') {
    const f = certificateFields(out.ca_certificate_pem);
    out.ca_certificate_pem = typeof f === 'string' ? '[pem]' : `[pem sha256:${f.fingerprint}]`;
  }
  return out;
}

export async function startAnthropicStandin(options: StandinOptions = {}): Promise<AnthropicStandin> {
  return new AnthropicStandin(options).start();
}
