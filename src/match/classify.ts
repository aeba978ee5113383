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
  /**
   * How far (log2 odds) the best candidate must lead the next one that also qualifies for it to
   * be matched rather than ambiguous: 10 bits is a thousand to one. Two records of one person
   * (an IIS duplicate) score alike and stay ambiguous. @defaultValue 10
   */
  margin?: number;
}

export interface Scored extends ScoredCandidate {
  pair: PairComparison;
  /** The candidate's household, to tell a namesake elsewhere from a sibling at home. */
  household?: { street: string; phone: string; given: string; family: string; birthDate: string };
}

const HOUSEHOLD_FIELDS = new Set(['zip', 'street', 'phone']);

/** The score without household fields: what sets apart two people who live together. */
function identityScore(c: Scored): number {
  return c.comparisons.reduce((s, x) => (HOUSEHOLD_FIELDS.has(x.field) ? s : s + x.weight), 0);
}

/** Living together, or twins (one surname and birth date, two given names) whose address the IIS may lack for one. */
function sameHousehold(a: Scored, b: Scored): boolean {
  const x = a.household;
  const y = b.household;
  if (!x || !y) return false;
  if ((x.street !== '' && x.street === y.street) || (x.phone !== '' && x.phone === y.phone)) return true;
  return x.family !== '' && x.family === y.family && x.birthDate !== '' && x.birthDate === y.birthDate && x.given !== y.given;
}

/**
 * Whether the best candidate leads the next qualifying one by the margin. Between members of one
 * household (twins, siblings) the address and phone say nothing about which one a row is — one
 * may simply lack an address in the IIS — so there only identity fields count.
 */
function leads(top: Scored, next: Scored, margin: number): boolean {
  if (!sameHousehold(top, next)) return top.score - next.score >= margin;
  // Twins called ISABELLA and ISABEL: the one whose name the row spells exactly is the one.
  if (spelledExactly(top) && !spelledExactly(next)) return true;
  return identityScore(top) - identityScore(next) >= margin;
}

function spelledExactly(c: Scored): boolean {
  return c.pair.given === 'exact' && !c.pair.swapped;
}

/** The qualifying candidate that leads every other by the margin, if one does. */
function leader(high: readonly Scored[], margin: number): Scored | undefined {
  return high.find((c) => high.every((o) => o === c || leads(c, o, margin)));
}

export const DEFAULT_MARGIN = 10;

/** How many candidates a possible/ambiguous row lists for the reviewer. */
export const MAX_LISTED_CANDIDATES = 5;

/**
 * Why a candidate may not be auto-matched, or null when it may. An automatic match needs given
 * name, family name and birth date to agree; an identifier both sides hold and agree on may stand
 * in for one of them that is missing (blank, malformed or a placeholder on either side), never
 * for two. Whatever fails here can still be offered to a person as `possible`.
 */
export function guardFailure(p: PairComparison): string | null {
  if (p.placeholderName) return 'placeholder_name';
  if (p.suffixConflict) return 'suffix_conflict';
  // Equal demographics and a different SSN or member id: parent and child, or twins.
  if (p.identifier === 'different') return 'identifier';
  // JOHN SMITH JR born in 2005 is not JOHN SMITH born in 1975, however close the digits.
  if (p.relative && p.birthDate !== 'exact') return 'relative';
  const idAgrees = p.identifier === 'agree';
  const missing: string[] = [];
  const strongNames = (p.given === 'exact' || p.given === 'nickname') && (p.family === 'exact' || p.family === 'compound');
  // A Jr/Sr pair differs only in birth date; so may a sibling born in another year. And among a
  // million patients a namesake born a digit away is common: a near-miss birth date needs the
  // names and something independent of them — the household or an identifier.
  if (p.birthDate === 'missing') missing.push('birth_date');
  else if (p.birthDate !== 'exact') {
    const nearMiss = p.birthDate === 'day_month_swap' || p.birthDate === 'typo';
    if (!(nearMiss && strongNames && (p.householdAgrees || idAgrees))) return 'birth_date';
  }
  // Twins share everything but the given name, so the given name must really agree.
  if (p.given === 'missing') missing.push('given_name');
  else if (!(p.given === 'exact' || p.given === 'nickname' || p.given === 'typo' || p.given === 'token' || p.given === 'middle_as_given')) {
    return 'given_name';
  }
  // A changed surname is accepted only with independent support from the household or an identifier.
  if (p.family === 'missing') missing.push('family_name');
  else if (p.family === 'different' && !(p.householdAgrees || idAgrees)) return 'family_name';
  if (missing.length > 1 || (missing.length === 1 && !idAgrees)) return missing[0]!;
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
  const lead = leader(high, t.margin ?? DEFAULT_MARGIN);
  if (lead) return { outcome: 'matched', patientId: lead.patientId, score: lead.score, candidates: [lead] };
  if (high.length > 1) return { outcome: 'ambiguous', score: best.score, candidates: high.slice(0, MAX_LISTED_CANDIDATES) };
  const possible = ranked.filter((c) => c.score >= t.possible);
  if (possible.length > 0) return { outcome: 'possible', score: best.score, candidates: possible.slice(0, MAX_LISTED_CANDIDATES) };
  return { outcome: 'no_match', score: best.score, candidates: [] };
}
