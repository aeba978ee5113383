/** Persistent partner Groups: membership, its history, and the FHIR Group resource. */
import { RostermatchError } from '../errors/index.ts';
import { audit } from './audit.ts';
import { changeStamp } from './clock.ts';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { sqlLiteral, type Db, type Queryable } from './db.ts';
import { resolvePatients } from './patients.ts';

/** `replace`: a file is the whole Group; `append`: it adds (or, row by row, adds and removes); `remove`: its people leave. */
export type GroupMode = 'replace' | 'append' | 'remove';

export interface GroupRecord {
  id: string;
  /** The owner: the partner whose run created the Group, or the one an operator moved it to. */
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
  /** The run that created it (null for a Group older than this record). */
  createdByRun: string | null;
  /** False for a Group an operator defined by characteristics: its members are found when it is exported. */
  actual: boolean;
  characteristics: GroupCharacteristics | null;
}

/** Who is in a Group defined by characteristics, at the moment it is evaluated. */
export interface GroupCharacteristics {
  /** Living at one of these ZIP codes (five digits). */
  zips: string[];
  /** Younger than this many years (the seed's "under a specified age"). */
  underAge?: number;
  /** At least this many years old. */
  minAge?: number;
  /** Immunized with at least one of these CVX codes. */
  vaccines?: string[];
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
  created_by_run: string | null;
  actual: boolean;
  characteristics: GroupCharacteristics | null;
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
  createdByRun: r.created_by_run,
  actual: r.actual,
  characteristics: r.characteristics,
});

/**
 * The one ownership check of every surface that changes or reads a Group on a partner's behalf
 * (a file run, a review decision, an export; the FHIR API and HL7 v2 feeds to come): a Group
 * belongs to the partner that created it, and no other partner may name it. Returns the Group,
 * or undefined when no Group has this id yet (the partner's run would create it). With `lock`,
 * the Group's row stays locked for the rest of the caller's transaction, so an owner change
 * cannot slip in between the check and the write.
 */
export async function assertGroupOwner(db: Queryable, partner: string, groupId: string, o: { lock?: boolean } = {}): Promise<GroupRecord | undefined> {
  const { rows } = await db.query<GroupRow>(`SELECT * FROM partner_group WHERE id = $1${o.lock ? ' FOR UPDATE' : ''}`, [groupId]);
  const g = rows[0] && toRecord(rows[0]);
  if (g && g.partner !== partner) throw groupNotYours(partner, groupId, g.partner);
  return g;
}

export function groupNotYours(partner: string, groupId: string, owner: string): RostermatchError {
  return new RostermatchError(
    'GROUP_NOT_YOURS',
    `partner "${partner}" may not change Group "${groupId}": it belongs to partner "${owner}"; nothing was changed (fix group.id in ${partner}'s pipeline, or move the Group: rostermatch group move)`,
    { field: 'group.id' },
    { partnerDetail: `the Group "${groupId}" your pipeline names belongs to another partner; nothing was changed, and the IIS has been told` },
  );
}

/**
 * Creates the Group for its partner, or checks that the partner owns it (throwing
 * GROUP_NOT_YOURS), inside the caller's transaction and with the Group's row locked: the re-check at the moment of change, so two
 * partners racing to one new id cannot both write it. A new Group is created (and last updated)
 * at `at`, the stamp the caller's transaction took first (changeStamp); without one, it is
 * stamped here.
 */
export async function ensureGroup(tx: Queryable, g: { id: string; partner: string; name: string; mode: GroupMode; runId?: string; at?: string }): Promise<void> {
  const at = g.at ?? (await changeStamp(tx));
  await tx.query(
    `INSERT INTO partner_group (id, partner, name, mode, created_by_run, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING`,
    [g.id, g.partner, g.name, g.mode, g.runId ?? null, at],
  );
  const group = await assertGroupOwner(tx, g.partner, g.id, { lock: true });
  if (group && !group.actual) throw groupDefined(g.id);
}

/** A characteristic Group names who is in it by definition: no file, message or client adds or removes anyone. */
export function groupDefined(groupId: string): RostermatchError {
  return new RostermatchError('GROUP_DEFINED', `Group "${groupId}" is defined by characteristics (an operator's definition, evaluated at export); its members are not changed one by one, and nothing was changed`, {
    field: 'group.id',
  });
}

/** The owner's pipeline renamed its Group or changed its mode: applied with the run's change. */
export async function setGroupSpec(tx: Queryable, id: string, name: string, mode: GroupMode): Promise<void> {
  await tx.query('UPDATE partner_group SET name = $2, mode = $3 WHERE id = $1 AND (name <> $2 OR mode <> $3)', [id, name, mode]);
}

/**
 * Gives a Group to another partner (a partner renamed, or a Group that was set up under the
 * wrong one): an operator's explicit act, audited with who, why, and the owner before.
 */
export async function moveGroup(tx: Queryable, m: { groupId: string; to: string; by: string; reason: string; at: string }): Promise<{ from: string; to: string }> {
  const { rows } = await tx.query<{ partner: string }>('SELECT partner FROM partner_group WHERE id = $1 FOR UPDATE', [m.groupId]);
  const from = rows[0]?.partner;
  if (from === undefined) throw new RostermatchError('GROUP_NOT_FOUND', `no Group with id "${m.groupId}"`);
  if (from === m.to) throw new RostermatchError('USAGE', `Group "${m.groupId}" already belongs to partner "${m.to}"`);
  await tx.query('UPDATE partner_group SET partner = $2 WHERE id = $1', [m.groupId, m.to]);
  await audit(tx, { at: m.at, actor: m.by, action: 'group.move', entity: `group/${m.groupId}`, detail: { from, to: m.to, reason: m.reason } });
  return { from, to: m.to };
}

/** What a run would do to a Group, worked out under the Group's row lock and not yet written. */
export interface MembershipPlan {
  groupId: string;
  /** The Group's version the plan was made against: a later change makes it stale. */
  version: number;
  before: number;
  added: string[];
  removed: string[];
  /**
   * Patients one run asked both to join and to leave (an `add` row and a `remove` row matched to
   * the same patient): neither is done — which row the partner meant last cannot be told — and
   * the result file says so on both rows. (Absent from plans made by hand: none.)
   */
  conflicts?: string[];
}

/**
 * What a run or a decision asks of a Group: patients to join it and patients to leave it. A bare
 * list is the run's matched patients: they join (replace, append) or leave (remove).
 */
export interface MembershipTarget {
  add: readonly string[];
  remove: readonly string[];
}

/**
 * The difference between the Group's members and what a run decided, inside the caller's
 * transaction:
 * - `replace` makes the members exactly `add` (a replace file carries no removals: whoever is not
 *   in it leaves);
 * - `append` adds `add` and takes out `remove` (rows of an action column);
 * - `remove` takes out `remove` and adds nobody.
 * A patient in both lists is left as is (`conflicts`). Only real differences are planned: adding
 * a member or removing someone who is not one is nothing, so the same file twice plans nothing.
 *
 * Ids are taken for who they stand for now (the identity feed, src/store/identity-feed.ts): a
 * patient merged away since the rows were matched is its survivor, a removed one is nobody. The
 * caller's changeStamp holds the identity lock, so no merge is half seen.
 */
export async function planMembership(tx: Queryable, groupId: string, target: readonly string[] | MembershipTarget, mode: GroupMode): Promise<MembershipPlan> {
  const t = await currentIds(tx, isTarget(target) ? target : mode === 'remove' ? { add: [], remove: target } : { add: target, remove: [] });
  if (mode === 'replace' && t.remove.length > 0) {
    // The pipeline refuses an action column with replace; a run that got here anyway changes nothing.
    throw new Error(`planMembership: a replace change of Group ${groupId} with removals named`);
  }
  // Serialise concurrent changes to the same Group (two runs of one partner) on its row lock.
  const { rows } = await tx.query<{ version: number }>('SELECT version FROM partner_group WHERE id = $1 FOR UPDATE', [groupId]);
  const current = new Set(
    (await tx.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1', [groupId])).rows.map((r) => r.patient_id),
  );
  const leaving = new Set(t.remove);
  const conflicts = new Set(t.add.filter((id) => leaving.has(id)));
  const joining = new Set(mode === 'remove' ? [] : t.add.filter((id) => !conflicts.has(id)));
  const added = [...joining].filter((id) => !current.has(id)).sort();
  const removed =
    mode === 'replace' ? [...current].filter((id) => !joining.has(id)).sort() : [...leaving].filter((id) => current.has(id) && !conflicts.has(id)).sort();
  return { groupId, version: rows[0]?.version ?? 0, before: current.size, added, removed, conflicts: [...conflicts].sort() };
}

function isTarget(t: readonly string[] | MembershipTarget): t is MembershipTarget {
  return !Array.isArray(t);
}

/** The target with merged-away ids as their survivors and removed ones left out. */
async function currentIds(tx: Queryable, t: MembershipTarget): Promise<MembershipTarget> {
  const now = await resolvePatients(tx, [...t.add, ...t.remove]);
  if (now.size === 0) return t;
  const map = (ids: readonly string[]) => [...new Set(ids.flatMap((id) => (now.has(id) ? (now.get(id) === null ? [] : [now.get(id)!]) : [id])))];
  return { add: map(t.add), remove: map(t.remove) };
}

/** What a membership event records besides who joined or left: the identity feed's merges and reasons. */
export interface EventDetail {
  /** 'merged': the patient left because it was merged into `other`. @defaultValue 'added' or 'removed', as planned */
  action?: 'merged';
  /** The other patient of a merge or an unmerge. */
  other?: string;
  reason?: string;
}

/**
 * Writes a plan made in the same transaction. Only real differences are written, so re-applying
 * the same file records no events and keeps the version. `by.at` is when the members joined or
 * left and the Group's lastUpdated: what Bulk `_since` compares, so it must be the stamp the
 * writing transaction took with changeStamp (src/store/clock.ts) as its first statement, never a
 * time read before the transaction.
 */
export async function applyPlan(
  tx: Queryable,
  plan: MembershipPlan,
  /**
   * `refs`: the HL7 v2 message (MSH-10) each patient joined or left by, for the history;
   * `detail`: an identity feed's merge, other patient and reason, by patient; `reason`: the reason
   * of every event without one of its own.
   */
  by: { runId?: string; actor: string; at: string; refs?: ReadonlyMap<string, string>; detail?: ReadonlyMap<string, EventDetail>; reason?: string },
): Promise<MembershipChange> {
  const { groupId, added, removed } = plan;
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
  const after = plan.before + added.length - removed.length;
  const events = [...added.map((id) => [id, 'added'] as const), ...removed.map((id) => [id, 'removed'] as const)];
  if (events.length > 0) {
    const detail = (id: string) => by.detail?.get(id);
    await tx.query(
      `INSERT INTO group_event (group_id, patient_id, action, at, run_id, actor, ref, other_patient_id, reason)
       SELECT $1, p, a, $4::timestamptz, $5, $6, r, o, w FROM unnest($2::text[], $3::text[], $7::text[], $8::text[], $9::text[]) AS e(p, a, r, o, w)`,
      [
        groupId,
        events.map((e) => e[0]),
        events.map(([id, a]) => (a === 'removed' ? (detail(id)?.action ?? a) : a)),
        by.at,
        by.runId ?? null,
        by.actor,
        events.map((e) => by.refs?.get(e[0]) ?? null),
        events.map((e) => detail(e[0])?.other ?? null),
        events.map((e) => detail(e[0])?.reason ?? by.reason ?? null),
      ],
    );
    await tx.query('UPDATE partner_group SET version = version + 1, updated_at = $2, member_count = $3, event_count = event_count + $4 WHERE id = $1', [
      groupId,
      by.at,
      after,
      events.length,
    ]);
  }
  return { before: plan.before, after, added: added.length, removed: removed.length };
}

/** Brings the Group's membership to what a run or a decision asked: planMembership, then applyPlan. */
export async function applyMembership(
  tx: Queryable,
  groupId: string,
  patientIds: readonly string[] | MembershipTarget,
  mode: GroupMode,
  by: { runId?: string; actor: string; at: string },
): Promise<MembershipChange> {
  return applyPlan(tx, await planMembership(tx, groupId, patientIds, mode), by);
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
  /** The attribution period a partner gave when it added the member itself ($member-add). */
  period?: { start?: string; end?: string };
}

export async function groupMembers(db: Queryable, id: string): Promise<Member[]> {
  const { rows } = await db.query<{ patient_id: string; added_at: Date; added_by_run: string | null; period_start: Date | null; period_end: Date | null }>(
    'SELECT patient_id, added_at, added_by_run, period_start, period_end FROM group_member WHERE group_id = $1 ORDER BY patient_id',
    [id],
  );
  return rows.map((r) => {
    const m: Member = { patientId: r.patient_id, addedAt: r.added_at.toISOString(), runId: r.added_by_run };
    if (r.period_start || r.period_end) m.period = { ...(r.period_start ? { start: r.period_start.toISOString() } : {}), ...(r.period_end ? { end: r.period_end.toISOString() } : {}) };
    return m;
  });
}

/** Which of these patients are members of the Group now. */
export async function groupMembersAmong(db: Queryable, id: string, patientIds: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1 AND patient_id = ANY($2::text[])', [id, patientIds]);
  return rows.map((r) => r.patient_id);
}

export interface GroupEvent {
  patientId: string;
  /** merged: the patient left because the identity feed merged it into `otherPatientId`. */
  action: 'added' | 'removed' | 'merged';
  at: string;
  runId: string | null;
  actor: string;
  /** The HL7 v2 message (MSH-10) the change came by, for a member who joined by a VXU or QBP. */
  ref?: string;
  /** The other patient of a merge or an unmerge (the survivor for `merged`, the subsumed for the survivor's joining). */
  otherPatientId?: string;
  /** Why, when the identity feed (or a caller that says) gave a reason: 'merged', 'unmerged', a removal's. */
  reason?: string;
}

export interface GroupEventRow {
  patient_id: string;
  action: 'added' | 'removed' | 'merged';
  at: Date;
  run_id: string | null;
  actor: string;
  ref: string | null;
  other_patient_id?: string | null;
  reason?: string | null;
}

/** The group_event columns toGroupEvent reads. */
export const GROUP_EVENT_COLUMNS = 'patient_id, action, at, run_id, actor, ref, other_patient_id, reason';

export function toGroupEvent(r: GroupEventRow): GroupEvent {
  const e: GroupEvent = { patientId: r.patient_id, action: r.action, at: r.at.toISOString(), runId: r.run_id, actor: r.actor };
  if (r.ref !== null) e.ref = r.ref;
  if (r.other_patient_id != null) e.otherPatientId = r.other_patient_id;
  if (r.reason != null) e.reason = r.reason;
  return e;
}

export async function groupHistory(db: Queryable, id: string, limit = 1000): Promise<GroupEvent[]> {
  const { rows } = await db.query<GroupEventRow>(`SELECT ${GROUP_EVENT_COLUMNS} FROM group_event WHERE group_id = $1 ORDER BY id DESC LIMIT $2`, [id, limit]);
  return rows.map(toGroupEvent);
}

/** An instant as FHIR (and toISOString) writes it: UTC, milliseconds, Z. */
const ISO = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Each member[] entry of the Group's resource as one line of JSON, by patient id: the members now
 * (their period: the attribution period a partner gave, else since they joined), then, marked
 * inactive, everyone whose last event took them out of the Group and who is not back (their
 * period: their last stay). Built by the store and streamed, so a Group of half a million people
 * never sits in memory.
 */
function memberEntriesSql(groupId: string): string {
  const id = sqlLiteral(groupId);
  return `SELECT j FROM (
      SELECT m.patient_id AS pid,
             json_build_object('entity', json_build_object('reference', 'Patient/' || m.patient_id),
                               'period', json_strip_nulls(json_build_object('start', ${ISO('coalesce(m.period_start, m.added_at)')}, 'end', ${ISO('m.period_end')})))::text AS j
        FROM group_member m WHERE m.group_id = ${id}
      UNION ALL
      SELECT f.patient_id,
             json_build_object('entity', json_build_object('reference', 'Patient/' || f.patient_id),
                               'period', json_strip_nulls(json_build_object('start', ${ISO('f.joined')}, 'end', ${ISO('f.left_at')})),
                               'inactive', true)::text
        FROM (SELECT e.patient_id, max(e.at) FILTER (WHERE e.action = 'added') AS joined, max(e.at) FILTER (WHERE e.action <> 'added') AS left_at
                FROM group_event e
               WHERE e.group_id = ${id}
                 AND NOT EXISTS (SELECT 1 FROM group_member m WHERE m.group_id = ${id} AND m.patient_id = e.patient_id)
               GROUP BY e.patient_id) f
       WHERE f.left_at IS NOT NULL
    ) u ORDER BY pid COLLATE "C"`;
}

/**
 * Writes the Group as a FHIR R4 resource (one line of JSON, no newline) to `out`, its member
 * entries streamed from the store, with backpressure; `out` is left open. People who left stay
 * listed with `inactive: true` and the end of their period, so a partner's system sees that they
 * left and when; `quantity` counts the members now.
 */
export async function writeFhirGroup(db: Db, g: GroupRecord, out: Writable): Promise<void> {
  const head = JSON.stringify(fhirGroupHead(g));
  const write = (text: string) => (out.write(text) ? Promise.resolve() : once(out, 'drain').then(() => undefined));
  await write(head.slice(0, -1));
  let entries = 0;
  if (g.actual) {
    let partial = '';
    // COPY's rows arrive as newline-ended lines in chunks of any size: each whole line is an entry.
    const joiner = new Writable({
      write(chunk: Buffer | string, _enc, done) {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop()!;
        if (lines.length === 0) return done();
        const text = lines.map((l) => (entries++ === 0 ? `,"member":[${l}` : `,${l}`)).join('');
        if (out.write(text)) done();
        else out.once('drain', () => done());
      },
    });
    await db.copyOut(memberEntriesSql(g.id), joiner);
  }
  // FHIR JSON has no empty arrays: a Group nobody is or was in has no member element at all.
  await write(entries > 0 ? ']}' : '}');
}

/** The Group as one object (the CLI, tests): what writeFhirGroup writes, parsed. */
export async function fhirGroupOf(db: Db, g: GroupRecord): Promise<Record<string, unknown>> {
  const parts: string[] = [];
  await writeFhirGroup(db, g, new Writable({ write: (c: Buffer | string, _e, done) => (parts.push(c.toString()), done()) }));
  return JSON.parse(parts.join('')) as Record<string, unknown>;
}

/** The system of a Group's identifier, whose value is its owner partner (searchable: `identifier=`). */
export const GROUP_IDENTIFIER_SYSTEM = 'urn:rostermatch:partner';

/** Everything of the Group's resource but its member entries. */
function fhirGroupHead(g: GroupRecord): Record<string, unknown> {
  return {
    resourceType: 'Group',
    id: g.id,
    meta: { versionId: String(g.version), lastUpdated: g.updatedAt },
    identifier: [{ system: GROUP_IDENTIFIER_SYSTEM, value: g.partner }],
    // The owner: the partner this Group belongs to.
    managingEntity: { identifier: { system: GROUP_IDENTIFIER_SYSTEM, value: g.partner }, display: g.partner },
    active: true,
    type: 'person',
    actual: g.actual,
    name: g.name,
    ...(g.characteristics ? { characteristic: fhirCharacteristics(g.characteristics) } : { quantity: g.size }),
  };
}

const UCUM_YEARS = { unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' };

/**
 * The definition as R4 Group.characteristic, every one of which holds for a member (FHIR's rule).
 * A list of ZIP codes is one characteristic whose codings are the alternatives; the age range
 * is LOINC 30525-0 (Age) with a Range in years.
 */
function fhirCharacteristics(c: GroupCharacteristics): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [
    {
      code: { coding: [{ system: 'http://loinc.org', code: '45401-7', display: 'Postal code' }], text: 'Postal code of the home address' },
      valueCodeableConcept: { coding: c.zips.map((z) => ({ system: 'urn:rostermatch:usps-zip5', code: z })), text: `one of ${c.zips.join(', ')}` },
      exclude: false,
    },
  ];
  if (c.underAge !== undefined || c.minAge !== undefined) {
    out.push({
      code: { coding: [{ system: 'http://loinc.org', code: '30525-0', display: 'Age' }], text: 'Age when the Group is exported' },
      valueRange: {
        ...(c.minAge !== undefined ? { low: { value: c.minAge, ...UCUM_YEARS } } : {}),
        // "Under N": the range's high is inclusive in FHIR, and ages are whole years here.
        ...(c.underAge !== undefined ? { high: { value: c.underAge - 1, ...UCUM_YEARS } } : {}),
      },
      exclude: false,
    });
  }
  if (c.vaccines && c.vaccines.length > 0) {
    out.push({
      code: { text: 'Immunized with one of these vaccines' },
      valueCodeableConcept: { coding: c.vaccines.map((v) => ({ system: 'http://hl7.org/fhir/sid/cvx', code: v })), text: `CVX ${c.vaccines.join(', ')}` },
      exclude: false,
    });
  }
  return out;
}
