/** Read models for the operators' console: pages of rows, progress, the latest export. */
import type { Outcome, RowResult } from '../model/index.ts';
import type { Queryable } from './db.ts';
import { GROUP_EVENT_COLUMNS, toGroupEvent, type GroupEvent, type GroupEventRow, type GroupRecord } from './groups.ts';
import { toRowResult, type RunRowRecord } from './runs.ts';

/** Chunks matched so far, per run (for progress bars of queued runs). */
export async function chunksDone(db: Queryable, runIds: readonly string[]): Promise<Map<string, number>> {
  if (runIds.length === 0) return new Map();
  const { rows } = await db.query<{ run_id: string; n: number }>('SELECT run_id, count(*)::int AS n FROM run_chunk WHERE run_id = ANY($1::text[]) GROUP BY run_id', [
    [...runIds],
  ]);
  return new Map(rows.map((r) => [r.run_id, r.n]));
}

/**
 * One page of a run's rows, in file order, optionally of one outcome. The page's first row is
 * found on an index alone (run_id, outcome, row_index), so a deep page does not read every row
 * before it.
 */
export async function runRowsPage(db: Queryable, runId: string, f: { outcome?: Outcome; offset: number; limit: number }): Promise<RowResult[]> {
  const { rows } = await db.query<RunRowRecord>(
    `SELECT row_index, line, record_id, outcome, patient_id, score, detail FROM run_row
      WHERE run_id = $1 AND ($2::text IS NULL OR outcome = $2)
        AND row_index >= coalesce((SELECT row_index FROM run_row WHERE run_id = $1 AND ($2::text IS NULL OR outcome = $2)
                                    ORDER BY row_index OFFSET $3 LIMIT 1), 2147483647)
      ORDER BY row_index LIMIT $4`,
    [runId, f.outcome ?? null, f.offset, f.limit],
  );
  return rows.map(toRowResult);
}

/** The rows behind review items, by `${runId}:${rowIndex}`. */
export async function rowsAt(db: Queryable, at: readonly { runId: string; rowIndex: number }[]): Promise<Map<string, RowResult>> {
  if (at.length === 0) return new Map();
  const { rows } = await db.query<RunRowRecord & { run_id: string }>(
    `SELECT r.run_id, r.row_index, r.line, r.record_id, r.outcome, r.patient_id, r.score, r.detail
       FROM run_row r JOIN unnest($1::text[], $2::int[]) AS k(run_id, row_index) USING (run_id, row_index)`,
    [at.map((a) => a.runId), at.map((a) => a.rowIndex)],
  );
  return new Map(rows.map((r) => [`${r.run_id}:${r.row_index}`, toRowResult(r)]));
}

export interface GroupHistoryPage {
  total: number;
  events: GroupEvent[];
}

/**
 * Membership history, newest first, a page at a time. The page's first event is found on the
 * (group_id, id) index alone, so a deep page costs about what the first does.
 */
export async function groupHistoryPage(db: Queryable, group: GroupRecord, f: { offset: number; limit: number }): Promise<GroupHistoryPage> {
  const { rows } = await db.query<GroupEventRow>(
    `SELECT ${GROUP_EVENT_COLUMNS} FROM group_event
      WHERE group_id = $1 AND id <= coalesce((SELECT id FROM group_event WHERE group_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1), 0)
      ORDER BY id DESC LIMIT $3`,
    [group.id, f.offset, f.limit],
  );
  return {
    total: group.events,
    events: rows.map(toGroupEvent),
  };
}

export interface ExportRecord {
  id: string;
  groupId: string;
  transactionTime: string;
  dir: string;
  runId: string | null;
  manifest: { transactionTime: string; request: string; output: { type: string; url: string; count: number }[]; error: unknown[] };
}

export async function latestExport(db: Queryable, groupId: string): Promise<ExportRecord | undefined> {
  const { rows } = await db.query<{ id: string; group_id: string; transaction_time: Date; dir: string; run_id: string | null; manifest: ExportRecord['manifest'] }>(
    'SELECT id, group_id, transaction_time, dir, run_id, manifest FROM export WHERE group_id = $1 ORDER BY transaction_time DESC LIMIT 1',
    [groupId],
  );
  const r = rows[0];
  return r && { id: r.id, groupId: r.group_id, transactionTime: r.transaction_time.toISOString(), dir: r.dir, runId: r.run_id, manifest: r.manifest };
}

/** Every partner that has sent a file, for filters. */
export async function knownPartners(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ partner: string }>('SELECT DISTINCT partner FROM run ORDER BY partner');
  return rows.map((r) => r.partner);
}
