// How config problems are shown: one line per location, in file order, and a "did you
// mean" for a misspelt key. An operator fixes the first line first, so it has to be the
// real cause, and a wall of follow-on errors for one typo hides it.
import type { z } from 'zod';

export interface Problem {
  readonly line: number;
  readonly col: number;
  readonly text: string;
}

/** The first problem at each location, sorted by line then column, as `file:line:col: message`. */
export function formatProblems(file: string, problems: readonly Problem[]): string[] {
  const seen = new Set<string>();
  const kept: Problem[] = [];
  for (const problem of problems) {
    const where = `${problem.line}:${problem.col}`;
    if (seen.has(where)) continue;
    seen.add(where);
    kept.push(problem);
  }
  kept.sort((a, b) => a.line - b.line || a.col - b.col);
  return kept.map((p) => `${file}:${p.line}:${p.col}: ${p.text}`);
}

/** The keys a (possibly wrapped) object schema accepts at `path`; empty if there is none. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: unknown = unwrap(schema);
  for (const segment of path) {
    const def = defOf(node);
    if (!def) return [];
    node = unwrap(typeof segment === 'number' ? def.element : (def.shape as Record<string, unknown> | undefined)?.[String(segment)]);
  }
  const shape = defOf(node)?.shape as Record<string, unknown> | undefined;
  return shape ? Object.keys(shape) : [];
}

/** The closest candidate within a small edit distance (a typo, not a different word). */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const limit = word.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = candidate.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

type Def = Record<string, unknown> & { type?: string };

function defOf(node: unknown): Def | undefined {
  return (node as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

/** Looks through optional/default/prefault wrappers and transforms to the schema underneath. */
function unwrap(node: unknown): unknown {
  for (let def = defOf(node); def; def = defOf(node)) {
    if (def.innerType) node = def.innerType;
    else if (def.type === 'pipe') node = def.in;
    else return node;
  }
  return node;
}
