/**
 * Blocking: the keys a person can be found by. Several independent passes, so one wrong field
 * (a typo, a changed surname, a mistyped birth date, swapped names) does not hide a true match:
 *
 *   df  birth date + each surname token's phonetic code   survives given-name typos and nicknames
 *   dg  birth date + given-name root's phonetic code     survives changed or hyphenated surnames
 *   ny  both names' phonetic codes (sorted) + birth year survives day/month swaps and digit slips
 *   nm  both names' phonetic codes (sorted) + month-day  survives a wrong birth year
 *   id  identifier system + value                         survives anything but the identifier
 *
 * Those are the first round. A row they do not match looks up a second round that survives a
 * wrong or missing birth date together with a name error — birth date with initials or with the
 * address, surname or given code with an initial and the year, address with an initial or the
 * year, names with the ZIP — and the keys the row would have with its names swapped (the README
 * has the table). Sorting the two name codes makes first/last swaps land in the same block. The
 * same function computes keys for index patients (stored) and roster rows (looked up), so they
 * always agree.
 */
import type { Identifier, PersonFields } from '../model/index.ts';
import type { MatchRow } from './compare.ts';
import { houseNumber, nicknameRoots, placeholderNames, type PlaceholderNames } from '../normalise/index.ts';
import { phonetic } from './string-metrics.ts';

export function blockingKeys(
  person: PersonFields,
  identifiers: MatchRow['identifiers'] | readonly Identifier[],
  placeholder?: PlaceholderNames,
  /** Only the first round's keys (what a row looks up first). */
  firstOnly = false,
): string[] {
  const keys: string[] = [];
  const ph = placeholder ?? placeholderNames(person.given, person.family);
  // A placeholder name finds nobody: BABY BOY would put every newborn in one block.
  const given = ph.given ? '' : person.given;
  const family = ph.family ? '' : person.family;
  const dob = person.birthDate;
  const year = dob.slice(0, 4);
  const givenCode = given === '' ? '' : phonetic(nicknameRoots(firstToken(given))[0] ?? given);
  const familyCodes = familyTokens(family).map(phonetic).filter((c) => c !== '');
  const wholeFamily = phonetic(family.replaceAll(' ', ''));
  if (dob !== '') {
    for (const code of familyCodes) keys.push(`df:${dob}|${code}`);
    if (givenCode !== '') keys.push(`dg:${dob}|${givenCode}`);
  }
  const pair = givenCode === '' || wholeFamily === '' ? '' : givenCode < wholeFamily ? `${givenCode}|${wholeFamily}` : `${wholeFamily}|${givenCode}`;
  if (pair !== '' && dob !== '') keys.push(`ny:${pair}|${year}`, `nm:${pair}|${dob.slice(5)}`);
  // Four digits of an SSN name thousands of people: agreement on them is scored, never blocked on.
  for (const id of identifiers) if (id.value !== '' && !('kind' in id && id.kind === 'ssn-last4')) keys.push(`id:${id.system}|${id.value}`);
  if (firstOnly) return [...new Set(keys)];

  const initial = given.charAt(0);
  if (initial !== '' && year !== '') for (const code of familyCodes) keys.push(`fy:${code}|${initial}|${year}`);
  // Birth date and both initials, '_' standing for a blank name: survives a typo in each name.
  if (dob !== '' && (given !== '' || family !== '')) keys.push(`di:${dob}|${initial || '_'}|${family.charAt(0) || '_'}`);
  if (pair !== '') keys.push(`nn:${pair}`);
  const house = houseNumber(person.street);
  // The street name's first four letters: survive a suffix glued on (WOLFFCRESCENT) or spelled out.
  const streetCode = streetName(person.street, house.length).slice(0, 4);
  if (house !== '' && person.zip !== '' && initial !== '') keys.push(`zh:${person.zip}|${house}|${initial}`);
  if (house !== '' && streetCode !== '' && year !== '') keys.push(`ay:${house}|${streetCode}|${year}`);
  if (streetCode !== '' && wholeFamily !== '') keys.push(`af:${streetCode}|${wholeFamily}`);
  // Birth date and where they live, no name at all: survives both names misspelt or replaced.
  if (dob !== '' && streetCode !== '') keys.push(`ds:${dob}|${streetCode}`);
  if (dob !== '' && house !== '') keys.push(`dh:${dob}|${house}`);
  return [...new Set(keys)];
}

/** The street name's first word after the house number ("OAK" of "12 N OAK ST"), skipping a directional. */
function streetName(street: string, after: number): string {
  const words = street.slice(after).trim().split(' ');
  const w = words[0] !== undefined && DIRECTIONS.has(words[0]) && words.length > 2 ? words[1] : words[0];
  return w ?? '';
}

const DIRECTIONS = new Set(['N', 'S', 'E', 'W', 'NE', 'NW', 'SE', 'SW']);

export interface RowKeys {
  /** Passes on the birth date and a name, and identifiers: what finds most people. */
  first: string[];
  /** Every other pass, and the keys the row would have with its names swapped or a blank name filled. */
  second: string[];
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_';

/** The keys a row looks up first: those its patient would have in the index, of the first round. */
export function firstKeys(row: MatchRow): string[] {
  return blockingKeys(row.person, row.identifiers, row.placeholder, true);
}

/**
 * The keys a row the first round did not match looks up next: the second round's passes, and
 * the keys it would have with given and family names swapped — the commonest keying error — or,
 * for a blank name, with every initial the blank one could have.
 */
export function secondKeys(row: MatchRow, first: readonly string[] = firstKeys(row)): string[] {
  const p = row.person;
  const ph = row.placeholder;
  const seen = new Set(first);
  const second: string[] = [];
  const add = (k: string) => {
    if (!seen.has(k)) {
      seen.add(k);
      second.push(k);
    }
  };
  for (const k of blockingKeys(p, row.identifiers, ph)) add(k);
  const given = ph?.given ? '' : p.given;
  const family = ph?.family ? '' : p.family;
  if (p.birthDate !== '' && (given !== '' || family !== '')) {
    const g = given === '' ? LETTERS : `${given.charAt(0)}_`;
    const f = family === '' ? LETTERS : `${family.charAt(0)}_`;
    for (const a of g) for (const b of f) add(`di:${p.birthDate}|${a}|${b}`);
  }
  if (given !== '' && family !== '' && given !== family) {
    for (const k of blockingKeys({ ...p, given: p.family, family: p.given }, [], { given: false, family: false })) add(k);
  }
  return second;
}

/** Both rounds' keys of a row (for measuring blocking; matching computes the second only when needed). */
export function rowKeys(row: MatchRow): RowKeys {
  const first = firstKeys(row);
  return { first, second: secondKeys(row, first) };
}

/**
 * Passes keyed on little (names without a birth date, a surname and an initial over a whole
 * year, a surname along a street name): a block of a rare name there is a handful of people and
 * finds a person whose birth date and address both changed, but a common one (JOHN SMITH, SMITH
 * on MAIN ST) is hundreds, says little, and would multiply the comparisons. Such a block is
 * skipped when it holds more than BROAD_BLOCK_MAX patients; the narrower passes still apply.
 */
export const BROAD_BLOCK_MAX = 6;
const BROAD_PASSES = new Set(['nn', 'fy', 'gy', 'af', 'ad']);

export function isBroadKey(key: string): boolean {
  return BROAD_PASSES.has(key.slice(0, 2));
}

/** Whether a block of `size` patients found by `key` is used (every candidate source applies this). */
export function keepBlock(key: string, size: number): boolean {
  return size <= BROAD_BLOCK_MAX || !isBroadKey(key);
}

function firstToken(name: string): string {
  const i = name.indexOf(' ');
  return i < 0 ? name : name.slice(0, i);
}

/**
 * Surname tokens worth blocking on: each part of a compound or hyphenated name, plus the whole
 * name run together, skipping particles that carry no identity (DE, LA, VAN…).
 */
function familyTokens(family: string): string[] {
  if (family === '') return [];
  const parts = family.split(' ').filter((t) => t.length > 1 && !PARTICLES.has(t));
  const whole = family.replaceAll(' ', '');
  return parts.includes(whole) ? parts : [...parts, whole];
}

const PARTICLES = new Set(['DE', 'DEL', 'LA', 'LAS', 'LOS', 'DA', 'DI', 'DOS', 'DAS', 'DU', 'VAN', 'VON', 'DER', 'DEN', 'TER', 'Y', 'ST', 'MC', 'MAC', 'LE']);
