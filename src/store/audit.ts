/** Audit events: who did or saw what, when. Details hold ids only, never demographics. */
import type { Queryable } from './db.ts';

export interface AuditEvent {
  id: number;
  at: string;
  actor: string;
  action: string;
  entity: string;
  detail: Record<string, unknown> | null;
}

export async function audit(db: Queryable, e: { actor: string; action: string; entity: string; detail?: Record<string, unknown>; at?: string }): Promise<void> {
  await db.query('INSERT INTO audit_event (at, actor, action, entity, detail) VALUES ($1, $2, $3, $4, $5)', [
    e.at ?? new Date().toISOString(),
    e.actor,
    e.action,
    e.entity,
    e.detail ? JSON.stringify(e.detail) : null,
  ]);
}

/** The latest events, newest first; `actionPrefix` ('feed.') selects a family of actions. */
export async function listAuditEvents(db: Queryable, f: { actor?: string; action?: string; actionPrefix?: string; limit?: number } = {}): Promise<AuditEvent[]> {
  const { rows } = await db.query<{ id: string; at: Date; actor: string; action: string; entity: string; detail: AuditEvent['detail'] }>(
    `SELECT * FROM audit_event WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) AND ($4::text IS NULL OR starts_with(action, $4))
      ORDER BY id DESC LIMIT $3`,
    [f.actor ?? null, f.action ?? null, f.limit ?? 100, f.actionPrefix ?? null],
  );
  return rows.map((r) => ({ id: Number(r.id), at: r.at.toISOString(), actor: r.actor, action: r.action, entity: r.entity, detail: r.detail }));
}
