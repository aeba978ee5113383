/**
 * The three partners' rosters: who is on each (selection) and how each partner spells a row
 * (layout). Layouts follow the pipeline files in pipelines/: School District 7's Excel CSV,
 * Acme Health Plan's pipe-delimited Windows-1252 mainframe extract, and Riverside Family
 * Clinic's panel export keyed by the clinic MRN that the IIS also holds.
 */
import { ageOn, civilFromDays, daysFromCivil, pad2, pad4 } from './dates.ts';
import type { Ymd } from './dates.ts';
import { CLINIC_ERRORS, PAYER_ERRORS, SCHOOL_ERRORS } from './corrupt.ts';
import type { ErrorProfile, RowDraft } from './corrupt.ts';
import { formatPhone, streetLine, townOf, unitLine } from './places.ts';
import type { StreetStyle } from './places.ts';
import type { Person, Population } from './population.ts';
import type { Rng } from './random.ts';
import type { LineWriterOptions } from './writer.ts';
import { csvLine } from './writer.ts';

export type RosterKey = 'school' | 'payer' | 'clinic';
export const ROSTER_KEYS: readonly RosterKey[] = ['school', 'payer', 'clinic'];

/** Rows per roster for 5,000 patients; other sizes scale with patients / 5,000. */
export const DEFAULT_ROWS: Readonly<Record<RosterKey, number>> = { school: 1200, payer: 1500, clinic: 800 };

export interface RosterContext {
  today: number;
  /** Day number of 1 September that starts the current school year. */
  schoolYearStart: number;
}

export interface RosterSpec {
  key: RosterKey;
  partner: string;
  file: string;
  truthFile: string;
  header: readonly string[];
  writer: LineWriterOptions;
  /** Share of rows about people the IIS holds. */
  inIisShare: number;
  /** Chance that picking a person also brings in the rest of the household who qualify. */
  householdShare: number;
  /** Chance that picking a twin or a Jr/Sr also brings in the other. */
  relationShare: number;
  profile: ErrorProfile;
  suffixColumn: boolean;
  phone: 'household' | 'person';
  eligible(p: Person, ctx: RosterContext): boolean;
  /** The row's cells in header order, before delimiting. */
  cells(rng: Rng, recordId: string, p: Person, draft: RowDraft, ctx: RosterContext): string[];
  /** Joins the cells into one line. */
  join(cells: readonly string[]): string;
}

/** Age on the first day of the school year. */
export function schoolAge(p: Person, ctx: RosterContext): number {
  return ageOn(p.birth, ctx.schoolYearStart);
}

export function schoolYearStart(today: number): number {
  const { y, m } = civilFromDays(today);
  return daysFromCivil(m >= 8 ? y : y - 1, 9, 1);
}

const GRADES = ['K', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];

function mdy(dob: Ymd | null, short: boolean): string {
  if (!dob) return '';
  return short ? `${dob.m}/${dob.d}/${pad4(dob.y)}` : `${pad2(dob.m)}/${pad2(dob.d)}/${pad4(dob.y)}`;
}

function zipPlus4(rng: Rng, zip: string, share: number, dash: boolean): string {
  return rng.chance(share) ? `${zip}${dash ? '-' : ''}${String(rng.int(10000)).padStart(4, '0')}` : zip;
}

export const SCHOOL: RosterSpec = {
  key: 'school',
  partner: 'school-district-7',
  file: 'district7-fall.csv',
  truthFile: 'district7-fall.truth.csv',
  header: ['Student ID', 'Last Name', 'First Name', 'Middle Name', 'Suffix', 'Birth Date', 'Gender', 'Street Address', 'City', 'State', 'Zip', 'Guardian Phone', 'Grade'],
  writer: { encoding: 'utf-8', eol: '\r\n', bom: true },
  inIisShare: 0.88,
  householdShare: 0.7,
  relationShare: 0.85,
  profile: SCHOOL_ERRORS,
  suffixColumn: true,
  phone: 'household',
  eligible(p, ctx) {
    const age = schoolAge(p, ctx);
    // Eighteen-year-olds are still enrolled when their birthday fell late or they were held back.
    return (age >= 5 && age <= 17) || (age === 18 && p.birth % 4 === 0);
  },
  cells(rng, recordId, p, d, ctx) {
    const style: StreetStyle = rng.chance(0.6) ? 'full' : 'abbr';
    const a = d.address;
    let street = '';
    if (a) {
      const unit = unitLine(a, style);
      street = streetLine(a, style) + (unit ? (rng.chance(0.35) ? ', ' : ' ') + unit : '');
    }
    const middle = d.middle && rng.chance(0.2) ? `${d.middle[0]}${rng.chance(0.5) ? '.' : ''}` : d.middle;
    const suffix = d.suffix && rng.chance(0.3) ? `${d.suffix}.`.replace('III.', 'III') : d.suffix;
    const phoneStyle = rng.pick(['paren', 'paren', 'dash', 'dash', 'plain', 'dot'] as const);
    return [
      recordId,
      d.family,
      d.given,
      middle,
      suffix,
      mdy(d.dob, rng.chance(0.08)),
      d.sex === 'male' ? 'M' : d.sex === 'female' ? 'F' : '',
      street,
      a ? townOf(a).city : '',
      a ? townOf(a).state : '',
      a ? zipPlus4(rng, a.zip, 0.03, true) : '',
      d.phone ? formatPhone(d.phone, phoneStyle) : '',
      GRADES[Math.min(12, Math.max(0, schoolAge(p, ctx) - 5))]!,
    ];
  },
  join: (cells) => csvLine(cells, ','),
};

export const PAYER: RosterSpec = {
  key: 'payer',
  partner: 'acme-health-plan',
  file: 'acme-members-202611.txt',
  truthFile: 'acme-members-202611.truth.csv',
  header: ['MEMBER_ID', 'MBR_LAST_NM', 'MBR_FIRST_NM', 'MBR_MID_INIT', 'MBR_DOB', 'MBR_SEX_CD', 'ADDR_LINE_1', 'ADDR_LINE_2', 'CITY_NM', 'ST_CD', 'ZIP_CD'],
  writer: { encoding: 'windows-1252', eol: '\r\n' },
  inIisShare: 0.9,
  householdShare: 0.75,
  relationShare: 0.7,
  profile: PAYER_ERRORS,
  suffixColumn: false,
  phone: 'person',
  eligible: () => true,
  cells(rng, recordId, _p, d) {
    const a = d.address;
    const up = (s: string): string => s.toUpperCase();
    return [
      recordId,
      up(d.family),
      up(d.given),
      up(d.middle.trim().slice(0, 1)),
      d.dob ? `${pad4(d.dob.y)}${pad2(d.dob.m)}${pad2(d.dob.d)}` : '',
      d.sex === 'male' ? 'M' : d.sex === 'female' ? 'F' : 'U',
      a ? up(streetLine(a, 'abbr')) : '',
      a ? up(unitLine(a, 'abbr')) : '',
      a ? up(townOf(a).city) : '',
      a ? townOf(a).state : '',
      a ? zipPlus4(rng, a.zip, 0.1, false) : '',
    ];
  },
  // A fixed mainframe layout: pipes never occur in the data, so nothing is quoted.
  join: (cells) => cells.join('|'),
};

export const CLINIC: RosterSpec = {
  key: 'clinic',
  partner: 'riverside-clinic',
  file: 'riverside-panel.csv',
  truthFile: 'riverside-panel.truth.csv',
  header: ['mrn', 'first_name', 'last_name', 'dob', 'sex', 'address', 'city', 'state', 'postal_code', 'phone'],
  writer: { encoding: 'utf-8', eol: '\n' },
  inIisShare: 0.87,
  householdShare: 0.55,
  relationShare: 0.7,
  profile: CLINIC_ERRORS,
  suffixColumn: false,
  phone: 'person',
  eligible: () => true,
  cells(rng, recordId, _p, d) {
    const a = d.address;
    const style: StreetStyle = rng.chance(0.5) ? 'full' : 'abbr';
    const unit = a ? unitLine(a, style) : '';
    return [
      recordId,
      d.given,
      d.family,
      d.dob ? `${pad4(d.dob.y)}-${pad2(d.dob.m)}-${pad2(d.dob.d)}` : '',
      d.sex,
      a ? streetLine(a, style) + (unit ? ` ${unit}` : '') : '',
      a ? townOf(a).city : '',
      a ? townOf(a).state : '',
      a ? a.zip : '',
      d.phone ? formatPhone(d.phone, 'paren') : '',
    ];
  },
  join: (cells) => csvLine(cells, ','),
};

export const ROSTERS: Readonly<Record<RosterKey, RosterSpec>> = { school: SCHOOL, payer: PAYER, clinic: CLINIC };

/** One row to be: the person, and whether it repeats a person already on the roster. */
export interface RosterEntry {
  person: number;
  duplicate: boolean;
}

/**
 * Picks `rows` people for a roster: the intended share from the IIS and the rest from outside it,
 * bringing in households, twins and Jr/Sr namesakes together as partners' lists do. When the
 * eligible people run out, people already listed appear again (a second record for one person).
 */
export function selectRoster(rng: Rng, pop: Population, spec: RosterSpec, rows: number, ctx: RosterContext): RosterEntry[] {
  const { people, households } = pop;
  const inPool: number[] = [];
  const outPool: number[] = [];
  for (const p of people) if (spec.eligible(p, ctx)) (p.ordinal >= 0 ? inPool : outPool).push(p.idx);
  let wantIn = Math.round(rows * spec.inIisShare);
  let wantOut = rows - wantIn;
  if (inPool.length === 0) [wantIn, wantOut] = [0, rows];
  if (outPool.length === 0) [wantIn, wantOut] = [rows, 0];
  const want = [wantOut, wantIn];
  const have = [0, 0];
  const chosen = new Uint8Array(people.length);
  const entries: RosterEntry[] = [];

  const add = (i: number): boolean => {
    const p = people[i]!;
    if (chosen[i] || !spec.eligible(p, ctx)) return false;
    const bucket = p.ordinal >= 0 ? 1 : 0;
    if (have[bucket]! >= want[bucket]!) return false;
    chosen[i] = 1;
    have[bucket]!++;
    entries.push({ person: i, duplicate: false });
    return true;
  };
  const visit = (i: number): void => {
    if (!add(i)) return;
    const p = people[i]!;
    if (p.twin >= 0 && rng.chance(spec.relationShare)) add(p.twin);
    if (p.namesakes) for (const n of p.namesakes) if (n !== i && rng.chance(spec.relationShare)) add(n);
    if (rng.chance(spec.householdShare)) for (const m of households[p.household]!.members) add(m);
  };
  for (const i of rng.shuffle(inPool)) {
    if (have[1]! >= want[1]!) break;
    visit(i);
  }
  for (const i of rng.shuffle(outPool)) {
    if (have[0]! >= want[0]!) break;
    visit(i);
  }
  for (const bucket of [1, 0]) {
    const listed = entries.filter((e) => (people[e.person]!.ordinal >= 0 ? 1 : 0) === bucket);
    while (have[bucket]! < want[bucket]! && listed.length > 0) {
      entries.push({ person: rng.pick(listed).person, duplicate: true });
      have[bucket]!++;
    }
  }
  return entries;
}
