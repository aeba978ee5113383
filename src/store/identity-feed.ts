/**
 * The Patient Identifier Cross-reference Manager side of IHE PIXm ITI-104: what an identity feed
 * request does to the patient index, to every Group and to their history, each in one
 * transaction — so a run recording its Group change, a review decision or an export never sees
 * half a merge.
 *
 * - Add or revise (conditional update on the source's identifier): the Patient is written by the
 *   loader's own steps (patientWrite, mergePatients): R4 checks, normalisation, blocking keys, a
 *   new index version so copies in memory follow it.
 * - Merge (a `replaced-by` link): the subsumed Patient keeps its blocking keys, so a partner's row
 *   that matches its old demographics finds the survivor (the candidate sources name the survivor
 *   for it, src/store/patients.ts `survivor`), but is never a candidate of its own; in every Group
 *   that held it, it leaves (a `merged` event naming the survivor) and the survivor joins unless
 *   it is already there (an `added` event, reason `merged`, naming the subsumed); open review
 *   items name the survivor instead. Rows of runs stay as recorded (history).
 * - Unmerge (the link gone): the subsumed Patient is matchable again, and the memberships its
 *   last merge moved come back where nothing has happened since (see unmergeMemberships).
 * - Remove (conditional delete): the Patient leaves every Group (a `removed` event with the
 *   reason), keeps its row for the history, and is never matched or exported again.
 *
 * Ids: a Patient the feed creates gets a random UUID. The id is what partners see in Group
 * member references and exports; one derived from system|value would be stable across stores but
 * could be reversed by trying identifiers (an MRN is short), and would be taken again by a
 * patient re-added after removal. Two requests for one identifier cannot both create: every feed
 * transaction holds the identity lock exclusively (src/store/clock.ts).
 */
import { randomUUID } from 'node:crypto';
import { RostermatchError } from '../errors/index.ts';
import { invalid, readFeedIdentifier, readFeedPatient, readFeedResource, storedFeedResource, type FeedIdentifier, type FeedRead, type SurvivorRef } from '../identity/index.ts';
import { blockingKeys } from '../match/index.ts';
import { patientWrite } from '../patient-index/index.ts';
import { indexIdentifierValue } from '../normalise/index.ts';
import { audit } from './audit.ts';
import { changeStamp } from './clock.ts';
import type { Db, Queryable } from './db.ts';
import { applyPlan, type EventDetail } from './groups.ts';
import { markPatientRemoved, mergePatients, patientsByIds, patientsHoldingIdentifier, replaceBlockKeys, touchMergedInto, type HeldPatient, type PatientWrite } from './patients.ts';
import { replaceReviewCandidate } from './review.ts';

export type { FeedIdentifier } from '../identity/index.ts';

export type FeedOutcome =
  | { kind: 'created'; patientId: string }
  | { kind: 'updated'; patientId: string }
  /** `groups`: the Groups whose membership moved (none when the same merge is sent again). */
  | { kind: 'merged'; patientId: string; survivorId: string; groups: string[] }
  | { kind: 'unmerged'; patientId: string; survivorId: string; groups: string[] }
  | { kind: 'removed'; patientId: string; groups: string[] }
  /** A conditional delete that matched nobody. */
  | { kind: 'absent' };

/** Why a removed patient left its Groups, unless the request says. */
export const FEED_REMOVE_REASON = 'removed by the identity feed';

/**
 * Conditional update (FHIR `PUT Patient?identifier=system|value`): creates the Patient when no
 * Patient (not removed) holds the identifier, else updates the one that does — merging it into
 * the survivor its `replaced-by` link names, or unmerging it when a link it had is gone. A new
 * Patient that arrives already merged is 'created' (there is nothing of it to move). Refused with
 * FEED_MULTIPLE_MATCHES (several Patients hold the identifier), FEED_INVALID (not a usable
 * Patient, not carrying the identifier, an id other than the one found, a link to itself) or
 * FEED_SURVIVOR_UNKNOWN (the link names no live Patient); a refusal changes nothing.
 */
export async function feedPatient(db: Db, r: { identifier: FeedIdentifier; resource: Record<string, unknown>; actor: string; at?: string }): Promise<FeedOutcome> {
  const read = readFeedPatient(r.resource, r.identifier);
  return db.transaction(async (tx) => {
    const at = await changeStamp(tx, fixed(r.at), { identity: true });
    const current = await onlyHolder(tx, r.identifier, read.normalisedValue);
    if (current && read.id !== undefined && read.id !== current.id) {
      throw invalid('Patient.id is not the id of the Patient that holds the identifier (leave it out, or send that id)', 'Patient.id');
    }
    return revise(tx, { identifier: r.identifier }, current, current?.id ?? randomUUID(), read, r.actor, at);
  });
}

/**
 * The same as feedPatient for a Patient named by the index's own id (`Patient.id`), as a line of
 * an `index load` delta names it: created with that id when the index has no such Patient,
 * revised, merged or unmerged when it has. FEED_INVALID also when the id is that of a removed
 * Patient. `now` replaces the store's clock (tests).
 */
export async function feedPatientById(db: Db, r: { resource: Record<string, unknown>; actor: string; now?: () => Date }): Promise<FeedOutcome> {
  const read = readFeedResource(r.resource);
  if (read.id === undefined) throw invalid('Patient.id is missing', 'Patient.id');
  const id = read.id;
  return db.transaction(async (tx) => {
    const at = await changeStamp(tx, r.now, { identity: true });
    const found = await patientById(tx, id);
    if (found?.removed) throw invalid('the Patient with this id was removed from the index', 'Patient.id');
    return revise(tx, { id }, found?.held, id, read, r.actor, at);
  });
}

/** Who a change names in its audit event: the source's identifier (the feed), or our id (a load). */
type FeedKey = { identifier: FeedIdentifier } | { id: string };

/** Writes the Patient `id` and moves what a merge or an unmerge moves; `current` is what was stored (none: a create). */
async function revise(tx: Queryable, key: FeedKey, current: HeldPatient | undefined, id: string, read: Omit<FeedRead, 'normalisedValue'>, actor: string, at: string): Promise<FeedOutcome> {
  const survivor = read.survivor && (await survivorOf(tx, read.survivor, id));
  let write: PatientWrite;
  try {
    write = patientWrite(storedFeedResource(read.resource, id, survivor), at);
  } catch (e) {
    throw new RostermatchError('FEED_INVALID', (e as Error).message, { field: 'Patient' }, { cause: e });
  }
  await mergePatients(tx, [write]);
  const before = current?.replacedBy ?? null;
  const moved = new Set<string>();
  const reviewItems: number[] = [];
  // Merged into another survivor before: what that merge moved comes back first.
  if (before !== null && before !== survivor) for (const g of await unmergeMemberships(tx, id, before, actor, at)) moved.add(g);
  if (survivor !== undefined && survivor !== before) {
    for (const g of await mergeMemberships(tx, id, survivor, actor, at)) moved.add(g);
    reviewItems.push(...(await replaceReviewCandidate(tx, id, survivor)));
  }
  // Those merged into this patient stand for whom it stands for now — and have their keys again
  // if a removal further down their chain took them, since undone by this unmerge.
  if (survivor !== (before ?? undefined)) {
    const views = await patientsByIds(tx, await touchMergedInto(tx, id));
    await replaceBlockKeys(tx, [...views.values()].map((p) => ({ patient: p, blockKeys: blockingKeys(p.person, p.identifiers) })));
  }
  const groups = [...moved].sort();
  const outcome: FeedOutcome = !current
    ? { kind: 'created', patientId: id }
    : survivor !== undefined
      ? { kind: 'merged', patientId: id, survivorId: survivor, groups }
      : before !== null
        ? { kind: 'unmerged', patientId: id, survivorId: before, groups }
        : { kind: 'updated', patientId: id };
  await audit(tx, {
    at,
    actor: actor,
    action: `feed.${{ created: 'create', updated: 'update', merged: 'merge', unmerged: 'unmerge', removed: 'remove', absent: 'remove.absent' }[outcome.kind]}`,
    entity: `Patient/${id}`,
    detail: auditDetail(key, outcome, { ...(survivor !== undefined && !current ? { survivorId: survivor } : {}), ...(reviewItems.length > 0 ? { reviewItems } : {}) }),
  });
  return outcome;
}

/**
 * Conditional delete (the Remove Patient option): the Patient holding the identifier leaves every
 * Group (a `removed` event with `reason`), open review items no longer offer it, and it is never
 * matched or exported again; its row stays, since Group histories name it. 'absent' when no
 * Patient (not removed already) holds the identifier; FEED_MULTIPLE_MATCHES when several do.
 */
export async function removeFeedPatient(db: Db, r: { identifier: FeedIdentifier; actor: string; reason?: string; at?: string }): Promise<FeedOutcome> {
  const normalised = readFeedIdentifier(r.identifier);
  return db.transaction(async (tx) => {
    const at = await changeStamp(tx, fixed(r.at), { identity: true });
    const held = await onlyHolder(tx, r.identifier, normalised);
    return remove(tx, { identifier: r.identifier }, held, r, at);
  });
}

/**
 * The same as removeFeedPatient for a Patient named by the index's own id (an `index load` delta's
 * removal mark): 'absent' when the index has no Patient with that id, or has removed it already.
 */
export async function removeFeedPatientById(db: Db, r: { id: string; actor: string; reason?: string; now?: () => Date }): Promise<FeedOutcome> {
  return db.transaction(async (tx) => {
    const at = await changeStamp(tx, r.now, { identity: true });
    const found = await patientById(tx, r.id);
    return remove(tx, { id: r.id }, found?.removed ? undefined : found?.held, r, at);
  });
}

/** The patient `id` as stored (merged away or not), and whether it was removed; none when no such row. */
async function patientById(tx: Queryable, id: string): Promise<{ held: HeldPatient; removed: boolean } | undefined> {
  const { rows } = await tx.query<{ id: string; replaced_by: string | null; removed: boolean }>('SELECT id, replaced_by, removed_at IS NOT NULL AS removed FROM patient WHERE id = $1', [id]);
  const p = rows[0];
  return p && { held: { id: p.id, replacedBy: p.replaced_by }, removed: p.removed };
}

/** Removes `held` from every Group and from matching; audits 'absent' when there is nobody to remove. */
async function remove(tx: Queryable, key: FeedKey, held: HeldPatient | undefined, r: { actor: string; reason?: string }, at: string): Promise<FeedOutcome> {
  if (!held) {
    const outcome: FeedOutcome = { kind: 'absent' };
    const entity = 'identifier' in key ? `Patient?identifier=${key.identifier.system}|${key.identifier.value}` : `Patient/${key.id}`;
    await audit(tx, { at, actor: r.actor, action: 'feed.remove.absent', entity, detail: auditDetail(key, outcome) });
    return outcome;
  }
  const reason = r.reason?.trim() || FEED_REMOVE_REASON;
  const groups: string[] = [];
  for (const g of await groupsHolding(tx, held.id)) {
    await applyPlan(tx, { groupId: g.id, version: g.version, before: g.size, added: [], removed: [held.id], conflicts: [] }, { actor: r.actor, at, reason });
    groups.push(g.id);
  }
  await markPatientRemoved(tx, held.id, at);
  await touchMergedInto(tx, held.id, { removed: true });
  const reviewItems = await replaceReviewCandidate(tx, held.id, null);
  const outcome: FeedOutcome = { kind: 'removed', patientId: held.id, groups };
  await audit(tx, { at, actor: r.actor, action: 'feed.remove', entity: `Patient/${held.id}`, detail: auditDetail(key, outcome, { reason, ...(reviewItems.length > 0 ? { reviewItems } : {}) }) });
  return outcome;
}

const fixed = (at: string | undefined) => (at === undefined ? undefined : () => new Date(at));

/** What the audit event keeps: the identifier, the outcome, the survivor and the Groups touched (ids only). */
function auditDetail(key: FeedKey, o: FeedOutcome, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...('identifier' in key ? { identifier: { system: key.identifier.system, value: key.identifier.value } } : { id: key.id }),
    outcome: o.kind,
    ...('patientId' in o ? { patientId: o.patientId } : {}),
    ...('survivorId' in o ? { survivorId: o.survivorId } : {}),
    ...('groups' in o ? { groups: o.groups } : {}),
    ...more,
  };
}

/** The one Patient (not removed) holding the identifier, or none; several are a 412. */
async function onlyHolder(tx: Queryable, identifier: FeedIdentifier, normalised: string): Promise<HeldPatient | undefined> {
  const held = await patientsHoldingIdentifier(tx, identifier.system, normalised);
  if (held.length > 1) {
    throw new RostermatchError('FEED_MULTIPLE_MATCHES', `${held.length} Patients hold the identifier of system ${identifier.system}: a conditional request must name one; nothing was changed`, { field: 'identifier' });
  }
  return held[0];
}

/** The live Patient (neither merged away nor removed) a replaced-by link names; never `self`. */
async function survivorOf(tx: Queryable, ref: SurvivorRef, self: string): Promise<string> {
  let ids: string[];
  if ('id' in ref) {
    const { rows } = await tx.query<{ id: string }>('SELECT id FROM patient WHERE id = $1 AND replaced_by IS NULL AND removed_at IS NULL', [ref.id]);
    ids = rows.map((x) => x.id);
    if (ref.id === self) throw invalid('the replaced-by link names the Patient itself', 'Patient.link.other');
  } else {
    const value = indexIdentifierValue(ref.identifier.system, ref.identifier.value);
    ids = (await patientsHoldingIdentifier(tx, ref.identifier.system, value)).filter((p) => p.replacedBy === null).map((p) => p.id);
    if (ids.includes(self)) throw invalid('the replaced-by link names the Patient itself', 'Patient.link.other.identifier');
  }
  if (ids.length !== 1) {
    throw new RostermatchError(
      'FEED_SURVIVOR_UNKNOWN',
      ids.length === 0
        ? 'the replaced-by link names no live Patient (none, or one merged away or removed); nothing was changed'
        : `the replaced-by link's identifier is held by ${ids.length} live Patients; nothing was changed`,
      { field: 'Patient.link.other' },
    );
  }
  return ids[0]!;
}

interface HoldingGroup {
  id: string;
  version: number;
  size: number;
  /** Whether `also` (the survivor of a merge) is a member too. */
  holdsAlso: boolean;
}

/**
 * The Groups that hold `patientId`, locked for the change, in id order. Found through the
 * patient's history (group_event_patient: every member joined by an event), each checked on
 * group_member's key, so this stays a probe however large the Groups are.
 */
async function groupsHolding(tx: Queryable, patientId: string, also?: string): Promise<HoldingGroup[]> {
  const { rows } = await tx.query<{ id: string; version: number; member_count: number; holds_also: boolean }>(
    `SELECT g.id, g.version, g.member_count,
            EXISTS (SELECT 1 FROM group_member s WHERE s.group_id = g.id AND s.patient_id = $2) AS holds_also
       FROM partner_group g
      WHERE g.id IN (SELECT e.group_id FROM group_event e WHERE e.patient_id = $1)
        AND EXISTS (SELECT 1 FROM group_member m WHERE m.group_id = g.id AND m.patient_id = $1)
      ORDER BY g.id FOR UPDATE OF g`,
    [patientId, also ?? null],
  );
  return rows.map((r) => ({ id: r.id, version: r.version, size: r.member_count, holdsAlso: r.holds_also }));
}

/**
 * Every Group holding `from` holds `to` instead: `from` leaves (a `merged` event naming `to`), `to`
 * joins unless it is there already (an `added` event, reason `merged`, naming `from`), keeping the
 * attribution period a partner gave `from`. Returns the Groups changed.
 */
async function mergeMemberships(tx: Queryable, from: string, to: string, actor: string, at: string): Promise<string[]> {
  const changed: string[] = [];
  for (const g of await groupsHolding(tx, from, to)) {
    const { rows: period } = await tx.query<{ period_start: Date | null; period_end: Date | null }>(
      'SELECT period_start, period_end FROM group_member WHERE group_id = $1 AND patient_id = $2',
      [g.id, from],
    );
    const detail = new Map<string, EventDetail>([
      [from, { action: 'merged', other: to }],
      [to, { other: from, reason: 'merged' }],
    ]);
    await applyPlan(tx, { groupId: g.id, version: g.version, before: g.size, added: g.holdsAlso ? [] : [to], removed: [from], conflicts: [] }, { actor, at, detail });
    const p = period[0];
    if (!g.holdsAlso && p && (p.period_start || p.period_end)) {
      await tx.query('UPDATE group_member SET period_start = $3, period_end = $4 WHERE group_id = $1 AND patient_id = $2', [g.id, to, p.period_start, p.period_end]);
    }
    changed.push(g.id);
  }
  return changed;
}

/**
 * Undoes, from the history, what the last merge of `subsumed` into `survivor` did to each Group,
 * where nothing has changed since for these two. In a Group, that merge is its latest `merged`
 * event of `subsumed` naming `survivor`, together with the survivor's joining by it (the `added`
 * event of `survivor`, reason `merged`, naming `subsumed`, stamped at the same instant) when the
 * Group did not already hold the survivor. "Nothing has changed since" means: the Group has no
 * later event (by event id, the order of the history) for either patient, other than that
 * joining — no run, decision, $member-add/-remove, other merge or removal has touched either of
 * them in that Group since — and the Group still holds the survivor and not the subsumed. Then
 * the subsumed rejoins (`added`, reason `unmerged`, naming the survivor) and the survivor leaves
 * (`removed`, reason `unmerged`, naming the subsumed) only if it joined by that merge. Groups where
 * something did change are left as they are: a later decision is newer than the merge. Returns
 * the Groups changed.
 */
async function unmergeMemberships(tx: Queryable, subsumed: string, survivor: string, actor: string, at: string): Promise<string[]> {
  const { rows } = await tx.query<{ group_id: string; joined: boolean }>(
    `SELECT e.group_id, a.id IS NOT NULL AS joined
       FROM (SELECT DISTINCT ON (group_id) group_id, id, at FROM group_event
              WHERE patient_id = $1 AND action = 'merged' AND other_patient_id = $2 ORDER BY group_id, id DESC) e
       LEFT JOIN LATERAL (SELECT id FROM group_event a
                           WHERE a.group_id = e.group_id AND a.patient_id = $2 AND a.action = 'added' AND a.reason = 'merged'
                             AND a.other_patient_id = $1 AND a.at = e.at ORDER BY a.id LIMIT 1) a ON true
      WHERE NOT EXISTS (SELECT 1 FROM group_event x WHERE x.group_id = e.group_id AND x.patient_id IN ($1, $2)
                           AND x.id > e.id AND x.id IS DISTINCT FROM a.id)
      ORDER BY e.group_id`,
    [subsumed, survivor],
  );
  if (rows.length === 0) return [];
  const joined = new Map(rows.map((r) => [r.group_id, r.joined]));
  const { rows: groups } = await tx.query<{ id: string; version: number; member_count: number; holds_subsumed: boolean; holds_survivor: boolean }>(
    `SELECT g.id, g.version, g.member_count,
            EXISTS (SELECT 1 FROM group_member m WHERE m.group_id = g.id AND m.patient_id = $2) AS holds_subsumed,
            EXISTS (SELECT 1 FROM group_member m WHERE m.group_id = g.id AND m.patient_id = $3) AS holds_survivor
       FROM partner_group g WHERE g.id = ANY ($1::text[]) ORDER BY g.id FOR UPDATE OF g`,
    [[...joined.keys()], subsumed, survivor],
  );
  const changed: string[] = [];
  for (const g of groups) {
    if (g.holds_subsumed || !g.holds_survivor) continue;
    const detail = new Map<string, EventDetail>([
      [subsumed, { other: survivor, reason: 'unmerged' }],
      [survivor, { other: subsumed, reason: 'unmerged' }],
    ]);
    await applyPlan(tx, { groupId: g.id, version: g.version, before: g.member_count, added: [subsumed], removed: joined.get(g.id) ? [survivor] : [], conflicts: [] }, { actor, at, detail });
    changed.push(g.id);
  }
  return changed;
}
