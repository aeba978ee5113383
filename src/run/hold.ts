/**
 * An operator's answer to a held run: confirm applies exactly the change that was shown; discard
 * closes the run and leaves the Group as it is. Both are audited with the operator's name. If the
 * Group changed after the run was held (another run, a review decision), confirm does not apply
 * numbers nobody saw: it works them out again, holds the run again with them, and says so.
 */
import path from 'node:path';
import { RostermatchError } from '../errors/index.ts';
import type { Outcome } from '../model/index.ts';
import { hasRowActions, PipelineSchema, type Pipeline } from '../pipeline/index.ts';
import { outputNames, writeJsonAtomic, writeResultFile } from '../results/index.ts';
import {
  applyPlan,
  audit,
  changeStamp,
  completeRun,
  discardRun,
  ensureGroup,
  findRun,
  lockRun,
  matchedByAction,
  planMembership,
  queueForReview,
  saveRunHold,
  saveRunSummary,
  setGroupSpec,
  streamRunResults,
  type Db,
  type MembershipChange,
  type Queryable,
  type RunHold,
  type RunRecord,
} from '../store/index.ts';
import { groupChanges, type RowChangeCounts } from './changes.ts';
import { publishRun, type Published } from './publish.ts';
import { describeHold, holdNumbers, holdSummary, writeHoldNote } from './safety.ts';

export type ConfirmOutcome =
  | { kind: 'applied'; run: RunRecord; change: MembershipChange; published: Published }
  | { kind: 'held-again'; run: RunRecord; hold: RunHold; previous: RunHold };

/** The run, locked for the transaction, if it is held; otherwise RUN_NOT_HELD naming its state. */
async function lockHeld(tx: Queryable, idOrPrefix: string): Promise<RunRecord & { hold: RunHold; resultPath: string }> {
  const found = await findRun(tx, idOrPrefix);
  if (!found) throw new RostermatchError('RUN_NOT_HELD', `no run "${idOrPrefix}" (give the run id, or the first 8 characters status prints)`);
  const state = await lockRun(tx, found.id);
  if (state !== 'held' || !found.hold || !found.resultPath) {
    const decided = found.hold?.decision ? ` (${found.hold.decision.action} by ${found.hold.decision.by} at ${found.hold.decision.at})` : '';
    throw new RostermatchError('RUN_NOT_HELD', `run ${found.id} is ${state}${decided}, not held for a confirmation`);
  }
  return found as RunRecord & { hold: RunHold; resultPath: string };
}

const groupOf = (run: RunRecord): Pipeline['group'] & { partner: string } => ({ ...PipelineSchema.parse(run.pipeline).group, partner: run.partner });

/**
 * The change, the decision and its audit are stamped with the store's clock, read under the
 * change lock before any row is locked (src/store/clock.ts), so an export running meanwhile holds
 * the members who join, or leaves them to the next `_since` export; `now` fixes the time (tests),
 * also the export's transactionTime.
 */
export async function confirmHeldRun(db: Db, c: { runId: string; by: string; exportsDir: string; now?: () => Date }): Promise<ConfirmOutcome> {
  const done = await db.transaction(async (tx) => {
    const at = await changeStamp(tx, c.now);
    const run = await lockHeld(tx, c.runId);
    const g = groupOf(run);
    // The owner is checked again: the Group may have been moved to another partner meanwhile.
    await ensureGroup(tx, { id: g.id, partner: run.partner, name: g.name, mode: g.mode });
    const asked = await matchedByAction(tx, run.id);
    const plan = await planMembership(tx, g.id, asked, g.mode);
    const shown = run.hold;
    if (plan.version !== shown.groupVersion || plan.added.length !== shown.wouldAdd || plan.removed.length !== shown.wouldRemove || plan.before !== shown.before) {
      const hold = holdNumbers(plan, shown.maxRemoveShare, at);
      await saveRunHold(tx, run.id, hold);
      await audit(tx, { at, actor: c.by, action: 'run.hold-again', entity: `run/${run.id}`, detail: { groupId: g.id, before: hold.before, wouldAdd: hold.wouldAdd, wouldRemove: hold.wouldRemove } });
      return { kind: 'held-again' as const, at, run, hold, previous: shown };
    }
    await setGroupSpec(tx, g.id, g.name, g.mode);
    const change = await applyPlan(tx, plan, { runId: run.id, actor: `confirm:${c.by}`, at, refs: asked.refs });
    await queueForReview(tx, run.id, run.partner);
    await completeRun(tx, run.id, { finishedAt: at, groupId: g.id, counts: run.counts as Record<Outcome, number>, resultPath: run.resultPath });
    const hold: RunHold = { ...shown, decision: { action: 'confirmed', by: c.by, at } };
    await saveRunHold(tx, run.id, hold);
    await audit(tx, { at, actor: c.by, action: 'run.confirm', entity: `run/${run.id}`, detail: { groupId: g.id, before: change.before, after: change.after, added: change.added, removed: change.removed } });
    return { kind: 'applied' as const, at, run, change, hold };
  });
  const at = done.at;
  const exportClock = c.now ? { now: c.now() } : {};
  const pipeline = PipelineSchema.parse(done.run.pipeline);
  const outDir = path.dirname(done.run.resultPath);
  const counts = done.run.counts as Record<Outcome, number>;
  if (done.kind === 'held-again') {
    // The partner's summary and note carry the numbers the operator now decides on.
    const before = done.hold.before;
    await publishRun(db, { run: done.run, pipeline, recorded: { change: { before, after: before, added: 0, removed: 0 }, counts, hold: done.hold }, finishedAt: at, outDir, exportsDir: c.exportsDir, timingsMs: {}, ...exportClock });
    return { kind: 'held-again', run: done.run, hold: done.hold, previous: done.previous };
  }
  const published = (await publishRun(db, { run: done.run, pipeline, recorded: { change: done.change, counts, hold: done.hold }, finishedAt: at, outDir, exportsDir: c.exportsDir, timingsMs: {}, ...exportClock })) as Published;
  return { kind: 'applied', run: done.run, change: done.change, published };
}

/** The message for a confirm that found the Group changed: the run is held again with these numbers. */
export function heldAgainMessage(o: Extract<ConfirmOutcome, { kind: 'held-again' }>): RostermatchError {
  return new RostermatchError(
    'RUN_HOLD_STALE',
    `Group ${o.hold.groupId} changed after run ${o.run.id} was held (version ${o.previous.groupVersion} → ${o.hold.groupVersion}); nothing was applied. Held again: ${describeHold(o.hold)}. Confirm again to apply these numbers.`,
  );
}

export async function discardHeldRun(db: Db, d: { runId: string; by: string; reason: string; now?: () => Date }): Promise<RunRecord> {
  if (!d.reason.trim()) throw new RostermatchError('USAGE', 'say why the run is discarded (--reason)');
  // On the store's clock, as a confirmation is (the run's finish and the decision).
  const { run, hold, at } = await db.transaction(async (tx) => {
    const at = await changeStamp(tx, d.now);
    const run = await lockHeld(tx, d.runId);
    const hold: RunHold = { ...run.hold, decision: { action: 'discarded', by: d.by, at, reason: d.reason } };
    await discardRun(tx, run.id, at, hold);
    await audit(tx, {
      at,
      actor: d.by,
      action: 'run.discard',
      entity: `run/${run.id}`,
      detail: { groupId: hold.groupId, before: hold.before, wouldAdd: hold.wouldAdd, wouldRemove: hold.wouldRemove, reason: d.reason },
    });
    return { run, hold, at };
  });
  const outDir = path.dirname(run.resultPath);
  const pipeline = PipelineSchema.parse(run.pipeline);
  // A file that can remove says per row what happened: now that nothing will, `not_applied`.
  let byRow: RowChangeCounts | undefined;
  if (hasRowActions(pipeline)) {
    const changes = await groupChanges(db, run.id, hold.groupId, hold);
    await writeResultFile(outDir, path.basename(run.resultPath), streamRunResults(db, run.id), { groupChange: changes.of });
    byRow = changes.counts;
  }
  if (run.summary) {
    const summary = { ...run.summary, group: { ...(run.summary.group as object), held: holdSummary(hold), ...(byRow ?? {}) } };
    await writeJsonAtomic(path.join(outDir, outputNames(run.fileName).summary), summary);
    await saveRunSummary(db, run.id, summary);
  }
  await writeHoldNote(outDir, run.fileName, run.id, hold, pipeline.group.mode);
  return { ...run, state: 'discarded', finishedAt: at, hold };
}
