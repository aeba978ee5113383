/**
 * Recording benchmark: what storing a run's row results and recording its outcome cost — the
 * rows written as an inline run writes them (insertRunRows, 500 rows a call), then recordRun (the
 * Group's change and history, the review queue, the run's completion) — for a first run into an
 * empty Group and for the same roster again (the Group unchanged, the first run's review items
 * superseded). Against a floor measured in the same run on the same store: COPY of the same rows
 * and of the Group's members and history events into tables without index or constraint, the
 * bytes any recording writes.
 *
 * The rows are made up in the shape of a real run (a generated 100k roster against 300k patients:
 * 87,079 rows matched 75,034 patients): 87 % matched with one candidate and its field comparisons,
 * naming as many patients as three quarters of the rows; 2 % possible with up to three candidates
 * and the row as submitted; the rest no_match.
 *
 *   npm run bench:record -- [--rows 100000] [--store postgres|pglite] [--json FILE]
 *
 * With --store postgres it creates and drops a database of its own on BENCH_DATABASE_URL's server
 * (default postgres://<user>@127.0.0.1:5432/postgres).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { benchArgs } from './args.ts';
import { measuredOn, printTable } from './report.ts';
import { admin, databaseUrl } from './server.ts';
import type { PersonFields, RowResult, ScoredCandidate } from '../src/model/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { recordRun } from '../src/run/index.ts';
import { copyLine } from '../src/store/db.ts';
import { createRun, insertRunRows, openEmbedded, openPostgres, type Db } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:record -- [--rows N] [--store postgres|pglite] [--json FILE]
  defaults: --rows 100000 --store postgres`;
const values = benchArgs({ rows: { type: 'string', default: '100000' }, store: { type: 'string', default: 'postgres' }, json: { type: 'string' } } as const, USAGE);
const N = Number(values.rows);
if (!['pglite', 'postgres'].includes(values.store) || !Number.isInteger(N) || N < 1) {
  console.error(`--store is pglite or postgres, --rows a positive integer\n${USAGE}`);
  process.exit(2);
}
/** Rows per insertRunRows call: MATCH_CHUNK_ROWS, as the inline run stores them. */
const CALL_ROWS = 500;
const secs = (t: number) => (performance.now() - t) / 1000;

const COMPARISONS = [
  { field: 'given', level: 'exact', weight: 6.31 },
  { field: 'family', level: 'exact', weight: 7.12 },
  { field: 'birthDate', level: 'exact', weight: 12.18 },
  { field: 'sex', level: 'agree', weight: 0.94 },
  { field: 'zip', level: 'agree', weight: 1.97 },
  { field: 'street', level: 'similar', weight: 1.51 },
  { field: 'phone', level: 'different', weight: -1 },
];
/** 87 % of the rows are matched: drawn from 0.862 N ids, they name 0.75 N patients, a few twice. */
const patientOf = (i: number) => `p${String(i % Math.round(N * 0.862)).padStart(9, '0')}`;
const candidate = (i: number, score: number): ScoredCandidate => ({ patientId: patientOf(i), score, probability: 1 / (1 + 2 ** -score), comparisons: COMPARISONS });

function row(i: number): RowResult {
  const base = { index: i, line: i + 2, recordId: String(70_000_000 + i) };
  const b = i % 100;
  if (b < 87) return { ...base, outcome: 'matched', patientId: patientOf(i), score: 29.03, candidates: [candidate(i, 29.03)] };
  if (b < 89) {
    const person: PersonFields = { given: 'EMMA', middle: '', family: 'MARTIN', suffix: '', birthDate: '2012-02-17', sex: 'female', street: '2252 STANFORD TER', city: 'CHARLESTON', state: 'IL', zip: '61920', phone: '2172951664' };
    return { ...base, outcome: 'possible', score: 9.45, candidates: Array.from({ length: 1 + (i % 3) }, (_, k) => candidate(i + k, 9.45 - k)), submitted: { person } };
  }
  return { ...base, outcome: 'no_match', candidates: [] };
}

/** The floor: COPY of the same rows, members and events into tables like the real ones, without index or constraint. */
async function floor(db: Db, rows: readonly RowResult[], at: string): Promise<number> {
  await db.exec('CREATE TABLE floor_run_row (LIKE run_row); CREATE TABLE floor_member (LIKE group_member); CREATE TABLE floor_event (LIKE group_event)');
  const t = performance.now();
  for (let i = 0; i < rows.length; i += CALL_ROWS) {
    const lines = rows.slice(i, i + CALL_ROWS).map((r) => {
      const detail = JSON.stringify({ candidates: r.candidates, submitted: r.submitted });
      return copyLine(['floor', String(r.index), String(r.line), r.recordId, r.outcome, r.patientId ?? null, r.score === undefined ? null : String(r.score), detail]);
    });
    await db.copyIn('floor_run_row', ['run_id', 'row_index', 'line', 'record_id', 'outcome', 'patient_id', 'score', 'detail'], lines.join(''));
  }
  const members = [...new Set(rows.flatMap((r) => (r.outcome === 'matched' ? [r.patientId!] : [])))];
  await db.copyIn('floor_member', ['group_id', 'patient_id', 'added_at', 'added_by_run'], members.map((p) => copyLine(['g', p, at, 'floor'])).join(''));
  await db.copyIn('floor_event', ['id', 'group_id', 'patient_id', 'action', 'at', 'run_id', 'actor'], members.map((p, k) => copyLine([String(k), 'g', p, 'added', at, 'floor', 'cli'])).join(''));
  const seconds = secs(t);
  await db.exec('DROP TABLE floor_run_row, floor_member, floor_event');
  return seconds;
}

/** One run of `rows`: stored as the inline run stores them, then recorded. */
async function run(db: Db, id: string, rows: readonly RowResult[]): Promise<{ insertSeconds: number; recordSeconds: number; added: number }> {
  const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
  await createRun(db, { id, partner: pipeline.partner, fileName: `${id}.csv`, fileSha256: id, receivedAt: new Date().toISOString(), state: 'running', pipeline });
  let t = performance.now();
  for (let i = 0; i < rows.length; i += CALL_ROWS) await insertRunRows(db, id, rows.slice(i, i + CALL_ROWS));
  const insertSeconds = secs(t);
  t = performance.now();
  const recorded = await recordRun(db, { runId: id, pipeline, resultPath: `/tmp/${id}.results.csv`, actor: 'bench', at: new Date().toISOString() });
  return { insertSeconds, recordSeconds: secs(t), added: recorded?.change.added ?? 0 };
}

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-record-'));
const pgName = `rm_bench_record_${process.pid}`;
try {
  if (values.store === 'postgres') await admin(`CREATE DATABASE ${pgName}`);
  const db = values.store === 'postgres' ? await openPostgres(databaseUrl(pgName)) : await openEmbedded(path.join(work, 'db'));
  const rows = Array.from({ length: N }, (_, i) => row(i));
  const floorSeconds = await floor(db, rows, new Date().toISOString());
  const first = await run(db, 'first', rows);
  const again = await run(db, 'again', rows);
  await db.close();

  const total = (r: typeof first) => r.insertSeconds + r.recordSeconds;
  const s2 = (x: number) => +x.toFixed(2);
  const figures = {
    ...measuredOn(),
    store: values.store,
    rows: N,
    groupMembers: first.added,
    floorSeconds: s2(floorSeconds),
    first: { insertSeconds: s2(first.insertSeconds), recordSeconds: s2(first.recordSeconds), totalSeconds: s2(total(first)), toFloor: +(total(first) / floorSeconds).toFixed(1) },
    again: { insertSeconds: s2(again.insertSeconds), recordSeconds: s2(again.recordSeconds), totalSeconds: s2(total(again)), toFloor: +(total(again) / floorSeconds).toFixed(1) },
  };
  const table: [string, string | number][] = [
    ['store / rows', `${figures.store} / ${N}`],
    ['floor: COPY of rows and Group (s)', figures.floorSeconds],
    ['first run: rows stored (s)', figures.first.insertSeconds],
    [`first run: recorded, +${first.added} (s)`, figures.first.recordSeconds],
    ['first run: total (s)', `${figures.first.totalSeconds}  (${figures.first.toFloor}× floor)`],
    ['same roster again: rows stored (s)', figures.again.insertSeconds],
    ['same roster again: recorded (s)', figures.again.recordSeconds],
    ['same roster again: total (s)', `${figures.again.totalSeconds}  (${figures.again.toFloor}× floor)`],
  ];
  printTable(table);
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  if (values.store === 'postgres') await admin(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
}
