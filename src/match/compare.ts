/**
 * Field-by-field comparison of a roster row with one candidate patient. Each field lands on one
 * comparison level; the level's weight is its Fellegi–Sunter log2 Bayes factor. Pure functions.
 */
import type { FieldComparison, IndexPatient, NameFrequencies, PersonFields, RowIdentifier } from '../model/index.ts';
import { areNicknames, houseNumber, placeholderNames, readIdentifier, type PlaceholderNames } from '../normalise/index.ts';
import { DEFAULT_LEVELS, termFrequencyU, weight, type Level, type Levels } from './model.ts';
import { jaroWinkler, oneEditApart, phonetic } from './string-metrics.ts';

export interface ScoringContext {
  freq: NameFrequencies;
  /** The model's m and u per comparison level. @defaultValue DEFAULT_LEVELS */
  levels?: Levels;
}

type GivenLevel = keyof typeof DEFAULT_LEVELS.given;
type FamilyLevel = keyof typeof DEFAULT_LEVELS.family;
type DobLevel = keyof typeof DEFAULT_LEVELS.birthDate;

export interface PairComparison {
  comparisons: FieldComparison[];
  score: number;
  given: GivenLevel | 'missing';
  family: FamilyLevel | 'missing';
  birthDate: DobLevel | 'missing';
  swapped: boolean;
  suffixConflict: boolean;
  /** A generational suffix on either side and birth years in different decades: father and son. */
  relative: boolean;
  /** Years between the two birth dates (Infinity when either is missing). */
  birthYearGap: number;
  /** The row's name is a placeholder (BABY BOY, UNKNOWN): never auto-matched. */
  placeholderName: boolean;
  householdAgrees: boolean;
  /**
   * Over every identifier system both sides hold: `different` when any system disagrees (it
   * outranks agreement elsewhere), else the strongest agreement found.
   */
  identifier: 'agree' | 'last4' | 'typo' | 'different' | 'missing';
}

/** What matching needs of a roster row: a NormalisedRow of kind `valid` is one. */
export interface MatchRow {
  person: PersonFields;
  identifiers: readonly RowIdentifier[];
  placeholder?: PlaceholderNames | undefined;
}

const TYPO_JW = 0.92;
const PHONETIC_JW = 0.85;

export function compareGiven(a: string, b: string, middleOfB: string): GivenLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  if (a === b) return 'exact';
  // MARY ANN and MARYANN, ANNE-MARIE and ANNEMARIE: one name, spaced two ways.
  if ((a.includes(' ') || b.includes(' ')) && a.replaceAll(' ', '') === b.replaceAll(' ', '')) return 'exact';
  if (areNicknames(a, b)) return 'nickname';
  const jw = jaroWinkler(a, b);
  if (isTypo(a, b, jw)) return 'typo';
  const a0 = firstToken(a);
  const b0 = firstToken(b);
  if (a0 === b0 || (a0.length > 1 && b0.length > 1 && areNicknames(a0, b0))) return 'token';
  if (middleOfB !== '' && (a === middleOfB || a0 === firstToken(middleOfB))) return 'middle_as_given';
  if (a.length === 1 || b.length === 1) return a[0] === b[0] ? 'initial' : 'different';
  // A name cut short by a field width or a clerk (MI for MINNIE, CHRIS for CHRISTINE): weaker
  // than a nickname, since one prefix fits many names.
  if (a.length < b.length ? b.startsWith(a) : a.startsWith(b)) return 'prefix';
  if (jw >= PHONETIC_JW || phonetic(a) === phonetic(b)) return 'phonetic';
  return 'different';
}

export function compareFamily(a: string, b: string): FamilyLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  if (a === b) return 'exact';
  const ra = a.replaceAll(' ', '');
  const rb = b.replaceAll(' ', '');
  if (ra === rb) return 'exact';
  if (sharesToken(a, b)) return 'compound';
  const jw = jaroWinkler(ra, rb);
  if (isTypo(ra, rb, jw)) return 'typo';
  if (jw >= PHONETIC_JW || phonetic(ra) === phonetic(rb)) return 'phonetic';
  return 'different';
}

export function compareBirthDate(a: string, b: string): DobLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  if (a === b) return 'exact';
  // YYYY-MM-DD: a partner that confused the two orders gives the same year with month and day crossed.
  if (a.slice(0, 4) === b.slice(0, 4) && a.slice(5, 7) === b.slice(8, 10) && a.slice(8, 10) === b.slice(5, 7)) {
    return 'day_month_swap';
  }
  if (oneEditApart(a.replaceAll('-', ''), b.replaceAll('-', ''))) return 'typo';
  return 'different';
}

/** @param jw the pair's Jaro-Winkler similarity, which the caller needs again. */
function isTypo(a: string, b: string, jw: number): boolean {
  return jw >= TYPO_JW || (Math.min(a.length, b.length) >= 4 && oneEditApart(a, b));
}

function sharesToken(a: string, b: string): boolean {
  // One token each (most names): a shared token counts only with a compound name on one side.
  if (!a.includes(' ') && !b.includes(' ')) return false;
  const ta = a.split(' ').filter((t) => t.length > 2);
  if (ta.length === 0) return false;
  const tb = new Set(b.split(' ').filter((t) => t.length > 2));
  return ta.some((t) => tb.has(t)) && (ta.length > 1 || tb.size > 1);
}

function firstToken(s: string): string {
  const i = s.indexOf(' ');
  return i < 0 ? s : s.slice(0, i);
}

/** Compares a row with a candidate: every field's level and weight, and the facts the guards use. */
export function comparePair(row: MatchRow, cand: IndexPatient, ctx: ScoringContext): PairComparison {
  const r = row.person;
  const c = cand.person;
  const L = ctx.levels ?? DEFAULT_LEVELS;
  const comparisons: FieldComparison[] = [];
  const add = (field: string, level: string, w: number) => comparisons.push({ field, level, weight: round2(w) });

  // A placeholder agrees with nothing: it is compared as if blank, on either side.
  const rp = row.placeholder;
  const cp = placeholderNames(c.given, c.family);
  const rowNames = { given: rp?.given ? '' : r.given, family: rp?.family ? '' : r.family };
  const candNames = cp.given || cp.family ? { ...c, given: cp.given ? '' : c.given, family: cp.family ? '' : c.family } : c;

  // Names, in both orientations: the better one stands, so a first/last swap costs only a little.
  const straight = nameWeights(rowNames.given, rowNames.family, candNames, ctx);
  const crossed = nameWeights(rowNames.family, rowNames.given, candNames, ctx);
  const swapped =
    crossed.total - SWAP_PENALTY > straight.total && crossed.given !== 'different' && crossed.family !== 'different' && !(crossed.given === 'missing' && crossed.family === 'missing');
  const names = swapped ? crossed : straight;
  add('given', swapped ? `swapped:${names.given}` : names.given, names.givenWeight - (swapped ? SWAP_PENALTY / 2 : 0));
  add('family', swapped ? `swapped:${names.family}` : names.family, names.familyWeight - (swapped ? SWAP_PENALTY / 2 : 0));

  const dob = compareBirthDate(r.birthDate, c.birthDate);
  add('birthDate', dob, dob === 'missing' ? 0 : weight(L.birthDate[dob]));

  if (r.middle !== '' && c.middle !== '') {
    const agree = r.middle[0] === c.middle[0] && (r.middle.length === 1 || c.middle.length === 1 || jaroWinkler(r.middle, c.middle) >= PHONETIC_JW);
    add('middle', agree ? 'agree' : 'different', weight(L.middle[agree ? 'agree' : 'different']));
  }
  const suffixConflict = r.suffix !== '' && c.suffix !== '' && r.suffix !== c.suffix;
  if (suffixConflict) add('suffix', 'conflict', weight(L.suffix.conflict));
  const relative = (r.suffix !== '' || c.suffix !== '') && r.birthDate !== '' && c.birthDate !== '' && r.birthDate.slice(0, 3) !== c.birthDate.slice(0, 3);

  if (isKnownSex(r.sex) && isKnownSex(c.sex)) {
    const level = r.sex === c.sex ? 'agree' : 'different';
    add('sex', level, weight(L.sex[level]));
  }
  if (r.zip !== '' && c.zip !== '') {
    const level = r.zip === c.zip ? 'agree' : 'different';
    add('zip', level, weight(L.zip[level]));
  }
  let streetExact = false;
  if (r.street !== '' && c.street !== '') {
    streetExact = r.street === c.street;
    const level = streetExact
      ? 'exact'
      : houseNumber(r.street) === houseNumber(c.street) && jaroWinkler(r.street, c.street) >= 0.9
        ? 'similar'
        : 'different';
    add('street', level, weight(L.street[level]));
  }
  let phoneAgrees = false;
  if (r.phone !== '' && c.phone !== '') {
    phoneAgrees = r.phone === c.phone;
    const level = phoneAgrees ? 'agree' : 'different';
    add('phone', level, weight(L.phone[level]));
  }
  let identifier: PairComparison['identifier'] = 'missing';
  for (const id of row.identifiers) {
    const level = compareIdentifier(id, cand);
    if (level === 'missing') continue;
    add(`identifier[${id.label}]`, level, weight(L.identifier[level]));
    if (IDENTIFIER_RANK[level] > IDENTIFIER_RANK[identifier]) identifier = level;
  }

  const score = round2(comparisons.reduce((s, x) => s + x.weight, 0));
  return {
    comparisons,
    score,
    given: names.given,
    family: names.family,
    birthDate: dob,
    swapped,
    suffixConflict,
    relative,
    birthYearGap: r.birthDate === '' || c.birthDate === '' ? Infinity : Math.abs(Number(r.birthDate.slice(0, 4)) - Number(c.birthDate.slice(0, 4))),
    placeholderName: !!(rp?.given || rp?.family),
    householdAgrees: streetExact || phoneAgrees,
    identifier,
  };
}

function asSsn(raw: string): string {
  const r = readIdentifier('ssn', raw);
  return r.ok ? r.value : '';
}

/** A disagreement outranks any agreement: one system saying "someone else" is enough to stop. */
const IDENTIFIER_RANK = { missing: 0, typo: 1, last4: 2, agree: 3, different: 4 } as const;

/**
 * One row identifier against the candidate's values of the same system. Only a system both hold
 * is evidence; a value one keystroke from the candidate's is a likely slip, never proof.
 */
export function compareIdentifier(id: RowIdentifier, cand: IndexPatient): 'agree' | 'last4' | 'typo' | 'different' | 'missing' {
  let held = false;
  let typo = false;
  for (const x of cand.identifiers) {
    if (x.system !== id.system) continue;
    // Read as the row's was: an SSN the index holds with dots, or as a placeholder, is no other SSN.
    const value = id.kind === undefined ? x.value : asSsn(x.value);
    if (value === '') continue;
    held = true;
    if (id.kind === 'ssn-last4') {
      if (value.endsWith(id.value)) return 'last4';
    } else if (value === id.value) return 'agree';
    else if (id.value.length >= 5 && value.length === id.value.length && oneEditApart(value, id.value)) typo = true;
  }
  return !held ? 'missing' : typo ? 'typo' : 'different';
}

/** Swapped names are a known keying error but rarer than straight agreement: cost it two bits. */
const SWAP_PENALTY = 2;

function nameWeights(given: string, family: string, c: PersonFields, ctx: ScoringContext) {
  const g = compareGiven(given, c.given, c.middle);
  const f = compareFamily(family, c.family);
  const L = ctx.levels ?? DEFAULT_LEVELS;
  const givenWeight =
    g === 'missing' ? 0 : g === 'exact' ? weight(tfLevel(L.given.exact, ctx.freq.given.get(given), ctx.freq.total, 0.0005)) : weight(L.given[g]);
  const familyWeight =
    f === 'missing' ? 0 : f === 'exact' ? weight(tfLevel(L.family.exact, ctx.freq.family.get(c.family), ctx.freq.total, 0.0002)) : weight(L.family[f]);
  return { given: g, family: f, givenWeight, familyWeight, total: givenWeight + familyWeight };
}

function tfLevel(level: Level, count: number | undefined, total: number, floor: number): Level {
  return { m: level.m, u: termFrequencyU(count, total, floor, level.u) };
}

function isKnownSex(s: string): boolean {
  return s === 'male' || s === 'female';
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
