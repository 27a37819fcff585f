import { isDeepStrictEqual } from 'node:util';
import YAML, { isMap, isScalar, Scalar, type Document } from 'yaml';

/**
 * Edits of a YAML file a person also edits by hand: comments, quoting, key order and blank lines stay.
 * A scalar that already exists is replaced in place in the text (every other byte kept); a new key or
 * a removed one goes through the yaml Document API, which keeps comments and order. Either way the
 * result must mean exactly what the Document edit means, or the Document's rendering is used.
 */
export type YamlPath = readonly string[];

export interface YamlEdit {
  text: string;
  /** Every byte outside the edited value kept (false: re-rendered by the yaml library). */
  preserved: boolean;
}

export function parseYamlDocument(text: string): Document.Parsed | undefined {
  const doc = YAML.parseDocument(text);
  return doc.errors.length > 0 ? undefined : doc;
}

function render(value: unknown, like: unknown): string {
  if (typeof value !== 'string') return JSON.stringify(value);
  const type = isScalar(like) ? like.type : undefined;
  if (type === Scalar.QUOTE_SINGLE && !value.includes("'")) return `'${value}'`;
  if (type === Scalar.PLAIN) {
    // Plain only when YAML reads it back as the same string.
    try {
      if (YAML.parse(`k: ${value}`)?.k === value && !/[#\n]/.test(value)) return value;
    } catch {
      // quoted below
    }
  }
  return JSON.stringify(value);
}

function settle(doc: Document.Parsed, spliced: string | undefined): YamlEdit {
  const want = doc.toJS();
  if (spliced !== undefined) {
    try {
      if (isDeepStrictEqual(YAML.parse(spliced), want)) return { text: spliced, preserved: true };
    } catch {
      // fall through
    }
  }
  return { text: doc.toString(), preserved: false };
}

/** A new string value quoted the way the other values of its map are (a route among quoted routes). */
function styledLikeSiblings(doc: Document.Parsed, path: YamlPath, value: string): Scalar {
  const scalar = new Scalar(value);
  const parent = doc.getIn(path.slice(0, -1), true);
  const sibling = isMap(parent) ? parent.items.map((p) => p.value).find((v) => isScalar(v) && typeof v.value === 'string') : undefined;
  if (isScalar(sibling) && (sibling.type === Scalar.QUOTE_DOUBLE || sibling.type === Scalar.QUOTE_SINGLE)) scalar.type = sibling.type;
  return scalar;
}

/** Sets PATH to VALUE (a scalar, or a list/map for the Document path). */
export function setYamlValue(text: string, doc: Document.Parsed, path: YamlPath, value: unknown): YamlEdit {
  const node = doc.getIn(path, true);
  const expected = doc.clone() as Document.Parsed;
  expected.setIn(path, isScalar(node) || typeof value !== 'string' ? value : styledLikeSiblings(doc, path, value));
  let spliced: string | undefined;
  if (isScalar(node) && node.range && (value === null || typeof value !== 'object')) {
    const [start, end] = node.range;
    spliced = `${text.slice(0, start)}${render(value, node)}${text.slice(end)}`;
  }
  return settle(expected, spliced);
}

/** Removes PATH (and a parent map it leaves empty). */
export function deleteYamlValue(doc: Document.Parsed, path: YamlPath): YamlEdit {
  const expected = doc.clone() as Document.Parsed;
  expected.deleteIn(path);
  for (let i = path.length - 1; i > 0; i--) {
    const parent = expected.getIn(path.slice(0, i), true);
    if (isMap(parent) && parent.items.length === 0) expected.deleteIn(path.slice(0, i));
    else break;
  }
  return settle(expected, undefined);
}

export function hasYamlValue(doc: Document.Parsed, path: YamlPath): boolean {
  return doc.hasIn(path);
}
