/**
 * Operator sessions of the console. The cookie carries a random id; the table keeps its sha256,
 * the operator, and the two limits: an absolute expiry and an idle timeout.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from './db.ts';

const hash = (id: string) => createHash('sha256').update(id).digest('hex');

export interface SessionLimits {
  /** @defaultValue 30 minutes */
  idleMs: number;
  /** @defaultValue 12 hours: one shift */
  absoluteMs: number;
}
export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 30 * 60_000, absoluteMs: 12 * 3_600_000 };

/** Starts a session and returns the id for the cookie (the only place it exists in clear). */
export async function createSession(db: Queryable, operator: string, limits: SessionLimits, now = new Date()): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  await db.query('INSERT INTO operator_session (id_hash, operator, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)', [
    hash(id),
    operator,
    now.toISOString(),
    new Date(now.getTime() + limits.absoluteMs).toISOString(),
  ]);
  return id;
}

/** last_seen_at is written at most this often: a page open all day should not write on every request. */
const TOUCH_EVERY_MS = 30_000;

/**
 * The session's operator if it is live, or undefined (and the session is deleted). `activity`
 * says whether the request was the operator's doing: a page's own background refresh is not, so it
 * does not keep an unattended console signed in.
 */
export async function touchSession(db: Queryable, id: string, limits: SessionLimits, o: { now?: Date; activity?: boolean } = {}): Promise<string | undefined> {
  const now = o.now ?? new Date();
  const { rows } = await db.query<{ operator: string; last_seen_at: Date; expires_at: Date }>('SELECT operator, last_seen_at, expires_at FROM operator_session WHERE id_hash = $1', [
    hash(id),
  ]);
  const s = rows[0];
  if (!s) return undefined;
  if (s.expires_at.getTime() <= now.getTime() || s.last_seen_at.getTime() + limits.idleMs <= now.getTime()) {
    await endSession(db, id);
    return undefined;
  }
  if ((o.activity ?? true) && now.getTime() - s.last_seen_at.getTime() >= Math.min(TOUCH_EVERY_MS, limits.idleMs / 4)) {
    await db.query('UPDATE operator_session SET last_seen_at = $2 WHERE id_hash = $1', [hash(id), now.toISOString()]);
  }
  return s.operator;
}

export async function endSession(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM operator_session WHERE id_hash = $1', [hash(id)]);
}

/** Removes sessions past either limit; returns how many. */
export async function purgeSessions(db: Queryable, limits: SessionLimits, now = new Date()): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH gone AS (DELETE FROM operator_session WHERE expires_at <= $1 OR last_seen_at <= $1::timestamptz - make_interval(secs => $2) RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [now.toISOString(), limits.idleMs / 1000],
  );
  return rows[0]!.n;
}
