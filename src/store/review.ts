/** The review queue: possible and ambiguous rows, and the decisions people make about them. */
import type { RowAction, StandingDecision } from '../model/index.ts';
import type { Queryable } from './db.ts';
import { isRostermatchError, type RostermatchError } from '../errors/index.ts';
import { audit } from './audit.ts';
import { changeStamp } from './clock.ts';
import { applyMembership, assertGroupOwner } from './groups.ts';
import { resolvePatients } from './patients.ts';

export type ReviewState = 'open' | 'accepted' | 'rejected' | 'superseded';

export interface ReviewItem {
  id: number;
  runId: string;
  rowIndex: number;
  partner: string;
  recordId: string;
  outcome: 'possible' | 'ambiguous';
  candidates: string[];
  state: ReviewState;
  patientId: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
  groupId: string | null;
  /** The row's line in the partner's file. */
  line: number;
  /** Each candidate's score, best first. */
  scores: { patientId: string; score: number }[];
  /**
   * What the row asks of the Group, when its file can remove (issue 12): accepting a `remove`
   * row's candidate takes that patient out of the Group instead of adding them.
   */
  action?: RowAction;
}

interface ItemRow {
  id: string;
  run_id: string;
  row_index: number;
  partner: string;
  record_id: string;
  outcome: 'possible' | 'ambiguous';
  candidates: string[];
  state: ReviewState;
  patient_id: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  group_id: string | null;
  line: number;
  scores: { patientId: string; score: number }[] | null;
  action: RowAction | null;
}

const toItem = (r: ItemRow): ReviewItem => ({
  id: Number(r.id),
  runId: r.run_id,
  rowIndex: r.row_index,
  partner: r.partner,
  recordId: r.record_id,
  outcome: r.outcome,
  candidates: r.candidates,
  state: r.state,
  patientId: r.patient_id,
  decidedBy: r.decided_by,
  decidedAt: r.decided_at?.toISOString() ?? null,
  groupId: r.group_id,
  line: r.line,
  scores: r.scores ?? [],
  ...(r.action ? { action: r.action } : {}),
});

const SELECT_ITEM = `SELECT i.*, r.group_id, rr.line, rr.detail->>'action' AS action,
    (SELECT jsonb_agg(jsonb_build_object('patientId', c->>'patientId', 'score', (c->>'score')::float8)) FROM jsonb_array_elements(rr.detail->'candidates') c) AS scores
  FROM review_item i JOIN run r ON r.id = i.run_id JOIN run_row rr ON rr.run_id = i.run_id AND rr.row_index = i.row_index`;

/**
 * Queues a run's possible and ambiguous rows, inside the run's recording transaction. An open item
 * for the same partner record from an earlier file is superseded: the newer row is the one to
 * decide. The run's records are a list read once and joined with the open items by record
 * (review_item_open_record): as `record_id IN (SELECT …)`, a store without statistics read the
 * run's rows again for each of the partner's open items.
 */
export async function queueForReview(tx: Queryable, runId: string, partner: string): Promise<void> {
  // A row of an HL7 v2 message the pipeline's policy ignores asks nothing of the Group, so nobody need decide it.
  const joins = `coalesce((detail->'message'->>'joins')::boolean, true)`;
  const waiting = `SELECT record_id FROM run_row WHERE run_id = $1 AND outcome IN ('possible', 'ambiguous') AND ${joins}`;
  await tx.query(
    `UPDATE review_item i SET state = 'superseded' FROM (SELECT DISTINCT record_id FROM unnest(ARRAY(${waiting})) AS w(record_id)) w
      WHERE i.partner = $2 AND i.state = 'open' AND i.record_id = w.record_id AND i.run_id <> $1`,
    [runId, partner],
  );
  await tx.query(
    `INSERT INTO review_item (run_id, row_index, partner, record_id, outcome, candidates)
     SELECT run_id, row_index, $2, record_id, outcome,
            ARRAY(SELECT c->>'patientId' FROM jsonb_array_elements(detail->'candidates') AS c)
       FROM run_row WHERE run_id = $1 AND outcome IN ('possible', 'ambiguous') AND ${joins}
     ON CONFLICT (run_id, row_index) DO NOTHING`,
    [runId, partner],
  );
}

export interface ReviewFilter {
  partner?: string;
  state?: ReviewState;
  outcome?: 'possible' | 'ambiguous';
}

const FILTER = `($1::text IS NULL OR i.partner = $1) AND ($2::text IS NULL OR i.state = $2) AND ($3::text IS NULL OR i.outcome = $3)`;
const filterParams = (f: ReviewFilter) => [f.partner ?? null, f.state ?? null, f.outcome ?? null];

/** Review items, oldest first (the order a queue is worked in). */
export async function listReviewItems(db: Queryable, f: ReviewFilter & { limit?: number; offset?: number }): Promise<ReviewItem[]> {
  const { rows } = await db.query<ItemRow>(`${SELECT_ITEM} WHERE ${FILTER} ORDER BY i.id OFFSET $4 LIMIT $5`, [...filterParams(f), f.offset ?? 0, f.limit ?? 1000]);
  return rows.map(toItem);
}

/** How many review items match the filter (the review page's total). */
export async function countReviewItems(db: Queryable, f: ReviewFilter): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM review_item i WHERE ${FILTER}`, filterParams(f));
  return rows[0]!.n;
}

export type DecisionResult = { ok: true; item: ReviewItem } | { ok: false; reason: string; error?: RostermatchError };

/**
 * Accepts `patientId` for an open item: the item is closed, the patient joins the run's Group —
 * or leaves it, when the row asked for a removal (a remove file's row, or one marked remove) —
 * and the decision is kept for the partner's record, all in one transaction, with who and when.
 * When is the store's clock, read under the change lock as the first statement of `tx` (so call
 * it first in its transaction): what Bulk `_since` compares a member's joining with. `fixedAt` fixes
 * it (tests).
 */
export async function acceptReviewItem(tx: Queryable, id: number, patientId: string, by: string, fixedAt?: string): Promise<DecisionResult> {
  const at = await changeStamp(tx, fixedClock(fixedAt));
  const item = await lockOpenItem(tx, id);
  if (typeof item === 'string') return { ok: false, reason: item };
  if (!item.candidates.includes(patientId)) return { ok: false, reason: `patient ${patientId} is not a candidate of review item ${id} (candidates: ${item.candidates.join(', ')})` };
  // The identity feed may have removed the patient (or merged it away) since the item was queued.
  const gone = (await tx.query<{ removed: boolean }>('SELECT removed_at IS NOT NULL AS removed FROM patient WHERE id = $1 AND (removed_at IS NOT NULL OR replaced_by IS NOT NULL)', [patientId])).rows[0];
  if (gone) return { ok: false, reason: `patient ${patientId} was ${gone.removed ? 'removed from' : 'merged into another patient of'} the index by the identity feed: it cannot be chosen` };
  // A held run's Group change waits for an operator's confirmation: no decision may bring it in piecemeal.
  const run = (await tx.query<{ state: string }>('SELECT state FROM run WHERE id = $1', [item.runId])).rows[0];
  if (run?.state !== 'completed') return { ok: false, reason: `review item ${id} belongs to run ${item.runId}, which is ${run?.state ?? 'gone'}: its Group change is not applied` };
  if (item.groupId) {
    try {
      await assertGroupOwner(tx, item.partner, item.groupId, { lock: true });
    } catch (e) {
      if (isRostermatchError(e)) return { ok: false, reason: e.message, error: e };
      throw e;
    }
    const target = item.action === 'remove' ? { add: [], remove: [patientId] } : { add: [patientId], remove: [] };
    await applyMembership(tx, item.groupId, target, 'append', { runId: item.runId, actor: `review:${by}`, at });
  }
  return { ok: true, item: await decide(tx, item, 'accepted', patientId, by, at) };
}

/** None of the candidates is this person: they are not offered for this record again. When: as for an acceptance. */
export async function rejectReviewItem(tx: Queryable, id: number, by: string, fixedAt?: string): Promise<DecisionResult> {
  const at = await changeStamp(tx, fixedClock(fixedAt));
  const item = await lockOpenItem(tx, id);
  if (typeof item === 'string') return { ok: false, reason: item };
  return { ok: true, item: await decide(tx, item, 'rejected', null, by, at) };
}

const fixedClock = (at: string | undefined) => (at === undefined ? undefined : () => new Date(at));

/** The item, locked for the transaction, or why it cannot be decided. */
async function lockOpenItem(tx: Queryable, id: number): Promise<ReviewItem | string> {
  const { rows } = await tx.query<ItemRow>(`${SELECT_ITEM} WHERE i.id = $1 FOR UPDATE OF i`, [id]);
  const item = rows[0] && toItem(rows[0]);
  if (!item) return `no review item ${id}`;
  if (item.state !== 'open') return `review item ${id} is already ${item.state}`;
  return item;
}

/** Closes the item, keeps the decision for the partner's record, and audits who made it. */
async function decide(tx: Queryable, item: ReviewItem, decision: 'accepted' | 'rejected', patientId: string | null, by: string, at: string): Promise<ReviewItem> {
  await tx.query('UPDATE review_item SET state = $2, patient_id = $3, decided_by = $4, decided_at = $5 WHERE id = $1', [item.id, decision, patientId, by, at]);
  await saveDecision(tx, item, decision, patientId, decision === 'rejected' ? item.candidates : [], by, at);
  await audit(tx, {
    at,
    actor: by,
    action: decision === 'accepted' ? 'review.accept' : 'review.reject',
    entity: `review_item/${item.id}`,
    detail: patientId ? { patientId, runId: item.runId, ...(item.action === 'remove' ? { action: 'remove' } : {}) } : { runId: item.runId },
  });
  return { ...item, state: decision, patientId, decidedBy: by, decidedAt: at };
}

async function saveDecision(tx: Queryable, item: ReviewItem, decision: 'accepted' | 'rejected', patientId: string | null, rejected: string[], by: string, at: string) {
  await tx.query(
    `INSERT INTO match_decision (partner, record_id, decision, patient_id, rejected_ids, decided_by, decided_at, review_item)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (partner, record_id) DO UPDATE SET decision = excluded.decision, patient_id = excluded.patient_id,
       rejected_ids = CASE WHEN excluded.decision = 'rejected'
                           THEN (SELECT array_agg(DISTINCT x) FROM unnest(match_decision.rejected_ids || excluded.rejected_ids) AS x)
                           ELSE excluded.rejected_ids END,
       decided_by = excluded.decided_by, decided_at = excluded.decided_at, review_item = excluded.review_item`,
    [item.partner, item.recordId, decision, patientId, rejected, by, at, item.id],
  );
}

/**
 * The partner's standing decisions on these records, by record id, for the matcher to honour —
 * about the people the patients decided on stand for now: a patient accepted, or rejected, and
 * merged away since is its survivor (whose other records the matcher lists under it too); one
 * removed since is nobody.
 */
export async function partnerDecisions(db: Queryable, partner: string, recordIds: readonly string[]): Promise<Map<string, StandingDecision>> {
  const { rows } = await db.query<{ record_id: string; decision: 'accepted' | 'rejected'; patient_id: string | null; rejected_ids: string[]; decided_by: string; decided_at: Date }>(
    'SELECT record_id, decision, patient_id, rejected_ids, decided_by, decided_at FROM match_decision WHERE partner = $1 AND record_id = ANY($2::text[])',
    [partner, recordIds],
  );
  const now = await resolvePatients(db, rows.flatMap((r) => [...(r.patient_id === null ? [] : [r.patient_id]), ...r.rejected_ids]));
  const standsFor = (id: string) => (now.has(id) ? now.get(id)! : id);
  return new Map(
    rows.map((r) => {
      const rejected = [...new Set(r.rejected_ids.flatMap((id) => [id, standsFor(id) ?? id]))];
      return [r.record_id, { decision: r.decision, patientId: r.patient_id === null ? null : standsFor(r.patient_id), rejectedIds: rejected, decidedBy: r.decided_by, decidedAt: r.decided_at.toISOString() }];
    }),
  );
}

/**
 * The identity feed merged `from` into `to` (null: removed `from`): open items name the survivor
 * in its place, once (or no longer name `from`). Decided items and the rows behind them stay as
 * recorded. Returns the ids of the items changed.
 */
export async function replaceReviewCandidate(tx: Queryable, from: string, to: string | null): Promise<number[]> {
  const { rows } = await tx.query<{ id: string }>(
    `UPDATE review_item SET candidates = ARRAY(
        SELECT c FROM (SELECT CASE WHEN u.c = $1 THEN $2 ELSE u.c END AS c, min(u.o) AS o FROM unnest(candidates) WITH ORDINALITY AS u(c, o) GROUP BY 1) x
         WHERE c IS NOT NULL ORDER BY o)
      WHERE state = 'open' AND $1 = ANY (candidates) RETURNING id`,
    [from, to],
  );
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}
