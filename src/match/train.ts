/**
 * Estimating the model from the data itself, as Splink does: u from random pairs of index
 * patients (how often a level occurs by chance), m by expectation–maximisation over blocked pairs
 * of a partner's rows and their candidates, with u held fixed. Pure: the caller supplies pairs.
 */
import type { FieldComparison } from '../model/index.ts';
import { DEFAULT_LEVELS, type LevelOverrides, type Levels } from './model.ts';

/** Fields whose levels are trained; suffix conflicts and identifiers keep their set values. */
const TRAINED = ['given', 'family', 'birthDate', 'middle', 'sex', 'zip', 'street', 'phone'] as const;
type Trained = (typeof TRAINED)[number];

/** A pair as levels by field (swapped names count as their level: the swap is its own penalty). */
export type LevelVector = Partial<Record<Trained, string>>;

export function levelVector(comparisons: readonly FieldComparison[]): LevelVector {
  const v: LevelVector = {};
  for (const c of comparisons) {
    if ((TRAINED as readonly string[]).includes(c.field)) v[c.field as Trained] = c.level.replace(/^swapped:/, '');
  }
  return v;
}

const FLOOR = 1e-6;
/** Chance occurrences a level needs before its u is taken from the data. */
const MIN_U_COUNT = 20;

/** u: the share of each level among random pairs, per field, ignoring pairs where it is missing. */
export function estimateU(vectors: readonly LevelVector[]): LevelOverrides {
  const out: Record<string, Record<string, { u: number }>> = {};
  for (const field of TRAINED) {
    const counts = new Map<string, number>();
    let n = 0;
    for (const v of vectors) {
      const level = v[field];
      if (level === undefined) continue;
      counts.set(level, (counts.get(level) ?? 0) + 1);
      n++;
    }
    if (n === 0) continue;
    out[field] = {};
    for (const level of Object.keys(DEFAULT_LEVELS[field])) {
      // Too few chance occurrences say nothing about u (a roster's initials never occur among the
      // index's own full names): such levels keep their set u.
      const count = counts.get(level) ?? 0;
      if (count >= MIN_U_COUNT) out[field][level] = { u: count / n };
    }
  }
  return out as LevelOverrides;
}

export interface EmResult {
  m: LevelOverrides;
  /** Estimated share of blocked pairs that are matches. */
  lambda: number;
  iterations: number;
}

/**
 * Pseudo-pairs of the starting m added to every field's counts: a level a small file never shows
 * stays near its prior instead of collapsing to the floor (a weight of −10 for one unseen typo).
 */
const PRIOR_PAIRS = 50;

/** m by EM over blocked pairs, u fixed. Starts from `levels`' m; stops when m moves < 1e-5. */
export function estimateM(vectors: readonly LevelVector[], levels: Levels, maxIterations = 50): EmResult {
  const fields = TRAINED;
  const m = Object.fromEntries(fields.map((f) => [f, Object.fromEntries(Object.entries(levels[f]).map(([l, x]) => [l, (x as { m: number }).m]))])) as Record<Trained, Record<string, number>>;
  const prior = structuredClone(m);
  const u = Object.fromEntries(fields.map((f) => [f, Object.fromEntries(Object.entries(levels[f]).map(([l, x]) => [l, (x as { u: number }).u]))])) as Record<Trained, Record<string, number>>;
  let lambda = 0.1;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const sums = Object.fromEntries(fields.map((f) => [f, new Map<string, number>()])) as Record<Trained, Map<string, number>>;
    const totals = Object.fromEntries(fields.map((f) => [f, 0])) as Record<Trained, number>;
    let pSum = 0;
    for (const v of vectors) {
      let llr = Math.log(lambda / (1 - lambda));
      for (const f of fields) {
        const level = v[f];
        if (level === undefined || m[f][level] === undefined) continue;
        llr += Math.log(m[f][level]! / u[f][level]!);
      }
      const p = 1 / (1 + Math.exp(-llr));
      pSum += p;
      for (const f of fields) {
        const level = v[f];
        if (level === undefined || m[f][level] === undefined) continue;
        sums[f].set(level, (sums[f].get(level) ?? 0) + p);
        totals[f] += p;
      }
    }
    let moved = 0;
    for (const f of fields) {
      for (const level of Object.keys(m[f])) {
        const next = Math.max(((sums[f].get(level) ?? 0) + PRIOR_PAIRS * prior[f][level]!) / (totals[f] + PRIOR_PAIRS), FLOOR);
        moved = Math.max(moved, Math.abs(next - m[f][level]!));
        m[f][level] = next;
      }
    }
    lambda = Math.min(Math.max(pSum / vectors.length, FLOOR), 1 - FLOOR);
    if (moved < 1e-5) break;
  }
  const out = Object.fromEntries(fields.map((f) => [f, Object.fromEntries(Object.entries(m[f]).map(([l, x]) => [l, { m: x }]))]));
  return { m: out as LevelOverrides, lambda, iterations };
}
