/**
 * The three job processors. Each is a plain function of ids that re-reads the run from the
 * database and returns quietly when its work is moot (the run is already past that step), so a
 * retry, a stalled job taken over by another worker, or a flow re-added after Redis lost it never
 * does harm. A run this store does not hold is never moot: see `runOf`. They call the same
 * stage functions as an inline run; only the order and the hand-offs are theirs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError, type FlowProducer, type Queue } from 'bullmq';
import type { Logger } from '../config/index.ts';
import { isRostermatchError, RostermatchError } from '../errors/index.ts';
import { fileExists, moveInto, partnerDirs, serviceDirs, writeNote } from '../intake/drop.ts';
import { sha256File } from '../intake/index.ts';
import { matchChunk } from '../match/index.ts';
import { rosterChunks } from '../parse/index.ts';
import { PipelineSchema, type Pipeline } from '../pipeline/index.ts';
import { outputNames } from '../results/index.ts';
import { candidatesFor, levelsFor, publishRun, recordRun, restoreOutputs, type CandidateMode } from '../run/index.ts';
import {
  assertGroupOwner,
  clearRunInput,
  countRunRows,
  failRun,
  getRun,
  insertRunRows,
  partnerDecisions,
  readRunInput,
  RECORDED_STATES,
  recordChunk,
  setRunState,
  appendRunInput,
  type Db,
  type RunRecord,
} from '../store/index.ts';
import { CHUNK_ROWS, chunkJobId, finaliseJobId, QUEUE, RETRY, type ChunkJob, type FinaliseJob, type IntakeJob } from './names.ts';

export interface JobContext {
  db: Db;
  log: Logger;
  workerId: string;
  dropRoot: string;
  dataDir: string;
  exportsDir: string;
  flows: FlowProducer;
  finaliseQueue: Queue;
  /** Rows per match job. @defaultValue CHUNK_ROWS */
  chunkRows?: number;
  /** Where match jobs find candidates. @defaultValue memory (a long-lived worker amortises the load) */
  candidates?: CandidateMode;
  /** Where the in-memory candidate index is kept between processes, so a fresh worker reads it instead of building it. */
  snapshotDir?: string;
  /** Test fixture: a pause before each chunk, to make a run slow enough to interrupt. */
  chunkDelayMs?: number;
  /** Test fixture: a pause between recording a run and publishing it, the window a crash must survive. */
  finaliseDelayMs?: number;
}

const pipelineOf = (run: RunRecord): Pipeline => PipelineSchema.parse(run.pipeline);

/**
 * The job's run, read from this process's store. The worker has already handed back jobs of
 * other stores, so a run that is not here is an anomaly to fail loudly, never a job to call done.
 */
async function runOf(db: Db, data: { runId: string }): Promise<RunRecord> {
  const run = await getRun(db, data.runId);
  if (!run) throw new RostermatchError('RUN_NOT_FOUND', `run ${data.runId} is not in this store (${db.storeId})`);
  return run;
}

/** Parse and normalise the claimed file, store its rows, and hand the matching to a flow. */
export async function execIntake(ctx: JobContext, data: IntakeJob): Promise<void> {
  const run = await runOf(ctx.db, data);
  if (!(run.state === 'received' || run.state === 'parsing')) return;
  const pipeline = pipelineOf(run);
  try {
    // Another partner's Group is refused before any parsing or matching work.
    await assertGroupOwner(ctx.db, run.partner, pipeline.group.id);
  } catch (e) {
    if (isRostermatchError(e)) await failRunPermanently(ctx, run, e);
    throw e;
  }
  await setRunState(ctx.db, run.id, 'parsing', new Date().toISOString());
  // Streamed into run_input a chunk at a time: a retried intake starts again from a clean slate.
  await clearRunInput(ctx.db, run.id);
  let rowCount = 0;
  try {
    for await (const chunk of rosterChunks(run.sourcePath!, pipeline, run.receivedAt.slice(0, 10), { label: run.fileName, size: 2000 })) {
      await appendRunInput(ctx.db, run.id, chunk);
      rowCount += chunk.length;
    }
  } catch (e) {
    if (isRostermatchError(e)) await failRunPermanently(ctx, run, e);
    throw e;
  }
  const size = ctx.chunkRows ?? CHUNK_ROWS;
  const chunks = Math.ceil(rowCount / size);
  await setRunState(ctx.db, run.id, 'matching', new Date().toISOString(), { rowCount, chunkCount: chunks });
  await addMatchFlow(ctx, run.id, rowCount, chunks, new Set());
  ctx.log.info({ runId: run.id, rows: rowCount, chunks }, 'run parsed; chunks queued');
}

/**
 * One finalise job waiting on one match job per chunk not yet done. A chunk that fails for good
 * does not leave the parent waiting forever: ignoreDependencyOnFailure lets finalise run, and
 * finalise sees the missing rows and fails the run.
 */
export async function addMatchFlow(
  ctx: Pick<JobContext, 'db' | 'flows' | 'finaliseQueue'>,
  runId: string,
  rowCount: number,
  chunks: number,
  done: ReadonlySet<number>,
): Promise<void> {
  if (await ctx.finaliseQueue.getJob(finaliseJobId(runId))) return;
  const size = Math.ceil(rowCount / chunks);
  const store = ctx.db.storeId;
  await ctx.flows.add({
    name: 'finalise',
    queueName: QUEUE.finalise,
    data: { runId, store } satisfies FinaliseJob,
    opts: { jobId: finaliseJobId(runId), ...RETRY },
    children: Array.from({ length: chunks }, (_, chunk) => chunk)
      .filter((chunk) => !done.has(chunk))
      .map((chunk) => ({
        name: 'match',
        queueName: QUEUE.match,
        data: { runId, store, chunk, from: chunk * size, to: Math.min(rowCount, (chunk + 1) * size) } satisfies ChunkJob,
        opts: { jobId: chunkJobId(runId, chunk), ...RETRY, ignoreDependencyOnFailure: true },
      })),
  });
}

type CandidateContext = Pick<JobContext, 'db' | 'candidates' | 'snapshotDir'>;

function chunkCandidates(ctx: CandidateContext): ReturnType<typeof candidatesFor> {
  return candidatesFor(ctx.db, ctx.candidates ?? 'memory', ctx.snapshotDir ? { snapshotDir: ctx.snapshotDir } : {});
}

/**
 * Makes the in-memory candidate index ready before the first chunk asks for it (read from its
 * snapshot or built), so a process that has just started does not make its first run wait. Only a
 * warm-up: a failure is logged, and the first chunk tries again.
 */
export function warmCandidates(ctx: CandidateContext & Pick<JobContext, 'log'>): void {
  if ((ctx.candidates ?? 'memory') !== 'memory') return;
  const t = performance.now();
  chunkCandidates(ctx).then(
    (c) => ctx.log.info({ patients: c.freq.total, ms: Math.round(performance.now() - t) }, 'candidate index ready'),
    (e: unknown) => ctx.log.warn({ err: (e as Error).message }, 'candidate index not ready; the first chunk builds it'),
  );
}

/** Match one chunk. Its results replace any from an earlier attempt, so a retry counts no row twice. */
export async function execChunk(ctx: Pick<JobContext, 'db' | 'workerId' | 'chunkDelayMs' | 'candidates' | 'snapshotDir'>, data: ChunkJob, progress?: (pct: number) => Promise<void>): Promise<void> {
  const run = await runOf(ctx.db, data);
  if (run.state !== 'matching') return;
  if (ctx.chunkDelayMs) await new Promise((r) => setTimeout(r, ctx.chunkDelayMs));
  const pipeline = pipelineOf(run);
  const rows = await readRunInput(ctx.db, run.id, data.from, data.to);
  const decisions = await partnerDecisions(ctx.db, run.partner, rows.map((r) => r.recordId));
  const { source, freq } = await chunkCandidates(ctx);
  const results = await matchChunk(rows, source, { thresholds: pipeline.thresholds, freq, decisions, levels: await levelsFor(ctx.db, pipeline) });
  const done = await ctx.db.transaction(async (tx) => {
    await insertRunRows(tx, run.id, results);
    return recordChunk(tx, run.id, data.chunk, ctx.workerId, new Date().toISOString());
  });
  // After the commit: a Redis hiccup here must not hold, or undo, the chunk's rows.
  if (progress && run.chunkCount) await progress(Math.round((done / run.chunkCount) * 100));
}

/** Record the outcome, publish the results, archive the original. Repeating it changes nothing. */
export async function execFinalise(ctx: JobContext, data: FinaliseJob, progress?: (pct: number) => Promise<void>): Promise<void> {
  const run = await runOf(ctx.db, data);
  if (run.state === 'failed') return;
  const pipeline = pipelineOf(run);
  if (RECORDED_STATES.includes(run.state)) {
    await restoreOutputs(ctx.db, run, ctx.exportsDir);
    await archiveSource(ctx, run);
    await clearRunInput(ctx.db, run.id);
    return;
  }
  if (run.state !== 'matching') return;
  if (await handBackIfChanged(ctx, run)) return;
  const matched = await countRunRows(ctx.db, run.id);
  if (matched < (run.rowCount ?? 0)) {
    const e = new RostermatchError('MATCH_INCOMPLETE', `${run.rowCount! - matched} of ${run.rowCount} rows could not be matched after retries`, { file: run.fileName });
    await failRunPermanently(ctx, run, e);
    throw new UnrecoverableError(e.message);
  }
  const outDir = partnerDirs(ctx.dropRoot, run.partner).outbound;
  // Ownership is checked again inside the Group-change transaction (GROUP_NOT_YOURS fails the run
  // for good); a replace run that would remove too much of its Group ends as held.
  const recorded = await recordRun(ctx.db, {
    runId: run.id,
    pipeline,
    resultPath: path.join(outDir, outputNames(run.fileName).results),
    actor: 'serve',
  }).catch(async (e: unknown) => {
    if (isRostermatchError(e)) await failRunPermanently(ctx, run, e);
    throw e;
  });
  if (ctx.finaliseDelayMs) await new Promise((r) => setTimeout(r, ctx.finaliseDelayMs));
  if (!recorded) {
    const again = (await getRun(ctx.db, run.id))!;
    await restoreOutputs(ctx.db, again, ctx.exportsDir);
  } else {
    const received = Date.parse(run.receivedAt);
    // The run finished when its change was recorded, on the store's clock (recordRun's stamp).
    const finishedAt = recorded.at;
    await publishRun(ctx.db, {
      run,
      pipeline,
      recorded,
      finishedAt,
      outDir,
      exportsDir: ctx.exportsDir,
      timingsMs: { queuedToRecorded: Date.parse(finishedAt) - received },
    });
  }
  await archiveSource(ctx, run);
  await clearRunInput(ctx.db, run.id);
  // Chunks report progress as they finish, racing each other; the end is certain only here.
  await progress?.(100);
  ctx.log.info({ runId: run.id, groupId: pipeline.group.id }, recorded?.hold ? 'run held for a confirmation' : 'run completed');
}

/**
 * A file written in place is taken once it has been still for the quiet period. An upload that
 * paused for longer was taken half-written, and its writer, still holding the file, goes on
 * writing into the spool. Such a run is never applied: it fails (FILE_CHANGED, its rows dropped)
 * and the file goes back to the partner's inbound folder, to be taken again once complete.
 */
async function handBackIfChanged(ctx: JobContext, run: RunRecord): Promise<boolean> {
  if (!run.sourcePath || !(await fileExists(run.sourcePath)) || (await sha256File(run.sourcePath)) === run.fileSha256) return false;
  const e = new RostermatchError('FILE_CHANGED', `${run.fileName} changed after it was taken (run ${run.id}); it is taken again once complete`, { file: run.fileName });
  // The record first: should the process die before the move, the spooled file is no run's and the next start records it anew.
  await ctx.db.transaction(async (tx) => {
    await failRun(tx, run.id, { code: e.code, message: e.message }, new Date().toISOString());
    await tx.query('UPDATE run SET source_path = NULL WHERE id = $1', [run.id]);
    await tx.query('DELETE FROM run_row WHERE run_id = $1', [run.id]);
    await clearRunInput(tx, run.id);
  });
  const back = path.join(partnerDirs(ctx.dropRoot, run.partner).inbound, run.fileName);
  // Never over a newer upload of the same name: then this copy is kept in quarantine.
  if (await fileExists(back)) await moveInto(run.sourcePath, path.join(serviceDirs(ctx.dataDir).quarantine, run.partner));
  else await fs.rename(run.sourcePath, back);
  ctx.log.warn({ runId: run.id, code: e.code }, 'file changed after it was taken; handed back to inbound');
  return true;
}

async function archiveSource(ctx: JobContext, run: RunRecord): Promise<void> {
  if (!run.sourcePath || !(await fileExists(run.sourcePath))) return; // already archived
  const archived = await moveInto(run.sourcePath, path.join(serviceDirs(ctx.dataDir).archive, run.partner));
  await ctx.db.query('UPDATE run SET source_path = $2 WHERE id = $1', [run.id, archived]);
}

/**
 * A permanent failure: the run is marked failed, the original goes to quarantine, and the
 * partner gets `<name>.error.txt` naming the cause. The Group is not touched.
 */
export async function failRunPermanently(ctx: Pick<JobContext, 'db' | 'log' | 'dropRoot' | 'dataDir'>, run: RunRecord, e: RostermatchError): Promise<void> {
  await failRun(ctx.db, run.id, { code: e.code, message: e.message }, new Date().toISOString());
  if (run.sourcePath) {
    try {
      const q = await moveInto(run.sourcePath, path.join(serviceDirs(ctx.dataDir).quarantine, run.partner));
      await ctx.db.query('UPDATE run SET source_path = $2 WHERE id = $1', [run.id, q]);
    } catch {
      // already moved by an earlier attempt
    }
  }
  await writeNote(partnerDirs(ctx.dropRoot, run.partner).outbound, run.fileName, 'error', [
    `${run.fileName}: not processed (run ${run.id}).`,
    e.partnerMessage,
    'Nothing from this file was applied to your Group. Correct the file and drop it again.',
  ]);
  ctx.log.warn({ runId: run.id, code: e.code }, 'run failed');
}
