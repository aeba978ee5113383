/**
 * One run, inline: intake → parse+normalise → match → record → publish, in one process with no
 * queue. The queued workers call the same steps (publish.ts) in jobs. A file-level fault fails the
 * run before anything is recorded against the Group, so a malformed file changes nothing.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { sha256File } from '../intake/index.ts';
import { matchChunk } from '../match/index.ts';
import { candidatesFor, type CandidateMode, type Candidates } from './candidates.ts';
import { levelsFor } from './train.ts';
import type { NormalisedRow, RowResult } from '../model/index.ts';
import { readRoster } from '../parse/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { outputNames } from '../results/index.ts';
import { createRun, failRun, partnerDecisions, type Db, type Queryable, type RunRecord } from '../store/index.ts';
import { publishRun, recordRun, restoreOutputs, type Published } from './publish.ts';

export { countOutcomes, publishRun, recordRun, restoreOutputs, type RunSummary } from './publish.ts';
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
  /** Who or what started the run, for the Group's history. @defaultValue "cli" */
  actor?: string;
  now?: () => Date;
}

export type RunOutput = ({ kind: 'completed'; run: RunRecord } & Published) | { kind: 'duplicate'; run: RunRecord };

/** Rows matched per candidate look-up: one query per chunk keeps round trips few and memory flat. */
export const MATCH_CHUNK_ROWS = 500;

/** Matches rows chunk by chunk against the store's index. */
export async function matchAll(db: Queryable, rows: readonly NormalisedRow[], pipeline: Pipeline, candidates: Candidates | CandidateMode = 'auto'): Promise<RowResult[]> {
  const { source, freq } = typeof candidates === 'string' ? await candidatesFor(db, candidates, rows.length) : candidates;
  const levels = await levelsFor(db, pipeline);
  const results: RowResult[] = [];
  for (let i = 0; i < rows.length; i += MATCH_CHUNK_ROWS) {
    const chunk = rows.slice(i, i + MATCH_CHUNK_ROWS);
    const decisions = await partnerDecisions(db, pipeline.partner, chunk.map((r) => r.recordId));
    results.push(...(await matchChunk(chunk, source, { thresholds: pipeline.thresholds, freq, decisions, levels })));
  }
  return results;
}

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
  let results: RowResult[];
  let finishedAt: string;
  let change;
  const timingsMs: Record<string, number> = {};
  try {
    const parsed = await readRoster(file, pipeline, receivedAt.slice(0, 10));
    const t1 = performance.now();
    const candidates = await candidatesFor(db, input.candidates ?? 'auto', parsed.rows.length);
    const tc = performance.now();
    results = await matchAll(db, parsed.rows, pipeline, candidates);
    const t2 = performance.now();
    finishedAt = now().toISOString();
    const resultPath = path.join(input.outDir, outputNames(fileName).results);
    change = await recordRun(db, { runId, pipeline, results, insertRows: true, resultPath, actor: input.actor ?? 'cli', at: finishedAt });
    Object.assign(timingsMs, { parse: Math.round(t1 - t0), candidates: Math.round(tc - t1), match: Math.round(t2 - tc), record: Math.round(performance.now() - t2) });
  } catch (e) {
    const error = isRostermatchError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: 'internal error' };
    await failRun(db, runId, error, now().toISOString());
    log.error({ runId, code: error.code }, 'run failed');
    throw e;
  }
  // Recorded: from here on the run is done whatever happens to its files (a re-drop restores them).
  const published = await publishRun(db, {
    run: { id: runId, fileName, fileSha256: sha256, receivedAt },
    pipeline,
    results,
    change: change!,
    finishedAt,
    outDir: input.outDir,
    exportsDir: input.exportsDir,
    timingsMs,
    now: now(),
  });
  log.info({ runId, counts: published.summary.counts, groupId: pipeline.group.id, ms: published.summary.timingsMs.total }, 'run completed');
  const run: RunRecord = {
    id: runId,
    partner: pipeline.partner,
    fileName,
    fileSha256: sha256,
    state: 'completed',
    receivedAt,
    finishedAt,
    groupId: pipeline.group.id,
    counts: published.summary.counts,
    summary: { ...published.summary },
    resultPath: published.resultPath,
    error: null,
    pipeline,
    sourcePath: path.resolve(file),
    rowCount: results.length,
    chunkCount: null,
    timeline: [],
  };
  return { kind: 'completed', run, ...published };
}

