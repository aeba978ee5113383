/**
 * The roster error model: how a partner's row about a person differs from the truth. Each kind
 * of error has its own rate per partner and several can hit one row, but most rows stay clean.
 * The kinds applied to a row are returned with it and written to the truth file, so a matcher's
 * mistakes can be traced to what made the row hard.
 */
import { daysInMonth, civilFromDays, daysFromCivil, isValidDate } from './dates.ts';
import type { Ymd } from './dates.ts';
import { NICKNAMES, SURNAMES, hasDiacritics, stripDiacritics } from './names.ts';
import type { SexCode } from './names.ts';
import { movedAddress } from './places.ts';
import type { Address } from './places.ts';
import type { Household, Person } from './population.ts';
import type { Rng } from './random.ts';

/** Every error kind a truth file can name. */
export const ERROR_KINDS = [
  'typo_given', 'typo_family', 'typo_middle', 'nickname', 'name_swap', 'family_hyphenated',
  'family_changed', 'family_part_dropped', 'punctuation_changed', 'diacritics_dropped',
  'diacritics_kept', 'suffix_dropped', 'suffix_in_family', 'dob_day_month_swap', 'dob_digit',
  'address_moved', 'blank_middle', 'blank_phone', 'blank_address', 'blank_sex', 'sex_wrong',
  'case_changed', 'extra_spaces', 'mrn_typo', 'mrn_not_in_iis', 'duplicate_person',
  'missing_dob', 'impossible_dob', 'future_dob', 'blank_family',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Kinds that make a row genuinely invalid; each roster carries a few of each. */
export const INVALID_KINDS = ['missing_dob', 'impossible_dob', 'future_dob', 'blank_family'] as const;
export type InvalidKind = (typeof INVALID_KINDS)[number];

/** Per-row probabilities. "Conditional" rates apply only to rows where the error is possible. */
export interface ErrorProfile {
  typo_given: number;
  typo_family: number;
  typo_middle: number;
  /** Conditional on the given name having a nickname. */
  nickname: number;
  name_swap: number;
  family_hyphenated: number;
  family_changed: number;
  /** Conditional on a two-part surname in the IIS. */
  family_part_dropped: number;
  /** Conditional on an apostrophe, hyphen or space in the surname. */
  punctuation_changed: number;
  /** Conditional on accents in the IIS name. */
  diacritics_dropped: number;
  /** Conditional on the IIS holding the name without its accents. */
  diacritics_kept: number;
  /** Conditional on a suffix; only for layouts with a suffix column (others always drop it). */
  suffix_dropped: number;
  /** Conditional on a suffix. */
  suffix_in_family: number;
  /** Conditional on day ≤ 12 and day ≠ month. */
  dob_day_month_swap: number;
  dob_digit: number;
  address_moved: number;
  /** Conditional on a middle name. */
  blank_middle: number;
  blank_phone: number;
  blank_address: number;
  blank_sex: number;
  sex_wrong: number;
  case_changed: number;
  extra_spaces: number;
  /** Share of rows carrying each invalid kind (at least one row each). */
  invalid_each: number;
}

export const SCHOOL_ERRORS: ErrorProfile = {
  typo_given: 0.025, typo_family: 0.025, typo_middle: 0.01, nickname: 0.07, name_swap: 0.008,
  family_hyphenated: 0.012, family_changed: 0.015, family_part_dropped: 0.3, punctuation_changed: 0.3,
  diacritics_dropped: 0.35, diacritics_kept: 0.4, suffix_dropped: 0.35, suffix_in_family: 0.12,
  dob_day_month_swap: 0.03, dob_digit: 0.012, address_moved: 0.06, blank_middle: 0.1, blank_phone: 0.04,
  blank_address: 0.008, blank_sex: 0.006, sex_wrong: 0.003, case_changed: 0.03, extra_spaces: 0.02,
  invalid_each: 0.0015,
};

export const PAYER_ERRORS: ErrorProfile = {
  typo_given: 0.02, typo_family: 0.02, typo_middle: 0, nickname: 0.04, name_swap: 0.005,
  family_hyphenated: 0.008, family_changed: 0.012, family_part_dropped: 0.35, punctuation_changed: 0.35,
  diacritics_dropped: 0.1, diacritics_kept: 0.8, suffix_dropped: 0, suffix_in_family: 0.3,
  dob_day_month_swap: 0.02, dob_digit: 0.008, address_moved: 0.08, blank_middle: 0.15, blank_phone: 0,
  blank_address: 0.01, blank_sex: 0.01, sex_wrong: 0.002, case_changed: 0, extra_spaces: 0.03,
  invalid_each: 0.0015,
};

export const CLINIC_ERRORS: ErrorProfile = {
  typo_given: 0.02, typo_family: 0.02, typo_middle: 0, nickname: 0.06, name_swap: 0.004,
  family_hyphenated: 0.008, family_changed: 0.01, family_part_dropped: 0.3, punctuation_changed: 0.25,
  diacritics_dropped: 0.25, diacritics_kept: 0.5, suffix_dropped: 0, suffix_in_family: 0.15,
  dob_day_month_swap: 0.015, dob_digit: 0.01, address_moved: 0.07, blank_middle: 0, blank_phone: 0.05,
  blank_address: 0.01, blank_sex: 0.01, sex_wrong: 0.002, case_changed: 0.05, extra_spaces: 0.02,
  invalid_each: 0.0015,
};

/** A roster row's content before it is spelled in the partner's layout. */
export interface RowDraft {
  given: string;
  middle: string;
  family: string;
  suffix: string;
  /** Date parts; may be an impossible or future date. null when blank. */
  dob: Ymd | null;
  sex: SexCode | '';
  /** null when blank. */
  address: Address | null;
  /** Ten digits or ''. */
  phone: string;
  errors: ErrorKind[];
}

export interface DraftOptions {
  profile: ErrorProfile;
  /** The layout has a suffix column (otherwise the suffix is dropped or joins the surname). */
  suffixColumn: boolean;
  /** The phone the roster carries: the household's (a guardian's) or the person's own. */
  phone: 'household' | 'person';
  today: number;
  /** Make this row invalid in this way. */
  invalid?: InvalidKind;
}

/** What the partner's row says about this person, with the errors it carries. */
export function draftRow(rng: Rng, p: Person, house: Household, opts: DraftOptions): RowDraft {
  const pr = opts.profile;
  const errors: ErrorKind[] = [];
  const hit = (kind: ErrorKind, rate: number): boolean => {
    if (rate <= 0 || !rng.chance(rate)) return false;
    errors.push(kind);
    return true;
  };

  // Accents: the roster spells the name its own way, whatever the IIS stored.
  let given = p.given;
  let middle = p.middle;
  let family = p.family;
  if (hasDiacritics(given + middle + family)) {
    const fold = p.asciiInIIS ? !hit('diacritics_kept', pr.diacritics_kept) : hit('diacritics_dropped', pr.diacritics_dropped);
    if (fold) {
      given = stripDiacritics(given);
      middle = stripDiacritics(middle);
      family = stripDiacritics(family);
    }
  }

  // Surname changes (marriage, custody) and two-part surnames.
  const adultWoman = p.sex === 'female' && opts.today - p.birth > 20 * 365;
  if (hit('family_changed', pr.family_changed * (adultWoman ? 2.5 : 1))) {
    family = otherSurname(rng, family);
  } else if (hit('family_hyphenated', pr.family_hyphenated)) {
    const second = otherSurname(rng, family);
    family = rng.chance(0.7) ? `${family}-${second}` : `${family} ${second}`;
  } else if (/[- ]/.test(family) && !/^(De|Del|La|Le|Van|St\.|Du)\b/.test(family) && hit('family_part_dropped', pr.family_part_dropped)) {
    const parts = family.split(/[- ]/);
    family = rng.chance(0.75) ? parts[0]! : parts[parts.length - 1]!;
  }
  if (/['\- .]/.test(family) && hit('punctuation_changed', pr.punctuation_changed)) {
    family = rng.chance(0.5) ? family.replace(/['\- .]+/g, '') : family.replace(/['\-.]+/g, ' ').replace(/ +/g, ' ').trim();
  }

  // Given names.
  const nicks = NICKNAMES[p.given];
  if (nicks && hit('nickname', pr.nickname)) given = rng.pick(nicks);
  if (given.length >= 3 && hit('typo_given', pr.typo_given)) given = typo(rng, given);
  if (family.length >= 3 && hit('typo_family', pr.typo_family)) family = typo(rng, family);
  if (middle.length >= 3 && hit('typo_middle', pr.typo_middle)) middle = typo(rng, middle);
  if (middle && hit('blank_middle', pr.blank_middle)) middle = '';

  // Suffix: kept in its column, dropped, or written into the surname ("Smith Jr").
  let suffix = p.suffix;
  if (suffix) {
    if (hit('suffix_in_family', pr.suffix_in_family)) {
      family = `${family}${opts.suffixColumn && rng.chance(0.5) ? ',' : ''} ${suffix}`;
      suffix = '';
    } else if (!opts.suffixColumn || hit('suffix_dropped', pr.suffix_dropped)) {
      suffix = '';
    }
  }
  if (hit('name_swap', pr.name_swap)) [given, family] = [family, given];

  // Birth date.
  let dob: Ymd | null = civilFromDays(p.birth);
  if (dob.d <= 12 && dob.d !== dob.m && hit('dob_day_month_swap', pr.dob_day_month_swap)) {
    dob = { y: dob.y, m: dob.d, d: dob.m };
  } else if (rng.chance(pr.dob_digit)) {
    const wrong = digitError(rng, dob, opts.today);
    if (wrong) {
      dob = wrong;
      errors.push('dob_digit');
    }
  }

  // Sex.
  let sex: SexCode | '' = p.sex;
  if (hit('blank_sex', pr.blank_sex)) sex = '';
  else if (hit('sex_wrong', pr.sex_wrong)) sex = p.sex === 'male' ? 'female' : 'male';

  // Address and phone.
  let address: Address | null = house.address;
  if (hit('blank_address', pr.blank_address)) address = null;
  else if (hit('address_moved', pr.address_moved)) address = movedAddress(rng, house.address);
  let phone = opts.phone === 'household' ? house.phone : p.phone;
  if (hit('blank_phone', pr.blank_phone)) phone = '';

  // Keying: case and stray spaces.
  if (hit('case_changed', pr.case_changed)) {
    const upper = rng.chance(0.5);
    const recase = (s: string): string => (upper ? s.toUpperCase() : s.toLowerCase());
    given = recase(given);
    middle = recase(middle);
    family = recase(family);
  }
  if (hit('extra_spaces', pr.extra_spaces)) {
    const where = rng.int(3);
    if (where === 0) given = addSpaces(rng, given);
    else if (where === 1) family = addSpaces(rng, family);
    else middle = middle ? addSpaces(rng, middle) : middle;
    if (where === 2 && !middle) given = `${given} `;
  }

  // Genuinely invalid rows.
  switch (opts.invalid) {
    case 'missing_dob':
      dob = null;
      break;
    case 'impossible_dob':
      dob = impossibleDate(rng, dob?.y ?? civilFromDays(p.birth).y);
      break;
    case 'future_dob':
      dob = civilFromDays(opts.today + rng.between(20, 900));
      break;
    case 'blank_family':
      family = '';
      break;
    case undefined:
      break;
  }
  if (opts.invalid) errors.push(opts.invalid);

  return { given, middle, family, suffix, dob, sex, address, phone, errors };
}

/** A surname other than this one, by population frequency. */
function otherSurname(rng: Rng, not: string): string {
  for (;;) {
    const name = SURNAMES.pick(rng).name;
    if (name !== not) return name;
  }
}

// Neighbouring keys on a US keyboard, for substitutions a typist makes.
const NEIGHBOURS: Readonly<Record<string, string>> = {
  a: 'qwsz', b: 'vghn', c: 'xdfv', d: 'serfcx', e: 'wsdr', f: 'drtgvc', g: 'ftyhbv', h: 'gyujnb',
  i: 'ujko', j: 'huikmn', k: 'jiolm', l: 'kop', m: 'njk', n: 'bhjm', o: 'iklp', p: 'ol',
  q: 'wa', r: 'edft', s: 'awedxz', t: 'rfgy', u: 'yhji', v: 'cfgb', w: 'qase', x: 'zsdc',
  y: 'tghu', z: 'asx',
};

function matchCase(ch: string, like: string): string {
  return like === like.toUpperCase() && like !== like.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase();
}

/** One keying slip: a letter inserted, deleted, substituted, or two adjacent letters swapped. */
export function typo(rng: Rng, text: string): string {
  const letters: number[] = [];
  for (let i = 0; i < text.length; i++) if (/\p{L}/u.test(text[i]!)) letters.push(i);
  if (letters.length < 2) return text;
  for (let attempt = 0; attempt < 8; attempt++) {
    const i = rng.pick(letters.slice(1)); // the first letter is rarely mistyped
    const ch = text[i]!;
    const lower = stripDiacritics(ch).toLowerCase();
    const near = NEIGHBOURS[lower] ?? 'aeiou';
    let out = text;
    switch (rng.int(4)) {
      case 0: // insertion: a doubled letter or a neighbouring key
        out = text.slice(0, i) + (rng.chance(0.5) ? ch : matchCase(rng.pick([...near]), ch)) + text.slice(i);
        break;
      case 1: // deletion
        if (letters.length >= 3) out = text.slice(0, i) + text.slice(i + 1);
        break;
      case 2: // substitution
        out = text.slice(0, i) + matchCase(rng.pick([...near]), ch) + text.slice(i + 1);
        break;
      default: {
        // transposition with the next character, when both are letters
        const next = text[i + 1];
        if (next && /\p{L}/u.test(next)) out = text.slice(0, i) + next + ch + text.slice(i + 2);
      }
    }
    if (out !== text) return out;
  }
  return text;
}

/** One digit of the day, month or year changed, still a valid past date; null if none found. */
export function digitError(rng: Rng, dob: Ymd, today: number): Ymd | null {
  const todayYmd = civilFromDays(today);
  for (let attempt = 0; attempt < 20; attempt++) {
    const part = rng.next();
    const out = { ...dob };
    if (part < 0.4) out.d = replaceDigit(rng, dob.d, 2);
    else if (part < 0.6) out.m = replaceDigit(rng, dob.m, 2);
    else out.y = replaceDigit(rng, dob.y, 4, 2); // the last two digits of the year
    if (out.y === dob.y && out.m === dob.m && out.d === dob.d) continue;
    if (!isValidDate(out.y, out.m, out.d)) continue;
    if (daysFromCivil(out.y, out.m, out.d) > today || out.y < todayYmd.y - 110) continue;
    return out;
  }
  return null;
}

function replaceDigit(rng: Rng, value: number, width: number, lastN = width): number {
  const digits = String(value).padStart(width, '0').split('');
  const pos = width - 1 - rng.int(lastN);
  let next = digits[pos]!;
  while (next === digits[pos]) next = String(rng.int(10));
  digits[pos] = next;
  return Number(digits.join(''));
}

/** A date that does not exist: 30 February, 31 April, month 13. */
function impossibleDate(rng: Rng, y: number): Ymd {
  const options: readonly Ymd[] = [
    { y, m: 2, d: 30 }, { y, m: 2, d: 31 }, { y, m: 4, d: 31 }, { y, m: 6, d: 31 },
    { y, m: 9, d: 31 }, { y, m: 11, d: 31 }, { y, m: 13, d: rng.between(1, 28) },
    { y, m: 2, d: daysInMonth(y, 2) + 1 },
  ];
  return rng.pick(options);
}

function addSpaces(rng: Rng, text: string): string {
  if (!text) return text;
  if (text.includes(' ') && rng.chance(0.5)) return text.replace(' ', '  ');
  return rng.chance(0.4) ? ` ${text}` : `${text}${rng.chance(0.5) ? ' ' : '   '}`;
}
