import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { RENEWER_SERVICE, hasRenewerService, renderComposeFile } from '../../src/deployment/compose-file.js';
import { describeRenewer, editComposeForRenewer } from '../../src/ops/auto-renew.js';

/** schedule-renewal's compose.yaml edit: exact re-render when pristine; a byte-preserving splice otherwise. */
const V = '1.2.3';

describe('editComposeForRenewer', () => {
  it.each(['official', 'builtin'] as const)('%s: a pristine file is re-rendered both ways', (engine) => {
    const without = renderComposeFile({ engine, version: V });
    const withRenewer = renderComposeFile({ engine, version: V, autoRenew: true });
    expect(editComposeForRenewer(without, true, { engine, version: V })).toEqual({ text: withRenewer, method: 'rendered' });
    expect(editComposeForRenewer(withRenewer, false, { engine, version: V })).toEqual({ text: without, method: 'rendered' });
    expect(hasRenewerService(withRenewer)).toBe(true);
    expect(hasRenewerService(without)).toBe(false);
  });

  it('a hand-edited file keeps every other byte, both ways', () => {
    const mine = renderComposeFile({ engine: 'official', version: '0.0.9' })
      .replace('services:\n', 'services:\n  # my sidecar\n  sidecar:\n    image: busybox   # pinned elsewhere\n\n')
      .replace('    command: tunnel', '    # my note\n    command: tunnel');
    const added = editComposeForRenewer(mine, true, { engine: 'official', version: V });
    expect(added.method).toBe('edited');
    expect(added.text.startsWith(mine)).toBe(true);
    const block = added.text.slice(mine.length);
    expect(block).toMatch(new RegExp(`^\\n  ${RENEWER_SERVICE}:\\n`));
    expect(YAML.parse(added.text).services[RENEWER_SERVICE].network_mode).toBe('none');

    const removed = editComposeForRenewer(added.text, false, { engine: 'official', version: V });
    expect(removed).toEqual({ text: mine, method: 'edited' });
  });

  it('the engine is still told apart by the proxy image line (the renewer image is quoted)', () => {
    const text = renderComposeFile({ engine: 'official', version: V, autoRenew: true });
    expect(text).not.toContain('image: mcp-tunnel-proxy:');
    expect(text).toContain(`image: "mcp-tunnel-proxy:${V}"`);
  });

  it('the schedule reported is the one compose.yaml runs, hand edits included', () => {
    const rendered = renderComposeFile({ engine: 'official', version: V, autoRenew: true });
    expect(describeRenewer(rendered)).toEqual({ service: RENEWER_SERVICE, command: ['renew-cert', '--dir', '/deployment', '--every', '24h', '--renew-before', '720h'], every: '24h', renewBefore: '720h' });
    const edited = rendered.replace(/command: \[.*\]\n(?=\s+network_mode: none)/, 'command: renew-cert --dir /deployment --every=12h\n');
    expect(edited).not.toBe(rendered);
    expect(describeRenewer(edited)).toMatchObject({ every: '12h', renewBefore: undefined });
    expect(describeRenewer(renderComposeFile({ engine: 'official', version: V }))).toBeUndefined();
  });
});
