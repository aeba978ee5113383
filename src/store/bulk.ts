/** Bulk Data export jobs a client asked for over FHIR: request, state, progress, manifest. */
import type { Queryable } from './db.ts';

export type BulkState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'expired';

export interface BulkJob<P = unknown, M = unknown> {
  id: string;
  clientId: string;
  partner: string;
  groupId: string;
  /** The kick-off request's full URL, as the manifest repeats it. */
  request: string;
  params: P;
  state: BulkState;
  transactionTime: string;
  progress: string | null;
  manifest: M | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  expiresAt: string | null;
  polledAt: string | null;
}

interface BulkRow {
  id: string;
  client_id: string;
  partner: string;
  group_id: string;
  request: string;
  params: unknown;
  state: BulkState;
  transaction_time: Date;
  progress: string | null;
  manifest: unknown;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
  expires_at: Date | null;
  polled_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

const toJob = <P, M>(r: BulkRow): BulkJob<P, M> => ({
  id: r.id,
  clientId: r.client_id,
  partner: r.partner,
  groupId: r.group_id,
  request: r.request,
  params: r.params as P,
  state: r.state,
  transactionTime: r.transaction_time.toISOString(),
  progress: r.progress,
  manifest: r.manifest as M | null,
  error: r.error,
  createdAt: r.created_at.toISOString(),
  finishedAt: iso(r.finished_at),
  expiresAt: iso(r.expires_at),
  polledAt: iso(r.polled_at),
});

export async function createBulkJob(tx: Queryable, j: { id: string; clientId: string; partner: string; groupId: string; request: string; params: unknown; transactionTime: string }): Promise<void> {
  await tx.query(
    `INSERT INTO bulk_export (id, client_id, partner, group_id, request, params, state, transaction_time, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7)`,
    [j.id, j.clientId, j.partner, j.groupId, j.request, JSON.stringify(j.params), j.transactionTime],
  );
}

export async function getBulkJob<P, M>(db: Queryable, id: string): Promise<BulkJob<P, M> | undefined> {
  const { rows } = await db.query<BulkRow>('SELECT * FROM bulk_export WHERE id = $1', [id]);
  return rows[0] && toJob<P, M>(rows[0]);
}

/**
 * Moves a queued job to running, with the transactionTime it runs at (the kick-off's, when not
 * given); false when it is no longer queued (cancelled meanwhile, or taken).
 */
export async function startBulkJob(db: Queryable, id: string, transactionTime?: string): Promise<boolean> {
  const { rows } = await db.query<{ id: string }>(
    "UPDATE bulk_export SET state = 'running', transaction_time = coalesce($2::timestamptz, transaction_time) WHERE id = $1 AND state IN ('queued', 'running') RETURNING id",
    [id, transactionTime ?? null],
  );
  return rows.length === 1;
}

export async function setBulkProgress(db: Queryable, id: string, progress: string): Promise<void> {
  await db.query("UPDATE bulk_export SET progress = $2 WHERE id = $1 AND state = 'running'", [id, progress]);
}

/** Ends a running job; false when it was cancelled meanwhile (its files are then the canceller's to remove). */
export async function finishBulkJob(db: Queryable, id: string, end: { state: 'completed'; manifest: unknown; expiresAt: string; at: string } | { state: 'failed'; error: string; expiresAt: string; at: string }): Promise<boolean> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE bulk_export SET state = $2, manifest = $3, error = $4, finished_at = $5, expires_at = $6, progress = NULL
      WHERE id = $1 AND state = 'running' RETURNING id`,
    [id, end.state, end.state === 'completed' ? JSON.stringify(end.manifest) : null, end.state === 'failed' ? end.error : null, end.at, end.expiresAt],
  );
  return rows.length === 1;
}

/** A job that will not finish (its last attempt failed): failed, kept `keepMs` for the client to see, then expired. */
export async function failBulkJob(db: Queryable, id: string, error: string, keepMs: number, now = new Date()): Promise<void> {
  await db.query(
    `UPDATE bulk_export SET state = 'failed', error = $2, finished_at = $3, expires_at = $4, progress = NULL
      WHERE id = $1 AND state IN ('queued', 'running')`,
    [id, error, now.toISOString(), new Date(now.getTime() + keepMs).toISOString()],
  );
}

/** Cancels (or, when finished, deletes) a job; the state it was in, or undefined when it was already gone. */
export async function cancelBulkJob(db: Queryable, id: string, at: string): Promise<BulkState | undefined> {
  const { rows } = await db.query<{ state: BulkState }>(
    `UPDATE bulk_export b SET state = 'cancelled', finished_at = $2 FROM (SELECT state FROM bulk_export WHERE id = $1 FOR UPDATE) old
      WHERE b.id = $1 AND old.state NOT IN ('cancelled', 'expired') RETURNING old.state`,
    [id, at],
  );
  return rows[0]?.state;
}

/** Notes a status request; returns when the one before it was. */
export async function notePoll(db: Queryable, id: string, at: string): Promise<string | null> {
  const { rows } = await db.query<{ before: Date | null }>(
    'UPDATE bulk_export b SET polled_at = $2 FROM (SELECT polled_at FROM bulk_export WHERE id = $1 FOR UPDATE) old WHERE b.id = $1 RETURNING old.polled_at AS before',
    [id, at],
  );
  return iso(rows[0]?.before ?? null);
}

/** Finished jobs whose files are past their expiry, marked expired; their ids, for the files to go. */
export async function expireBulkJobs(db: Queryable, now: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    "UPDATE bulk_export SET state = 'expired' WHERE state IN ('completed', 'failed') AND expires_at <= $1 RETURNING id",
    [now],
  );
  return rows.map((r) => r.id);
}

/** Jobs still to run (after a restart that lost the queue). */
export async function unfinishedBulkJobs(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>("SELECT id FROM bulk_export WHERE state IN ('queued', 'running') ORDER BY created_at");
  return rows.map((r) => r.id);
}
