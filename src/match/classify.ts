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

/** What siblings share: where they live, and their mother (her maiden name is no twin's own). */
const HOUSEHOLD_FIELDS = new Set(['zip', 'street', 'phone', 'mothersMaiden']);

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

/**
 * Whether a person should be shown this candidate for a row that is not matched: someone the row
 * may be, not its household (a sibling at the same address, with another given name and birth
 * date, scores high on the address and phone alone) nor a namesake (among a million patients
 * every common name has several, born on other dates, living elsewhere; and many share a given
 * name and a birthday): a candidate that disagrees on the surname or the birth date must share the
 * ZIP, the street or the phone, or the identifier.
 */
function worthReview(c: Scored): boolean {
  if (identityScore(c) < 0) return false;
  const p = c.pair;
  // Another given name with the surname and birth date agreeing is how twins look, and rare by
  // chance: that is worth a person's look wherever they live.
  const disagrees = p.birthDate === 'different' || p.family === 'different';
  if (!disagrees || p.identifier === 'agree') return true;
  return c.comparisons.some((x) => (x.field === 'zip' && x.level === 'agree') || (x.field === 'street' && x.level !== 'different') || (x.field === 'phone' && x.level === 'agree'));
}

/** The qualifying candidate that leads every other by the margin, if one does. */
function leader(high: readonly Scored[], margin: number): Scored | undefined {
  return high.find((c) => high.every((o) => o === c || leads(c, o, margin)));
}

export const DEFAULT_MARGIN = 10;

/** How many candidates a possible/ambiguous row lists for the reviewer. */
export const MAX_LISTED_CANDIDATES = 5;

/** Birth years this far apart are another generation: an identifier shared across them is a subscriber's or a parent's. */
export const GENERATION_YEARS = 15;

type Core = 'given_name' | 'family_name' | 'birth_date';

/**
 * Whether a candidate may be auto-matched: the guard it fails, and the one core field an agreeing
 * identifier stands in for. An automatic match needs given name, family name and birth date to
 * agree. An identifier both sides hold and agree on may stand in for ONE of them that is missing
 * (blank, malformed or a placeholder on either side), weak (a given initial), or, for the birth
 * date and the surname, different — never for two, never for a birth date a generation away, never
 * for another given name, and (see `contested`) never against another candidate that does agree
 * on that field.
 */
function assess(p: PairComparison): { failure: string | null; standIn: Core | null } {
  const fail = (failure: string) => ({ failure, standIn: null });
  if (p.placeholderName) return fail('placeholder_name');
  if (p.suffixConflict) return fail('suffix_conflict');
  // Both sides name a birth order and they differ: the co-twin (or triplet), whatever the names say.
  if (p.birthOrder === 'different') return fail('birth_order');
  // Equal demographics and a different SSN or member id: parent and child, or twins. One digit
  // off is a likely slip, but twins are often issued consecutive numbers: it is no evidence for a
  // name that does not agree exactly.
  if (p.identifier === 'different') return fail('identifier');
  if (p.identifier === 'typo' && p.given !== 'exact') return fail('identifier');
  // JOHN SMITH JR born in 2005 is not JOHN SMITH born in 1975, however close the digits.
  if (p.relative && p.birthDate !== 'exact') return fail('relative');
  const idAgrees = p.identifier === 'agree';
  const short: Core[] = [];
  const strongNames = (p.given === 'exact' || p.given === 'nickname') && (p.family === 'exact' || p.family === 'compound');
  // A Jr/Sr pair differs only in birth date; so may a sibling born in another year. And among a
  // million patients a namesake born a digit away is common: a near-miss birth date needs the
  // names and something independent of them — the household or an identifier.
  if (p.birthDate !== 'exact') {
    const nearMiss = p.birthDate === 'day_month_swap' || p.birthDate === 'typo';
    if (nearMiss && strongNames && (p.householdAgrees || idAgrees)) {
      // accepted as a keying slip
    } else if (p.birthDate === 'missing' || (idAgrees && p.birthYearGap < GENERATION_YEARS)) short.push('birth_date');
    else return fail('birth_date');
  }
  // Twins share everything but the given name, so the given name must really agree: an identifier
  // stands in only for one that is missing or merely weak (an initial, a name cut short), never
  // for another name — the row may be the co-twin the index does not hold yet.
  if (!(p.given === 'exact' || p.given === 'nickname' || p.given === 'typo' || p.given === 'token' || p.given === 'middle_as_given')) {
    if (p.given === 'missing' || (idAgrees && (p.given === 'initial' || p.given === 'prefix'))) short.push('given_name');
    else return fail('given_name');
  }
  // A changed surname is accepted with independent support from the household; the identifier
  // alone may carry it, as its one stand-in.
  if (p.family === 'missing') short.push('family_name');
  else if (p.family === 'different' && !p.householdAgrees) {
    if (idAgrees) short.push('family_name');
    else return fail('family_name');
  }
  if (short.length === 0) return { failure: null, standIn: null };
  if (!idAgrees || short.length > 1) return fail(short[0]!);
  return { failure: null, standIn: short[0]! };
}

/** Why a candidate may not be auto-matched, or null when it may. Whatever fails can still be offered to a person as `possible`. */
export function guardFailure(p: PairComparison): string | null {
  return assess(p).failure;
}

/**
 * An identifier standing in for a disagreeing given name or birth date is contested when another
 * candidate agrees on that very field — the row's twin or sibling (same surname and birth date)
 * whose given name the row spells, or a relative of the same name born on the row's birth date:
 * the row may be that person carrying a family member's id, and the row is ambiguous.
 */
function contested(c: Scored, others: readonly Scored[], t: Thresholds): boolean {
  const field = assess(c.pair).standIn;
  if (field === 'given_name') {
    return others.some((o) => o !== c && o.score >= t.possible && (o.pair.given === 'exact' || o.pair.given === 'nickname') && o.household?.family === c.household?.family && o.household?.birthDate === c.household?.birthDate);
  }
  if (field === 'birth_date') {
    return others.some((o) => o !== c && o.score >= t.possible && o.pair.birthDate === 'exact' && o.pair.given !== 'different' && o.pair.given !== 'missing');
  }
  return false;
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
  // The row names one family member and carries another's identifier: a person must decide.
  if (high.some((c) => contested(c, ranked, t))) return { outcome: 'ambiguous', score: best.score, candidates: ranked.filter((c) => c.score >= t.possible).slice(0, MAX_LISTED_CANDIDATES) };
  const lead = leader(high, t.margin ?? DEFAULT_MARGIN);
  // The row's identifier belongs to another of its candidates (a twin's SSN on this twin's row, a
  // subscriber's on a dependent's): the row contradicts itself, and a person must decide.
  const idElsewhere = lead && lead.pair.identifier !== 'agree' && ranked.some((o) => o !== lead && o.pair.identifier === 'agree' && o.score >= t.possible);
  if (lead && idElsewhere) return { outcome: 'ambiguous', score: best.score, candidates: ranked.filter((c) => c.score >= t.possible).slice(0, MAX_LISTED_CANDIDATES) };
  if (lead) return { outcome: 'matched', patientId: lead.patientId, score: lead.score, candidates: [lead] };
  if (high.length > 1) return { outcome: 'ambiguous', score: best.score, candidates: high.slice(0, MAX_LISTED_CANDIDATES) };
  const possible = ranked.filter((c) => c.score >= t.possible && worthReview(c));
  if (possible.length > 0) return { outcome: 'possible', score: best.score, candidates: possible.slice(0, MAX_LISTED_CANDIDATES) };
  return { outcome: 'no_match', score: best.score, candidates: [] };
}
