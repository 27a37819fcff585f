import { describe, expect, it } from 'vitest';
import { CLOUDFLARED_IMAGE, OFFICIAL_PROXY_IMAGE, parseImageReference, parsePinnedImageReference } from '../../src/deployment/images.js';

/** Image references as Docker parses them (distribution/reference + Docker's normalisation). */
describe('parseImageReference', () => {
  it.each([
    ['node:24-slim', { domain: 'docker.io', path: 'library/node', tag: '24-slim' }],
    ['node', { domain: 'docker.io', path: 'library/node' }],
    ['team/app:1.0', { domain: 'docker.io', path: 'team/app', tag: '1.0' }],
    ['localhost/app', { domain: 'localhost', path: 'app' }],
    ['registry.example.com:5000/team/node:24', { domain: 'registry.example.com:5000', path: 'team/node', tag: '24' }],
    ['Registry.Example.com/a/b', { domain: 'Registry.Example.com', path: 'a/b' }],
    // Docker takes an upper-case first component for a registry host.
    ['Team/app', { domain: 'Team', path: 'app' }],
    ['a__b/c.d-e', { domain: 'docker.io', path: 'a__b/c.d-e' }],
    [OFFICIAL_PROXY_IMAGE, { domain: 'us-docker.pkg.dev', path: 'anthropic-public-registry/images/mcp-proxy' }],
  ])('accepts %s', (text, want) => {
    expect(parseImageReference(text)).toMatchObject(want);
  });

  it.each([
    'node 24; rm -rf /',
    'node:24;rm',
    '$(id)',
    'Node:24',
    'team/App',
    'node:',
    'node@sha256:abc',
    `node@sha256:${'A'.repeat(64)}`,
    '-node',
    'node:-tag',
    '',
    'a//b',
    `node:${'x'.repeat(129)}`,
    `${'a'.repeat(256)}`,
  ])('refuses %j with a stable code, exit 2', (text) => {
    expect(() => parseImageReference(text, '--base-image')).toThrow(expect.objectContaining({ code: 'IMAGE_REFERENCE_INVALID', exitCode: 2 }));
  });
});

describe('parsePinnedImageReference', () => {
  it('accepts name@sha256:<64 hex>', () => {
    expect(parsePinnedImageReference(CLOUDFLARED_IMAGE, '--cloudflared').digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
  it.each(['cloudflare/cloudflared:latest', 'cloudflare/cloudflared', `cloudflare/cloudflared:2024@sha256:${'a'.repeat(64)}`])('refuses %s (not pinned)', (text) => {
    expect(() => parsePinnedImageReference(text, '--cloudflared')).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_PINNED', exitCode: 2 }));
  });
});
