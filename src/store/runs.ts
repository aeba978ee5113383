/** Runs (one per dropped file) and their rows' outcomes. */
import type { Outcome, RowResult } from '../model/index.ts';
import type { Queryable } from './db.ts';

export type RunState = 'running' | 'completed' | 'failed';

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
});

export async function createRun(db: Queryable, r: { id: string; partner: string; fileName: string; fileSha256: string; receivedAt: string }): Promise<void> {
  await db.query(`INSERT INTO run (id, partner, file_name, file_sha256, state, received_at) VALUES ($1, $2, $3, $4, 'running', $5)`, [
    r.id,
    r.partner,
    r.fileName,
    r.fileSha256,
    r.receivedAt,
  ]);
}

/** The completed run that already processed these bytes for this partner, if any. */
export async function findCompletedRun(db: Queryable, partner: string, sha256: string): Promise<RunRecord | undefined> {
  const { rows } = await db.query<RunRow>(
    `SELECT * FROM run WHERE partner = $1 AND file_sha256 = $2 AND state = 'completed' ORDER BY received_at LIMIT 1`,
    [partner, sha256],
  );
  return rows[0] && toRecord(rows[0]);
}

export async function getRun(db: Queryable, id: string): Promise<RunRecord | undefined> {
  const { rows } = await db.query<RunRow>('SELECT * FROM run WHERE id = $1', [id]);
  return rows[0] && toRecord(rows[0]);
}

export async function insertRunRows(tx: Queryable, runId: string, results: readonly RowResult[]): Promise<void> {
  const BATCH = 2000;
  for (let i = 0; i < results.length; i += BATCH) {
    const b = results.slice(i, i + BATCH);
    await tx.query(
      `INSERT INTO run_row (run_id, row_index, line, record_id, outcome, patient_id, score, detail)
       SELECT $1, * FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::jsonb[])`,
      [
        runId,
        b.map((r) => r.index),
        b.map((r) => r.line),
        b.map((r) => r.recordId),
        b.map((r) => r.outcome),
        b.map((r) => r.patientId ?? null),
        b.map((r) => r.score ?? null),
        b.map((r) => JSON.stringify({ candidates: r.candidates, problems: r.problems, warnings: r.warnings })),
      ],
    );
  }
}

export async function completeRun(
  tx: Queryable,
  id: string,
  done: { finishedAt: string; groupId: string; counts: Record<Outcome, number>; resultPath: string },
): Promise<void> {
  await tx.query(`UPDATE run SET state = 'completed', finished_at = $2, group_id = $3, counts = $4, result_path = $5 WHERE id = $1`, [
    id,
    done.finishedAt,
    done.groupId,
    JSON.stringify(done.counts),
    done.resultPath,
  ]);
}

export async function saveRunSummary(db: Queryable, id: string, summary: object): Promise<void> {
  await db.query('UPDATE run SET summary = $2 WHERE id = $1', [id, JSON.stringify(summary)]);
}

export async function failRun(db: Queryable, id: string, error: { code: string; message: string }, at: string): Promise<void> {
  await db.query(`UPDATE run SET state = 'failed', finished_at = $2, error = $3 WHERE id = $1`, [id, at, JSON.stringify(error)]);
}

export async function recordAudit(db: Queryable, e: { actor: string; action: string; entity: string; detail?: unknown }): Promise<void> {
  await db.query('INSERT INTO audit_event (actor, action, entity, detail) VALUES ($1, $2, $3, $4)', [
    e.actor,
    e.action,
    e.entity,
    e.detail === undefined ? null : JSON.stringify(e.detail),
  ]);
}

/** A run's row results, in input order, as they were recorded. */
export async function readRunResults(db: Queryable, runId: string): Promise<RowResult[]> {
  const { rows } = await db.query<{
    row_index: number;
    line: number;
    record_id: string;
    outcome: Outcome;
    patient_id: string | null;
    score: number | null;
    detail: Pick<RowResult, 'candidates' | 'problems' | 'warnings'>;
  }>('SELECT row_index, line, record_id, outcome, patient_id, score, detail FROM run_row WHERE run_id = $1 ORDER BY row_index', [runId]);
  return rows.map((r) => {
    const out: RowResult = { index: r.row_index, line: r.line, recordId: r.record_id, outcome: r.outcome, candidates: r.detail.candidates ?? [] };
    if (r.patient_id !== null) out.patientId = r.patient_id;
    if (r.score !== null) out.score = r.score;
    if (r.detail.problems) out.problems = r.detail.problems;
    if (r.detail.warnings) out.warnings = r.detail.warnings;
    return out;
  });
}
