/**
 * Birth dates in the partner's agreed formats. Formats are compiled once and cached, and input is
 * read char by char, because this runs once per row and most rows parse on the first format.
 */

export type BirthDateResult =
  | { ok: true; value: string }
  | { ok: false; code: 'missing' | 'unparseable' | 'impossible' | 'future' | 'too_old'; message: string };

const YEAR4 = 0;
const YEAR2 = 1;
const MONTH = 2;
const DAY = 3;
const MONTH_NAME = 4;
const LITERAL = 5;

interface Part {
  kind: number;
  /** Fewest and most digits accepted (numeric parts). */
  min: number;
  max: number;
  /** Char code, for literals. */
  literal: number;
}

const compiled = new Map<string, Part[]>();

function isNumeric(p: Part | undefined): boolean {
  return p !== undefined && p.kind !== LITERAL;
}

/**
 * "MM" and "DD" take one or two digits when a separator bounds them ("4/3/2012" under MM/DD/YYYY
 * is unambiguous, and spreadsheets drop the zero), but exactly two where they abut another field
 * (YYYYMMDD), since there the width is the only delimiter.
 */
function compile(format: string): Part[] {
  const cached = compiled.get(format);
  if (cached !== undefined) return cached;
  const parts: Part[] = [];
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    let run = 1;
    while (i + run < format.length && format[i + run] === c) run++;
    if (c === 'Y' && (run === 4 || run === 2)) {
      parts.push({ kind: run === 4 ? YEAR4 : YEAR2, min: run, max: run, literal: 0 });
    } else if ((c === 'M' || c === 'D') && (run === 1 || run === 2)) {
      parts.push({ kind: c === 'M' ? MONTH : DAY, min: run, max: 2, literal: 0 });
    } else if (c === 'M' && run === 3) {
      parts.push({ kind: MONTH_NAME, min: 3, max: 9, literal: 0 });
    } else {
      for (let k = 0; k < run; k++) parts.push({ kind: LITERAL, min: 0, max: 0, literal: c.charCodeAt(0) });
    }
    i += run;
  }
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    if ((p.kind === MONTH || p.kind === DAY) && p.min === 2 && !isNumeric(parts[k - 1]) && !isNumeric(parts[k + 1])) {
      p.min = 1;
    }
  }
  compiled.set(format, parts);
  return parts;
}

const MONTH_NAMES: ReadonlyMap<string, number> = new Map([
  ['JAN', 1], ['JANUARY', 1], ['FEB', 2], ['FEBRUARY', 2], ['MAR', 3], ['MARCH', 3],
  ['APR', 4], ['APRIL', 4], ['MAY', 5], ['JUN', 6], ['JUNE', 6], ['JUL', 7], ['JULY', 7],
  ['AUG', 8], ['AUGUST', 8], ['SEP', 9], ['SEPT', 9], ['SEPTEMBER', 9], ['OCT', 10],
  ['OCTOBER', 10], ['NOV', 11], ['NOVEMBER', 11], ['DEC', 12], ['DECEMBER', 12],
]);

/**
 * What may follow a date: a time of day as spreadsheets and ISO exports write it
 * ("T00:00:00", " 0:00", " 12:00:00 AM", "T00:00:00.000-05:00"). The date is taken as written;
 * an offset is not applied, because a birth date has no time zone.
 */
const TIME_TAIL = /^(?:T| +)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?: ?[AaPp][Mm])?(?:Z|[+-]\d{2}:?\d{2})?$/;

const NO_MATCH = -1;

/** Reads `s` against `parts`; returns y*10000+m*100+d (fields unchecked), or NO_MATCH. */
function readDate(s: string, parts: readonly Part[], today: string): number {
  let pos = 0;
  let year = -1;
  let yy = -1;
  let month = -1;
  let day = -1;
  for (const p of parts) {
    if (p.kind === LITERAL) {
      if (s.charCodeAt(pos) !== p.literal) return NO_MATCH;
      pos++;
      continue;
    }
    if (p.kind === MONTH_NAME) {
      let end = pos;
      while (end < s.length && end - pos < p.max && isLetter(s.charCodeAt(end))) end++;
      if (end - pos < p.min) return NO_MATCH;
      const m = MONTH_NAMES.get(s.slice(pos, end).toUpperCase());
      if (m === undefined) return NO_MATCH;
      month = m;
      pos = end;
      continue;
    }
    let value = 0;
    let digits = 0;
    while (digits < p.max && pos < s.length) {
      const c = s.charCodeAt(pos);
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
      digits++;
      pos++;
    }
    if (digits < p.min) return NO_MATCH;
    if (p.kind === YEAR4) year = value;
    else if (p.kind === YEAR2) yy = value;
    else if (p.kind === MONTH) month = value;
    else day = value;
  }
  if (pos < s.length && !TIME_TAIL.test(s.slice(pos))) return NO_MATCH;
  if (year < 0 && yy < 0) return NO_MATCH;
  if (month < 0 || day < 0) return NO_MATCH;
  if (year < 0) {
    // Two-digit years: this century unless that would put the birth after today.
    year = 2000 + yy;
    const todayNum = Number(today.slice(0, 4)) * 10000 + Number(today.slice(5, 7)) * 100 + Number(today.slice(8, 10));
    if (year * 10000 + month * 100 + day > todayNum) year -= 100;
  }
  return year * 10000 + month * 100 + day;
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function isRealDate(ymd: number): boolean {
  const year = Math.floor(ymd / 10000);
  const month = Math.floor(ymd / 100) % 100;
  const day = ymd % 100;
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function iso(ymd: number): string {
  const y = Math.floor(ymd / 10000);
  const m = Math.floor(ymd / 100) % 100;
  const d = ymd % 100;
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

const MISSING: BirthDateResult = { ok: false, code: 'missing', message: 'birth date is missing' };
const FUTURE: BirthDateResult = { ok: false, code: 'future', message: 'birth date is in the future' };
const TOO_OLD: BirthDateResult = { ok: false, code: 'too_old', message: 'birth date is before 1900-01-01' };
const EARLIEST = '1900-01-01';

/** Messages name the formats, never the value: they end up in logs and result files. */
export function parseBirthDate(raw: string, formats: readonly string[], today: string): BirthDateResult {
  const s = raw.trim();
  if (s === '') return MISSING;
  if (formats.length === 0) {
    return { ok: false, code: 'unparseable', message: 'birth date cannot be read: no date format is configured' };
  }
  let impossibleFormat: string | undefined;
  for (const format of formats) {
    const ymd = readDate(s, compile(format), today);
    if (ymd === NO_MATCH) continue;
    if (!isRealDate(ymd)) {
      impossibleFormat ??= format;
      continue;
    }
    const value = iso(ymd);
    if (value > today) return FUTURE;
    if (value < EARLIEST) return TOO_OLD;
    return { ok: true, value };
  }
  if (impossibleFormat !== undefined) {
    return { ok: false, code: 'impossible', message: `birth date is not a real calendar date (format ${impossibleFormat})` };
  }
  return {
    ok: false,
    code: 'unparseable',
    message: `birth date does not match the expected format (${formats.join(' or ')})`,
  };
}
