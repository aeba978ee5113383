/**
 * The end of every run, inline or queued: record the outcome (rows, Group change, run state in
 * one transaction), then publish it (result file, export, summary). Both halves are safe to
 * repeat: recording a run that is already completed changes nothing, and publishing writes the
 * same result file from the same rows.
 */
import path from 'node:path';
import { fileExists } from '../intake/drop.ts';
import { exportGroup, type ExportResult } from '../export/index.ts';
import type { Outcome } from '../model/index.ts';
import { hasRowActions, PipelineSchema, type Pipeline } from '../pipeline/index.ts';
import { outputNames, writeJsonAtomic, writeResultFile } from '../results/index.ts';
import { repliesName, writeRepliesFile } from '../results/replies.ts';
import {
  applyPlan,
  changeStamp,
  completeRun,
  ensureGroup,
  holdRun,
  lockRun,
  matchedByAction,
  planMembership,
  queueForReview,
  RECORDED_STATES,
  runOutcomeCounts,
  saveRunSummary,
  setGroupSpec,
  streamRunResults,
  type Db,
  type MembershipChange,
  type RunHold,
  type RunRecord,
} from '../store/index.ts';
import { groupChanges, type RowChangeCounts } from './changes.ts';
import { holdFor, holdSummary, writeHoldNote } from './safety.ts';

export interface RunSummary {
  runId: string;
  partner: string;
  file: string;
  sha256: string;
  receivedAt: string;
  finishedAt: string;
  rows: number;
  counts: Record<Outcome, number>;
  group: {
    id: string;
    mode: Pipeline['group']['mode'];
    sizeBefore: number;
    sizeAfter: number;
    added: number;
    removed: number;
    /** The change was held for the IIS's confirmation: what it would do, and whether it was applied. */
    held?: Record<string, unknown>;
    /**
     * A file that can remove (a remove file, or one with an action column; issue 12): its rows by
     * the action they asked for, and by what each did to the Group (the result file's group_change).
     */
    actions?: RowChangeCounts['actions'];
    rows?: RowChangeCounts['rows'];
  };
  thresholds: Pipeline['thresholds'];
  /** An HL7 v2 file's replies (issue 13): one ACK or RSP per message, as a batch file. */
  replies?: string;
  /** null while the Group change is held (the Group did not change, so there is nothing new to export). */
  export: { dir: string; transactionTime: string } | null;
  timingsMs: Record<string, number>;
}

export interface RecordInput {
  runId: string;
  pipeline: Pipeline;
  resultPath: string;
  actor: string;
  /**
   * A fixed time for the run's change and finish (tests). @defaultValue the store's clock, read
   * under the change lock as the recording transaction's first statement (changeStamp)
   */
  at?: string;
}

export interface Recorded {
  change: MembershipChange;
  counts: Record<Outcome, number>;
  /** Set when the change was held for an operator (the Group unchanged), or was held and then decided. */
  hold?: RunHold;
}

/**
 * Records the outcome of a run whose rows are all in run_row: the Group change, the review
 * queue and the run's completion, in one transaction — or, when the change would remove too much
 * of the Group (a partial replace file, a remove file, rows marked remove), the run as held with
 * the numbers and the Group untouched. Matched rows marked `remove` (all of a remove file's) take
 * their patients out; the others add theirs (or, for replace, make up the Group). The Group's owner
 * is checked under its row lock first. Returns undefined when the run was already recorded (a
 * repeated finalise), so nothing happens twice.
 *
 * Everything is stamped with the store's clock, read under the change lock before any row is
 * locked (src/store/clock.ts): an export that starts while this transaction is open waits for it,
 * so each member who joins is in that export or in the next `_since` one. The stamp is returned
 * (`at`): it is the run's finish.
 */
export async function recordRun(db: Db, r: RecordInput): Promise<(Recorded & { at: string }) | undefined> {
  return db.transaction(async (tx) => {
    const at = await changeStamp(tx, r.at === undefined ? undefined : () => new Date(r.at!));
    const state = await lockRun(tx, r.runId);
    if (state && RECORDED_STATES.includes(state)) return undefined;
    const g = r.pipeline.group;
    await ensureGroup(tx, { id: g.id, partner: r.pipeline.partner, name: g.name, mode: g.mode, runId: r.runId, at });
    const asked = await matchedByAction(tx, r.runId);
    const plan = await planMembership(tx, g.id, asked, g.mode);
    const counts = await runOutcomeCounts(tx, r.runId);
    const hold = holdFor(plan, g.maxRemoveShare, at);
    if (hold) {
      // Review items wait too: a decision on one of these rows must not bring the change in piecemeal.
      await holdRun(tx, r.runId, { at, groupId: g.id, counts, resultPath: r.resultPath, hold });
      return { at, change: { before: plan.before, after: plan.before, added: 0, removed: 0 }, counts, hold };
    }
    await setGroupSpec(tx, g.id, g.name, g.mode);
    const change = await applyPlan(tx, plan, { runId: r.runId, actor: r.actor, at, refs: asked.refs });
    await queueForReview(tx, r.runId, r.pipeline.partner);
    await completeRun(tx, r.runId, { finishedAt: at, groupId: g.id, counts, resultPath: r.resultPath });
    return { at, change, counts };
  });
}

export interface Published {
  resultPath: string;
  summaryPath: string;
  /**
   * The Group's export after the run; undefined for an HL7 v2 run: a message a few seconds after
   * the last would otherwise write the whole Group out again, and a V2 partner's systems take
   * their data from the RSP and FHIR `Group/$export`.
   */
  export: ExportResult | undefined;
  summary: RunSummary;
}

/** A held run's outputs: the result file and summary, no export (its Group did not change). */
export type HeldPublished = Omit<Published, 'export'> & { export: undefined; hold: RunHold };

/**
 * Writes the result file from the recorded rows, exports the Group, writes the summary. For a
 * held run: the result file and the summary (saying the change waits), the partner's note, and no
 * export. The export's transactionTime is the store's (exportInstant), unless `now` fixes it (tests).
 */
export async function publishRun(
  db: Db,
  p: {
    run: Pick<RunRecord, 'id' | 'fileName' | 'fileSha256' | 'receivedAt'>;
    pipeline: Pipeline;
    recorded: Recorded;
    finishedAt: string;
    outDir: string;
    exportsDir: string;
    timingsMs: Record<string, number>;
    /** A fixed transactionTime for the export (tests). @defaultValue the store's clock (exportInstant) */
    now?: Date;
  },
): Promise<Published | HeldPublished> {
  const names = outputNames(p.run.fileName);
  const t0 = performance.now();
  const { change, counts, hold } = p.recorded;
  const changes = hasRowActions(p.pipeline) ? await groupChanges(db, p.run.id, p.pipeline.group.id, hold) : undefined;
  const resultPath = await writeResultFile(p.outDir, names.results, streamRunResults(db, p.run.id), changes ? { groupChange: changes.of } : {});
  const repliesPath = p.pipeline.format === 'hl7v2' ? await writeRepliesFile(db, p.outDir, p.run.fileName, { runId: p.run.id, pipeline: p.pipeline, at: new Date(p.finishedAt) }) : undefined;
  const t1 = performance.now();
  const waiting = hold !== undefined && hold.decision === undefined;
  const exported = waiting || !exportsAfterRun(p.pipeline) ? undefined : await exportGroup(db, { groupId: p.pipeline.group.id, outRoot: p.exportsDir, ...(p.now ? { now: p.now } : {}), runId: p.run.id, partner: p.pipeline.partner });
  const t2 = performance.now();
  const summary: RunSummary = {
    runId: p.run.id,
    partner: p.pipeline.partner,
    file: p.run.fileName,
    sha256: p.run.fileSha256,
    receivedAt: p.run.receivedAt,
    finishedAt: p.finishedAt,
    rows: Object.values(counts).reduce((a, b) => a + b, 0),
    counts,
    group: {
      id: p.pipeline.group.id,
      mode: p.pipeline.group.mode,
      sizeBefore: change.before,
      sizeAfter: change.after,
      added: change.added,
      removed: change.removed,
      ...(hold ? { held: holdSummary(hold) } : {}),
      ...(changes ? changes.counts : {}),
    },
    thresholds: p.pipeline.thresholds,
    ...(repliesPath ? { replies: repliesPath } : {}),
    export: exported ? { dir: exported.dir, transactionTime: exported.manifest.transactionTime } : null,
    timingsMs: withTotal({ ...p.timingsMs, write: Math.round(t1 - t0), export: Math.round(t2 - t1) }),
  };
  const summaryPath = path.join(p.outDir, names.summary);
  await writeJsonAtomic(summaryPath, summary);
  await saveRunSummary(db, p.run.id, summary);
  if (hold) await writeHoldNote(p.outDir, p.run.fileName, p.run.id, hold, p.pipeline.group.mode);
  return hold && !exported ? { resultPath, summaryPath, export: undefined, summary, hold } : { resultPath, summaryPath, export: exported, summary };
}

/** Whether a completed run writes its Group's export (see Published.export). */
function exportsAfterRun(pipeline: Pipeline): boolean {
  return pipeline.format !== 'hl7v2';
}

function withTotal(stages: Record<string, number>): Record<string, number> {
  return { ...stages, total: Object.values(stages).reduce((a, b) => a + b, 0) };
}

/**
 * A completed run's outputs, written again from the record where they are missing: the process
 * died between recording and publishing, or a partner's duplicate drop asks for them.
 */
export async function restoreOutputs(db: Db, run: RunRecord, exportsDir: string): Promise<void> {
  if (!run.resultPath) return;
  const dir = path.dirname(run.resultPath);
  if (run.state === 'held' && run.hold && run.counts && !run.summary) {
    // Held, and the process died before it published: publish now, so the partner hears of it.
    const before = run.hold.before;
    await publishRun(db, {
      run,
      pipeline: PipelineSchema.parse(run.pipeline),
      recorded: { change: { before, after: before, added: 0, removed: 0 }, counts: run.counts as Record<Outcome, number>, hold: run.hold },
      finishedAt: run.hold.heldAt,
      outDir: dir,
      exportsDir,
      timingsMs: {},
    });
    return;
  }
  const pipeline = PipelineSchema.parse(run.pipeline);
  if (!(await fileExists(run.resultPath))) {
    const changes = hasRowActions(pipeline) && run.groupId ? await groupChanges(db, run.id, run.groupId, run.hold) : undefined;
    await writeResultFile(dir, path.basename(run.resultPath), streamRunResults(db, run.id), changes ? { groupChange: changes.of } : {});
  }
  if (pipeline.format === 'hl7v2' && run.finishedAt && !(await fileExists(path.join(dir, repliesName(run.fileName))))) {
    await writeRepliesFile(db, dir, run.fileName, { runId: run.id, pipeline, at: new Date(run.finishedAt) });
  }
  let exported: { dir: string; transactionTime: string } | undefined;
  // Only a completed run changed its Group; a held or discarded one has nothing to export.
  if (run.groupId && run.state === 'completed' && exportsAfterRun(pipeline)) {
    const { rows } = await db.query<{ dir: string; transaction_time: Date }>('SELECT dir, transaction_time FROM export WHERE run_id = $1 ORDER BY transaction_time LIMIT 1', [run.id]);
    if (rows[0]) exported = { dir: rows[0].dir, transactionTime: rows[0].transaction_time.toISOString() };
    else {
      const e = await exportGroup(db, { groupId: run.groupId, outRoot: exportsDir, runId: run.id });
      exported = { dir: e.dir, transactionTime: e.manifest.transactionTime };
    }
  }
  const summaryPath = path.join(dir, outputNames(run.fileName).summary);
  if (await fileExists(summaryPath)) return;
  // The process died after recording the run and before publishing its summary: rebuild it from the record.
  const summary = run.summary ?? (exported && run.groupId ? await rebuildSummary(db, run, run.groupId, exported) : undefined);
  if (!summary) return;
  await writeJsonAtomic(summaryPath, summary);
  if (!run.summary) await saveRunSummary(db, run.id, summary);
}

/** A completed run's summary from its record: counts from run_row, the Group change from its history. */
async function rebuildSummary(db: Db, run: RunRecord, groupId: string, exported: { dir: string; transactionTime: string }): Promise<RunSummary> {
  const pipeline = run.pipeline as Pipeline;
  const counts = await runOutcomeCounts(db, run.id);
  const { rows } = await db.query<{ added: number; removed: number; after: number }>(
    `WITH mine AS (SELECT action FROM group_event WHERE group_id = $1 AND run_id = $2),
          cut AS (SELECT coalesce((SELECT max(id) FROM group_event WHERE group_id = $1 AND run_id = $2),
                                  (SELECT max(id) FROM group_event WHERE group_id = $1 AND at <= $3::timestamptz), 0) AS id),
          last AS (SELECT DISTINCT ON (e.patient_id) e.action FROM group_event e, cut WHERE e.group_id = $1 AND e.id <= cut.id ORDER BY e.patient_id, e.id DESC)
     SELECT (SELECT count(*) FROM mine WHERE action = 'added')::int AS added,
            (SELECT count(*) FROM mine WHERE action = 'removed')::int AS removed,
            (SELECT count(*) FROM last WHERE action = 'added')::int AS after`,
    [groupId, run.id, run.finishedAt],
  );
  const { added, removed, after } = rows[0]!;
  let byRow: RowChangeCounts | undefined;
  if (hasRowActions(pipeline)) {
    const changes = await groupChanges(db, run.id, groupId, run.hold);
    for await (const page of streamRunResults(db, run.id)) for (const r of page) changes.of(r);
    byRow = changes.counts;
  }
  const finishedAt = run.finishedAt ?? new Date().toISOString();
  const total = Date.parse(finishedAt) - Date.parse(run.receivedAt);
  return {
    runId: run.id,
    partner: run.partner,
    file: run.fileName,
    sha256: run.fileSha256,
    receivedAt: run.receivedAt,
    finishedAt,
    rows: Object.values(counts).reduce((a, b) => a + b, 0),
    counts,
    group: { id: groupId, mode: pipeline.group.mode, sizeBefore: after - added + removed, sizeAfter: after, added, removed, ...(byRow ?? {}) },
    thresholds: pipeline.thresholds,
    export: exported,
    timingsMs: { queuedToRecorded: total, total },
  };
}
