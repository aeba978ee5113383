/**
 * Person names: folding to the registry's canonical form, generational suffixes, and splitting a
 * single full-name cell into parts.
 */
import { fold, MODE_ALNUM, MODE_NAME } from './fold.ts';

/** Upper-case ASCII letters and single spaces; see the model's PersonFields for the contract. */
export function normaliseName(raw: string): string {
  return fold(raw, MODE_NAME);
}

/** Every spelling we accept, after folding with digits kept, → the canonical suffix. */
const SUFFIXES: ReadonlyMap<string, string> = new Map([
  ['JR', 'JR'],
  ['JNR', 'JR'],
  ['JUNIOR', 'JR'],
  ['SR', 'SR'],
  ['SNR', 'SR'],
  ['SENIOR', 'SR'],
  ['II', 'II'],
  ['2ND', 'II'],
  ['III', 'III'],
  ['3RD', 'III'],
  ['IV', 'IV'],
  ['4TH', 'IV'],
]);

/** JUNIOR and SENIOR are also given names, so alone in a name cell they are the name. */
const SUFFIX_WORDS_THAT_ARE_NAMES: ReadonlySet<string> = new Set(['JUNIOR', 'SENIOR']);

/**
 * A suffix cell ("Jr.", "III", "3rd") → JR|SR|II|III|IV; '' when blank; null when it is not a
 * generational suffix (the caller reports it, or ignores it).
 */
export function normaliseSuffix(raw: string): string | null {
  const folded = fold(raw, MODE_ALNUM);
  if (folded === '') return '';
  return SUFFIXES.get(folded) ?? null;
}

export function splitSuffix(name: string): { name: string; suffix: string } {
  // Fold with digits kept: normaliseName would turn "3RD" into "RD" and hide it.
  const folded = fold(name, MODE_ALNUM);
  const lastSpace = folded.lastIndexOf(' ');
  const last = lastSpace < 0 ? folded : folded.slice(lastSpace + 1);
  const suffix = SUFFIXES.get(last);
  if (suffix === undefined) return { name: fold(folded, MODE_NAME), suffix: '' };
  if (lastSpace < 0) {
    if (SUFFIX_WORDS_THAT_ARE_NAMES.has(last)) return { name: folded, suffix: '' };
    return { name: '', suffix };
  }
  return { name: fold(folded.slice(0, lastSpace), MODE_NAME), suffix };
}

/**
 * Words that begin a multi-word family name in "FIRST MIDDLE LAST" order (DE LA CRUZ, VAN DER
 * BERG, MC DONALD, ST JOHN). VAN also opens Vietnamese middle names (MINH VAN TRAN); the Dutch
 * reading wins here because a Vietnamese family name is rarely written after the given name in
 * a single US roster cell without a comma, and downstream comparison can ignore particles.
 */
const FAMILY_PARTICLES: ReadonlySet<string> = new Set([
  'DE', 'DEL', 'DELA', 'DELLA', 'DELLE', 'DEI', 'DES', 'DI', 'DA', 'DAS', 'DO', 'DOS', 'DU',
  'LA', 'LE', 'LOS', 'LAS', 'VAN', 'VON', 'VANDER', 'VANDEN', 'DER', 'DEN', 'TER', 'TEN',
  'ST', 'STE', 'SAINT', 'MC', 'MAC', 'BIN', 'BINT', 'IBN', 'AL', 'EL', 'ABU',
]);

const WHITESPACE = /\s+/;

export interface FullNameParts {
  given: string;
  middle: string;
  family: string;
  suffix: string;
}

/**
 * Raw tokens split on whitespace only, so a hyphenated given name (MARY-KATE) stays one part and
 * becomes "MARY KATE" rather than a given name plus a middle name. Tokens that fold to nothing
 * ("-", "&") are dropped; a suffix token is recognised before digits are lost.
 */
function nameTokens(raw: string): { names: string[]; suffix: string } {
  const tokens: string[] = [];
  for (const token of raw.split(WHITESPACE)) {
    const alnum = fold(token, MODE_ALNUM);
    if (alnum !== '') tokens.push(alnum);
  }
  let suffix = '';
  // Only a trailing suffix with a name before it: "JUNIOR" alone, or first, is a given name.
  if (tokens.length >= 2) {
    const s = SUFFIXES.get(tokens[tokens.length - 1]!);
    if (s !== undefined) {
      suffix = s;
      tokens.pop();
    }
  }
  const names: string[] = [];
  for (const token of tokens) {
    const name = fold(token, MODE_NAME);
    if (name !== '') names.push(name);
  }
  return { names, suffix };
}

export function splitFullName(raw: string): FullNameParts {
  const comma = raw.indexOf(',');
  if (comma >= 0) return splitLastFirst(raw, comma);

  const { names, suffix } = nameTokens(raw);
  const n = names.length;
  if (n === 0) return { given: '', middle: '', family: '', suffix };
  // One word: we cannot tell, and a family name is what matching needs most.
  if (n === 1) return { given: '', middle: '', family: names[0]!, suffix };

  let f = n - 1;
  while (f >= 2) {
    const before = names[f - 1]!;
    if (before === 'Y' && f - 2 >= 1 && names[f - 2]!.length > 1) {
      f -= 2; // Spanish "GARCIA Y LOPEZ" is one family name
      continue;
    }
    if (!FAMILY_PARTICLES.has(before)) break;
    f--;
  }
  return {
    given: names[0]!,
    middle: names.slice(1, f).join(' '),
    family: names.slice(f).join(' '),
    suffix,
  };
}

/** "FAMILY [SUFFIX], GIVEN MIDDLE [SUFFIX]" with the suffix possibly in a comma part of its own. */
function splitLastFirst(raw: string, comma: number): FullNameParts {
  const family = splitSuffix(raw.slice(0, comma));
  let suffix = family.suffix;
  let givenText = '';
  const parts = raw.slice(comma + 1).split(',');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const folded = fold(part, MODE_ALNUM);
    const alone = SUFFIXES.get(folded);
    // "SMITH, JUNIOR" names a person called Junior; "SMITH, JOHN, JUNIOR" has a suffix.
    if (alone !== undefined && (i > 0 || !SUFFIX_WORDS_THAT_ARE_NAMES.has(folded))) suffix = alone;
    else givenText += givenText === '' ? part : ' ' + part;
  }
  const rest = nameTokens(givenText);
  if (rest.suffix !== '') suffix = rest.suffix;
  const names = rest.names;
  return {
    given: names[0] ?? '',
    middle: names.slice(1).join(' '),
    family: family.name,
    suffix,
  };
}

/** Scripts names arrive in that folding to Latin letters cannot keep, by Unicode script property. */
const SCRIPTS: readonly [string, RegExp][] = (
  [
    'Hebrew', 'Arabic', 'Cyrillic', 'Greek', 'Armenian', 'Georgian', 'Syriac', 'Thaana', 'Devanagari', 'Bengali', 'Gurmukhi',
    'Gujarati', 'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala', 'Thai', 'Lao', 'Myanmar', 'Khmer', 'Ethiopic',
    'Hangul', 'Hiragana', 'Katakana', 'Han', 'Tibetan', 'Mongolian', 'Cherokee',
  ] as const
).map((s) => [s, new RegExp(`\\p{Script=${s}}`, 'u')]);
const NON_LATIN_LETTER = /(?![\p{Script=Latin}])\p{L}/u;

/**
 * The script of the first letter in `raw` that is not Latin ("Hebrew", "Arabic", …), or
 * undefined when every letter is Latin. Names are compared in Latin letters (the IIS index is
 * folded the same way), so such letters are dropped: the caller says so, by field and script.
 */
export function nonLatinScript(raw: string): string | undefined {
  const m = NON_LATIN_LETTER.exec(raw);
  if (!m) return undefined;
  for (const [name, re] of SCRIPTS) if (re.test(m[0])) return name;
  return 'a non-Latin';
}
