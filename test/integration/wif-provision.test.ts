import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTunnelsClient, fileSource, provisionTunnel, type ProvisionResult, type TunnelsClientOptions } from '../../src/anthropic/index.js';
import { deploymentPaths } from '../../src/deployment/layout.js';
import { ExitCode, UserError } from '../../src/errors.js';
import { createCa, inspectCertificate } from '../../src/pki/index.js';
import { fakeJwt, FEDERATION_BETA, startAnthropicStandin, TUNNELS_BETA, type AnthropicStandin } from '../helpers/anthropic-standin.js';

/**
 * The setup component's semantics, with the real @anthropic-ai/sdk talking to the local stand-in:
 * create vs attach, idempotent re-runs, the CA registered once, the two-certificate cap, retries, lost
 * answers, and every class of error mapped to one line and a hint.
 */
let work: string;
let standin: AnthropicStandin;
let jwt: string;
let jwtFile: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-wif-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

beforeEach(async () => {
  standin = await startAnthropicStandin();
  jwt = fakeJwt({ jti: 'jwt-1' });
  standin.acceptJwt(jwt);
  jwtFile = path.join(fs.mkdtempSync(path.join(work, 'jwt-')), 'token.jwt');
  fs.writeFileSync(jwtFile, `${jwt}\n`, { mode: 0o600 });
});
afterEach(async () => standin.close());

const newDir = (): string => path.join(fs.mkdtempSync(path.join(work, 'dep-')), 'deployment');

function client(overrides: Partial<TunnelsClientOptions> = {}) {
  return createTunnelsClient({
    apiUrl: standin.url,
    federationRuleId: standin.federationRuleId,
    organizationId: standin.organizationId,
    identityToken: fileSource(jwtFile, 'test'),
    retryBaseDelayMs: 2,
    ...overrides,
  });
}

function provision(dir: string, extra: Partial<Parameters<typeof provisionTunnel>[0]> = {}): Promise<ProvisionResult> {
  return provisionTunnel({
    client: extra.client ?? client(),
    paths: deploymentPaths(dir),
    apiUrl: standin.url,
    federation: { federationRuleId: standin.federationRuleId, organizationId: standin.organizationId },
    displayName: 'mcp-tunnel test',
    now: new Date(),
    dataDirMode: 0o700,
    retryBaseDelayMs: 2,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<UserError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

const read = (dir: string, rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
const mutating = (s: AnthropicStandin) => s.calls.filter((c) => c.method === 'POST' && /^\/v1\/tunnels(\/[^/]+\/certificates)?$/.test(c.path));

describe('provisionTunnel: create, attach, re-run', () => {
  it('creates a tunnel, registers a new CA and reveals the token, in that order', async () => {
    const dir = newDir();
    const r = await provision(dir);
    expect(r.tunnel.action).toBe('created');
    expect(r.tunnel.id).toMatch(/^tnl_/);
    expect(r.ca.created).toBe(true);
    expect(r.certificate.action).toBe('registered');
    expect(r.token.id).toMatch(/^ttkn_/);
    expect(r.token.value).toBe(standin.currentToken(r.tunnel.id)!.value);

    expect(read(dir, 'data/tunnel-id')).toBe(`${r.tunnel.id}\n`);
    expect(read(dir, 'data/tunnel-domain')).toBe(`${r.tunnel.domain}\n`);
    const fingerprint = inspectCertificate(read(dir, 'data/ca.crt')).fingerprintSha256;
    expect(r.ca.fingerprint).toBe(fingerprint);
    expect(standin.activeCertificates(r.tunnel.id).map((c) => c.fingerprint)).toEqual([fingerprint]);
    expect(fs.statSync(path.join(dir, 'data/ca.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, 'data')).mode & 0o777).toBe(0o700);

    // One exchange, with the documented body and beta header; the JWT itself never lands in the log.
    const exchanges = standin.callsTo('POST', '/v1/oauth/token');
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]!.beta).toContain(FEDERATION_BETA);
    expect(exchanges[0]!.body).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: '[redacted]',
      federation_rule_id: standin.federationRuleId,
      organization_id: standin.organizationId,
    });
    expect(exchanges[0]!.assertion?.jti).toBe('jwt-1');
    const api = standin.calls.filter((c) => c.path !== '/v1/oauth/token');
    expect(api.every((c) => c.beta?.includes(TUNNELS_BETA))).toBe(true);
    expect(api.map((c) => `${c.method} ${c.path.replace(r.tunnel.id, '{id}')} ${c.status}`)).toEqual([
      'POST /v1/tunnels 200',
      'GET /v1/tunnels/{id}/certificates 200',
      'POST /v1/tunnels/{id}/certificates 200',
      'POST /v1/tunnels/{id}/reveal_token 200',
    ]);
    expect(standin.callsTo('POST', '/v1/tunnels')[0]!.body).toEqual({ display_name: 'mcp-tunnel test' });
  });

  it('a re-run creates nothing and registers nothing: it reuses data/tunnel-id and the CA', async () => {
    const dir = newDir();
    const first = await provision(dir);
    const caBefore = read(dir, 'data/ca.crt');
    standin.clearCalls();
    const again = await provision(dir);
    expect(again.tunnel).toMatchObject({ id: first.tunnel.id, action: 'reused' });
    expect(again.ca.created).toBe(false);
    expect(again.certificate).toMatchObject({ id: first.certificate.id, action: 'already-registered' });
    expect(read(dir, 'data/ca.crt')).toBe(caBefore);
    expect(mutating(standin)).toEqual([]);
    expect(standin.tunnelList()).toHaveLength(1);
    expect(standin.activeCertificates(first.tunnel.id)).toHaveLength(1);
  });

  it('attaches to --tunnel-id without creating a tunnel', async () => {
    const seeded = standin.seedTunnel({ displayName: 'made in the Console' });
    const dir = newDir();
    const r = await provision(dir, { tunnelId: seeded.id });
    expect(r.tunnel).toMatchObject({ id: seeded.id, domain: seeded.domain, action: 'attached' });
    expect(standin.callsTo('POST', '/v1/tunnels')).toEqual([]);
    expect(standin.callsTo('GET', `/v1/tunnels/${seeded.id}`)).toHaveLength(1);
    expect(r.token.value).toBe(seeded.token);
    expect(read(dir, 'data/tunnel-id')).toBe(`${seeded.id}\n`);
  });

  it('does not register a CA the tunnel already trusts (fingerprint match)', async () => {
    const dir = newDir();
    const ca = await createCa();
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'data/ca.crt'), ca.certPem, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'data/ca.key'), ca.keyPem, { mode: 0o600 });
    const seeded = standin.seedTunnel();
    const registered = standin.seedCertificate(seeded.id, { pem: ca.certPem });
    const r = await provision(dir, { tunnelId: seeded.id });
    expect(r.ca.created).toBe(false);
    expect(r.certificate).toMatchObject({ id: registered.id, action: 'already-registered' });
    expect(standin.callsTo('POST', /\/certificates$/)).toEqual([]);
  });

  it('refuses a third certificate, listing the two registered ones, and registers nothing', async () => {
    const seeded = standin.seedTunnel();
    const a = standin.seedCertificate(seeded.id, { fingerprint: 'aa'.repeat(32), expiresAt: '2035-01-01T00:00:00.000Z' });
    const b = standin.seedCertificate(seeded.id, { fingerprint: 'bb'.repeat(32), expiresAt: '2030-06-30T00:00:00.000Z' });
    const dir = newDir();
    const err = await failure(provision(dir, { tunnelId: seeded.id }));
    expect(err.exitCode).toBe(ExitCode.environment);
    expect(err.code).toBe('CA_SLOTS_FULL');
    expect(err.message).toContain(`${a.id} (fingerprint ${'aa'.repeat(32)}, expires 2035-01-01)`);
    expect(err.message).toContain(`${b.id} (fingerprint ${'bb'.repeat(32)}, expires 2030-06-30)`);
    expect(err.hint).toMatch(/archive/);
    expect(standin.callsTo('POST', /\/certificates$/)).toEqual([]);
    // The state so far is kept for the re-run: the tunnel ID and the CA (never a second CA).
    expect(read(dir, 'data/tunnel-id')).toBe(`${seeded.id}\n`);
    expect(fs.existsSync(path.join(dir, 'data/ca.crt'))).toBe(true);
  });

  it('a --tunnel-id that differs from data/tunnel-id needs allowTunnelChange, and then registers the same CA there', async () => {
    const dir = newDir();
    const first = await provision(dir);
    const other = standin.seedTunnel();
    standin.clearCalls();
    const err = await failure(provision(dir, { tunnelId: other.id }));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.code).toBe('TUNNEL_ID_CONFLICT');
    expect(err.message).toContain(first.tunnel.id);
    expect(standin.calls).toEqual([]);
    const moved = await provision(dir, { tunnelId: other.id, allowTunnelChange: true });
    expect(moved.tunnel).toMatchObject({ id: other.id, action: 'attached' });
    expect(moved.ca.fingerprint).toBe(first.ca.fingerprint);
    expect(moved.certificate.action).toBe('registered');
  });

  it('re-reads the identity token file on every exchange: a rotated JWT is used', async () => {
    const dir = newDir();
    const c = client();
    await provision(dir, { client: c });
    const jwt2 = fakeJwt({ jti: 'jwt-2' });
    fs.writeFileSync(jwtFile, jwt2);
    standin.rejectJwt(jwt);
    standin.acceptJwt(jwt2);
    // Same client: the access token is refused, the SDK re-exchanges and reads the file again.
    standin.expireAccessTokens();
    await provision(dir, { client: c });
    // A new run (a new client) exchanges the new JWT from the start.
    await provision(dir);
    expect(standin.callsTo('POST', '/v1/oauth/token').map((x) => [x.assertion?.jti, x.status])).toEqual([
      ['jwt-1', 200],
      ['jwt-2', 200],
      ['jwt-2', 200],
    ]);
  });
});

describe('provisionTunnel: retries and lost answers', () => {
  it('retries 429 on create (the request was refused) and creates exactly one tunnel', async () => {
    standin.failNext({ method: 'POST', path: '/v1/tunnels', status: 429, count: 2 });
    const r = await provision(newDir());
    expect(standin.callsTo('POST', '/v1/tunnels').map((c) => c.status)).toEqual([429, 429, 200]);
    expect(standin.tunnelList().map((t) => t.id)).toEqual([r.tunnel.id]);
  });

  it('adopts the tunnel a create made when its answer was lost (500 after the fact): no second tunnel', async () => {
    standin.failNext({ method: 'POST', path: '/v1/tunnels', status: 500, afterEffect: true });
    const r = await provision(newDir());
    expect(r.tunnel.action).toBe('adopted');
    expect(standin.callsTo('POST', '/v1/tunnels').map((c) => c.status)).toEqual([500]);
    expect(standin.callsTo('GET', '/v1/tunnels')).toHaveLength(1);
    expect(standin.tunnelList().map((t) => t.id)).toEqual([r.tunnel.id]);
  });

  it('a 503 before the create took effect is retried after checking the list', async () => {
    standin.failNext({ method: 'POST', path: '/v1/tunnels', status: 503 });
    const r = await provision(newDir());
    expect(r.tunnel.action).toBe('created');
    expect(standin.callsTo('POST', '/v1/tunnels').map((c) => c.status)).toEqual([503, 200]);
    expect(standin.tunnelList()).toHaveLength(1);
  });

  it('a lost answer on the certificate registration does not register it twice', async () => {
    standin.failNext({ method: 'POST', path: /\/certificates$/, status: 502, afterEffect: true });
    const r = await provision(newDir());
    expect(r.certificate.action).toBe('registered');
    expect(standin.callsTo('POST', /\/certificates$/).map((c) => c.status)).toEqual([502]);
    expect(standin.activeCertificates(r.tunnel.id)).toHaveLength(1);
  });

  it('retries 5xx and 429 on reads (the SDK policy) and on the token exchange', async () => {
    standin.failNext({ method: 'POST', path: '/v1/oauth/token', status: 503 });
    standin.failNext({ method: 'POST', path: '/v1/oauth/token', status: 429 });
    standin.failNext({ method: 'GET', path: /\/certificates$/, status: 500 });
    standin.failNext({ method: 'POST', path: /\/reveal_token$/, status: 429 });
    await provision(newDir());
    expect(standin.callsTo('POST', '/v1/oauth/token').map((c) => c.status)).toEqual([503, 429, 200]);
    expect(standin.callsTo('GET', /\/certificates$/).map((c) => c.status)).toEqual([500, 200]);
    expect(standin.callsTo('POST', /\/reveal_token$/).map((c) => c.status)).toEqual([429, 200]);
  });

  it('gives up after maxRetries with a message that says so', async () => {
    standin.failNext({ method: 'POST', path: /\/reveal_token$/, status: 500, count: 10 });
    const err = await failure(provision(newDir()));
    expect(err.code).toBe('API_SERVER_ERROR');
    expect(err.message).toMatch(/after 2 retries \(HTTP 500 api_error/);
    expect(err.hint).toMatch(/re-run/);
    expect(standin.callsTo('POST', /\/reveal_token$/)).toHaveLength(3);
  });
});

describe('provisionTunnel: errors mapped to actions, never a token', () => {
  const noSecrets = (err: UserError): void => {
    const text = `${err.message}\n${err.hint}`;
    expect(text).not.toContain(jwt);
    expect(text).not.toMatch(/sk-ant-oat01-/);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9+/=]{20,}/);
  };

  it('401 on the exchange: check audience, subject and rule; the Console shows the reason', async () => {
    standin.rejectJwt(jwt);
    const dir = newDir();
    const err = await failure(provision(dir));
    expect(err.code).toBe('TOKEN_EXCHANGE_REFUSED');
    expect(err.message).toContain('HTTP 401 authentication_error: Authentication failed');
    expect(err.hint).toMatch(/audience \(aud\) and subject \(sub\)/);
    expect(err.hint).toContain(standin.federationRuleId);
    expect(err.hint).toMatch(/authentication history/);
    expect(err.exitCode).toBe(ExitCode.environment);
    noSecrets(err);
    expect(standin.callsTo('POST', '/v1/oauth/token')).toHaveLength(1); // a 401 is not retried
    expect(fs.existsSync(path.join(dir, 'data/tunnel-id'))).toBe(false);
  });

  it('400 from the token endpoint (malformed IDs): exit 2, check the IDs', async () => {
    const err = await failure(provision(newDir(), { client: client({ organizationId: 'not-a-uuid' }) }));
    expect(err.code).toBe('TOKEN_EXCHANGE_BAD_REQUEST');
    expect(err.message).toMatch(/HTTP 400 invalid_request_error: organization_id/);
    expect(err.hint).toMatch(/--organization-id/);
    expect(err.exitCode).toBe(ExitCode.usage);
  });

  it('403 without the workspace:manage_tunnels scope', async () => {
    standin.scope = 'workspace:read';
    const err = await failure(provision(newDir()));
    expect(err.code).toBe('API_FORBIDDEN');
    expect(err.message).toMatch(/HTTP 403 permission_error/);
    expect(err.hint).toContain('workspace:manage_tunnels');
    noSecrets(err);
  });

  it("403 when the tunnel is in a workspace the identity is not in", async () => {
    const other = standin.seedTunnel({ workspace: 'wrkspc_other' });
    const err = await failure(provision(newDir(), { tunnelId: other.id }));
    expect(err.message).toMatch(/HTTP 403 permission_error/);
    expect(err.hint).toMatch(/member of tunnel .*workspace/);
  });

  it('404 for an unknown --tunnel-id; an archived tunnel is refused too', async () => {
    const err = await failure(provision(newDir(), { tunnelId: 'tnl_doesnotexist' }));
    expect(err.code).toBe('TUNNEL_NOT_FOUND');
    expect(err.message).toContain('tnl_doesnotexist');
    expect(err.hint).toMatch(/--tunnel-id/);
    const archived = standin.seedTunnel({ archived: true });
    const err2 = await failure(provision(newDir(), { tunnelId: archived.id }));
    expect(err2.code).toBe('TUNNEL_ARCHIVED');
  });

  it('409 at the limit of tunnels per organization', async () => {
    standin.maxTunnelsPerOrg = 1;
    standin.seedTunnel();
    const err = await failure(provision(newDir()));
    expect(err.code).toBe('TUNNEL_LIMIT_REACHED');
    expect(err.message).toMatch(/HTTP 409 conflict_error/);
    expect(err.hint).toMatch(/archive a tunnel|--tunnel-id/);
    expect(standin.tunnelList()).toHaveLength(1);
  });

  it('network failure: names ECONNREFUSED and points at --api-url', async () => {
    const port = standin.url.split(':').at(-1);
    await standin.close();
    standin = await startAnthropicStandin(); // keep afterEach happy; the old port is closed now
    const url = `http://127.0.0.1:${port}`;
    const err = await failure(provision(newDir(), { client: client({ apiUrl: url, maxRetries: 1 }), apiUrl: url }));
    expect(err.code).toBe('API_UNREACHABLE');
    expect(err.message).toMatch(/http:\/\/127\.0\.0\.1:\d+\/v1\/oauth\/token \(ECONNREFUSED\)/);
    expect(err.hint).toMatch(/--api-url/);
  });
});
