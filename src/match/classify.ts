/**
 * From scored candidates to one of the five outcomes. The weight sum alone cannot keep twins or
 * a Jr/Sr pair apart — they share surname, address and phone, so household evidence swamps one
 * disagreeing field — so an auto-match also has to pass identity guards on name and birth date.
 * A candidate that fails a guard can still be offered for review as `possible`.
 */
import type { Outcome, ScoredCandidate } from '../model/index.ts';
import type { PairComparison } from './compare.ts';

export interface Thresholds {
  /** Minimum score (log2 odds) for an auto-match. */
  match: number;
  /** Minimum score to be offered for review. */
  possible: number;
}

export interface Scored extends ScoredCandidate {
  pair: PairComparison;
}

/** How many candidates a possible/ambiguous row lists for the reviewer. */
export const MAX_LISTED_CANDIDATES = 5;

/** Why a candidate may not be auto-matched, or null when it may. */
export function guardFailure(p: PairComparison): string | null {
  if (p.suffixConflict) return 'suffix_conflict';
  const strongNames = (p.given === 'exact' || p.given === 'nickname') && (p.family === 'exact' || p.family === 'compound');
  // A Jr/Sr pair differs only in birth date; so may a sibling born in another year.
  if (p.birthDate !== 'exact' && !(strongNames && (p.birthDate === 'day_month_swap' || p.birthDate === 'typo'))) {
    return 'birth_date';
  }
  // Twins share everything but the given name, so the given name must really agree.
  if (!(p.given === 'exact' || p.given === 'nickname' || p.given === 'typo' || p.given === 'token' || p.given === 'middle_as_given')) {
    return 'given_name';
  }
  // A changed surname is accepted only with independent support from the household or an identifier.
  if (p.family === 'different' || p.family === 'missing') {
    if (!(p.householdAgrees || p.identifier === 'agree')) return 'family_name';
  }
  if (p.identifier === 'different' && p.given !== 'exact') return 'identifier';
  return null;
}

export interface Classification {
  outcome: Exclude<Outcome, 'invalid'>;
  patientId?: string;
  score?: number;
  candidates: Scored[];
  /** The outcome follows a person's earlier decision on this record. */
  reviewed?: { by: string; at: string };
}

export function classify(scored: Scored[], t: Thresholds): Classification {
  if (scored.length === 0) return { outcome: 'no_match', candidates: [] };
  const ranked = [...scored].sort((a, b) => b.score - a.score || a.patientId.localeCompare(b.patientId));
  const best = ranked[0]!;
  const high = ranked.filter((c) => c.score >= t.match && guardFailure(c.pair) === null);
  if (high.length === 1) return { outcome: 'matched', patientId: high[0]!.patientId, score: high[0]!.score, candidates: high };
  if (high.length > 1) return { outcome: 'ambiguous', score: best.score, candidates: high.slice(0, MAX_LISTED_CANDIDATES) };
  const possible = ranked.filter((c) => c.score >= t.possible);
  if (possible.length > 0) return { outcome: 'possible', score: best.score, candidates: possible.slice(0, MAX_LISTED_CANDIDATES) };
  return { outcome: 'no_match', score: best.score, candidates: [] };
}
