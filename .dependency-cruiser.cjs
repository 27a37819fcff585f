/**
 * The layers of src/, checked in `npm test` (npm run check:layers). Imports point one way:
 *
 *   cli  ->  ops (use cases; demo is one)  ->  adapters (docker, anthropic, proxy, probe)  ->  core
 *
 * The core is the pure middle: the deployment model (src/deployment), errors, version, and pki (certificate decisions
 * and signing: no file, network or process I/O), which the model itself uses for its certificate rules. pki
 * imports nothing of the model but errors. docker, anthropic, proxy and probe do not import one another (a use
 * case that needs two of them lives in ops). The proxy is its own process: it imports nothing but itself and
 * the core. No import cycles, type-only imports included.
 */
const MODEL = '^src/(deployment/|pki/|errors\\.ts$|version\\.ts$)';
const ADAPTERS = '^src/(docker|anthropic|proxy|probe)/';
const OPS = '^src/(ops|demo)/';

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'an import cycle (type-only imports count)', from: { path: '^src/' }, to: { circular: true } },
    { name: 'core-is-the-bottom', severity: 'error', comment: 'the core imports no adapter, use case or CLI code', from: { path: MODEL }, to: { path: '^src/(cli|ops|demo|docker|anthropic|proxy|probe)/' } },
    { name: 'pki-stands-alone', severity: 'error', comment: 'pki is a library: it imports only itself and errors', from: { path: '^src/pki/' }, to: { path: '^src/', pathNot: ['^src/pki/', '^src/errors\\.ts$'] } },
    { name: 'adapters-below-ops', severity: 'error', comment: 'an adapter imports no use case and no CLI code', from: { path: ADAPTERS }, to: { path: '^src/(cli|ops|demo)/' } },
    { name: 'io-adapters-apart', severity: 'error', comment: 'docker, anthropic, proxy and probe do not import one another: a use case needing two belongs in ops', from: { path: '^src/(docker|anthropic|proxy|probe)/' }, to: { path: '^src/(docker|anthropic|proxy|probe)/', pathNot: '^src/$1/' } },
    { name: 'ops-below-cli', severity: 'error', comment: 'a use case imports no CLI code (prompts and printing live in cli/)', from: { path: OPS }, to: { path: '^src/cli/' } },
    { name: 'proxy-stands-alone', severity: 'error', comment: 'the proxy process loads nothing but itself and the model', from: { path: '^src/proxy/' }, to: { path: '^src/', pathNot: ['^src/proxy/', MODEL] } },
  ],
  options: {
    // TypeScript 7 has no JS compiler API for dependency-cruiser; swc parses TS and keeps type-only imports.
    parser: 'swc',
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
