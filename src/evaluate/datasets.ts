/**
 * The labelled data sets matching is measured on, written out as the product reads them: an
 * index file and one or more rosters with their pipeline YAML and ground truth. FEBRL 1–3 (each
 * without and with its social-security-like identifier) and Splink's fake_1000 come from the
 * external data folder (bench/data, committed with its licences; BENCH_DATA overrides); the
 * committed samples are used as they are. bench:accuracy runs them through the product path;
 * test/outcomes-identical.test.ts matches them in memory to hold the matcher's results fixed.
 * MERGED_SETS, FEBRL 2 and 3 with records merged by the identity feed, are bench:accuracy's only.
 *
 * Its own entry, not re-exported by src/evaluate/index.ts: it reads the demo's file list from
 * src/cli, which imports src/evaluate.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { writeToString } from 'fast-csv';
import { DEMO_FILES } from '../cli/demo.ts';
import { CandidateIndex } from '../match/index.ts';
import type { IndexPatient } from '../model/index.ts';
import { csvToResource, PATIENT_CSV_COLUMNS } from '../patient-index/csv-form.ts';
import { patientFromFhir, type FhirPatient } from '../patient-index/fhir.ts';
import { hasRemovedTag } from '../patient-index/index.ts';
import { readTruth, type TruthRow } from './index.ts';

export const SETS = ['febrl1', 'febrl1-id', 'febrl2', 'febrl2-id', 'febrl3', 'febrl3-id', 'fake1000', 'samples'] as const;
/**
 * FEBRL 2 and 3 with merged-away records in the index (prepareFebrlMerged): `-merged` as the
 * index is loaded, its merged records candidates standing for their survivor; `-merged-dropped`
 * the same index and rows with the merged records left out, as no candidate at all (what matching
 * did before a merged-away patient kept its blocking keys). `-merged-swap` and its `-dropped` twin
 * the same with the roles swapped: the original merged into the first duplicate, the survivor, so
 * the rows (derived from the original) carry the old demographics of the record merged away —
 * the case keeping merged records as candidates is for. Apart from SETS: the identical-results
 * fixture does not hold them.
 */
export const MERGED_SETS = [
  'febrl2-merged', 'febrl2-merged-dropped', 'febrl3-merged', 'febrl3-merged-dropped',
  'febrl2-merged-swap', 'febrl2-merged-swap-dropped', 'febrl3-merged-swap', 'febrl3-merged-swap-dropped',
] as const;
/** Every set bench:accuracy can run, in its order. */
export const ALL_SETS = [...SETS, ...MERGED_SETS] as const;
export type SetName = (typeof ALL_SETS)[number];

/** The external data folder: BENCH_DATA, else the copy committed in bench/data (see its README.md). */
export function benchDataDir(): string {
  return process.env.BENCH_DATA ?? path.resolve(import.meta.dirname, '..', '..', 'bench', 'data');
}

/** Whether `dir` holds the external sets (FEBRL and fake_1000); the committed samples need none. */
export async function hasBenchData(dir: string): Promise<boolean> {
  try {
    await fs.access(path.join(dir, 'febrl', 'dataset1.csv'));
    await fs.access(path.join(dir, 'splink', 'fake_1000.csv'));
    return true;
  } catch {
    return false;
  }
}

/** A made-up SSN-like identifier system for FEBRL's soc_sec_id. */
const SSN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.99';

export interface RosterSpec {
  /** Table label and file name of its misses CSV. */
  label: string;
  file: string;
  pipelineFile: string;
  truth: () => Promise<Map<string, TruthRow>>;
}
export interface Prepared {
  indexFile: string;
  rosters: RosterSpec[];
}

/** Writes rows (the first is the header) as RFC 4180 CSV, quoting only where a cell needs it. */
export async function writeCsv(file: string, rows: string[][]): Promise<void> {
  await fs.writeFile(file, `${await writeToString(rows)}\n`);
}

/** YYYYMMDD or YYYY-MM-DD → YYYY-MM-DD when it is a real calendar date, else ''. */
function calendarDate(s: string): string {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(s.trim());
  if (!m) return '';
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d ? `${m[1]}-${m[2]}-${m[3]}` : '';
}

function pipelineYaml(partner: string, displayName: string, columns: Record<string, string>, dateFormat: string, extra = ''): string {
  const cols = Object.entries(columns).map(([f, h]) => `  ${f}: [${JSON.stringify(h)}]`).join('\n');
  return `partner: ${partner}
displayName: ${JSON.stringify(displayName)}
file: { namePattern: "*.csv", encoding: utf-8, delimiter: "," }
columns:
${cols}
dates: { birthDate: [${dateFormat}] }
group: { id: ${partner}, name: ${JSON.stringify(displayName)}, mode: replace }
${extra}`;
}

/** One FEBRL file's records, by column, in file order, with the person each is a record of. */
async function readFebrl(n: 1 | 2 | 3, data: string): Promise<{ r: Record<string, string>; person: string; dup?: number }[]> {
  const text = await fs.readFile(path.join(data, 'febrl', `dataset${n}.csv`), 'utf8');
  const [head, ...lines] = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const cols = head!.split(',').map((c) => c.trim());
  return lines.map((l, i) => {
    const cells = l.split(', ');
    if (cells.length !== cols.length) throw new Error(`dataset${n}.csv line ${i + 2}: ${cells.length} cells, the header has ${cols.length}`);
    const r = Object.fromEntries(cols.map((c, j) => [c, cells[j]!.trim()])) as Record<string, string>;
    const m = /^rec-(\d+)-(?:org|dup-(\d+))$/.exec(r.rec_id!);
    if (!m) throw new Error(`dataset${n}.csv: rec_id ${r.rec_id} is neither rec-N-org nor rec-N-dup-k`);
    return m[2] === undefined ? { r, person: m[1]! } : { r, person: m[1]!, dup: Number(m[2]) };
  });
}

const febrlStreet = (r: Record<string, string>) => `${r.street_number} ${r.address_1}`.trim();

/** A FEBRL record as a row of the index's CSV form (identifier columns included; a header without them leaves them out). */
function febrlIndexRow(r: Record<string, string>, id: string): Record<string, string> {
  return {
    id, family: r.surname!, given: r.given_name!, middle: '', suffix: '', birth_date: calendarDate(r.date_of_birth!), sex: '',
    street: febrlStreet(r), city: r.suburb!, state: r.state!, zip: r.postcode!, phone: '',
    identifier_system: r.soc_sec_id ? SSN_SYSTEM : '', identifier_value: r.soc_sec_id!,
  };
}

const FEBRL_ROSTER_HEADER = ['rec_id', 'given_name', 'surname', 'street', 'address_2', 'suburb', 'postcode', 'state', 'date_of_birth', 'soc_sec_id'];
const febrlRosterRow = (r: Record<string, string>) => [r.rec_id!, r.given_name!, r.surname!, febrlStreet(r), r.address_2!, r.suburb!, r.postcode!, r.state!, r.date_of_birth!, r.soc_sec_id!];

/** A FEBRL roster, its truth and its pipeline written out under `work`, named for `set`. */
async function writeFebrlRoster(n: 1 | 2 | 3, set: string, withId: boolean, roster: string[][], truth: Map<string, TruthRow>, work: string, about = ''): Promise<RosterSpec> {
  const file = path.join(work, `${set}.csv`);
  const pipelineFile = path.join(work, `${set}.yaml`);
  await writeCsv(file, roster);
  const identifiers = withId ? `identifiers:\n  - columns: [soc_sec_id]\n    system: "${SSN_SYSTEM}"\n` : '';
  await fs.writeFile(
    pipelineFile,
    pipelineYaml(`bench-${set}`, `FEBRL dataset${n} duplicates${withId ? ' with soc_sec_id' : ''}${about}`, {
      recordId: 'rec_id', given: 'given_name', family: 'surname', street: 'street', street2: 'address_2', city: 'suburb', zip: 'postcode', state: 'state', birthDate: 'date_of_birth',
    }, 'YYYYMMDD', identifiers),
  );
  return { label: set, file, pipelineFile, truth: async () => truth };
}

/**
 * FEBRL: originals (rec-N-org) are the index, corrupted copies (rec-N-dup-k) the roster. The
 * file is ", "-separated without quoting; the roster is rewritten as ordinary CSV with
 * street_number and address_1 joined into one street (address_2, a locality or building line,
 * goes in as street2; the index's CSV form has one street line, so the index leaves it out).
 */
async function prepareFebrl(n: 1 | 2 | 3, withId: boolean, data: string, work: string): Promise<Prepared> {
  const set = `febrl${n}${withId ? '-id' : ''}`;
  const records = await readFebrl(n, data);
  const indexHeader = [...PATIENT_CSV_COLUMNS, ...(withId ? ['identifier_system', 'identifier_value'] : [])];
  const index: string[][] = [indexHeader];
  const roster: string[][] = [FEBRL_ROSTER_HEADER];
  const truth = new Map<string, TruthRow>();
  for (const { r, person, dup } of records) {
    if (dup === undefined) {
      const row = febrlIndexRow(r, `febrl-${person}`);
      index.push(indexHeader.map((c) => row[c] ?? ''));
    } else {
      roster.push(febrlRosterRow(r));
      truth.set(r.rec_id!, { line: roster.length, recordId: r.rec_id!, patientId: `febrl-${person}` });
    }
  }
  const indexFile = path.join(work, 'index.csv');
  await writeCsv(indexFile, index);
  return { indexFile, rosters: [await writeFebrlRoster(n, set, withId, roster, truth, work)] };
}

/**
 * FEBRL with merged records, as the identity feed (PIXm replaced-by) leaves an index that held a
 * person twice. A person with one duplicate is as in febrlN: the original (rec-N-org) in the
 * index as febrl-N, the duplicate a row. Of a person with two duplicates or more, the original
 * and the first duplicate (lowest k, febrl-N-dup-k) are both in the index, one merged into the
 * other — `active: false` and a `replaced-by` link, as a merge leaves the record it merges away:
 * with `survivor` 'original' the first duplicate merged into the original, with 'first-duplicate'
 * (the roles swapped) the original merged into the first duplicate. The roster is every other
 * duplicate, each with its person's survivor as truth; swapped, the rows (FEBRL derives each
 * duplicate from the original) carry the old demographics of the record merged away. With
 * `dropped`, the same roster against the index without the merged records. The index is NDJSON
 * (the CSV form has no link): each Patient the resource the CSV form makes of its row, so the
 * originals read as febrlN's do. No soc_sec_id.
 */
async function prepareFebrlMerged(n: 2 | 3, survivor: 'original' | 'first-duplicate', dropped: boolean, data: string, work: string): Promise<Prepared> {
  const swapped = survivor === 'first-duplicate';
  const set = `febrl${n}-merged${swapped ? '-swap' : ''}${dropped ? '-dropped' : ''}`;
  const records = await readFebrl(n, data);
  const dups = new Map<string, number[]>();
  for (const { person, dup } of records) if (dup !== undefined) dups.set(person, [...(dups.get(person) ?? []), dup]);
  /** Person → its first duplicate, of a person with two or more: merged into the original, or (swapped) the original merged into it. */
  const firstDup = new Map([...dups].filter(([, ks]) => ks.length >= 2).map(([person, ks]) => [person, Math.min(...ks)]));
  const idOf = (person: string, dup: number | undefined) => (dup === undefined ? `febrl-${person}` : `febrl-${person}-dup-${dup}`);
  const patient = (r: Record<string, string>, id: string) =>
    csvToResource('Patient', Object.fromEntries(PATIENT_CSV_COLUMNS.map((c) => [c, febrlIndexRow(r, id)[c] ?? ''])));
  const live: unknown[] = [];
  const merged: unknown[] = [];
  const roster: string[][] = [FEBRL_ROSTER_HEADER];
  const truth = new Map<string, TruthRow>();
  for (const { r, person, dup } of records) {
    const k = firstDup.get(person);
    const survivorId = idOf(person, swapped ? k : undefined);
    const id = idOf(person, dup);
    if (id === survivorId) live.push(patient(r, id));
    else if (k !== undefined && (dup === undefined || dup === k)) {
      if (!dropped) merged.push({ ...patient(r, id), active: false, link: [{ type: 'replaced-by', other: { reference: `Patient/${survivorId}` } }] });
    } else {
      roster.push(febrlRosterRow(r));
      truth.set(r.rec_id!, { line: roster.length, recordId: r.rec_id!, patientId: survivorId });
    }
  }
  // The survivors first: a merge names a patient the index holds.
  const indexFile = path.join(work, 'index.ndjson');
  await fs.writeFile(indexFile, [...live, ...merged].map((p) => `${JSON.stringify(p)}\n`).join(''));
  const about = swapped
    ? dropped ? ', originals merged into their first duplicate left out of the index' : ', originals merged into their first duplicate'
    : dropped ? ', merged records left out of the index' : ', first duplicates merged into their original';
  return { indexFile, rosters: [await writeFebrlRoster(n, set, false, roster, truth, work, about)] };
}

/** Splink fake_1000: the lowest unique_id of each cluster is the index, the other rows the roster. */
async function prepareFake(data: string, work: string): Promise<Prepared> {
  const rows = parseCsv(await fs.readFile(path.join(data, 'splink', 'fake_1000.csv')), { columns: true, bom: true }) as Record<string, string>[];
  const first = new Map<string, Record<string, string>>();
  for (const r of rows) {
    const f = first.get(r.cluster!);
    if (!f || Number(r.unique_id) < Number(f.unique_id)) first.set(r.cluster!, r);
  }
  const index: string[][] = [[...PATIENT_CSV_COLUMNS]];
  for (const r of first.values()) {
    const row: Record<string, string> = { id: `fake-${r.unique_id}`, family: r.surname!.trim(), given: r.first_name!.trim(), birth_date: calendarDate(r.dob!), city: r.city!.trim() };
    index.push(PATIENT_CSV_COLUMNS.map((c) => row[c] ?? ''));
  }
  const cols = ['unique_id', 'first_name', 'surname', 'dob', 'city', 'email', 'cluster'];
  const roster: string[][] = [cols];
  const truth = new Map<string, TruthRow>();
  for (const r of rows) {
    const f = first.get(r.cluster!)!;
    if (f === r) continue;
    roster.push(cols.map((c) => r[c] ?? ''));
    truth.set(r.unique_id!, { line: roster.length, recordId: r.unique_id!, patientId: `fake-${f.unique_id}` });
  }
  const indexFile = path.join(work, 'index.csv');
  const file = path.join(work, 'fake1000.csv');
  const pipelineFile = path.join(work, 'fake1000.yaml');
  await writeCsv(indexFile, index);
  await writeCsv(file, roster);
  await fs.writeFile(
    pipelineFile,
    pipelineYaml('bench-fake1000', 'Splink fake_1000, all but the first of each cluster', { recordId: 'unique_id', given: 'first_name', family: 'surname', birthDate: 'dob', city: 'city' }, 'YYYY-MM-DD'),
  );
  return { indexFile, rosters: [{ label: 'fake1000', file, pipelineFile, truth: async () => truth }] };
}

/**
 * A sample set as the generator lays it out (the committed one in `samples`, or one
 * generateSamples wrote): one index, the three partners' rosters and their pipelines.
 */
export function prepareSamples(dir = 'samples', label = 'samples'): Prepared {
  return {
    indexFile: path.join(dir, 'iis', 'Patient.ndjson'),
    rosters: DEMO_FILES.map(({ partner, file }) => ({
      label: `${label}-${partner}`,
      file: path.join(dir, 'rosters', file),
      pipelineFile: path.join('pipelines', `${partner}.yaml`),
      truth: () => readTruth(path.join(dir, 'truth', file.replace(/\.[^.]+$/, '.truth.csv'))),
    })),
  };
}

/** Writes a set's files into `work` (the samples are read in place) from the external data in `data`. */
export function prepare(set: SetName, data: string, work: string): Promise<Prepared> {
  if (set === 'fake1000') return prepareFake(data, work);
  if (set === 'samples') return Promise.resolve(prepareSamples());
  const merged = /^febrl([23])-merged(-swap)?(-dropped)?$/.exec(set);
  if (merged) return prepareFebrlMerged(Number(merged[1]) as 2 | 3, merged[2] ? 'first-duplicate' : 'original', !!merged[3], data, work);
  const m = /^febrl([123])(-id)?$/.exec(set)!;
  return prepareFebrl(Number(m[1]) as 1 | 2 | 3, !!m[2], data, work);
}

/** The index as the matcher sees it: the in-memory candidate index, each patient by id, and the merged-away patients it offers. */
export interface IndexView {
  candidates: CandidateIndex;
  /** The live patients. */
  byId: Map<string, { patient: IndexPatient }>;
  /** The merged-away patients that are candidates, by their own id, each with its survivor (`survivor`). */
  mergedAway: Map<string, IndexPatient>;
}

/**
 * The index file read as loadIndexFile reads it (NDJSON, or the CSV form), as the product's
 * candidate sources offer it (src/store/patients.ts candidatePatients): the live patients, and
 * each merged-away one (replaced-by) standing for its survivor — the live patient at the end of
 * its chain of merges — with `survivor` set, so the matcher lists a row's match to it under the
 * survivor's id. One whose chain ends at nobody (a patient removed, or not in the file, or a
 * cycle) is left out, as is a removed one. A later line of an id replaces an earlier one.
 */
export async function readIndex(file: string): Promise<IndexView> {
  const text = await fs.readFile(file, 'utf8');
  const resources: unknown[] = /\.csv$/i.test(file)
    ? (parseCsv(text, { bom: true, skip_empty_lines: true, trim: true, columns: (h: string[]) => h.map((c) => c.toLowerCase()) }) as Record<string, string>[]).map((r) => csvToResource('Patient', r))
    : text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  const read = new Map<string, IndexPatient>();
  const removed = new Set<string>();
  for (const r of resources) {
    if ((r as { resourceType?: string }).resourceType !== 'Patient') continue;
    if (hasRemovedTag(r)) {
      const id = (r as { id?: unknown }).id;
      if (typeof id === 'string') removed.add(id);
      continue;
    }
    try {
      const p = patientFromFhir(r as FhirPatient);
      read.set(p.id, p);
    } catch {
      continue; // rejected by the loader too
    }
  }
  /** The live patient a merged-away one stands for, along its chain; undefined when there is none. */
  const survivorOf = (p: IndexPatient): string | undefined => {
    let at: IndexPatient | undefined = p;
    for (let hop = 0; at?.replacedBy !== undefined; hop++) at = hop < 32 && !removed.has(at.replacedBy) ? read.get(at.replacedBy) : undefined;
    return at?.id;
  };
  const view: IndexView = { candidates: new CandidateIndex(), byId: new Map(), mergedAway: new Map() };
  for (const p of read.values()) {
    if (removed.has(p.id)) continue;
    if (p.replacedBy === undefined) {
      view.candidates.add(p);
      view.byId.set(p.id, { patient: p });
      continue;
    }
    const survivor = survivorOf(p);
    if (survivor === undefined) continue;
    p.survivor = survivor;
    view.candidates.add(p);
    view.mergedAway.set(p.id, p);
  }
  view.candidates.seal();
  return view;
}
