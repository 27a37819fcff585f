import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Finds the stable error codes written in src/ by reading the source text (no import, no subprocess):
 *  - `code: 'X'`, `code = 'X'` (class fields, default parameters; not a local `const code = ...`) and
 *    `.code ?? 'X'`, with every literal of the expression (a ternary gives both branches);
 *  - the code argument of `new ValidationError(...)` (3rd), `new ConfigError(...)` (3rd) and
 *    `new EnvironmentError(...)` (4th), and of `super(...)` in a class that extends one of them;
 *  - the code argument of any function in the same file declared with a parameter named `code`
 *    (helpers such as `usage(message, hint, code)`), at that parameter's position.
 * A code is a quoted SCREAMING_SNAKE literal with at least one underscore, which keeps errno codes
 * (ENOENT, ETIMEDOUT) out.
 */
export interface CodeSite {
  code: string;
  file: string;
  line: number;
  /** The exit code the error class implies (ValidationError/ConfigError 2, EnvironmentError 3), when the site names the class. */
  exit?: number;
}

const CODE_LITERAL = /'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)'/g;
const CONSTRUCTOR_CODE_INDEX: Record<string, number> = { ValidationError: 2, ConfigError: 2, EnvironmentError: 3 };
const CONSTRUCTOR_EXIT: Record<string, number> = { ValidationError: 2, ConfigError: 2, EnvironmentError: 3 };

export function listSourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

/** The text with comments blanked out (same length, so offsets and line numbers survive). */
export function blankComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      const end = skipString(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function skipString(text: string, start: number): number {
  const quote = text[start];
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (quote === '`' && c === '$' && text[i + 1] === '{') {
      i = closing(text, i + 1) + 1;
      continue;
    }
    if (c === quote) return i + 1;
    if (quote !== '`' && c === '\n') return i; // a regex literal with a lone quote: stop at the line end
    i++;
  }
  return i;
}

/** Index of the bracket that closes the one at `open`. */
function closing(text: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = skipString(text, i);
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) return i;
    }
    i++;
  }
  return text.length;
}

/** Top-level comma-separated pieces of text[start, end). */
function splitArgs(text: string, start: number, end: number): string[] {
  const out: string[] = [];
  let depth = 0;
  let from = start;
  let i = start;
  while (i < end) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = skipString(text, i);
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(from, i));
      from = i + 1;
    }
    i++;
  }
  if (text.slice(from, end).trim()) out.push(text.slice(from, end));
  return out;
}

/** The code literals of an expression; a literal it compares against (`variable === 'TUNNEL_TOKEN'`) is not one. */
function literals(expr: string): string[] {
  return [...expr.matchAll(CODE_LITERAL)].filter((m) => !/[=!]==?\s*$/.test(expr.slice(0, m.index))).map((m) => m[1]!);
}

/** Helpers of this file that take a `code` parameter: name -> its position. */
function codeHelpers(text: string): Map<string, number> {
  const helpers = new Map<string, number>();
  const decl = /\bfunction\s+(\w+)\s*(?:<[^>(]*>)?\s*\(|\b(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?\(/g;
  for (const m of text.matchAll(decl)) {
    const open = m.index + m[0].length - 1;
    const params = splitArgs(text, open + 1, closing(text, open));
    const at = params.findIndex((p) => /^\s*code\s*[?:=]/.test(p) || p.trim() === 'code');
    if (at >= 0) helpers.set((m[1] ?? m[2])!, at);
  }
  return helpers;
}

/** For `super(...)` in a subclass of ValidationError/ConfigError/EnvironmentError: the parent's code position. */
function parentClass(text: string, at: number): string | undefined {
  return [...text.slice(0, at).matchAll(/\bclass\s+\w+\s+extends\s+(\w+)/g)].at(-1)?.[1];
}

export function scanErrorCodes(srcDir: string): CodeSite[] {
  const sites: CodeSite[] = [];
  for (const file of listSourceFiles(srcDir)) {
    const text = blankComments(readFileSync(file, 'utf8'));
    const rel = path.relative(path.dirname(srcDir), file);
    const add = (codes: string[], offset: number, exit?: number): void => {
      const line = text.slice(0, offset).split('\n').length;
      for (const code of codes) sites.push({ code, file: rel, line, ...(exit === undefined ? {} : { exit }) });
    };

    for (const m of text.matchAll(/(?<!\b(?:const|let|var)\s+)\bcode\s*(?::\s*string\s*=|[:=](?!=)|\?\?)([^,;}\n)]*(?:\([^)\n]*\)[^,;}\n)]*)*)/g)) {
      add(literals(m[1]!), m.index);
    }

    const callees = new Map<string, number>([...codeHelpers(text)]);
    const call = /(?<![.\w])(new\s+)?(\w+)\s*\(/g;
    for (const m of text.matchAll(call)) {
      const name = m[2]!;
      const cls = m[1] ? name : name === 'super' ? parentClass(text, m.index) : undefined;
      const index = cls !== undefined ? CONSTRUCTOR_CODE_INDEX[cls] : callees.get(name);
      if (index === undefined) continue;
      const before = text.slice(Math.max(0, m.index - 12), m.index);
      if (/function\s+$/.test(before)) continue; // the declaration itself
      const open = m.index + m[0].length - 1;
      const args = splitArgs(text, open + 1, closing(text, open));
      const arg = args[index];
      if (arg !== undefined) add(literals(arg), m.index, cls === undefined ? undefined : CONSTRUCTOR_EXIT[cls]);
    }
  }
  return sites;
}

/**
 * Every `new ValidationError|ConfigError|EnvironmentError|UserError(...)` (and `super(...)` in their
 * subclasses) that passes no code at all: `file:line` of each. A code given as a variable counts.
 */
export function scanUncodedErrors(srcDir: string): string[] {
  const out: string[] = [];
  for (const file of listSourceFiles(srcDir)) {
    const text = blankComments(readFileSync(file, 'utf8'));
    const rel = path.relative(path.dirname(srcDir), file);
    for (const m of text.matchAll(/(?<![.\w])(?:new\s+(ValidationError|ConfigError|EnvironmentError|UserError)|(super))\s*\(/g)) {
      const parent = m[1] ?? parentClass(text, m.index);
      if (!parent || !(parent in CONSTRUCTOR_CODE_INDEX || parent === 'UserError')) continue;
      const open = m.index + m[0].length - 1;
      const args = splitArgs(text, open + 1, closing(text, open));
      const coded = parent === 'UserError' ? /\bcode\b/.test(args[1] ?? '') : args.length > CONSTRUCTOR_CODE_INDEX[parent]!;
      if (!coded) out.push(`${rel}:${text.slice(0, m.index).split('\n').length}`);
    }
  }
  return out;
}

/** Codes named in docs/errors.md: the first cell of a table row, in backticks. */
export function documentedCodes(markdown: string): Array<{ code: string; exit: string }> {
  const rows: Array<{ code: string; exit: string }> = [];
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|/.exec(line);
    if (m) rows.push({ code: m[1]!, exit: m[2]! });
  }
  return rows;
}
