/**
 * Field-by-field comparison of a roster row with one candidate patient. Each field lands on one
 * comparison level; the level's weight is its Fellegi–Sunter log2 Bayes factor. Pure functions,
 * and RowScorer, which compares one row with each of its candidates and gives what comparePair
 * gives, working out once a row what depends on the row alone.
 */
import type { FieldComparison, IndexPatient, NameFrequencies, PersonFields, RowIdentifier } from '../model/index.ts';
import { areNicknames, houseNumber, placeholderNames, readIdentifier, type PlaceholderNames } from '../normalise/index.ts';
import { DEFAULT_LEVELS, levelWeights, termFrequencyU, type LevelWeights, type Levels } from './model.ts';
import { jaroWinkler, oneEditApart, phonetic } from './string-metrics.ts';

export interface ScoringContext {
  freq: NameFrequencies;
  /** The model's m and u per comparison level. @defaultValue DEFAULT_LEVELS */
  levels?: Levels;
}

type GivenLevel = keyof typeof DEFAULT_LEVELS.given;
type FamilyLevel = keyof typeof DEFAULT_LEVELS.family;
type DobLevel = keyof typeof DEFAULT_LEVELS.birthDate;
type MaidenLevel = keyof typeof DEFAULT_LEVELS.mothersMaiden;
type BirthOrderLevel = keyof typeof DEFAULT_LEVELS.birthOrder;

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
  mothersMaiden: MaidenLevel | 'missing';
  /** `different` is a co-twin (or a slip): never auto-matched. */
  birthOrder: BirthOrderLevel | 'missing';
}

/** What matching needs of a roster row: a NormalisedRow of kind `valid` is one. */
export interface MatchRow {
  person: PersonFields;
  identifiers: readonly RowIdentifier[];
  placeholder?: PlaceholderNames | undefined;
}

const TYPO_JW = 0.92;
const PHONETIC_JW = 0.85;

/** @param codeOfA phonetic(a), when the caller holds it (a row's name, against many candidates). */
export function compareGiven(a: string, b: string, middleOfB: string, codeOfA?: string): GivenLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  if (a === b) return 'exact';
  const spaced = a.includes(' ') || b.includes(' ');
  // MARY ANN and MARYANN, ANNE-MARIE and ANNEMARIE: one name, spaced two ways.
  if (spaced && a.replaceAll(' ', '') === b.replaceAll(' ', '')) return 'exact';
  if (areNicknames(a, b)) return 'nickname';
  const jw = jaroWinkler(a, b);
  if (isTypo(a, b, jw)) return 'typo';
  const a0 = firstToken(a);
  const b0 = firstToken(b);
  // Unspaced, the first tokens are the names themselves, already found to differ and be no nicknames.
  if (spaced && (a0 === b0 || (a0.length > 1 && b0.length > 1 && areNicknames(a0, b0)))) return 'token';
  if (middleOfB !== '' && (a === middleOfB || a0 === firstToken(middleOfB))) return 'middle_as_given';
  if (a.length === 1 || b.length === 1) return a[0] === b[0] ? 'initial' : 'different';
  // A name cut short by a field width or a clerk (MI for MINNIE, CHRIS for CHRISTINE): weaker
  // than a nickname, since one prefix fits many names.
  if (a.length < b.length ? b.startsWith(a) : a.startsWith(b)) return 'prefix';
  if (jw >= PHONETIC_JW || (codeOfA ?? phonetic(a)) === phonetic(b)) return 'phonetic';
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

/** A mother's maiden name: as a family name is compared, without the compound and phonetic levels. */
export function compareMothersMaiden(a: string, b: string): MaidenLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  if (a === b) return 'exact';
  const ra = a.replaceAll(' ', '');
  const rb = b.replaceAll(' ', '');
  if (ra === rb) return 'exact';
  return isTypo(ra, rb, jaroWinkler(ra, rb)) ? 'typo' : 'different';
}

/** Birth orders within a multiple birth ('1'…'9'), compared only when both sides name one. */
export function compareBirthOrder(a: string, b: string): BirthOrderLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  return a === b ? 'agree' : 'different';
}

export function compareBirthDate(a: string, b: string): DobLevel | 'missing' {
  if (a === '' || b === '') return 'missing';
  if (a === b) return 'exact';
  if (isIsoShaped(a) && isIsoShaped(b)) return isoDatesLevel(a, b);
  // YYYY-MM-DD: a partner that confused the two orders gives the same year with month and day crossed.
  if (a.slice(0, 4) === b.slice(0, 4) && a.slice(5, 7) === b.slice(8, 10) && a.slice(8, 10) === b.slice(5, 7)) {
    return 'day_month_swap';
  }
  if (oneEditApart(a.replaceAll('-', ''), b.replaceAll('-', ''))) return 'typo';
  return 'different';
}

/** Where the eight digits of a YYYY-MM-DD date are. */
const DATE_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9] as const;
const HYPHEN = 45;

/** Ten characters with hyphens at 4 and 7 only, as every normalised birth date is. */
function isIsoShaped(d: string): boolean {
  if (d.length !== 10 || d.charCodeAt(4) !== HYPHEN || d.charCodeAt(7) !== HYPHEN) return false;
  for (const i of DATE_DIGITS) if (d.charCodeAt(i) === HYPHEN) return false;
  return true;
}

/**
 * compareBirthDate's day/month swap and one-slip tests for two different ISO-shaped dates,
 * read in place: the hyphens are the only characters the general form drops, and with eight
 * characters a side a slip is one substitution or one adjacent transposition.
 */
function isoDatesLevel(a: string, b: string): DobLevel {
  const at = (d: string, i: number) => d.charCodeAt(i);
  if (at(a, 0) === at(b, 0) && at(a, 1) === at(b, 1) && at(a, 2) === at(b, 2) && at(a, 3) === at(b, 3) &&
    at(a, 5) === at(b, 8) && at(a, 6) === at(b, 9) && at(a, 8) === at(b, 5) && at(a, 9) === at(b, 6)) {
    return 'day_month_swap';
  }
  let first = -1;
  let second = -1;
  for (let j = 0; j < DATE_DIGITS.length; j++) {
    if (at(a, DATE_DIGITS[j]!) === at(b, DATE_DIGITS[j]!)) continue;
    if (first < 0) first = j;
    else if (second < 0) second = j;
    else return 'different';
  }
  if (second < 0) return 'typo';
  const [x, y] = [DATE_DIGITS[first]!, DATE_DIGITS[second]!];
  return second === first + 1 && at(a, x) === at(b, y) && at(a, y) === at(b, x) ? 'typo' : 'different';
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
  return new RowScorer(row, ctx).compare(cand);
}

/** Swapped names are a known keying error but rarer than straight agreement: cost it two bits. */
const SWAP_PENALTY = 2;
/** Term-frequency floors of exact name agreement: one-off names stay sane. */
const GIVEN_TF_FLOOR = 0.0005;
const FAMILY_TF_FLOOR = 0.0002;

interface SwappedNames {
  given: GivenLevel | 'missing';
  family: FamilyLevel | 'missing';
  givenWeight: number;
  familyWeight: number;
}

/**
 * comparePair for one row and each of its candidates: what depends on the row alone (its names
 * with placeholders blanked, its names' term-frequency weights, its house number and birth year,
 * its identifiers' reason names) is worked out once a row rather than once a pair.
 */
export class RowScorer {
  readonly #row: MatchRow;
  readonly #L: Levels;
  readonly #W: LevelWeights;
  readonly #freq: NameFrequencies;
  /** The row's names as compared: a placeholder agrees with nothing, so it is compared as if blank. */
  readonly #given: string;
  readonly #family: string;
  readonly #placeholderName: boolean;
  readonly #year: number;
  readonly #house: string;
  readonly #idFields: string[];
  readonly #bestNonExact: BestNonExact;
  /** Exact-agreement weights of the row's own names, looked up on first use. */
  #givenExactWeight: number | undefined;
  #familyExactWeight: number | undefined;
  /** The row's family name agreeing exactly with a candidate's given name: the crossed orientation. */
  #crossedGivenExactWeight: number | undefined;
  /** The phonetic code of the row's family name, which the crossed orientation compares as a given name. */
  #familyCode: string | undefined;

  constructor(row: MatchRow, ctx: ScoringContext) {
    const r = row.person;
    const rp = row.placeholder;
    this.#row = row;
    this.#L = ctx.levels ?? DEFAULT_LEVELS;
    this.#W = levelWeights(this.#L);
    this.#bestNonExact = bestNonExact(this.#W);
    this.#freq = ctx.freq;
    this.#given = rp?.given ? '' : r.given;
    this.#family = rp?.family ? '' : r.family;
    this.#placeholderName = !!(rp?.given || rp?.family);
    this.#year = Number(r.birthDate.slice(0, 4));
    this.#house = houseNumber(r.street);
    this.#idFields = row.identifiers.map((id) => `identifier[${id.label}]`);
  }

  compare(cand: IndexPatient): PairComparison {
    const r = this.#row.person;
    const c = cand.person;
    const W = this.#W;
    const comparisons: FieldComparison[] = [];
    let sum = 0;

    const cp = placeholderNames(c.given, c.family);
    const cGiven = cp.given ? '' : c.given;
    const cFamily = cp.family ? '' : c.family;

    // Names, in both orientations: the better one stands, so a first/last swap costs only a little.
    const g = compareGiven(this.#given, cGiven, c.middle);
    const f = compareFamily(this.#family, cFamily);
    const givenWeight = g === 'missing' ? 0 : g === 'exact' ? (this.#givenExactWeight ??= this.#givenExact(this.#given)) : W.given[g];
    const familyWeight = f === 'missing' ? 0 : f === 'exact' ? this.#familyExactOf(cFamily) : W.family[f];
    const straight = givenWeight + familyWeight;
    const swap = straight >= this.#crossedCeiling(cGiven, cFamily) - SWAP_PENALTY ? undefined : this.#swapped(cGiven, c.middle, cFamily, straight);
    if (swap) {
      sum += add(comparisons, 'given', `swapped:${swap.given}`, swap.givenWeight - SWAP_PENALTY / 2);
      sum += add(comparisons, 'family', `swapped:${swap.family}`, swap.familyWeight - SWAP_PENALTY / 2);
    } else {
      sum += add(comparisons, 'given', g, givenWeight);
      sum += add(comparisons, 'family', f, familyWeight);
    }

    const dob = compareBirthDate(r.birthDate, c.birthDate);
    sum += add(comparisons, 'birthDate', dob, dob === 'missing' ? 0 : W.birthDate[dob]);

    if (r.middle !== '' && c.middle !== '') {
      const agree = r.middle[0] === c.middle[0] && (r.middle.length === 1 || c.middle.length === 1 || jaroWinkler(r.middle, c.middle) >= PHONETIC_JW);
      sum += add(comparisons, 'middle', agree ? 'agree' : 'different', W.middle[agree ? 'agree' : 'different']);
    }
    const suffixConflict = r.suffix !== '' && c.suffix !== '' && r.suffix !== c.suffix;
    if (suffixConflict) sum += add(comparisons, 'suffix', 'conflict', W.suffix.conflict);
    const relative = (r.suffix !== '' || c.suffix !== '') && r.birthDate !== '' && c.birthDate !== '' && r.birthDate.slice(0, 3) !== c.birthDate.slice(0, 3);

    if (isKnownSex(r.sex) && isKnownSex(c.sex)) {
      const level = r.sex === c.sex ? 'agree' : 'different';
      sum += add(comparisons, 'sex', level, W.sex[level]);
    }
    if (r.zip !== '' && c.zip !== '') {
      const level = r.zip === c.zip ? 'agree' : 'different';
      sum += add(comparisons, 'zip', level, W.zip[level]);
    }
    let streetExact = false;
    if (r.street !== '' && c.street !== '') {
      streetExact = r.street === c.street;
      const level = streetExact ? 'exact' : this.#house === houseNumber(c.street) && jaroWinkler(r.street, c.street) >= 0.9 ? 'similar' : 'different';
      sum += add(comparisons, 'street', level, W.street[level]);
    }
    let phoneAgrees = false;
    if (r.phone !== '' && c.phone !== '') {
      phoneAgrees = r.phone === c.phone;
      const level = phoneAgrees ? 'agree' : 'different';
      sum += add(comparisons, 'phone', level, W.phone[level]);
    }
    // Absent on either side (most rosters), these weigh nothing and add no reason.
    const maiden = compareMothersMaiden(r.mothersMaiden ?? '', c.mothersMaiden ?? '');
    if (maiden !== 'missing') sum += add(comparisons, 'mothersMaiden', maiden, W.mothersMaiden[maiden]);
    const birthOrder = compareBirthOrder(r.birthOrder ?? '', c.birthOrder ?? '');
    if (birthOrder !== 'missing') sum += add(comparisons, 'birthOrder', birthOrder, W.birthOrder[birthOrder]);
    let identifier: PairComparison['identifier'] = 'missing';
    const ids = this.#row.identifiers;
    for (let i = 0; i < ids.length; i++) {
      const level = compareIdentifier(ids[i]!, cand);
      if (level === 'missing') continue;
      sum += add(comparisons, this.#idFields[i]!, level, W.identifier[level]);
      if (IDENTIFIER_RANK[level] > IDENTIFIER_RANK[identifier]) identifier = level;
    }

    return {
      comparisons,
      score: round2(sum),
      given: swap ? swap.given : g,
      family: swap ? swap.family : f,
      birthDate: dob,
      swapped: swap !== undefined,
      suffixConflict,
      relative,
      // Equal dates are the row's own year twice: no second parse.
      birthYearGap: r.birthDate === '' || c.birthDate === '' ? Infinity : Math.abs(this.#year - (c.birthDate === r.birthDate ? this.#year : Number(c.birthDate.slice(0, 4)))),
      placeholderName: this.#placeholderName,
      householdAgrees: streetExact || phoneAgrees,
      identifier,
      mothersMaiden: maiden,
      birthOrder,
    };
  }

  /**
   * The most the crossed orientation can weigh against this candidate: each name's best level,
   * exact agreement only where the two are one name spelled alike. A straight weight that this,
   * less the swap penalty, does not exceed cannot lose to a swap, so the crossed comparisons are
   * skipped (for most pairs): float sums and differences are monotone, so this never skips a swap
   * the comparisons would find.
   */
  #crossedCeiling(cGiven: string, cFamily: string): number {
    const best = this.#bestNonExact;
    const given = sameSpelling(this.#family, cGiven) ? Math.max(best.given, (this.#crossedGivenExactWeight ??= this.#givenExact(this.#family))) : best.given;
    const family = sameSpelling(this.#given, cFamily) ? Math.max(best.family, this.#familyExactOf(cFamily)) : best.family;
    return given + family;
  }

  /** The names compared crossed (row given with candidate family and back), when that beats `straight` by more than the swap costs. */
  #swapped(cGiven: string, cMiddle: string, cFamily: string, straight: number): SwappedNames | undefined {
    // A swap needs both crossed levels to be other than `different`: most pairs stop at the first.
    const g = compareGiven(this.#family, cGiven, cMiddle, (this.#familyCode ??= phonetic(this.#family)));
    if (g === 'different') return undefined;
    const f = compareFamily(this.#given, cFamily);
    if (f === 'different' || (g === 'missing' && f === 'missing')) return undefined;
    const givenWeight = g === 'missing' ? 0 : g === 'exact' ? (this.#crossedGivenExactWeight ??= this.#givenExact(this.#family)) : this.#W.given[g];
    const familyWeight = f === 'missing' ? 0 : f === 'exact' ? this.#familyExactOf(cFamily) : this.#W.family[f];
    return givenWeight + familyWeight - SWAP_PENALTY > straight ? { given: g, family: f, givenWeight, familyWeight } : undefined;
  }

  /** Exact given-name agreement on `name`, weighed by how common the name is in the index. */
  #givenExact(name: string): number {
    const { m, u } = this.#L.given.exact;
    return Math.log2(m / termFrequencyU(this.#freq.given.get(name), this.#freq.total, GIVEN_TF_FLOOR, u));
  }

  /** Exact family-name agreement, weighed by how common the candidate's family name is (mostly the row's own). */
  #familyExactOf(cFamily: string): number {
    if (cFamily === this.#family) return (this.#familyExactWeight ??= this.#familyExact(cFamily));
    return this.#familyExact(cFamily);
  }

  #familyExact(name: string): number {
    const { m, u } = this.#L.family.exact;
    return Math.log2(m / termFrequencyU(this.#freq.family.get(name), this.#freq.total, FAMILY_TF_FLOOR, u));
  }
}

/** Whether two names compare as exact, given or family: the same, or the same once spaces go. */
function sameSpelling(a: string, b: string): boolean {
  return a === b || ((a.includes(' ') || b.includes(' ')) && a.replaceAll(' ', '') === b.replaceAll(' ', ''));
}

/** The highest weight of a name field short of exact agreement (0, a missing name's, at least). */
interface BestNonExact {
  given: number;
  family: number;
}
const bestNonExactOf = new WeakMap<LevelWeights, BestNonExact>();

function bestNonExact(W: LevelWeights): BestNonExact {
  let best = bestNonExactOf.get(W);
  if (!best) {
    const most = (levels: Record<string, number>) => Math.max(0, ...Object.entries(levels).filter(([l]) => l !== 'exact').map(([, w]) => w));
    best = { given: most(W.given), family: most(W.family) };
    bestNonExactOf.set(W, best);
  }
  return best;
}

/** Appends one field's comparison; its weight, rounded as shown, is what the score adds up. */
function add(comparisons: FieldComparison[], field: string, level: string, w: number): number {
  const weight = round2(w);
  comparisons.push({ field, level, weight });
  return weight;
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

function isKnownSex(s: string): boolean {
  return s === 'male' || s === 'female';
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
