/** Runs (one per dropped file) and their rows' outcomes. */
import type { NormalisedRow, Outcome, RowResult } from '../model/index.ts';
import { copyLine, inTransaction, unlessPresent, type Db, type Queryable } from './db.ts';

/**
 * received → parsing → matching → completed | failed. Inline runs go straight to running. A
 * replace run that would remove too much of its Group is `held` until an operator confirms it
 * (→ completed) or discards it (→ discarded); a held run needs no queue work.
 */
export type RunState = 'received' | 'running' | 'parsing' | 'matching' | 'held' | 'completed' | 'discarded' | 'failed';
export const UNFINISHED_STATES: readonly RunState[] = ['received', 'running', 'parsing', 'matching'];
/** Outcome recorded: repeating the finalise of such a run changes nothing. */
export const RECORDED_STATES: readonly RunState[] = ['held', 'completed', 'discarded'];

/** The Group change a held run would make, as the operator is shown it. */
export interface RunHold {
  groupId: string;
  /** The Group's version the numbers were worked out against. */
  groupVersion: number;
  /** Members now. */
  before: number;
  wouldAdd: number;
  wouldRemove: number;
  /** wouldRemove / before. */
  share: number;
  maxRemoveShare: number;
  heldAt: string;
  decision?: { action: 'confirmed' | 'discarded'; by: string; at: string; reason?: string };
}

export interface RunRecord {
  id: string;
  partner: string;
  fileName: string;
  fileSha256: string;
  state: RunState;
  receivedAt: string;
  finishedAt: string | null;
  groupId: string | null;
  counts: Partial<Record<Outcome, number>> | null;
  summary: Record<string, unknown> | null;
  resultPath: string | null;
  error: { code: string; message: string } | null;
  pipeline: unknown;
  sourcePath: string | null;
  rowCount: number | null;
  chunkCount: number | null;
  timeline: { state: RunState; at: string }[];
  /** Set while held, and kept (with the decision) once confirmed or discarded. */
  hold: RunHold | null;
}

interface RunRow {
  id: string;
  partner: string;
  file_name: string;
  file_sha256: string;
  state: RunState;
  received_at: Date;
  finished_at: Date | null;
  group_id: string | null;
  counts: RunRecord['counts'];
  summary: RunRecord['summary'];
  result_path: string | null;
  error: RunRecord['error'];
  pipeline: unknown;
  source_path: string | null;
  row_count: number | null;
  chunk_count: number | null;
  timeline: RunRecord['timeline'];
  hold: RunHold | null;
}

const toRecord = (r: RunRow): RunRecord => ({
  id: r.id,
  partner: r.partner,
  fileName: r.file_name,
  fileSha256: r.file_sha256,
  state: r.state,
  receivedAt: r.received_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
  groupId: r.group_id,
  counts: r.counts,
  summary: r.summary,
  resultPath: r.result_path,
  error: r.error,
  pipeline: r.pipeline,
  sourcePath: r.source_path,
  rowCount: r.row_count,
  chunkCount: r.chunk_count,
  timeline: r.timeline,
  hold: r.hold ?? null,
});

export interface NewRun {
  id: string;
  partner: string;
  fileName: string;
  fileSha256: string;
  receivedAt: string;
  state: 'received' | 'running';
  pipeline: unknown;
  sourcePath?: string;
  /** A person asked to process these bytes again: not a duplicate. */
  forced?: boolean;
}

/**
 * Records a run before any work starts. The same bytes from the same partner are one run: when a
 * live or completed run already has them, nothing is written and that run is returned instead.
 */
export async function createRun(db: Queryable, r: NewRun): Promise<{ created: true } | { created: false; existing: RunRecord }> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO run (id, partner, file_name, file_sha256, state, received_at, pipeline, source_path, forced, timeline)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, jsonb_build_array(jsonb_build_object('state', $5::text, 'at', $10::text)))
     ON CONFLICT (partner, file_sha256) WHERE state <> 'failed' AND NOT forced DO NOTHING
     RETURNING id`,
    [r.id, r.partner, r.fileName, r.fileSha256, r.state, r.receivedAt, JSON.stringify(r.pipeline), r.sourcePath ?? null, !!r.forced, r.receivedAt],
  );
  if (rows.length > 0) return { created: true };
  const existing = await db.query<RunRow>(
    `SELECT * FROM run WHERE partner = $1 AND file_sha256 = $2 AND state <> 'failed' AND NOT forced`,
    [r.partner, r.fileSha256],
  );
  return { created: false, existing: toRecord(existing.rows[0]!) };
}

/** Moves a run to `state`, appending to its timeline. */
export async function setRunState(db: Queryable, id: string, state: RunState, at: string, extra: { rowCount?: number; chunkCount?: number } = {}): Promise<void> {
  await db.query(
    `UPDATE run SET state = $2, timeline = timeline || jsonb_build_array(jsonb_build_object('state', $2::text, 'at', $3::text)),
            row_count = coalesce($4, row_count), chunk_count = coalesce($5, chunk_count)
      WHERE id = $1`,
    [id, state, at, extra.rowCount ?? null, extra.chunkCount ?? null],
  );
}

export async function unfinishedRuns(db: Queryable): Promise<RunRecord[]> {
  const { rows } = await db.query<RunRow>(`SELECT * FROM run WHERE state = ANY($1::text[]) ORDER BY received_at`, [UNFINISHED_STATES]);
  return rows.map(toRecord);
}

export interface ListRunsOptions {
  partner?: string;
  /** One state or any of several. */
  state?: RunState | readonly RunState[];
  /** @defaultValue 50 */
  limit?: number;
  /**
   * Only runs received before this: an instant (ISO 8601), or the last run of the previous page
   * (`{ receivedAt, id }`, a keyset cursor that also splits runs received at the same instant).
   */
  before?: string | Pick<RunRecord, 'receivedAt' | 'id'>;
}

/** Runs, newest first (received_at, then id, descending), filtered by partner and state. */
export async function listRuns(db: Queryable, o: ListRunsOptions = {}): Promise<RunRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (v: unknown) => `$${params.push(v)}`;
  if (o.partner !== undefined) where.push(`partner = ${param(o.partner)}`);
  if (o.state !== undefined) where.push(`state = ANY(${param(typeof o.state === 'string' ? [o.state] : [...o.state])}::text[])`);
  if (typeof o.before === 'string') where.push(`received_at < ${param(o.before)}::timestamptz`);
  else if (o.before) where.push(`(received_at, id) < (${param(o.before.receivedAt)}::timestamptz, ${param(o.before.id)}::text)`);
  const limit = param(Math.max(0, Math.floor(o.limit ?? 50)));
  const { rows } = await db.query<RunRow>(
    `SELECT * FROM run${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at DESC, id DESC LIMIT ${limit}`,
    params,
  );
  return rows.map(toRecord);
}

export async function getRun(db: Queryable, id: string): Promise<RunRecord | undefined> {
  const { rows } = await db.query<RunRow>('SELECT * FROM run WHERE id = $1', [id]);
  return rows[0] && toRecord(rows[0]);
}

const RUN_ROW_COLUMNS = ['row_index', 'line', 'record_id', 'outcome', 'patient_id', 'score', 'detail'] as const;

/**
 * Writes row results; writing the same rows again (a retried chunk) replaces them. The rows go in
 * by COPY, the way PostgreSQL takes rows fastest: bound as arrays, 2,000 rows a statement, the
 * server spent most of its time parsing array literals of JSON. A chunk is written once but for a
 * retry, so COPY goes straight into run_row; a row already there fails it, the savepoint takes
 * the batch back, and the batch goes through a stage table and an upsert instead.
 */
export async function insertRunRows(on: Db | Queryable, runId: string, results: readonly RowResult[]): Promise<void> {
  if (results.length === 0) return;
  const lines = results.map((r) => runRowLine(runId, r)).join('');
  await inTransaction(on, async (tx) => {
    if (!(await unlessPresent(tx, () => tx.copyIn('run_row', ['run_id', ...RUN_ROW_COLUMNS], lines)))) await upsertRunRows(tx, lines);
  });
}

/** The rows of `lines` (COPY text of run_row's columns), replacing any with the same run and row. */
async function upsertRunRows(tx: Queryable, lines: string): Promise<void> {
  const columns = ['run_id', ...RUN_ROW_COLUMNS].join(', ');
  await tx.exec('CREATE TEMP TABLE stage_run_row (LIKE run_row) ON COMMIT DROP');
  await tx.copyIn('stage_run_row', ['run_id', ...RUN_ROW_COLUMNS], lines);
  await tx.exec(
    `INSERT INTO run_row (${columns}) SELECT ${columns} FROM stage_run_row
       ON CONFLICT (run_id, row_index) DO UPDATE SET ${RUN_ROW_COLUMNS.slice(1).map((c) => `${c} = excluded.${c}`).join(', ')};
     DROP TABLE stage_run_row`,
  );
}

function runRowLine(runId: string, r: RowResult): string {
  const detail = JSON.stringify({ candidates: r.candidates, problems: r.problems, warnings: r.warnings, reviewed: r.reviewed, submitted: r.submitted, action: r.action, message: r.message });
  return copyLine([runId, String(r.index), String(r.line), r.recordId, r.outcome, r.patientId ?? null, r.score === undefined ? null : String(r.score), detail]);
}

/** Locks the run's row for the rest of the transaction and returns its state. */
export async function lockRun(tx: Queryable, id: string): Promise<RunState | undefined> {
  const { rows } = await tx.query<{ state: RunState }>('SELECT state FROM run WHERE id = $1 FOR UPDATE', [id]);
  return rows[0]?.state;
}

export async function completeRun(
  tx: Queryable,
  id: string,
  done: { finishedAt: string; groupId: string; counts: Record<Outcome, number>; resultPath: string },
): Promise<void> {
  await tx.query(
    `UPDATE run SET state = 'completed', finished_at = $2, group_id = $3, counts = $4, result_path = $5,
            timeline = timeline || jsonb_build_array(jsonb_build_object('state', 'completed', 'at', $6::text))
      WHERE id = $1`,
    [id, done.finishedAt, done.groupId, JSON.stringify(done.counts), done.resultPath, done.finishedAt],
  );
}

/** Ends a run as held: its rows and counts are recorded, its Group is not changed. */
export async function holdRun(tx: Queryable, id: string, h: { at: string; groupId: string; counts: Record<Outcome, number>; resultPath: string; hold: RunHold }): Promise<void> {
  await tx.query(
    `UPDATE run SET state = 'held', group_id = $2, counts = $3, result_path = $4, hold = $5,
            timeline = timeline || jsonb_build_array(jsonb_build_object('state', 'held', 'at', $6::text))
      WHERE id = $1`,
    [id, h.groupId, JSON.stringify(h.counts), h.resultPath, JSON.stringify(h.hold), h.at],
  );
}

export async function saveRunHold(tx: Queryable, id: string, hold: RunHold): Promise<void> {
  await tx.query('UPDATE run SET hold = $2 WHERE id = $1', [id, JSON.stringify(hold)]);
}

/** An operator discarded a held run: it is over, and its Group was never changed. */
export async function discardRun(tx: Queryable, id: string, at: string, hold: RunHold): Promise<void> {
  await tx.query(
    `UPDATE run SET state = 'discarded', finished_at = $2, hold = $3,
            timeline = timeline || jsonb_build_array(jsonb_build_object('state', 'discarded', 'at', $4::text))
      WHERE id = $1`,
    [id, at, JSON.stringify(hold), at],
  );
}

/** A run by its id, or by a prefix of it as `status` prints (8 characters); undefined when none or several. */
export async function findRun(db: Queryable, idOrPrefix: string): Promise<RunRecord | undefined> {
  const exact = await getRun(db, idOrPrefix);
  if (exact || idOrPrefix.length < 4 || !/^[0-9a-f-]+$/i.test(idOrPrefix)) return exact;
  const { rows } = await db.query<RunRow>(`SELECT * FROM run WHERE id LIKE $1 || '%' LIMIT 2`, [idOrPrefix.toLowerCase()]);
  return rows.length === 1 ? toRecord(rows[0]!) : undefined;
}

export async function saveRunSummary(db: Queryable, id: string, summary: object): Promise<void> {
  await db.query('UPDATE run SET summary = $2 WHERE id = $1', [id, JSON.stringify(summary)]);
}

export async function failRun(db: Queryable, id: string, error: { code: string; message: string }, at: string): Promise<void> {
  await db.query(
    `UPDATE run SET state = 'failed', finished_at = $2, error = $3,
            timeline = timeline || jsonb_build_array(jsonb_build_object('state', 'failed', 'at', $4::text))
      WHERE id = $1`,
    [id, at, JSON.stringify(error), at],
  );
}


/** A run's row results, in input order, as they were recorded. For large runs, streamRunResults. */
export async function readRunResults(db: Queryable, runId: string): Promise<RowResult[]> {
  const out: RowResult[] = [];
  for await (const page of streamRunResults(db, runId)) out.push(...page);
  return out;
}

/**
 * A run's row results in input order, a page at a time: constant memory for any file size. A page
 * is a window of row indexes, so reading it costs the page whatever plan the server picks: asked
 * for "the next rows after this one", a server without statistics read the rest of the run and
 * sorted it for every page.
 */
export async function* streamRunResults(db: Queryable, runId: string, pageSize = 5000): AsyncGenerator<RowResult[]> {
  const { rows } = await db.query<{ last: number | null }>('SELECT max(row_index) AS last FROM run_row WHERE run_id = $1', [runId]);
  const last = rows[0]?.last ?? -1;
  for (let after = -1; after < last; after += pageSize) {
    const page = await readRunResultPage(db, runId, after, after + pageSize);
    if (page.length > 0) yield page;
  }
}

/** A run_row as stored, with its explanation in detail. */
export interface RunRowRecord {
  row_index: number;
  line: number;
  record_id: string;
  outcome: Outcome;
  patient_id: string | null;
  score: number | null;
  detail: Pick<RowResult, 'candidates' | 'problems' | 'warnings' | 'reviewed' | 'submitted' | 'action' | 'message'>;
}

export function toRowResult(r: RunRowRecord): RowResult {
  const out: RowResult = { index: r.row_index, line: r.line, recordId: r.record_id, outcome: r.outcome, candidates: r.detail.candidates ?? [] };
  if (r.patient_id !== null) out.patientId = r.patient_id;
  if (r.score !== null) out.score = r.score;
  if (r.detail.problems) out.problems = r.detail.problems;
  if (r.detail.warnings) out.warnings = r.detail.warnings;
  if (r.detail.reviewed) out.reviewed = r.detail.reviewed;
  if (r.detail.submitted) out.submitted = r.detail.submitted;
  if (r.detail.action) out.action = r.detail.action;
  if (r.detail.message) out.message = r.detail.message;
  return out;
}

/** The rows with after < row_index <= upTo, in order. */
async function readRunResultPage(db: Queryable, runId: string, after: number, upTo: number): Promise<RowResult[]> {
  const { rows } = await db.query<RunRowRecord>(
    'SELECT row_index, line, record_id, outcome, patient_id, score, detail FROM run_row WHERE run_id = $1 AND row_index > $2 AND row_index <= $3 ORDER BY row_index',
    [runId, after, upTo],
  );
  return rows.map(toRowResult);
}

/** Normalised rows of a queued run, stored so that any worker can match any chunk; by COPY, like the results. */
export async function appendRunInput(db: Queryable, runId: string, rows: readonly NormalisedRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.copyIn('run_input', ['run_id', 'row_index', 'row'], rows.map((r) => copyLine([runId, String(r.index), JSON.stringify(r)])).join(''));
}

export async function readRunInput(db: Queryable, runId: string, from: number, to: number): Promise<NormalisedRow[]> {
  const { rows } = await db.query<{ row: NormalisedRow }>(
    'SELECT row FROM run_input WHERE run_id = $1 AND row_index >= $2 AND row_index < $3 ORDER BY row_index',
    [runId, from, to],
  );
  return rows.map((r) => r.row);
}

export async function clearRunInput(db: Queryable, runId: string): Promise<void> {
  await db.query('DELETE FROM run_input WHERE run_id = $1', [runId]);
}

export async function recordChunk(db: Queryable, runId: string, chunk: number, worker: string, at: string): Promise<number> {
  await db.query(
    `INSERT INTO run_chunk (run_id, chunk, worker, finished_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (run_id, chunk) DO UPDATE SET worker = excluded.worker, finished_at = excluded.finished_at`,
    [runId, chunk, worker, at],
  );
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_chunk WHERE run_id = $1', [runId]);
  return rows[0]!.n;
}

export async function chunkWorkers(db: Queryable, runId: string): Promise<{ chunk: number; worker: string }[]> {
  const { rows } = await db.query<{ chunk: number; worker: string }>('SELECT chunk, worker FROM run_chunk WHERE run_id = $1 ORDER BY chunk', [runId]);
  return rows;
}

export async function runOutcomeCounts(db: Queryable, runId: string): Promise<Record<Outcome, number>> {
  const { rows } = await db.query<{ outcome: Outcome; n: number }>('SELECT outcome, count(*)::int AS n FROM run_row WHERE run_id = $1 GROUP BY outcome', [runId]);
  const counts: Record<Outcome, number> = { matched: 0, ambiguous: 0, possible: 0, no_match: 0, invalid: 0 };
  for (const r of rows) counts[r.outcome] = r.n;
  return counts;
}

export async function matchedPatientIds(db: Queryable, runId: string): Promise<string[]> {
  const { rows } = await db.query<{ patient_id: string }>(`SELECT patient_id FROM run_row WHERE run_id = $1 AND outcome = 'matched'`, [runId]);
  return rows.map((r) => r.patient_id);
}

/**
 * The patients a run's matched rows ask to join (rows marked `add`, and rows of files without
 * actions) and to leave (rows marked `remove`: a remove file's, or an action column's), each once.
 * Rows of HL7 v2 messages the pipeline's policy ignores join nothing; the others say which
 * message each patient joined by (`refs`: the first such message's MSH-10).
 */
export async function matchedByAction(db: Queryable, runId: string): Promise<{ add: string[]; remove: string[]; refs: Map<string, string> }> {
  const { rows } = await db.query<{ patient_id: string; remove: boolean; ref: string | null }>(
    `SELECT DISTINCT ON (patient_id, remove) patient_id, remove, detail->'message'->>'controlId' AS ref
       FROM (SELECT patient_id, row_index, detail, coalesce(detail->>'action' = 'remove', false) AS remove FROM run_row
              WHERE run_id = $1 AND outcome = 'matched' AND coalesce((detail->'message'->>'joins')::boolean, true)) r
      ORDER BY patient_id, remove, row_index`,
    [runId],
  );
  const refs = new Map(rows.flatMap((r) => (r.ref ? [[r.patient_id, r.ref] as const] : [])));
  return { add: rows.filter((r) => !r.remove).map((r) => r.patient_id), remove: rows.filter((r) => r.remove).map((r) => r.patient_id), refs };
}

export async function countRunRows(db: Queryable, runId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_row WHERE run_id = $1', [runId]);
  return rows[0]!.n;
}
