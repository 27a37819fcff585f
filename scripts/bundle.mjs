#!/usr/bin/env node
// Builds the single-file bundle dist/bundle/mcp-tunnel.mjs: the whole CLI (proxy included) and its
// dependencies in one ESM file, so the builtin proxy image is `node` + this file and nothing else
// (no node_modules, no npm, no shell). Run by `npm run build` after tsc.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const outfile = path.join(root, 'dist', 'bundle', 'mcp-tunnel.mjs');

// CommonJS dependencies bundled into ESM call require() for Node built-ins and use __filename/__dirname;
// give them the real ones. The names are unusual so they cannot clash with the bundle's own symbols.
const banner = [
  "import { createRequire as __mcpTunnelCreateRequire } from 'node:module';",
  "import { fileURLToPath as __mcpTunnelFileURLToPath } from 'node:url';",
  "import { dirname as __mcpTunnelDirname } from 'node:path';",
  'const require = __mcpTunnelCreateRequire(import.meta.url);',
  'const __filename = __mcpTunnelFileURLToPath(import.meta.url);',
  'const __dirname = __mcpTunnelDirname(__filename);',
].join('\n');

const started = Date.now();
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  banner: { js: banner },
  // The version is baked in: there is no package.json beside /app/mcp-tunnel.mjs in the image.
  define: { __MCP_TUNNEL_VERSION__: JSON.stringify(pkg.version) },
  // Optional native add-ons of dockerode -> docker-modem -> ssh2. ssh2 loads both inside try/catch and
  // falls back to pure JS, so leaving them out keeps the bundle loadable without any .node file.
  external: ['cpu-features', '*.node'],
  legalComments: 'linked',
  sourcemap: false,
  logLevel: 'warning',
  metafile: true,
});

const { size } = await stat(outfile);
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`bundle: ${path.relative(root, outfile)} (${(size / 1024 / 1024).toFixed(1)} MiB from ${inputs} inputs, ${Date.now() - started} ms)`);

// The builtin proxy's own entry (src/proxy/main.ts), the image's ENTRYPOINT: only the proxy and its few
// dependencies, so a resting proxy is close to bare Node's RSS. Arguments that are not the proxy's are
// handed to mcp-tunnel.mjs beside it (loaded only then). CommonJS: main.ts says why.
const proxyOutfile = path.join(root, 'dist', 'bundle', 'mcp-proxy.cjs');
const proxyResult = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['src/proxy/main.ts'],
  outfile: proxyOutfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  define: { __MCP_TUNNEL_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'linked',
  sourcemap: false,
  logLevel: 'warning',
  metafile: true,
});
const proxySize = (await stat(proxyOutfile)).size;
console.log(`bundle: ${path.relative(root, proxyOutfile)} (${(proxySize / 1024 / 1024).toFixed(1)} MiB from ${Object.keys(proxyResult.metafile.inputs).length} inputs)`);
