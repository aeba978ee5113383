/**
 * The hot statements' plans on a freshly loaded, never analysed PostgreSQL database (autovacuum
 * off, no ANALYZE: the state of a store right after a load, a restore, or on a server that never
 * got round to it): each real function runs inside a transaction whose every statement is first
 * EXPLAINed there, with the same parameters and the same temporary tables, and no plan may read a
 * large table whole. A scan that is cheap on this test's tens of thousands of rows grows with the
 * index and the history, where a probe by index stays proportional to the batch.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockingKeys } from '../src/match/index.ts';
import type { NormalisedRow, RowResult } from '../src/model/index.ts';
import { patientFromFhir, type FhirPatient } from '../src/patient-index/fhir.ts';
import { recordRun } from '../src/run/index.ts';
import {
  appendRunInput,
  countRunRows,
  createRun,
  insertRunRows,
  markPatientRemoved,
  mergeImmunizations,
  mergePatients,
  openPostgres,
  partnerDecisions,
  patientsByBlockKeys,
  patientsByIds,
  readRunInput,
  recordChunk,
  replaceBlockKeys,
  touchMergedInto,
  streamRunResults,
  type Db,
  type ImmunizationWrite,
  type PatientWrite,
  type Queryable,
} from '../src/store/index.ts';
import { fhirImmunization, fhirPatient, pgAdmin, TEST_PG_URL, testPipeline } from './helpers.ts';

/** Tables that grow with the index or with the history: none may be read whole by a hot statement. */
const LARGE = ['patient', 'patient_block', 'immunization', 'run', 'run_row', 'run_input', 'group_member', 'group_event', 'review_item', 'match_decision'];

const PATIENTS = 30_000;
const RUN_ROWS = 20_000;
/** Earlier runs of each partner: run_row, group_event and review_item hold their history. */
const EARLIER_RUNS = 3;
const PARTNERS = ['school-a', 'school-b'];

// ── The harness ──────────────────────────────────────────────────────────────────────────────

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
  [k: string]: unknown;
}
interface Explained {
  sql: string;
  plan: PlanNode;
}

/** Statements EXPLAIN accepts; SET, plain CREATE TABLE, SAVEPOINT and COPY run unexplained. */
const EXPLAINABLE = /^\s*(WITH|SELECT|INSERT|UPDATE|DELETE|CREATE\s+TEMP(ORARY)?\s+TABLE\s+\w+(\s+ON\s+COMMIT\s+DROP)?\s+AS)\b/i;

/**
 * The statements of an `exec` string one by one: split at semicolons outside quotes and
 * dollar-quoted bodies, so each can be explained right before it runs (the next may read a
 * temporary table the previous one made).
 */
function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < sql.length; i++) {
    const quote = sql[i] === "'" ? "'" : sql.startsWith('$$', i) ? '$$' : undefined;
    if (quote) {
      const end = sql.indexOf(quote, i + quote.length);
      if (end < 0) throw new Error(`unterminated ${quote} in: ${sql}`);
      i = end + quote.length - 1;
    } else if (sql[i] === ';') {
      out.push(sql.slice(start, i));
      start = i + 1;
    }
  }
  out.push(sql.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

/** `q`, with every statement EXPLAINed on the same connection right before it runs; plans land in `seen`. */
function explaining(q: Queryable, seen: Explained[]): Queryable {
  const explain = async (sql: string, params?: unknown[]) => {
    if (!EXPLAINABLE.test(sql)) return;
    const { rows } = await q.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${sql}`, params);
    seen.push({ sql: sql.replace(/\s+/g, ' ').trim(), plan: rows[0]!['QUERY PLAN'][0].Plan });
  };
  return {
    async query<T>(sql: string, params?: unknown[]) {
      await explain(sql, params);
      return q.query<T>(sql, params);
    },
    async exec(sql: string) {
      for (const s of splitStatements(sql)) {
        await explain(s);
        await q.exec(s);
      }
    },
    copyIn: (table, columns, text) => q.copyIn(table, columns, text),
  };
}

/** The store as a function sees it, with every transaction's statements explained. */
function explainingDb(db: Db, seen: Explained[]): Db {
  return { ...db, transaction: (fn) => db.transaction((tx) => fn(explaining(tx, seen))) };
}

/** Runs `fn` in one transaction of `db` whose statements are explained. */
async function explained(fn: (tx: Queryable) => Promise<unknown>): Promise<Explained[]> {
  const seen: Explained[] = [];
  await db.transaction((tx) => fn(explaining(tx, seen)));
  return seen;
}

function nodes(p: PlanNode): PlanNode[] {
  return [p, ...(p.Plans ?? []).flatMap(nodes)];
}

const SCANS = ['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan'];
const large = (n: PlanNode) => SCANS.includes(n['Node Type']) && LARGE.includes(n['Relation Name'] ?? '');
const conditions = (n: PlanNode) => ['Index Cond', 'Recheck Cond', 'Filter'].map((k) => n[k] ?? '').join(' ');

/**
 * How a plan reads a large table whole: a sequential scan; an index read from end to end (no
 * Index Cond); or a scan on the inner side of a nested loop that does not depend on the outer row
 * (no column of another relation in its conditions), which reads the same rows again for each
 * outer row. A scan under Materialize or Hash is read once, whatever sits above it.
 */
function wholeReads(plan: PlanNode): string[] {
  const found: string[] = [];
  for (const n of nodes(plan)) {
    if (large(n) && (n['Node Type'] === 'Seq Scan' || (n['Node Type'].startsWith('Index') && n['Index Cond'] === undefined))) {
      found.push(`${n['Node Type']} on ${n['Relation Name']}`);
    }
    if (n['Node Type'] !== 'Nested Loop') continue;
    const inner = n.Plans?.find((c) => c['Parent Relationship'] === 'Inner');
    for (const m of inner ? rescanned(inner) : []) if (large(m) && !/\b\w+\.\w+/.test(conditions(m))) found.push(`${m['Node Type']} on ${m['Relation Name']} for each outer row`);
  }
  return found;
}

/** The nodes a nested loop runs again for each outer row: all below its inner side but what Materialize or Hash keeps. */
function rescanned(p: PlanNode): PlanNode[] {
  return ['Materialize', 'Hash'].includes(p['Node Type']) ? [] : [p, ...(p.Plans ?? []).flatMap(rescanned)];
}

/** Each statement whose plan reads a large table whole, with how. */
function wholeScans(seen: readonly Explained[]): { sql: string; reads: string[] }[] {
  return seen.map((e) => ({ sql: e.sql, reads: wholeReads(e.plan) })).filter((e) => e.reads.length > 0);
}

/** Asserts that `seen` holds a statement matching each of `expected` and that none reads a large table whole. */
function expectIndexPlans(seen: readonly Explained[], expected: RegExp[]): void {
  for (const re of expected) expect(seen.map((e) => e.sql), `a statement matching ${re}`).toContainEqual(expect.stringMatching(re));
  expect(wholeScans(seen)).toEqual([]);
}

// ── The fresh, un-analysed store ───────────────────────────────────────────────────────────────

let db: Db;
const dbName = `rm_test_plans_${randomBytes(6).toString('hex')}`;


const GIVEN = ['OLIVIA', 'EMMA', 'AVA', 'SOPHIA', 'MIA', 'LIAM', 'NOAH', 'OLIVER', 'ELIJAH', 'JAMES', 'MATEO', 'LUCAS', 'HENRY', 'GRACE', 'ZOE', 'MALIK', 'NEVAEH', 'DIEGO', 'LUNA', 'CHLOE'];
const FAMILY = ['SMITH', 'JOHNSON', 'WILLIAMS', 'BROWN', 'JONES', 'GARCIA', 'MILLER', 'DAVIS', 'RODRIGUEZ', 'MARTINEZ', 'LOPEZ', 'WILSON', 'ANDERSON', 'TAYLOR', 'MOORE', 'NGUYEN', 'CLARK', 'LEWIS', 'WALKER', 'YOUNG', 'KING', 'HILL'];
const pid = (n: number) => `p${String(n).padStart(6, '0')}`;

/** Patient n as the loader writes it; `street` varies a revision of it. */
function patientWrite(n: number, street = `${1 + (n % 977)} OAK ST`): PatientWrite {
  const day = new Date(Date.UTC(2005, 0, 1) + ((n * 37) % 6000) * 86_400_000).toISOString().slice(0, 10);
  const resource = fhirPatient({ id: pid(n), given: GIVEN[n % GIVEN.length]!, family: FAMILY[Math.floor(n / 7) % FAMILY.length]!, birthDate: day, street, zip: String(60001 + (n % 900)) });
  const patient = patientFromFhir(resource as unknown as FhirPatient);
  const text = JSON.stringify(resource);
  return { patient, resource: text, contentHash: createHash('sha256').update(text).digest('hex'), lastUpdated: '2025-01-01T00:00:00Z', blockKeys: blockingKeys(patient.person, patient.identifiers) };
}

function immunizationWrite(n: number, cvx = '08'): ImmunizationWrite {
  const text = JSON.stringify(fhirImmunization(`i${n}`, pid(n), cvx));
  return { id: `i${n}`, patientId: pid(n), resource: text, contentHash: createHash('sha256').update(text).digest('hex'), lastUpdated: '2025-01-01T00:00:00Z' };
}

/**
 * Row i of a run whose matched people start at patient `offset`: 85 % matched, 5 % possible,
 * 10 % no_match, with a candidate's explanation as the matcher writes it.
 */
function runRow(i: number, offset: number): RowResult {
  const b = i % 20;
  const cand = (n: number) => ({ patientId: pid(n % PATIENTS), score: 21.5, probability: 0.9999, comparisons: [{ field: 'given', level: 'exact', weight: 7.9 }] });
  if (b < 17) return { index: i, line: i + 2, recordId: `r${i}`, outcome: 'matched', patientId: pid((offset + i) % PATIENTS), score: 21.5, candidates: [cand(offset + i)] };
  if (b === 17) return { index: i, line: i + 2, recordId: `r${i}`, outcome: 'possible', score: 8.2, candidates: [cand(offset + i), cand(offset + i + 1)] };
  return { index: i, line: i + 2, recordId: `r${i}`, outcome: 'no_match', candidates: [] };
}

const runRows = (offset: number, n = RUN_ROWS) => Array.from({ length: n }, (_, i) => runRow(i, offset));
const pipelineOf = (partner: string) => testPipeline({ partner, group: { id: `${partner}-students`, name: partner, mode: 'replace', maxRemoveShare: 1 } });
let runs = 0;

/** A run of `partner` with `rows` in run_row, ready to record. */
async function newRun(partner: string, rows: readonly RowResult[]): Promise<string> {
  const id = `run-${++runs}`;
  await createRun(db, { id, partner, fileName: `${id}.csv`, fileSha256: id, receivedAt: new Date(Date.UTC(2025, 0, runs)).toISOString(), state: 'running', pipeline: pipelineOf(partner) });
  await insertRunRows(db, id, rows);
  return id;
}

const record = (on: Db, runId: string, partner: string) =>
  recordRun(on, { runId, pipeline: pipelineOf(partner), resultPath: `/tmp/${runId}.results.csv`, actor: 'test', at: new Date(Date.UTC(2025, 1, runs)).toISOString() });

beforeAll(async () => {
  await pgAdmin(`CREATE DATABASE ${dbName}`);
  db = await openPostgres(Object.assign(new URL(TEST_PG_URL), { pathname: `/${dbName}` }).href);
  // Nothing may give the planner statistics behind the test's back.
  const { rows } = await db.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'`);
  for (const { t } of rows) await db.exec(`ALTER TABLE ${t} SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)`);
  // The index, as batches of a load write it into an index that already has patients.
  for (let from = 0; from < PATIENTS; from += 5000) {
    const ns = Array.from({ length: 5000 }, (_, i) => from + i);
    await db.transaction(async (tx) => {
      await mergePatients(tx, ns.map((n) => patientWrite(n)));
      await mergeImmunizations(tx, ns.map((n) => immunizationWrite(n)));
    });
  }
  // Each partner's history: runs recorded one after another, each moving its Group a little.
  for (let k = 0; k < EARLIER_RUNS; k++) {
    for (const [p, partner] of PARTNERS.entries()) await record(db, await newRun(partner, runRows(p * 10_000 + k * 500)), partner);
  }
  // Standing decisions on many records (what the matcher asks about every chunk of every run).
  await db.query(
    `INSERT INTO match_decision (partner, record_id, decision, patient_id, decided_by, decided_at)
     SELECT p, 'r' || n, 'accepted', 'p' || lpad(n::text, 6, '0'), 'alice', now() FROM unnest($1::text[]) p, generate_series(0, $2::int - 1) n`,
    [PARTNERS, RUN_ROWS],
  );
}, 300_000);

afterAll(async () => {
  await db?.close();
  await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
});

describe('the plan check', () => {
  it('sees a whole-table read (a filter on an unindexed column)', async () => {
    const seen = await explained((tx) => tx.query(`SELECT count(*) FROM patient WHERE given = $1`, ['EMMA']));
    expect(wholeScans(seen)).toEqual([{ sql: 'SELECT count(*) FROM patient WHERE given = $1', reads: ['Seq Scan on patient'] }]);
  });

  it('sees a scan repeated for each outer row (how queueForReview once found the records a run supersedes)', async () => {
    const sql = `SELECT count(*) FROM review_item WHERE partner = $2 AND state = 'open' AND run_id <> $1
                   AND record_id IN (SELECT record_id FROM run_row WHERE run_id = $1 AND outcome IN ('possible', 'ambiguous'))`;
    const seen = await explained((tx) => tx.query(sql, ['run-5', 'school-a']));
    expect(wholeScans(seen).flatMap((e) => e.reads)).toEqual(['Bitmap Heap Scan on run_row for each outer row']);
  });

  it('splits an exec string at its statements, not inside quotes or dollar-quoted bodies', () => {
    expect(splitStatements(`SET LOCAL a = 'x;y'; DO $$ BEGIN PERFORM 1; END $$;\n SELECT 1`)).toEqual([`SET LOCAL a = 'x;y'`, 'DO $$ BEGIN PERFORM 1; END $$', 'SELECT 1']);
    expect(() => splitStatements(`DO $$ BEGIN PERFORM 1; END`)).toThrow(/unterminated/);
  });
});

describe('hot statements on a fresh, never analysed PostgreSQL store', () => {
  it('the store is large and has no statistics', async () => {
    const { rows } = await db.query<{ t: string; n: number; analysed: boolean }>(
      `SELECT c.relname AS t, (SELECT count(*) FROM pg_stats s WHERE s.schemaname = 'public' AND s.tablename = c.relname)::int AS n,
              (u.last_analyze IS NOT NULL OR u.last_autoanalyze IS NOT NULL) AS analysed
         FROM pg_class c JOIN pg_stat_user_tables u ON u.relid = c.oid WHERE c.relname = ANY($1::text[]) ORDER BY 1`,
      [LARGE],
    );
    expect(rows.every((r) => r.n === 0 && !r.analysed), JSON.stringify(rows)).toBe(true);
    const count = async (t: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`)).rows[0]!.n;
    expect(await count('patient_block')).toBeGreaterThan(100_000);
    expect(await count('run_row')).toBeGreaterThanOrEqual(EARLIER_RUNS * PARTNERS.length * RUN_ROWS);
    expect(await count('group_event')).toBeGreaterThan(30_000);
  });

  it('mergeImmunizations of a delta', async () => {
    const batch = [...Array.from({ length: 500 }, (_, i) => immunizationWrite(i * 3, '20')), ...Array.from({ length: 500 }, (_, i) => immunizationWrite(i * 13 + 1))];
    const seen = await explained((tx) => mergeImmunizations(tx, batch));
    expectIndexPlans(seen, [/^SELECT id FROM stage_immunization/, /^CREATE TEMP TABLE stage_immunization_changed/, /^INSERT INTO immunization/]);
  });

  it('mergePatients of a delta: changed, new and unchanged patients', async () => {
    const batch = [
      ...Array.from({ length: 500 }, (_, i) => patientWrite(i * 7, `${i} ELM ST`)),
      ...Array.from({ length: 500 }, (_, i) => patientWrite(i * 11 + 3)),
      ...Array.from({ length: 100 }, (_, i) => patientWrite(PATIENTS + i)),
    ];
    const seen = await explained((tx) => mergePatients(tx, batch));
    expectIndexPlans(seen, [/^CREATE TEMP TABLE stage_patient_changed/, /^INSERT INTO patient \(/, /^DELETE FROM patient_block/, /^INSERT INTO patient_block/]);
  });

  it("patientsByBlockKeys for a chunk's first-round keys", async () => {
    const firstRound = /^(df|dg|ny|nm|id):/;
    const keys = [...new Set(Array.from({ length: 500 }, (_, i) => patientWrite(i * 53).blockKeys.filter((k) => firstRound.test(k))).flat())];
    const seen: Explained[] = [];
    expect((await patientsByBlockKeys(explainingDb(db, seen), keys)).size).toBeGreaterThan(0);
    expectIndexPlans(seen, [/FROM patient_block WHERE key = ANY/]);
  });

  it('the identity feed on a chain of merges: those merged into a patient, their keys again, and merged-away candidates resolved to their survivor', async () => {
    const chain = [pid(2), pid(3), pid(4)];
    const seen = await explained(async (tx) => {
      // p2 and p3 merged into p1, p4 into p3.
      await tx.query('UPDATE patient SET replaced_by = $1 WHERE id = ANY($2::text[])', [pid(1), [pid(2), pid(3)]]);
      await tx.query('UPDATE patient SET replaced_by = $1 WHERE id = $2', [pid(3), pid(4)]);
      // As when p1 is removed: those merged into it lose their keys, and get them back (an unmerge).
      expect((await touchMergedInto(tx, pid(1), { removed: true })).sort()).toEqual(chain);
      await replaceBlockKeys(tx, chain.map((_, i) => patientWrite([2, 3, 4][i]!)));
      await markPatientRemoved(tx, pid(5), new Date().toISOString());
      const found = [...(await patientsByBlockKeys(tx, patientWrite(4).blockKeys)).values()].flat().filter((p) => p.id === pid(4));
      expect(found.length > 0 && found.every((p) => p.survivor === pid(1))).toBe(true);
      await tx.query('UPDATE patient SET replaced_by = NULL WHERE id = ANY($1::text[])', [chain]);
      await tx.query('UPDATE patient SET removed_at = NULL WHERE id = $1', [pid(5)]);
      await replaceBlockKeys(tx, [patientWrite(5)]);
    });
    expectIndexPlans(seen, [
      /^SELECT id FROM patient WHERE replaced_by = ANY/,
      /^UPDATE patient SET changed_in/,
      /^DELETE FROM patient_block b USING/,
      /^UPDATE patient t SET block_keys/,
      /^UPDATE patient SET removed_at = \$2/,
      /LATERAL \(SELECT \* FROM patient p WHERE p.id = u.id OFFSET 0\)/,
    ]);
  });

  it('patientsByIds for the candidates a review page shows', async () => {
    const seen: Explained[] = [];
    expect((await patientsByIds(explaining(db, seen), Array.from({ length: 1000 }, (_, i) => pid(i * 29)))).size).toBe(1000);
    expectIndexPlans(seen, [/FROM patient WHERE id = ANY/]);
  });

  it('insertRunRows of a chunk, and of the same chunk again (a retried chunk)', async () => {
    const id = await newRun('school-a', []);
    const rows = runRows(4000, 1000);
    const first = await explained((tx) => insertRunRows(tx, id, rows));
    const again = await explained((tx) => insertRunRows(tx, id, rows));
    expectIndexPlans([...first, ...again], [/^INSERT INTO run_row/]);
  });

  it("a chunk job: its rows of the run's input, the partner's decisions on them, its results and its completion", async () => {
    const id = await newRun('school-b', []);
    const input = runRows(0).map((r): NormalisedRow => ({ kind: 'invalid', line: r.line, index: r.index, recordId: r.recordId, problems: [] }));
    await appendRunInput(db, id, input);
    const seen = await explained(async (tx) => {
      const rows = await readRunInput(tx, id, 5000, 6000);
      expect(rows).toHaveLength(1000);
      expect((await partnerDecisions(tx, 'school-b', rows.map((r) => r.recordId))).size).toBe(1000);
      await insertRunRows(tx, id, runRows(0).slice(5000, 6000));
      await recordChunk(tx, id, 5, 'worker-a', '2025-02-01T00:00:00Z');
      expect(await countRunRows(tx, id)).toBe(1000);
    });
    expectIndexPlans(seen, [/FROM run_input WHERE run_id/, /FROM match_decision WHERE partner = \$1 AND record_id = ANY/, /^INSERT INTO run_chunk/, /FROM run_chunk WHERE run_id/, /FROM run_row WHERE run_id = \$1$/]);
  });

  it('recordRun of a replace run: the Group plan, its change and history, the review queue, the completion', async () => {
    const id = await newRun('school-a', runRows(1700));
    const seen: Explained[] = [];
    const r = await record(explainingDb(db, seen), id, 'school-a');
    expect(r?.change.added).toBeGreaterThan(0);
    expect(r?.change.removed).toBeGreaterThan(0);
    expectIndexPlans(seen, [/FROM run WHERE id = \$1 FOR UPDATE/, /FROM group_member/, /FROM run_row .*outcome/, /^INSERT INTO group_member/, /^DELETE FROM group_member/, /^INSERT INTO group_event/, /^UPDATE review_item/, /^INSERT INTO review_item/, /^UPDATE run SET state = 'completed'/]);
  });

  it('streamRunResults pages through a run', async () => {
    const seen: Explained[] = [];
    let n = 0;
    for await (const page of streamRunResults(explaining(db, seen), 'run-1', 5000)) n += page.length;
    expect(n).toBe(RUN_ROWS);
    expectIndexPlans(seen, [/FROM run_row WHERE run_id = \$1 AND row_index > \$2 AND row_index <= \$3/]);
  });
});
