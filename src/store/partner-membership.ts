/**
 * Membership a partner manages itself (the dynamic approach: Da Vinci ATR `$member-add` and
 * `$member-remove` over FHIR), beside what its files decide. The Group's owner check, the
 * relationship rule and the change itself happen in one transaction, on the Group's row lock.
 */
import { RostermatchError } from '../errors/index.ts';
import { indexIdentifierValue } from '../normalise/index.ts';
import { audit } from './audit.ts';
import { changeStamp } from './clock.ts';
import type { Db, Queryable } from './db.ts';
import { applyPlan, assertGroupOwner, groupDefined, type GroupRecord } from './groups.ts';

export interface MemberChange {
  groupId: string;
  partner: string;
  patientId: string;
  /** Who asked: `client/<id>` for a SMART client. */
  actor: string;
  /**
   * A fixed time for the change (tests). @defaultValue the store's clock, read under the change
   * lock as the transaction's first statement (src/store/clock.ts)
   */
  at?: string;
}

export type MemberAddResult = { kind: 'added' | 'already'; group: GroupRecord } | { kind: 'unknown-patient' } | { kind: 'no-relationship' };
export type MemberRemoveResult = { kind: 'removed' | 'not-member'; group: GroupRecord };

/**
 * Whether the patient is a member now of one of the partner's Groups (a Group defined by
 * characteristics holds no members of its own: it counts for none). Found through the patient's
 * history (every member joined by an event) and checked on group_member's key: a probe however
 * many Groups and members there are.
 */
export async function isPartnerMember(db: Queryable, partner: string, patientId: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM partner_group g
      WHERE g.partner = $1 AND g.id IN (SELECT e.group_id FROM group_event e WHERE e.patient_id = $2)
        AND EXISTS (SELECT 1 FROM group_member m WHERE m.group_id = g.id AND m.patient_id = $2)
      LIMIT 1`,
    [partner, patientId],
  );
  return rows.length > 0;
}

/**
 * A person the IIS has a reason to believe the partner cares for: matched for it in one of its
 * runs (or accepted by a reviewer for it), or in one of its Groups now or before. Without such a
 * relationship a partner could add any Patient id it guessed and export that person's record.
 */
export async function hasRelationship(db: Queryable, partner: string, patientId: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT (EXISTS (SELECT 1 FROM run_row rr JOIN run r ON r.id = rr.run_id
                     WHERE rr.patient_id = $2 AND rr.outcome = 'matched' AND r.partner = $1)
         OR EXISTS (SELECT 1 FROM review_item i WHERE i.patient_id = $2 AND i.partner = $1 AND i.state = 'accepted')
         OR EXISTS (SELECT 1 FROM group_event e JOIN partner_group g ON g.id = e.group_id
                     WHERE e.patient_id = $2 AND g.partner = $1))
         -- A patient the identity feed removed is nobody's any more.
         AND NOT EXISTS (SELECT 1 FROM patient p WHERE p.id = $2 AND p.removed_at IS NOT NULL) AS ok`,
    [partner, patientId],
  );
  return rows[0]?.ok === true;
}

/** The live patients (not merged away, not removed) holding an identifier, through the index's identifier keys. */
export async function patientsByIdentifier(db: Queryable, system: string, value: string): Promise<string[]> {
  const normalised = indexIdentifierValue(system, value);
  if (normalised === '') return [];
  const { rows } = await db.query<{ patient_id: string }>(
    `SELECT b.patient_id FROM patient_block b JOIN patient p ON p.id = b.patient_id
      WHERE b.key = $1 AND p.replaced_by IS NULL AND p.removed_at IS NULL ORDER BY b.patient_id`,
    [`id:${system}|${normalised}`],
  );
  return rows.map((r) => r.patient_id);
}

async function livePatient(db: Queryable, id: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM patient WHERE id = $1 AND replaced_by IS NULL AND removed_at IS NULL', [id]);
  return rows.length === 1;
}

/** The partner's own Group, locked for the change; another partner's is the same as none. */
async function ownGroup(tx: Queryable, partner: string, groupId: string): Promise<GroupRecord> {
  const g = await assertGroupOwner(tx, partner, groupId, { lock: true }).catch((e: unknown) => {
    if (e instanceof RostermatchError && e.code === 'GROUP_NOT_YOURS') return undefined;
    throw e;
  });
  if (!g) throw new RostermatchError('GROUP_NOT_FOUND', `no Group with id "${groupId}"`);
  if (!g.actual) throw groupDefined(groupId);
  return g;
}

/** When the change happened: the store's clock under the change lock, before any row is locked. */
const stamp = (tx: Queryable, c: MemberChange) => changeStamp(tx, c.at === undefined ? undefined : () => new Date(c.at!));

export async function addPartnerMember(db: Db, change: MemberChange & { period?: { start?: string; end?: string } }): Promise<MemberAddResult> {
  return db.transaction(async (tx) => {
    const c = { ...change, at: await stamp(tx, change) };
    const g = await ownGroup(tx, c.partner, c.groupId);
    if (!(await livePatient(tx, c.patientId))) return { kind: 'unknown-patient' };
    if (!(await hasRelationship(tx, c.partner, c.patientId))) {
      await audit(tx, { at: c.at, actor: c.actor, action: 'group.member-add.refused', entity: `group/${c.groupId}`, detail: { patient: c.patientId, reason: 'no-relationship' } });
      return { kind: 'no-relationship' };
    }
    const { rows } = await tx.query('SELECT 1 FROM group_member WHERE group_id = $1 AND patient_id = $2', [c.groupId, c.patientId]);
    let kind: 'added' | 'already' = 'already';
    if (rows.length === 0) {
      await applyPlan(tx, { groupId: g.id, version: g.version, before: g.size, added: [c.patientId], removed: [], conflicts: [] }, { actor: c.actor, at: c.at });
      kind = 'added';
    }
    // The attribution period given is the latest word, also for someone already in the Group.
    if (c.period) await tx.query('UPDATE group_member SET period_start = $3, period_end = $4 WHERE group_id = $1 AND patient_id = $2', [c.groupId, c.patientId, c.period.start ?? null, c.period.end ?? null]);
    await audit(tx, { at: c.at, actor: c.actor, action: 'group.member-add', entity: `group/${c.groupId}`, detail: { patient: c.patientId, outcome: kind } });
    return { kind, group: (await assertGroupOwner(tx, c.partner, c.groupId))! };
  });
}

export async function removePartnerMember(db: Db, change: MemberChange): Promise<MemberRemoveResult> {
  return db.transaction(async (tx) => {
    const c = { ...change, at: await stamp(tx, change) };
    const g = await ownGroup(tx, c.partner, c.groupId);
    const { rows } = await tx.query('SELECT 1 FROM group_member WHERE group_id = $1 AND patient_id = $2', [c.groupId, c.patientId]);
    let kind: 'removed' | 'not-member' = 'not-member';
    if (rows.length === 1) {
      await applyPlan(tx, { groupId: g.id, version: g.version, before: g.size, added: [], removed: [c.patientId], conflicts: [] }, { actor: c.actor, at: c.at });
      kind = 'removed';
    }
    await audit(tx, { at: c.at, actor: c.actor, action: 'group.member-remove', entity: `group/${c.groupId}`, detail: { patient: c.patientId, outcome: kind } });
    return { kind, group: (await assertGroupOwner(tx, c.partner, c.groupId))! };
  });
}
