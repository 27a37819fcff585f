/**
 * Every container image reference mcp-tunnel writes or runs, in one place (SPEC.md 1). The official images
 * are pinned by digest, never by tag: a compose file written today runs the same bytes next year.
 */

/** Anthropic's proxy (the `official` engine). Reads /etc/mcp-gateway/config.yaml by default. */
export const OFFICIAL_PROXY_IMAGE =
  'us-docker.pkg.dev/anthropic-public-registry/images/mcp-proxy@sha256:efb27b299d627e4134815663cb8896641eeaee025d734c0f695582b4df38f013';

/** Cloudflare's connector, run as `tunnel --no-autoupdate run --url http://localhost:8080`. */
export const CLOUDFLARED_IMAGE =
  'cloudflare/cloudflared@sha256:6b599ca3e974349ead3286d178da61d291961182ec3fe9c505e1dd02c8ac31b0';

/** The builtin engine's image is built locally from DIR/build/ and tagged with the package version. */
export const BUILTIN_PROXY_IMAGE_REPO = 'mcp-tunnel-proxy';

export function builtinProxyImage(version: string): string {
  return `${BUILTIN_PROXY_IMAGE_REPO}:${version}`;
}

/**
 * The builtin image's default base (overridable with MCP_TUNNEL_BASE_IMAGE in .env, e.g. a mirror, or a
 * local base on a host that cannot reach Docker Hub). Any image with `node` (>= 22) on PATH will do.
 */
export const DEFAULT_BUILTIN_BASE_IMAGE = 'node:24-slim';
