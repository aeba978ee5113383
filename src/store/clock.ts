/**
 * The one clock of what Bulk `_since` compares: a resource's meta.lastUpdated, when a member
 * joined a Group, a Group's lastUpdated, and an export's transactionTime. It is the database
 * server's clock — serve, workers on other machines and the CLI share the store, not a clock —
 * read to the millisecond, the precision of a JavaScript Date and of every instant stored here.
 *
 * One clock is not yet enough. A change is stamped before its transaction commits, so an export
 * that read its transactionTime in between would neither hold the change (not committed when it
 * read) nor leave it to the next `_since=transactionTime` export (stamped before that instant):
 * lost for good. So a writer stamps under a shared lock it holds until it commits (changeStamp),
 * and an export reads its transactionTime under the exclusive lock (exportInstant), which it takes
 * only once every writer holding the shared one has committed, and lets go only once the clock
 * has moved past the instant it read. Hence:
 * - a change stamped at or before the transactionTime committed before the export reads anything
 *   (the export holds it);
 * - a change stamped after the lock was let go is stamped later than the transactionTime (the
 *   next `_since=transactionTime` export holds it).
 * Writers never wait for each other (shared), and an export waits at most for the transactions in
 * flight when it starts (an index load's batch, a run's recording), then holds writers up for a
 * millisecond.
 */
import { isDb, type Db, type Queryable } from './db.ts';

/** Any fixed number, distinct from the migration lock; it only has to be the same in every rostermatch process. */
const CHANGE_LOCK = 7_220_612;

/**
 * Who a patient id stands for — a live patient, one merged into a survivor, one removed — changes
 * only in an identity feed transaction, which holds this lock exclusively; every other writer
 * (changeStamp) holds it shared. So a run's Group change, a review decision or a partner's
 * $member-add either commits before a merge or removal (and the feed then moves or takes out what
 * it wrote), or starts after it and sees it whole (planMembership resolves merged-away ids to
 * their survivors): never half a merge. It is taken before the change lock, and changeStamp
 * before any row lock, so no two writers wait on each other in a circle.
 */
const IDENTITY_LOCK = 7_220_613;

/** The server's clock now, at the millisecond, as a FHIR instant in UTC (the form toISOString gives). */
const READ_CLOCK = `SELECT to_char(date_trunc('milliseconds', clock_timestamp()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at`;

/**
 * The stamp of the changes `tx` writes (meta.lastUpdated, a member's joining, a Group's
 * lastUpdated): the server's clock, read under the shared change lock, which `tx` then holds
 * until it ends. Call it in the writing transaction, before the writes it stamps, and as early
 * as it can be (before row locks), so that an export waiting for the lock never waits on a
 * writer that waits on another writer. `now` overrides the clock (tests), the lock is taken all
 * the same.
 */
export async function changeStamp(tx: Queryable, now?: () => Date, o: { /** An identity feed transaction: the identity lock exclusively (see IDENTITY_LOCK). */ identity?: boolean } = {}): Promise<string> {
  if (isDb(tx)) throw new Error('changeStamp: call it inside the transaction that writes the changes (the lock ends with it)');
  await tx.query(o.identity ? 'SELECT pg_advisory_xact_lock($1)' : 'SELECT pg_advisory_xact_lock_shared($1)', [IDENTITY_LOCK]);
  await tx.query('SELECT pg_advisory_xact_lock_shared($1)', [CHANGE_LOCK]);
  if (now) return now().toISOString();
  const { rows } = await tx.query<{ at: string }>(READ_CLOCK);
  return rows[0]!.at;
}

/**
 * An export's transactionTime: the server's clock once no change stamped before it is still
 * uncommitted, and held until the clock has moved past it. What the export then reads (in its
 * own transactions) holds every change stamped at or before it; every later change is stamped
 * after it.
 */
export async function exportInstant(db: Db): Promise<string> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [CHANGE_LOCK]);
    const { rows } = await tx.query<{ at: string }>(READ_CLOCK);
    // The instant is truncated to the millisecond: a millisecond later, whatever is stamped next is later than it.
    await tx.query('SELECT pg_sleep(0.001)');
    return rows[0]!.at;
  });
}
