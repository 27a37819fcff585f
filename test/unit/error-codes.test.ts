import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { documentedCodes, scanErrorCodes, scanUncodedErrors } from '../helpers/error-code-scan.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sites = scanErrorCodes(path.join(ROOT, 'src'));
const docs = documentedCodes(readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8'));

describe('error codes (docs/errors.md)', () => {
  it('every user-facing error in src passes a code', () => {
    // TunnelError's subclasses set `code` per layer (PROBE_TLS_FAILED, ...) as a class field.
    const bySubclassField = (site: string): boolean => site.startsWith('src/probe/errors.ts:');
    expect(scanUncodedErrors(path.join(ROOT, 'src')).filter((site) => !bySubclassField(site))).toEqual([]);
  });

  it('documents every code the source passes to an error', () => {
    const documented = new Set(docs.map((d) => d.code));
    const undocumented = [...new Set(sites.filter((s) => !documented.has(s.code)).map((s) => `${s.code} (${s.file}:${s.line})`))];
    expect(undocumented).toEqual([]);
  });

  it('documents no code the source no longer has', () => {
    const inSource = new Set(sites.map((s) => s.code));
    expect(docs.map((d) => d.code).filter((c) => !inSource.has(c))).toEqual([]);
  });

  it('gives each code the exit code its error class has', () => {
    const exitOf = new Map(docs.map((d) => [d.code, d.exit.split('/').map((e) => Number(e.trim()))]));
    const wrong = sites.filter((s) => s.exit !== undefined && exitOf.has(s.code) && !exitOf.get(s.code)!.includes(s.exit));
    expect(wrong.map((s) => `${s.code}: exit ${s.exit} at ${s.file}:${s.line}, docs say ${exitOf.get(s.code)!.join('/')}`)).toEqual([]);
  });

  it('lists each code once, with an exit code', () => {
    const seen = new Set<string>();
    const twice = docs.filter((d) => (seen.has(d.code) ? true : (seen.add(d.code), false))).map((d) => d.code);
    expect(twice).toEqual([]);
    expect(docs.filter((d) => !/^(1|2|3|130)( \/ (2|3|130))?$/.test(d.exit)).map((d) => `${d.code}: ${d.exit}`)).toEqual([]);
  });

  it('finds codes however they are passed (so the two checks above can fail)', () => {
    const files = new Set(sites.map((s) => `${s.code} ${s.file}`));
    // trailing argument of ValidationError / EnvironmentError / ConfigError
    expect(files).toContain('TUNNEL_TOKEN_INVALID src/deployment/validate.ts');
    expect(files).toContain('DOCKER_NOT_RUNNING src/docker/client.ts');
    expect(files).toContain('UPSTREAM_SYNTAX_INVALID src/deployment/validate.ts');
    // `code:` in UserError options, a helper's `code` parameter, a default parameter, a class field
    expect(files).toContain('CA_SLOTS_FULL src/ops/ca-rotate.ts');
    expect(files).toContain('CONFIG_KEY_UNKNOWN src/ops/proxy-settings.ts');
    expect(files).toContain('PROXY_CONFIG_INVALID src/deployment/proxy-config.ts');
    expect(files).toContain('PROBE_TLS_FAILED src/probe/errors.ts');
    // super(...) in a subclass of EnvironmentError
    expect(files).toContain('STACK_UNHEALTHY src/docker/health.ts');
    // both branches of a ternary
    expect(files).toContain('KEY_ENCRYPTED src/pki/keys.ts');
    expect(files).toContain('KEY_INVALID src/pki/keys.ts');
    // an environment variable name or errno code is not an error code
    expect([...files].filter((f) => /^(MCP_TUNNEL_DIR|TUNNEL_TOKEN|ENOENT|CERT_REJECTED) /.test(f))).toEqual([]);
  });
});
