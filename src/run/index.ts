/**
 * One run, inline: intake → parse+normalise → match → record → publish, in one process with no
 * queue. The queued workers call the same steps (publish.ts) in jobs. A file-level fault fails the
 * run before anything is recorded against the Group, so a malformed file changes nothing.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { sha256File } from '../intake/index.ts';
import { matchChunk, type Levels } from '../match/index.ts';
import { candidatesFor, type CandidateMode, type Candidates } from './candidates.ts';
import { levelsFor } from './train.ts';
import type { NormalisedRow, RowResult } from '../model/index.ts';
import { rosterChunks } from '../parse/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { outputNames } from '../results/index.ts';
import { assertGroupOwner, createRun, failRun, insertRunRows, partnerDecisions, type Db, type Queryable, type RunHold, type RunRecord } from '../store/index.ts';
import { publishRun, recordRun, restoreOutputs, type HeldPublished, type Published, type Recorded } from './publish.ts';

export { publishRun, recordRun, restoreOutputs, type HeldPublished, type Published, type RunSummary } from './publish.ts';
export { confirmHeldRun, discardHeldRun, heldAgainMessage, type ConfirmOutcome } from './hold.ts';
export { describeHold, HOLD_MIN_REMOVALS } from './safety.ts';
export { groupChanges, ROW_GROUP_CHANGES, type RowChangeCounts, type RowGroupChange } from './changes.ts';
export { pipelineGroupWarnings } from './collisions.ts';
export { candidatesFor, type CandidateMode } from './candidates.ts';
export { levelsFor, trainModel } from './train.ts';

export interface RunInput {
  file: string;
  pipeline: Pipeline;
  /** Where the result and summary files go (the partner's outbound folder by default). */
  outDir: string;
  exportsDir: string;
  /** Process again even when these bytes were already processed for this partner. */
  force?: boolean;
  /** Where candidates come from. @defaultValue auto */
  candidates?: CandidateMode;
  /** Where the in-memory candidate index is kept between processes (see candidates.ts). */
  snapshotDir?: string;
  /** Who or what started the run, for the Group's history. @defaultValue "cli" */
  actor?: string;
  now?: () => Date;
  /** Called after each chunk of rows is matched and stored. */
  onProgress?: (p: RunProgress) => void;
}

/** How far an inline run is: rows through so far, and the file's bytes read for them. */
export interface RunProgress {
  rows: number;
  bytesRead: number;
  bytesTotal: number;
}

export type RunOutput =
  | ({ kind: 'completed'; run: RunRecord } & Published)
  | ({ kind: 'held'; run: RunRecord; hold: RunHold } & HeldPublished)
  | { kind: 'duplicate'; run: RunRecord };

/** Rows matched per candidate look-up: one query per chunk keeps round trips few and memory flat. */
export const MATCH_CHUNK_ROWS = 500;

/** Matches rows chunk by chunk against the store's index (for callers that hold the rows). */
export async function matchAll(db: Queryable, rows: readonly NormalisedRow[], pipeline: Pipeline, candidates: Candidates | CandidateMode = 'auto'): Promise<RowResult[]> {
  const c = typeof candidates === 'string' ? await candidatesFor(db, candidates, { rows: rows.length }) : candidates;
  const levels = await levelsFor(db, pipeline);
  const results: RowResult[] = [];
  for (let i = 0; i < rows.length; i += MATCH_CHUNK_ROWS) results.push(...(await matchRows(db, rows.slice(i, i + MATCH_CHUNK_ROWS), pipeline, c, levels)));
  return results;
}

/** One chunk, with the partner's standing review decisions on its records. */
async function matchRows(db: Queryable, rows: readonly NormalisedRow[], pipeline: Pipeline, c: Candidates, levels: Levels): Promise<RowResult[]> {
  const decisions = await partnerDecisions(db, pipeline.partner, rows.map((r) => r.recordId));
  return matchChunk(rows, c.source, { thresholds: pipeline.thresholds, freq: c.freq, decisions, levels });
}

/** A file's bytes per row, roughly, to size a file before reading it (for the `auto` source). */
const BYTES_PER_ROW = 100;

export async function runFile(db: Db, log: Logger, input: RunInput): Promise<RunOutput> {
  const now = input.now ?? (() => new Date());
  const { pipeline, file } = input;
  const t0 = performance.now();
  const sha256 = await sha256File(file);
  const runId = randomUUID();
  const receivedAt = now().toISOString();
  const fileName = path.basename(file);
  const created = await createRun(db, {
    id: runId,
    partner: pipeline.partner,
    fileName,
    fileSha256: sha256,
    receivedAt,
    state: 'running',
    pipeline,
    sourcePath: path.resolve(file),
    forced: !!input.force,
  });
  if (!created.created) {
    log.info({ runId: created.existing.id, partner: pipeline.partner, sha256 }, 'duplicate file; already processed');
    if (created.existing.state === 'completed') await restoreOutputs(db, created.existing, input.exportsDir);
    return { kind: 'duplicate', run: created.existing };
  }
  log.info({ runId, partner: pipeline.partner, sha256 }, 'run started');
  let finishedAt: string;
  let recorded: Recorded | undefined;
  let rowCount = 0;
  const timingsMs: Record<string, number> = {};
  // One chunk's rows are written while the next is matched: the database's work and Node's overlap.
  let storing: Promise<void> = Promise.resolve();
  try {
    // Another partner's Group is refused before a row is read (and again when recording).
    await assertGroupOwner(db, pipeline.partner, pipeline.group.id);
    // Rows stream through in chunks, each stored by the time the one after next is read, so memory
    // stays flat for any file size; the Group changes only once every row is through.
    const t1 = performance.now();
    const bytesTotal = (await fs.stat(file)).size;
    const estimatedRows = bytesTotal / BYTES_PER_ROW;
    const candidates = await candidatesFor(db, input.candidates ?? 'auto', { rows: estimatedRows, ...(input.snapshotDir ? { snapshotDir: input.snapshotDir } : {}) });
    const levels = await levelsFor(db, pipeline);
    const tc = performance.now();
    let matchMs = 0;
    let bytesRead = 0;
    const onBytes = (b: number) => (bytesRead = Math.min(b, bytesTotal));
    for await (const chunk of rosterChunks(file, pipeline, receivedAt.slice(0, 10), { size: MATCH_CHUNK_ROWS, onBytes })) {
      const tm = performance.now();
      const results = await matchRows(db, chunk, pipeline, candidates, levels);
      matchMs += performance.now() - tm;
      await storing;
      const read = bytesRead;
      storing = insertRunRows(db, runId, results).then(() => {
        rowCount += results.length;
        input.onProgress?.({ rows: rowCount, bytesRead: read, bytesTotal });
      });
      // Its failure is thrown where it is awaited: at the next chunk or the end.
      storing.catch(() => {});
    }
    await storing;
    const t2 = performance.now();
    const resultPath = path.join(input.outDir, outputNames(fileName).results);
    // Stamped by the store's clock in the recording transaction (a test's clock when it gives one).
    const stamped = await recordRun(db, { runId, pipeline, resultPath, actor: input.actor ?? 'cli', ...(input.now ? { at: now().toISOString() } : {}) });
    recorded = stamped;
    finishedAt = stamped?.at ?? now().toISOString();
    Object.assign(timingsMs, {
      intake: Math.round(t1 - t0),
      candidates: Math.round(tc - t1),
      match: Math.round(matchMs),
      parseAndStore: Math.round(t2 - tc - matchMs),
      record: Math.round(performance.now() - t2),
    });
  } catch (e) {
    const error = isRostermatchError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: 'internal error' };
    // A failed run leaves no rows behind: nothing half-written for a console or a re-run to find.
    await storing.catch(() => {});
    await db.transaction(async (tx) => {
      await tx.query('DELETE FROM run_row WHERE run_id = $1', [runId]);
      await failRun(tx, runId, error, now().toISOString());
    });
    log.error({ runId, code: error.code }, 'run failed');
    throw e;
  }
  // Recorded: from here on the run is done whatever happens to its files (a re-drop restores them).
  const published = await publishRun(db, {
    run: { id: runId, fileName, fileSha256: sha256, receivedAt },
    pipeline,
    recorded: recorded!,
    finishedAt,
    outDir: input.outDir,
    exportsDir: input.exportsDir,
    timingsMs,
    ...(input.now ? { now: now() } : {}),
  });
  const hold = recorded!.hold;
  log.info({ runId, counts: published.summary.counts, groupId: pipeline.group.id, ms: published.summary.timingsMs.total }, hold ? 'run held for a confirmation' : 'run completed');
  const run: RunRecord = {
    id: runId,
    partner: pipeline.partner,
    fileName,
    fileSha256: sha256,
    state: hold ? 'held' : 'completed',
    receivedAt,
    finishedAt: hold ? null : finishedAt,
    groupId: pipeline.group.id,
    counts: published.summary.counts,
    summary: { ...published.summary },
    resultPath: published.resultPath,
    error: null,
    pipeline,
    sourcePath: path.resolve(file),
    rowCount,
    chunkCount: null,
    timeline: [],
    hold: hold ?? null,
  };
  return hold ? { kind: 'held', run, ...(published as HeldPublished), hold } : { kind: 'completed', run, ...(published as Published) };
}

