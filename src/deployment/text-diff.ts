/**
 * A line diff for showing a person what a re-run would change in a file they may have edited (init).
 * Files here are small (a few hundred lines), so the plain LCS table is fast enough and has no edge cases.
 */
export type DiffLine = { op: ' ' | '-' | '+'; text: string };

export function diffLines(before: string, after: string): DiffLine[] {
  const a = before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', text: a[i++]! });
    else out.push({ op: '+', text: b[j++]! });
  }
  while (i < n) out.push({ op: '-', text: a[i++]! });
  while (j < m) out.push({ op: '+', text: b[j++]! });
  return out;
}

/** Unified-style hunks with `context` unchanged lines around each change; empty when nothing changed. */
export function unifiedDiff(before: string, after: string, context = 2): string[] {
  const lines = diffLines(before, after);
  const changed = lines.map((l, k) => (l.op !== ' ' ? k : -1)).filter((k) => k >= 0);
  if (changed.length === 0) return [];
  const keep = new Set<number>();
  for (const k of changed) for (let c = Math.max(0, k - context); c <= Math.min(lines.length - 1, k + context); c++) keep.add(c);
  const out: string[] = [];
  let last = -1;
  for (let k = 0; k < lines.length; k++) {
    if (!keep.has(k)) continue;
    if (last !== -1 && k !== last + 1) out.push('  ...');
    out.push(`${lines[k]!.op} ${lines[k]!.text}`);
    last = k;
  }
  return out;
}
