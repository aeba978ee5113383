/** Persistent partner Groups: membership, its history, and the FHIR Group resource. */
import type { Queryable } from './db.ts';

export type GroupMode = 'replace' | 'append';

export interface GroupRecord {
  id: string;
  partner: string;
  name: string;
  mode: GroupMode;
  version: number;
  createdAt: string;
  updatedAt: string;
  /** Members now. */
  size: number;
  /** Membership changes ever recorded (the length of its history). */
  events: number;
}

export interface MembershipChange {
  before: number;
  after: number;
  added: number;
  removed: number;
}

interface GroupRow {
  id: string;
  partner: string;
  name: string;
  mode: GroupMode;
  version: number;
  created_at: Date;
  updated_at: Date;
  member_count: number;
  event_count: string | number;
}

const toRecord = (r: GroupRow): GroupRecord => ({
  id: r.id,
  partner: r.partner,
  name: r.name,
  mode: r.mode,
  version: r.version,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  size: r.member_count,
  events: Number(r.event_count),
});

export async function ensureGroup(tx: Queryable, g: { id: string; partner: string; name: string; mode: GroupMode }): Promise<void> {
  await tx.query(
    `INSERT INTO partner_group (id, partner, name, mode) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, mode = excluded.mode`,
    [g.id, g.partner, g.name, g.mode],
  );
}

/**
 * Brings the Group's membership to what a run decided, inside the caller's transaction:
 * `replace` makes the members exactly `patientIds`; `append` adds them. Only real differences
 * are written, so re-applying the same file records no events and keeps the version.
 */
export async function applyMembership(
  tx: Queryable,
  groupId: string,
  patientIds: readonly string[],
  mode: GroupMode,
  by: { runId?: string; actor: string; at: string },
): Promise<MembershipChange> {
  // Serialise concurrent changes to the same Group (two runs of one partner) on its row lock.
  await tx.query('SELECT id FROM partner_group WHERE id = $1 FOR UPDATE', [groupId]);
  const current = new Set(
    (await tx.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1', [groupId])).rows.map((r) => r.patient_id),
  );
  const target = new Set(patientIds);
  const added = [...target].filter((id) => !current.has(id)).sort();
  const removed = mode === 'replace' ? [...current].filter((id) => !target.has(id)).sort() : [];
  if (added.length > 0) {
    await tx.query(
      `INSERT INTO group_member (group_id, patient_id, added_at, added_by_run)
       SELECT $1, unnest($2::text[]), $3::timestamptz, $4`,
      [groupId, added, by.at, by.runId ?? null],
    );
  }
  if (removed.length > 0) {
    await tx.query('DELETE FROM group_member WHERE group_id = $1 AND patient_id = ANY($2::text[])', [groupId, removed]);
  }
  const after = current.size + added.length - removed.length;
  const events = [...added.map((id) => [id, 'added'] as const), ...removed.map((id) => [id, 'removed'] as const)];
  if (events.length > 0) {
    await tx.query(
      `INSERT INTO group_event (group_id, patient_id, action, at, run_id, actor)
       SELECT $1, p, a, $4::timestamptz, $5, $6 FROM unnest($2::text[], $3::text[]) AS e(p, a)`,
      [groupId, events.map((e) => e[0]), events.map((e) => e[1]), by.at, by.runId ?? null, by.actor],
    );
    await tx.query('UPDATE partner_group SET version = version + 1, updated_at = $2, member_count = $3, event_count = event_count + $4 WHERE id = $1', [
      groupId,
      by.at,
      after,
      events.length,
    ]);
  }
  return { before: current.size, after, added: added.length, removed: removed.length };
}

export async function getGroup(db: Queryable, id: string): Promise<GroupRecord | undefined> {
  const { rows } = await db.query<GroupRow>('SELECT * FROM partner_group WHERE id = $1', [id]);
  return rows[0] && toRecord(rows[0]);
}

export async function listGroups(db: Queryable): Promise<GroupRecord[]> {
  const { rows } = await db.query<GroupRow>('SELECT * FROM partner_group ORDER BY id');
  return rows.map(toRecord);
}

export interface Member {
  patientId: string;
  addedAt: string;
  runId: string | null;
}

export async function groupMembers(db: Queryable, id: string): Promise<Member[]> {
  const { rows } = await db.query<{ patient_id: string; added_at: Date; added_by_run: string | null }>(
    'SELECT patient_id, added_at, added_by_run FROM group_member WHERE group_id = $1 ORDER BY patient_id',
    [id],
  );
  return rows.map((r) => ({ patientId: r.patient_id, addedAt: r.added_at.toISOString(), runId: r.added_by_run }));
}

export interface GroupEvent {
  patientId: string;
  action: 'added' | 'removed';
  at: string;
  runId: string | null;
  actor: string;
}

export async function groupHistory(db: Queryable, id: string, limit = 1000): Promise<GroupEvent[]> {
  const { rows } = await db.query<{ patient_id: string; action: 'added' | 'removed'; at: Date; run_id: string | null; actor: string }>(
    'SELECT patient_id, action, at, run_id, actor FROM group_event WHERE group_id = $1 ORDER BY id DESC LIMIT $2',
    [id, limit],
  );
  return rows.map((r) => ({ patientId: r.patient_id, action: r.action, at: r.at.toISOString(), runId: r.run_id, actor: r.actor }));
}

/** The Group as a FHIR R4 resource: an enumerated, persistent group of people. */
export function toFhirGroup(g: GroupRecord, members: readonly Member[]): Record<string, unknown> {
  return {
    resourceType: 'Group',
    id: g.id,
    meta: { versionId: String(g.version), lastUpdated: g.updatedAt },
    identifier: [{ system: 'urn:rostermatch:partner', value: g.partner }],
    active: true,
    type: 'person',
    actual: true,
    name: g.name,
    quantity: members.length,
    member: members.map((m) => ({ entity: { reference: `Patient/${m.patientId}` }, period: { start: m.addedAt } })),
  };
}
