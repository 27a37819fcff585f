import fs from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import { REPO_ROOT, type CliResult } from './cli.js';

/** The JSON Schemas of docs/json.md, keyed by report name (each `## name` section's json block). */
export function jsonSchemas(): Map<string, object> {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'docs/json.md'), 'utf8');
  const out = new Map<string, object>();
  for (const m of text.matchAll(/^## (\S+)\n[\s\S]*?```json\n([\s\S]*?)\n```/gm)) out.set(m[1]!, JSON.parse(m[2]!) as object);
  return out;
}

/** Keys of our own objects are camelCase; the Messages API request in connect keeps the API's names. */
export function nonCamelKeys(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => nonCamelKeys(v, `${at}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const here = `${at}.${k}`;
    if (here === '.messagesApi.body' || here === '.messagesApi.headers' || here === '.counts') return [];
    return [...(/^[a-z][a-zA-Z0-9]*$/.test(k) ? [] : [here]), ...nonCamelKeys(v, here)];
  });
}

const ajv = new Ajv2020({ allErrors: true, strict: false });

/** stdout is exactly one JSON document, valid against docs/json.md's schema for `report`, schemaVersion and report first. */
export function expectReport(report: string, r: CliResult): Record<string, unknown> {
  const schema = jsonSchemas().get(report);
  expect(schema, `docs/json.md has no schema for ${report}`).toBeDefined();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`${report}: stdout is not one JSON document (exit ${r.exitCode}):\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
  const validate = ajv.compile(schema!);
  expect(validate(json) ? [] : validate.errors, report).toEqual([]);
  expect(Object.keys(json).slice(0, 2)).toEqual(['schemaVersion', 'report']);
  expect(json.report).toBe(report);
  expect(nonCamelKeys(json), report).toEqual([]);
  return json;
}

/** stdout of a stream (logs --json) is NDJSON: every line one JSON object, valid against docs/json.md's record schema. */
export function expectRecords(name: string, r: CliResult): Array<Record<string, unknown>> {
  const schema = jsonSchemas().get(name);
  expect(schema, `docs/json.md has no schema for ${name}`).toBeDefined();
  const validate = ajv.compile(schema!);
  // runCli (execa) strips the last newline; every other line is one whole record.
  const lines = r.stdout.split('\n');
  return lines.map((line, i) => {
    const record = JSON.parse(line) as Record<string, unknown>;
    expect(validate(record) ? [] : validate.errors, `${name} record ${i}: ${line}`).toEqual([]);
    expect(nonCamelKeys(record), name).toEqual([]);
    return record;
  });
}
