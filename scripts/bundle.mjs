#!/usr/bin/env node
// Builds what ships, with esbuild, after tsc (run by `npm run build`). Each entry of BUILDS is one output:
//   - image: dist/bundle/mcp-tunnel.mjs, the whole CLI (proxy included) and its dependencies in ONE ESM
//     file, so the builtin proxy image is `node` + this file and nothing else (no node_modules, no npm).
//   - cli:   dist/app/, what `mcp-tunnel` (bin/mcp-tunnel.cjs) runs: the same CLI with code splitting, so a
//     command loads only its own chunk (`--help` stays fast) and the package needs no runtime dependencies.
// To add an output, add an entry to BUILDS; the shared settings live in COMMON.
//   - proxy: dist/bundle/mcp-proxy.cjs, the builtin proxy alone: the image's ENTRYPOINT.
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));

// CommonJS dependencies bundled into ESM call require() for Node built-ins and use __filename/__dirname;
// give them the real ones (per output file, so per chunk too). The names are unusual so they cannot clash
// with the bundle's own symbols.
const banner = [
  "import { createRequire as __mcpTunnelCreateRequire } from 'node:module';",
  "import { fileURLToPath as __mcpTunnelFileURLToPath } from 'node:url';",
  "import { dirname as __mcpTunnelDirname } from 'node:path';",
  'const require = __mcpTunnelCreateRequire(import.meta.url);',
  'const __filename = __mcpTunnelFileURLToPath(import.meta.url);',
  'const __dirname = __mcpTunnelDirname(__filename);',
].join('\n');

const COMMON = {
  absWorkingDir: root,
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
  // Whitespace and syntax only: identifiers stay, so an error's class name and a stack stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  // No source maps: they would point at src/, which the package does not ship.
  sourcemap: false,
  logLevel: 'warning',
  metafile: true,
};

const BUILDS = [
  { name: 'image', clean: null, options: { entryPoints: ['src/cli/main.ts'], outfile: 'dist/bundle/mcp-tunnel.mjs' } },
  {
    name: 'cli',
    clean: 'dist/app',
    options: { entryPoints: { main: 'src/cli/main.ts' }, outdir: 'dist/app', splitting: true, chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' } },
  },
  // The builtin proxy's own entry (src/proxy/main.ts), the image's ENTRYPOINT: only the proxy and its few
  // dependencies, so a resting proxy is close to bare Node's RSS. Arguments that are not the proxy's are
  // handed to mcp-tunnel.mjs beside it (loaded only then). CommonJS (main.ts says why): no ESM banner. Not
  // minified: its module markers are how a test proves it holds nothing of the CLI.
  {
    name: 'proxy',
    clean: null,
    options: { entryPoints: ['src/proxy/main.ts'], outfile: 'dist/bundle/mcp-proxy.cjs', format: 'cjs', banner: {}, minifyWhitespace: false, minifySyntax: false },
  },
];

for (const build of BUILDS) {
  const started = Date.now();
  if (build.clean) await rm(path.join(root, build.clean), { recursive: true, force: true });
  const result = await esbuild.build({ ...COMMON, ...build.options });
  const outputs = Object.keys(result.metafile.outputs).filter((f) => /\.[cm]js$/.test(f));
  let bytes = 0;
  for (const f of outputs) bytes += (await stat(path.join(root, f))).size;
  const inputs = Object.keys(result.metafile.inputs).length;
  const where = build.options.outfile ?? `${build.options.outdir}/ (${outputs.length} files)`;
  console.log(`bundle ${build.name}: ${where} ${(bytes / 1024 / 1024).toFixed(1)} MiB from ${inputs} inputs, ${Date.now() - started} ms`);
}
