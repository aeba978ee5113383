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
 * Sorting the two name codes makes first/last swaps land in the same block. The same function
 * computes keys for index patients (stored) and roster rows (looked up), so they always agree.
 */
import type { Identifier, PersonFields } from '../model/index.ts';
import { houseNumber, nicknameRoots, placeholderNames, type PlaceholderNames } from '../normalise/index.ts';
import { phonetic } from './string-metrics.ts';

export function blockingKeys(person: PersonFields, identifiers: readonly (Identifier & { last4?: boolean })[], placeholder?: PlaceholderNames): string[] {
  const keys: string[] = [];
  const ph = placeholder ?? placeholderNames(person.given, person.family);
  // A placeholder name finds nobody: BABY BOY would put every newborn in one block.
  const given = ph.given ? '' : person.given;
  const family = ph.family ? '' : person.family;
  const dob = person.birthDate;
  const year = dob.slice(0, 4);
  const givenCode = given === '' ? '' : phonetic(nicknameRoots(firstToken(given))[0] ?? given);
  const initial = given.charAt(0);
  const familyCodes = familyTokens(family).map(phonetic).filter((c) => c !== '');
  const wholeFamily = phonetic(family.replaceAll(' ', ''));
  if (dob !== '') {
    for (const code of familyCodes) keys.push(`df:${dob}|${code}`);
    if (givenCode !== '') keys.push(`dg:${dob}|${givenCode}`);
  }
  if (givenCode !== '' && wholeFamily !== '' && dob !== '') {
    const pair = givenCode < wholeFamily ? `${givenCode}|${wholeFamily}` : `${wholeFamily}|${givenCode}`;
    keys.push(`ny:${pair}|${year}`, `nm:${pair}|${dob.slice(5)}`);
  }
  if (initial !== '' && year !== '') for (const code of familyCodes) keys.push(`fy:${code}|${initial}|${year}`);
  const house = houseNumber(person.street);
  const streetCode = house === '' ? '' : phonetic(streetName(person.street, house.length));
  if (house !== '' && person.zip !== '' && initial !== '') keys.push(`zh:${person.zip}|${house}|${initial}`);
  if (streetCode !== '' && year !== '') keys.push(`ay:${house}|${streetCode}|${year}`);
  if (streetCode !== '' && wholeFamily !== '') keys.push(`af:${house}|${streetCode}|${wholeFamily}`);
  for (const id of identifiers) if (id.value !== '' && !id.last4) keys.push(`id:${id.system}|${id.value}`);
  return [...new Set(keys)];
}

/** The street name's first word after the house number ("OAK" of "12 N OAK ST"), skipping a directional. */
function streetName(street: string, after: number): string {
  const words = street.slice(after).trim().split(' ');
  const w = words[0] !== undefined && DIRECTIONS.has(words[0]) && words.length > 2 ? words[1] : words[0];
  return w ?? '';
}

const DIRECTIONS = new Set(['N', 'S', 'E', 'W', 'NE', 'NW', 'SE', 'SW']);

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
