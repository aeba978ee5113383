/**
 * Values that name nobody. Registries hold newborns as BABY BOY or INFANT GIRL under the mother's
 * surname until the birth certificate arrives, emergency departments register UNKNOWN or JOHN
 * DOE, and exports fill blank cells with NFN, 000-00-0000 or GENERAL DELIVERY. Two records that
 * both say BABY GIRL SMITH, born the same day, may be twins: agreement on a placeholder is no
 * evidence at all, so the matcher treats these values as absent, and a row whose name is one is
 * never matched without a person looking at it. Every list is of folded forms (upper case,
 * single spaces, no punctuation or digits: "Baby Boy #2" folds to "BABY BOY", "N/A" to "N A").
 * NA alone is a name (Korean Na), so only the spaced "N/A" form counts.
 */

/** Words that, alone or together, make a newborn's or an unnamed person's placeholder given name. */
const NEWBORN_WORDS: ReadonlySet<string> = new Set([
  'BABY', 'BABYBOY', 'BABYGIRL', 'BB', 'BG', 'BBY', 'INFANT', 'INF', 'NEWBORN', 'NB', 'NEONATE',
  'BOY', 'GIRL', 'MALE', 'FEMALE', 'M', 'F', 'TWIN', 'TRIPLET', 'A', 'B', 'C', 'D', 'I', 'II', 'III',
  'ONE', 'TWO', 'THREE', 'FIRST', 'SECOND', 'THIRD', 'OF',
]);
/** At least one of these must be present: "A" or "B" alone is an initial, not a placeholder. */
const NEWBORN_HEADS: ReadonlySet<string> = new Set([
  'BABY', 'BABYBOY', 'BABYGIRL', 'BB', 'BG', 'BBY', 'INFANT', 'INF', 'NEWBORN', 'NB', 'NEONATE', 'BOY', 'GIRL', 'MALE', 'FEMALE', 'TWIN', 'TRIPLET',
]);

/** Whole given-name cells that say the name is not known. */
const UNKNOWN_GIVEN: ReadonlySet<string> = new Set([
  'UNKNOWN', 'UNK', 'UNKN', 'UNKNWN', 'ANONYMOUS', 'ANON', 'NONE', 'N A', 'NULL', 'NFN', 'FNU', 'NOFIRSTNAME',
  'NO FIRST NAME', 'NO NAME', 'NONAME', 'NOT GIVEN', 'NOTGIVEN', 'UNNAMED', 'TEST', 'PATIENT', 'TEST PATIENT', 'XXX', 'XXXX',
]);
/** Whole family-name cells that say the name is not known. */
const UNKNOWN_FAMILY: ReadonlySet<string> = new Set([
  'UNKNOWN', 'UNK', 'UNKN', 'UNKNWN', 'ANONYMOUS', 'ANON', 'NONE', 'N A', 'NULL', 'NLN', 'LNU', 'NOLASTNAME',
  'NO LAST NAME', 'NO NAME', 'NONAME', 'NOT GIVEN', 'NOTGIVEN', 'UNNAMED', 'TEST', 'PATIENT', 'TEST PATIENT', 'XXX', 'XXXX',
]);
/** Given names that are placeholders only with the family name DOE (a real surname on its own). */
const DOE_GIVEN: ReadonlySet<string> = new Set(['JOHN', 'JANE', 'BABY', 'JOHNNY', 'JANIE', 'RICHARD', 'RICHARD ROE', 'MARY']);
/** Either part being one of these makes the whole record a test or a dummy. */
const DUMMY_WORDS: ReadonlySet<string> = new Set(['TEST', 'TESTPATIENT', 'DUMMY', 'ZZTEST', 'ZZZTEST']);

export interface PlaceholderNames {
  given: boolean;
  family: boolean;
}

/** Extra placeholder values a partner's pipeline adds to the built-in lists (folded on load). */
export interface PlaceholderAdditions {
  names: ReadonlySet<string>;
  streets: ReadonlySet<string>;
  identifiers: ReadonlySet<string>;
}

export const NO_ADDITIONS: PlaceholderAdditions = { names: new Set(), streets: new Set(), identifiers: new Set() };

function isNewbornGiven(given: string): boolean {
  if (!given.includes(' ')) return NEWBORN_HEADS.has(given);
  const words = given.split(' ');
  return words.some((w) => NEWBORN_HEADS.has(w)) && words.every((w) => NEWBORN_WORDS.has(w));
}

/** Every cell any list below can match as a whole: a name in none of them (most) is no placeholder, without a space. */
const ANY_WHOLE_CELL: ReadonlySet<string> = new Set([...DUMMY_WORDS, ...UNKNOWN_GIVEN, ...UNKNOWN_FAMILY, ...NEWBORN_HEADS, 'DOE']);

const NEITHER: PlaceholderNames = Object.freeze({ given: false, family: false });
const BOTH: PlaceholderNames = Object.freeze({ given: true, family: true });

/** Which parts of a folded name are placeholders. Pure, and allocation-free for real names: it runs on every comparison. */
export function placeholderNames(given: string, family: string, extra: PlaceholderAdditions = NO_ADDITIONS): PlaceholderNames {
  // Most names are real: two look-ups say so, where the lists one by one take six.
  if (extra === NO_ADDITIONS && !ANY_WHOLE_CELL.has(given) && !ANY_WHOLE_CELL.has(family) && !given.includes(' ')) return NEITHER;
  if (DUMMY_WORDS.has(given) || DUMMY_WORDS.has(family)) return BOTH;
  if (family === 'DOE' && (given === '' || DOE_GIVEN.has(given) || isNewbornGiven(given))) return BOTH;
  const g = given !== '' && (UNKNOWN_GIVEN.has(given) || isNewbornGiven(given) || extra.names.has(given));
  const f = family !== '' && (UNKNOWN_FAMILY.has(family) || extra.names.has(family));
  return g ? (f ? BOTH : { given: true, family: false }) : f ? { given: false, family: true } : NEITHER;
}

/** Street cells that are not where anyone lives (folded). */
const PLACEHOLDER_STREETS: ReadonlySet<string> = new Set([
  'GENERAL DELIVERY', 'GEN DELIVERY', 'GENERAL DEL', 'UNKNOWN', 'UNK', 'NONE', 'NA', 'N A', 'NULL', 'HOMELESS', 'NO ADDRESS',
  'NO FIXED ADDRESS', 'NFA', 'NO PERMANENT ADDRESS', 'ADDRESS UNKNOWN', 'UNKNOWN ADDRESS', 'NOT GIVEN', 'UNDOMICILED', 'TRANSIENT',
  'REFUSED', 'DECLINED', 'XXX',
]);

export function isPlaceholderStreet(folded: string, extra: PlaceholderAdditions = NO_ADDITIONS): boolean {
  return PLACEHOLDER_STREETS.has(folded) || extra.streets.has(folded);
}

/**
 * Numbers the telephone system never assigns to a person, or that forms fill in: a repeated
 * digit, 123-456-7890, and the 555-0100…0199 range reserved for fiction.
 */
export function isPlaceholderPhone(digits: string): boolean {
  if (digits === '1234567890' || digits === '0123456789' || digits === '9876543210') return true;
  if (/^(\d)\1{9}$/.test(digits)) return true;
  return digits.slice(3, 8) === '55501';
}
