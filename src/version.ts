import { createRequire } from 'node:module';

/**
 * The package version, in one place. In the single-file bundle (scripts/bundle.mjs) esbuild replaces
 * __MCP_TUNNEL_VERSION__ with the literal from package.json, because there is no package.json next to
 * /app/mcp-tunnel.mjs in the image. From dist/ or src/ (tests) package.json is one directory up.
 */
declare const __MCP_TUNNEL_VERSION__: string | undefined;

function readVersion(): string {
  if (typeof __MCP_TUNNEL_VERSION__ === 'string') return __MCP_TUNNEL_VERSION__;
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}

export const VERSION: string = readVersion();
