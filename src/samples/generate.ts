/**
 * Writes a complete, deterministic sample set: the IIS's patients and immunizations as FHIR
 * NDJSON, the three partners' rosters in their own layouts, and a truth file per roster that
 * says who each row really is and what errors it carries. Every file is streamed, so a million
 * patients and rosters of hundreds of thousands of rows are written with bounded memory.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { INVALID_KINDS, draftRow } from './corrupt.ts';
import type { ErrorKind, InvalidKind } from './corrupt.ts';
import { parseIsoDate } from './dates.ts';
import { immunizationLine, patientLine } from './fhir.ts';
import { UniqueIds, digitsFor } from './ids.ts';
import { immunizationHistory } from './immunizations.ts';
import { generatePopulation } from './population.ts';
import type { Person, Population } from './population.ts';
import { Rng } from './random.ts';
import { DEFAULT_ROWS, ROSTERS, ROSTER_KEYS, schoolYearStart, selectRoster } from './rosters.ts';
import type { RosterContext, RosterEntry, RosterKey, RosterSpec } from './rosters.ts';
import { LineWriter, csvLine } from './writer.ts';

export interface GenerateOptions {
  /** IIS population size. */
  patients: number;
  /** Same seed and options ⇒ byte-identical output. */
  seed: number;
  outDir: string;
  /** Rows per roster; default: school 1200, payer 1500, clinic 800 for 5000 patients, scaling with patients/5000. */
  rosterRows?: Partial<Record<RosterKey, number>>;
  /** YYYY-MM-DD reference date. @defaultValue '2026-11-01' (fixed so output is deterministic) */
  today?: string;
  /** Write Immunization.ndjson; matching benchmarks skip its gigabytes. @defaultValue true */
  immunizations?: boolean;
}

export interface GenerateReport {
  patients: number;
  immunizations: number;
  rosters: { partner: string; file: string; rows: number; inIndex: number }[];
}

export const DEFAULT_TODAY = '2026-11-01';

/** Share of IIS patients who were Riverside patients once but are not on the current panel. */
const FORMER_CLINIC_PATIENTS = 0.01;
/** Share of Riverside patients whose MRN the IIS holds (the clinic reports with it). */
const MRN_KNOWN_TO_IIS = 0.92;
/** Share of Riverside rows whose MRN was mistyped in the clinic's export. */
const MRN_TYPO = 0.015;

export async function generateSamples(opts: GenerateOptions): Promise<GenerateReport> {
  const { patients, seed } = opts;
  if (!Number.isSafeInteger(patients) || patients < 1) throw new RangeError(`patients must be a positive integer, got ${patients}`);
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const today = parseIsoDate(opts.today ?? DEFAULT_TODAY);
  const rows = {} as Record<RosterKey, number>;
  for (const key of ROSTER_KEYS) {
    const given = opts.rosterRows?.[key];
    if (given !== undefined && (!Number.isSafeInteger(given) || given < 0)) throw new RangeError(`rosterRows.${key} must be a non-negative integer`);
    rows[key] = given ?? Math.max(1, Math.round((DEFAULT_ROWS[key] * patients) / 5000));
  }
  const totalRows = ROSTER_KEYS.reduce((sum, key) => sum + rows[key], 0);

  // People outside the IIS: enough that each roster's outside share can be drawn with room to spare.
  const pop = generatePopulation({ seed, patients, outsiders: Math.max(200, Math.ceil(totalRows * 0.5)), today });
  const ctx: RosterContext = { today, schoolYearStart: schoolYearStart(today) };

  const selections = {} as Record<RosterKey, RosterEntry[]>;
  for (const key of ROSTER_KEYS) selections[key] = selectRoster(new Rng(seed, 'select', key), pop, ROSTERS[key], rows[key], ctx);
  const mrns = assignMrns(new Rng(seed, 'mrn'), pop, selections.clinic);

  await Promise.all(['iis', 'rosters', 'truth'].map((d) => mkdir(join(opts.outDir, d), { recursive: true })));
  const immunizations = await writeIis(opts.outDir, pop, seed, today, opts.immunizations ?? true);

  const report: GenerateReport = { patients: pop.iisCount, immunizations, rosters: [] };
  for (const key of ROSTER_KEYS) {
    const spec = ROSTERS[key];
    const written = await writeRoster(opts.outDir, pop, spec, selections[key], new Rng(seed, 'roster', key), ctx, mrns);
    report.rosters.push({ partner: spec.partner, file: `rosters/${spec.file}`, rows: written.rows, inIndex: written.inIndex });
  }
  return report;
}

/** Gives Riverside's patients (and some former ones) their MRNs; returns the MRN allocator. */
function assignMrns(rng: Rng, pop: Population, panel: RosterEntry[]): UniqueIds {
  const ids = new UniqueIds('', digitsFor(panel.length + pop.iisCount * FORMER_CLINIC_PATIENTS, 7) + 1, '1');
  for (const entry of panel) {
    const p = pop.people[entry.person]!;
    if (entry.duplicate || p.mrn) continue;
    p.mrn = ids.next(rng);
    p.mrnInIIS = p.ordinal >= 0 && rng.chance(MRN_KNOWN_TO_IIS);
  }
  for (const p of pop.patients) {
    if (!p.mrn && rng.chance(FORMER_CLINIC_PATIENTS)) {
      p.mrn = ids.next(rng);
      p.mrnInIIS = true;
    }
  }
  return ids;
}

/** Patient.ndjson and Immunization.ndjson, in one pass over the patients. */
async function writeIis(outDir: string, pop: Population, seed: number, today: number, withImmunizations: boolean): Promise<number> {
  const patientsOut = new LineWriter(join(outDir, 'iis', 'Patient.ndjson'), { encoding: 'utf-8', eol: '\n' });
  const immsOut = new LineWriter(join(outDir, 'iis', 'Immunization.ndjson'), { encoding: 'utf-8', eol: '\n' });
  try {
    for (const p of pop.patients) {
      const house = pop.households[p.household]!;
      let wait = patientsOut.line(patientLine(p, house, seed, pop.iisCount, today));
      if (wait) await wait;
      if (!withImmunizations) continue;
      const rng = new Rng(seed, 'immunizations', p.ordinal);
      const doses = immunizationHistory(rng, p.birth, today);
      for (let n = 0; n < doses.length; n++) {
        wait = immsOut.line(immunizationLine(p, doses[n]!, n + 1, rng.between(0, 30), rng.int(86400), today));
        if (wait) await wait;
      }
    }
  } finally {
    await Promise.all([patientsOut.close(), immsOut.close()]);
  }
  return immsOut.lines;
}

/** One roster and its truth file. */
async function writeRoster(
  outDir: string,
  pop: Population,
  spec: RosterSpec,
  selection: RosterEntry[],
  rng: Rng,
  ctx: RosterContext,
  mrns: UniqueIds,
): Promise<{ rows: number; inIndex: number }> {
  // Record ids, then rows in record-id order, as the partners' systems export them.
  const recordIds = new UniqueIds(spec.key === 'payer' ? 'ACM' : '', spec.key === 'payer' ? 9 : 1 + digitsFor(selection.length, 6), spec.key === 'school' ? '7' : '');
  const rows = selection.map((entry) => {
    const p = pop.people[entry.person]!;
    let id: string;
    if (spec.key === 'clinic') id = entry.duplicate || !p.mrn ? mrns.next(rng) : p.mrn;
    else id = recordIds.next(rng);
    return { entry, p, id };
  });
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const invalid = new Map<number, InvalidKind>();
  if (rows.length >= 20) {
    const each = Math.max(1, Math.round(rows.length * spec.profile.invalid_each));
    for (const kind of INVALID_KINDS) {
      for (let k = 0; k < each; k++) {
        let at = rng.int(rows.length);
        while (invalid.has(at)) at = (at + 1) % rows.length;
        invalid.set(at, kind);
      }
    }
  }

  const out = new LineWriter(join(outDir, 'rosters', spec.file), spec.writer);
  const truth = new LineWriter(join(outDir, 'truth', spec.truthFile), { encoding: 'utf-8', eol: '\n' });
  let inIndex = 0;
  try {
    let wait = out.line(spec.join(spec.header));
    if (wait) await wait;
    truth.line('line,record_id,patient_id,errors,relation');
    for (let i = 0; i < rows.length; i++) {
      const { entry, p } = rows[i]!;
      let { id } = rows[i]!;
      const kind = invalid.get(i);
      const draft = draftRow(rng, p, pop.households[p.household]!, {
        profile: spec.profile,
        suffixColumn: spec.suffixColumn,
        phone: spec.phone,
        today: ctx.today,
        ...(kind ? { invalid: kind } : {}),
      });
      const errors: ErrorKind[] = [...draft.errors];
      if (spec.key === 'clinic' && !entry.duplicate) {
        if (rng.chance(MRN_TYPO)) {
          const typo = mistypeMrn(rng, id, mrns);
          if (typo) {
            id = typo;
            errors.push('mrn_typo');
          }
        }
        if (p.ordinal >= 0 && !p.mrnInIIS) errors.push('mrn_not_in_iis');
      }
      if (entry.duplicate) errors.push('duplicate_person');
      if (p.ordinal >= 0) inIndex++;
      wait = out.line(spec.join(spec.cells(rng, id, p, draft, ctx)));
      if (wait) await wait;
      wait = truth.line(csvLine([String(i + 2), id, p.id, errors.join(';'), relationOf(pop, p)]));
      if (wait) await wait;
    }
  } finally {
    await Promise.all([out.close(), truth.close()]);
  }
  return { rows: rows.length, inIndex };
}

/** One digit changed or two adjacent digits swapped, giving an MRN nobody has. */
function mistypeMrn(rng: Rng, mrn: string, ids: UniqueIds): string | null {
  for (let attempt = 0; attempt < 10; attempt++) {
    const chars = mrn.split('');
    const i = 1 + rng.int(chars.length - 1);
    if (rng.chance(0.5) && i + 1 < chars.length && chars[i] !== chars[i + 1]) {
      [chars[i], chars[i + 1]] = [chars[i + 1]!, chars[i]!];
    } else {
      let digit = chars[i]!;
      while (digit === chars[i]) digit = String(rng.int(10));
      chars[i] = digit;
    }
    const typo = chars.join('');
    if (ids.claim(typo)) return typo;
  }
  return null;
}

/** "twin_of:<id>" and "jr_sr_of:<id>" for relatives the IIS holds, ';'-joined. */
function relationOf(pop: Population, p: Person): string {
  const out: string[] = [];
  if (p.twin >= 0) {
    const twin = pop.people[p.twin]!;
    if (twin.ordinal >= 0) out.push(`twin_of:${twin.id}`);
  }
  if (p.namesakes) {
    for (const n of p.namesakes) {
      const other = pop.people[n]!;
      if (n !== p.idx && other.ordinal >= 0) out.push(`jr_sr_of:${other.id}`);
    }
  }
  return out.join(';');
}
