import { describe, expect, it } from 'vitest';
import type { ComposeService } from '../../src/docker/compose-model.js';
import { LABELS, MOUNTS_DIGEST_LABEL } from '../../src/docker/labels.js';
import { mountsChanged, planConverge, type MountState, type ObservedContainer, type PlanInput } from '../../src/docker/plan.js';

/** The recreate rules of `up`, on the plan alone: no Docker. */

const svc = (name: string, extra: Partial<ComposeService> = {}): ComposeService =>
  ({ name, dependsOn: {}, networkMode: { kind: 'default' }, ports: [], binds: [], ...extra }) as ComposeService;

const proxy = svc('mcp-proxy');
const cloudflared = svc('cloudflared', { networkMode: { kind: 'service', service: 'mcp-proxy' }, dependsOn: { 'mcp-proxy': { condition: 'service_healthy' } } });
const project = { services: [proxy, cloudflared] };

const T0 = Date.parse('2026-01-01T00:00:00Z');
const running = (id: string, hash: string, extra: Partial<ObservedContainer> = {}): ObservedContainer => ({
  id,
  name: `p-${id}-1`,
  state: 'running',
  labels: { [LABELS.configHash]: hash },
  networkMode: 'p_default',
  startedAtMs: T0,
  ...extra,
});

function steadyState(): Pick<PlanInput, 'observed' | 'hashes'> {
  return {
    observed: new Map([
      ['mcp-proxy', [running('P', 'hp', { labels: { [LABELS.configHash]: 'hp', [MOUNTS_DIGEST_LABEL]: 'd1' } })]],
      ['cloudflared', [running('C', 'hc', { networkMode: 'container:P' })]],
    ]),
    hashes: new Map([
      ['mcp-proxy', 'hp'],
      ['cloudflared', 'hc'],
    ]),
  };
}
const mounts = (digest: string, mtime: number): Map<string, MountState> => new Map([['mcp-proxy', { digest, newestMtimeMs: mtime, files: ['config/mcp-proxy.yaml'] }]]);
const actions = (input: PlanInput): string[] => planConverge(input).map((p) => `${p.service}:${p.action}${p.reason ? ` (${p.reason})` : ''}`);

describe('planConverge', () => {
  it('creates everything on an empty host, dependencies first', () => {
    expect(actions({ project, observed: new Map(), hashes: steadyState().hashes })).toEqual(['mcp-proxy:create', 'cloudflared:create']);
  });

  it('leaves an unchanged stack alone (no restart without an edit)', () => {
    expect(actions({ project, ...steadyState(), mounts: mounts('d1', T0 - 1000) })).toEqual(['mcp-proxy:noop', 'cloudflared:noop']);
  });

  it('recreates the proxy when its config hash changed, and cloudflared with it (its namespace)', () => {
    const s = steadyState();
    const plans = planConverge({ project, ...s, hashes: new Map([...s.hashes, ['mcp-proxy', 'hp2']]) });
    expect(plans.map((p) => [p.action, p.reason])).toEqual([
      ['recreate', 'configuration changed'],
      ['recreate', 'mcp-proxy was recreated'],
    ]);
    // The proxy hosts cloudflared's namespace: it cannot overlap with its replacement.
    expect(plans[0]!.overlap).toBe(false);
  });

  it('recreates the proxy when the mounted config was edited after it started', () => {
    const plans = planConverge({ project, ...steadyState(), mounts: mounts('d2', T0 + 5000) });
    expect(plans.map((p) => [p.action, p.reason])).toEqual([
      ['recreate', 'config/mcp-proxy.yaml changed since it started'],
      ['recreate', 'mcp-proxy was recreated'],
    ]);
    expect(plans[0]!.mountsDigest).toBe('d2');
  });

  it('does not recreate when the file changed before a restart (routes add restarts the proxy)', () => {
    expect(actions({ project, ...steadyState(), mounts: mounts('d2', T0 - 5000) })).toEqual(['mcp-proxy:noop', 'cloudflared:noop']);
  });

  it('judges a container started by docker compose (no digest label) by the times alone', () => {
    const s = steadyState();
    const observed = new Map(s.observed);
    observed.set('mcp-proxy', [running('P', 'hp')]);
    expect(actions({ project, ...s, observed, mounts: mounts('d9', T0 - 1) })[0]).toBe('mcp-proxy:noop');
    expect(actions({ project, ...s, observed, mounts: mounts('d9', T0 + 1) })[0]).toBe('mcp-proxy:recreate (config/mcp-proxy.yaml changed since it started)');
  });

  it('starts a stopped container without recreating it', () => {
    const s = steadyState();
    const observed = new Map(s.observed);
    observed.set('cloudflared', [running('C', 'hc', { state: 'exited', networkMode: 'container:P', startedAtMs: undefined })]);
    expect(actions({ project, ...s, observed })).toEqual(['mcp-proxy:noop', 'cloudflared:start']);
  });

  it('recreates cloudflared when the proxy has a new container (stale namespace)', () => {
    const s = steadyState();
    const observed = new Map(s.observed);
    observed.set('cloudflared', [running('C', 'hc', { networkMode: 'container:OLD' })]);
    expect(actions({ project, ...s, observed })).toEqual(['mcp-proxy:noop', 'cloudflared:recreate (mcp-proxy has a new container (network namespace))']);
  });

  it('a forced recreate of cloudflared alone overlaps (start the new one, then retire the old)', () => {
    const plans = planConverge({ project, ...steadyState(), force: new Set(['cloudflared']), only: new Set(['cloudflared']) });
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatchObject({ service: 'cloudflared', action: 'recreate', reason: 'recreate requested', overlap: true });
  });

  it('removes extra containers of a service', () => {
    const s = steadyState();
    const observed = new Map(s.observed);
    observed.set('cloudflared', [running('C', 'hc', { networkMode: 'container:P' }), running('C2', 'hc', { networkMode: 'container:P' })]);
    expect(planConverge({ project, ...s, observed })[1]!.extras.map((c) => c.id)).toEqual(['C2']);
  });
});

describe('mountsChanged', () => {
  it('is false when the service mounts no file', () => {
    expect(mountsChanged({ labels: {}, startedAtMs: T0 }, { files: [] })).toBe(false);
  });
  it('is false when the recorded digest matches, whatever the times', () => {
    expect(mountsChanged({ labels: { [MOUNTS_DIGEST_LABEL]: 'd' }, startedAtMs: T0 }, { digest: 'd', newestMtimeMs: T0 + 1, files: ['f'] })).toBe(false);
  });
});
