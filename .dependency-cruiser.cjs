/**
 * The layers of src/, checked in `npm test` (npm run check:layers). Imports point one way:
 *
 *   cli  ->  ops (use cases; demo is one)  ->  adapters (docker, anthropic, pki, proxy, probe)  ->  model (bundle, errors, version)
 *
 * Among the adapters, pki is a pure library (no I/O) that the others may use; docker, anthropic, proxy and
 * probe do not import one another (a use case that needs two of them lives in ops). The proxy is its own
 * process: it imports nothing but itself and the model. No import cycles, type-only imports included.
 */
const MODEL = '^src/(bundle/|errors\\.ts$|version\\.ts$)';
const ADAPTERS = '^src/(docker|anthropic|pki|proxy|probe)/';
const OPS = '^src/(ops|demo)/';

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'an import cycle (type-only imports count)', from: { path: '^src/' }, to: { circular: true } },
    { name: 'model-is-the-bottom', severity: 'error', comment: 'the deployment model imports no adapter, use case or CLI code', from: { path: MODEL }, to: { path: '^src/(cli|ops|demo|docker|anthropic|pki|proxy|probe)/' } },
    { name: 'adapters-below-ops', severity: 'error', comment: 'an adapter imports no use case and no CLI code', from: { path: ADAPTERS }, to: { path: '^src/(cli|ops|demo)/' } },
    { name: 'io-adapters-apart', severity: 'error', comment: 'docker, anthropic, proxy and probe do not import one another: a use case needing two belongs in ops', from: { path: '^src/(docker|anthropic|proxy|probe)/' }, to: { path: '^src/(docker|anthropic|proxy|probe)/', pathNot: '^src/$1/' } },
    { name: 'ops-below-cli', severity: 'error', comment: 'a use case imports no CLI code (prompts and printing live in cli/)', from: { path: OPS }, to: { path: '^src/cli/' } },
    { name: 'proxy-stands-alone', severity: 'error', comment: 'the proxy process loads nothing but itself and the model', from: { path: '^src/proxy/' }, to: { path: '^src/', pathNot: ['^src/proxy/', MODEL] } },
  ],
  options: {
    // TypeScript 7 has no JS compiler API for dependency-cruiser; swc parses TS and keeps type-only imports.
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
