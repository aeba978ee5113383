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
import { nicknameRoots } from '../normalise/index.ts';
import { phonetic } from './string-metrics.ts';

export function blockingKeys(person: PersonFields, identifiers: readonly Identifier[]): string[] {
  const keys: string[] = [];
  const dob = person.birthDate;
  const givenCode = person.given === '' ? '' : phonetic(nicknameRoots(firstToken(person.given))[0] ?? person.given);
  const familyCodes = familyTokens(person.family).map(phonetic).filter((c) => c !== '');
  if (dob !== '') {
    for (const code of familyCodes) keys.push(`df:${dob}|${code}`);
    if (givenCode !== '') keys.push(`dg:${dob}|${givenCode}`);
  }
  const wholeFamily = phonetic(person.family.replaceAll(' ', ''));
  if (givenCode !== '' && wholeFamily !== '' && dob !== '') {
    const pair = givenCode < wholeFamily ? `${givenCode}|${wholeFamily}` : `${wholeFamily}|${givenCode}`;
    keys.push(`ny:${pair}|${dob.slice(0, 4)}`, `nm:${pair}|${dob.slice(5)}`);
  }
  for (const id of identifiers) if (id.value !== '') keys.push(`id:${id.system}|${id.value}`);
  return [...new Set(keys)];
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
