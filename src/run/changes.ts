/**
 * Removal by file (issue 12): what each row of a file that can remove did to the Group, for the
 * result file's `group_change` column and the summary's counts. Worked out from the run's record
 * (its rows and the Group history it wrote), so a result file written again later says the same.
 */
import type { RowResult } from '../model/index.ts';
import { matchedByAction, type Queryable, type RunHold } from '../store/index.ts';

/**
 * - `added`, `removed`: this row's patient joined or left the Group by this run;
 * - `already_member` (an add row), `not_member` (a remove row): nothing to change;
 * - `conflict`: one row of the file asked to add this patient and another to remove them, so
 *   neither was done;
 * - `review`: a possible or ambiguous row, waiting for a person (accepting it applies the row's action);
 * - `held`: the run's Group change waits for the IIS's confirmation; `not_applied`: it was discarded;
 * - '' (no_match, invalid): the row changes nothing.
 */
export type RowGroupChange = 'added' | 'removed' | 'already_member' | 'not_member' | 'conflict' | 'review' | 'held' | 'not_applied';
export const ROW_GROUP_CHANGES: readonly RowGroupChange[] = ['added', 'removed', 'already_member', 'not_member', 'conflict', 'review', 'held', 'not_applied'];

/** The summary's view of a file that can remove: its rows by action and by what each did. */
export interface RowChangeCounts {
  /** Rows by the action they asked for (an invalid action counts in neither). */
  actions: { add: number; remove: number };
  rows: Record<RowGroupChange, number>;
}

export interface GroupChanges {
  of(r: RowResult): RowGroupChange | '';
  /** Every row passed to `of` so far, counted. */
  counts: RowChangeCounts;
}

/**
 * The group change of each row of `runId`. The run's own membership events (its recording, or an
 * operator's confirmation of it — not later review decisions) say who joined or left by it.
 */
export async function groupChanges(db: Queryable, runId: string, groupId: string, hold: RunHold | null | undefined): Promise<GroupChanges> {
  const { rows } = await db.query<{ patient_id: string; action: 'added' | 'removed' }>(
    `SELECT patient_id, action FROM group_event WHERE group_id = $1 AND run_id = $2 AND actor NOT LIKE 'review:%'`,
    [groupId, runId],
  );
  const events = new Map(rows.map((r) => [r.patient_id, r.action]));
  const asked = await matchedByAction(db, runId);
  const removing = new Set(asked.remove);
  const conflicts = new Set(asked.add.filter((id) => removing.has(id)));
  const waiting: RowGroupChange | undefined = hold && !hold.decision ? 'held' : hold?.decision?.action === 'discarded' ? 'not_applied' : undefined;
  const counts: RowChangeCounts = { actions: { add: 0, remove: 0 }, rows: Object.fromEntries(ROW_GROUP_CHANGES.map((c) => [c, 0])) as Record<RowGroupChange, number> };
  const change = (r: RowResult): RowGroupChange | '' => {
    if (r.outcome === 'possible' || r.outcome === 'ambiguous') return 'review';
    if (r.outcome !== 'matched' || r.patientId === undefined) return '';
    if (conflicts.has(r.patientId)) return 'conflict';
    if (waiting) return waiting;
    const done = events.get(r.patientId);
    if (r.action === 'remove') return done === 'removed' ? 'removed' : 'not_member';
    return done === 'added' ? 'added' : 'already_member';
  };
  return {
    counts,
    of(r) {
      if (r.action) counts.actions[r.action]++;
      const c = change(r);
      if (c !== '') counts.rows[c]++;
      return c;
    },
  };
}
