/**
 * One run, inline: intake → parse+normalise → match → record (rows, Group change, run state in
 * one transaction) → result files → export. The same stage functions the queued workers call;
 * this file only orders them. A file-level fault fails the run before anything is recorded
 * against the Group, so a malformed file changes nothing.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../config/index.ts';
import { RostermatchError, isRostermatchError } from '../errors/index.ts';
import { exportGroup, type ExportResult } from '../export/index.ts';
import { sha256File } from '../intake/index.ts';
import { matchChunk, type CandidateSource } from '../match/index.ts';
import { OUTCOMES, type Outcome, type RowResult } from '../model/index.ts';
import { readRoster } from '../parse/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { outputNames, writeJsonAtomic, writeResultFile } from '../results/index.ts';
import {
  applyMembership,
  completeRun,
  createRun,
  ensureGroup,
  failRun,
  findCompletedRun,
  insertRunRows,
  readRunResults,
  type MembershipChange,
  saveRunSummary,
  nameFrequencies,
  patientsByBlockKeys,
  type Db,
  type RunRecord,
} from '../store/index.ts';

export interface RunInput {
  file: string;
  pipeline: Pipeline;
  /** Where the result and summary files go (the partner's outbound folder by default). */
  outDir: string;
  exportsDir: string;
  /** Process again even when these bytes were already processed for this partner. */
  force?: boolean;
  /** Who or what started the run, for the Group's history. @defaultValue "cli" */
  actor?: string;
  now?: () => Date;
}

export type RunOutput =
  | { kind: 'completed'; run: RunRecord; summary: RunSummary; resultPath: string; summaryPath: string; export: ExportResult }
  | { kind: 'duplicate'; run: RunRecord };

export interface RunSummary {
  runId: string;
  partner: string;
  file: string;
  sha256: string;
  receivedAt: string;
  finishedAt: string;
  rows: number;
  counts: Record<Outcome, number>;
  group: { id: string; mode: Pipeline['group']['mode']; sizeBefore: number; sizeAfter: number; added: number; removed: number };
  thresholds: Pipeline['thresholds'];
  export: { dir: string; transactionTime: string };
  timingsMs: { parse: number; match: number; record: number; write: number; export: number; total: number };
}

/** Rows matched per candidate look-up: one query per chunk keeps round trips few and memory flat. */
export const MATCH_CHUNK_ROWS = 500;

export function storeCandidateSource(db: Db): CandidateSource {
  return { byKeys: (keys) => patientsByBlockKeys(db, keys) };
}

export async function runFile(db: Db, log: Logger, input: RunInput): Promise<RunOutput> {
  const now = input.now ?? (() => new Date());
  const { pipeline, file } = input;
  const t0 = performance.now();
  const sha256 = await sha256File(file);
  if (!input.force) {
    const previous = await findCompletedRun(db, pipeline.partner, sha256);
    if (previous) {
      log.info({ runId: previous.id, partner: pipeline.partner, sha256 }, 'duplicate file; already processed');
      await restoreOutputs(db, previous);
      return { kind: 'duplicate', run: previous };
    }
  }
  const runId = randomUUID();
  const receivedAt = now().toISOString();
  await createRun(db, { id: runId, partner: pipeline.partner, fileName: path.basename(file), fileSha256: sha256, receivedAt });
  log.info({ runId, partner: pipeline.partner, sha256 }, 'run started');
  // Once the transaction commits the run is done whatever happens to its files: a failure to
  // write them must not mark it failed (the Group did change); a re-drop restores them.
  let change: MembershipChange | undefined;
  try {
    const today = receivedAt.slice(0, 10);
    const parsed = await readRoster(file, pipeline, today);
    const tParsed = performance.now();

    const freq = await nameFrequencies(db);
    const source = storeCandidateSource(db);
    const results: RowResult[] = [];
    for (let i = 0; i < parsed.rows.length; i += MATCH_CHUNK_ROWS) {
      results.push(...(await matchChunk(parsed.rows.slice(i, i + MATCH_CHUNK_ROWS), source, { thresholds: pipeline.thresholds, freq })));
    }
    const tMatched = performance.now();

    const counts = countOutcomes(results);
    const matchedIds = results.flatMap((r) => (r.outcome === 'matched' && r.patientId ? [r.patientId] : []));
    const names = outputNames(file);
    const resultPath = path.join(input.outDir, names.results);
    const summaryPath = path.join(input.outDir, names.summary);
    const finishedAt = now().toISOString();
    // Rows, Group change and run state land together or not at all.
    change = await db.transaction(async (tx) => {
      await insertRunRows(tx, runId, results);
      await ensureGroup(tx, { id: pipeline.group.id, partner: pipeline.partner, name: pipeline.group.name, mode: pipeline.group.mode });
      const c = await applyMembership(tx, pipeline.group.id, matchedIds, pipeline.group.mode, { runId, actor: input.actor ?? 'cli', at: finishedAt });
      await completeRun(tx, runId, { finishedAt, groupId: pipeline.group.id, counts, resultPath });
      return c;
    });
    const tRecorded = performance.now();
    await writeResultFile(input.outDir, names.results, results);
    const tWritten = performance.now();
    const exported = await exportGroup(db, { groupId: pipeline.group.id, outRoot: input.exportsDir, now: now() });
    const tExported = performance.now();
    const ms = (a: number, b: number) => Math.round(b - a);
    const summary: RunSummary = {
      runId,
      partner: pipeline.partner,
      file: path.basename(file),
      sha256,
      receivedAt,
      finishedAt,
      rows: results.length,
      counts,
      group: { id: pipeline.group.id, mode: pipeline.group.mode, sizeBefore: change.before, sizeAfter: change.after, added: change.added, removed: change.removed },
      thresholds: pipeline.thresholds,
      export: { dir: exported.dir, transactionTime: exported.manifest.transactionTime },
      timingsMs: {
        parse: ms(t0, tParsed),
        match: ms(tParsed, tMatched),
        record: ms(tMatched, tRecorded),
        write: ms(tRecorded, tWritten),
        export: ms(tWritten, tExported),
        total: ms(t0, tExported),
      },
    };
    await writeJsonAtomic(summaryPath, summary);
    await saveRunSummary(db, runId, summary);
    log.info({ runId, counts, groupId: pipeline.group.id, ms: summary.timingsMs.total }, 'run completed');
    const run: RunRecord = {
      id: runId,
      partner: pipeline.partner,
      fileName: summary.file,
      fileSha256: sha256,
      state: 'completed',
      receivedAt,
      finishedAt,
      groupId: pipeline.group.id,
      counts,
      summary: { ...summary },
      resultPath,
      error: null,
    };
    return { kind: 'completed', run, summary, resultPath, summaryPath, export: exported };
  } catch (e) {
    if (change) throw e;
    const error = isRostermatchError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: 'internal error' };
    await failRun(db, runId, error, now().toISOString());
    log.error({ runId, code: error.code }, 'run failed');
    throw e instanceof Error ? e : new RostermatchError('FILE_UNREADABLE', String(e), { file });
  }
}

function countOutcomes(results: readonly RowResult[]): Record<Outcome, number> {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  for (const r of results) counts[r.outcome]++;
  return counts;
}

/**
 * A duplicate's outputs are the first run's. If that run was recorded but its files never
 * reached the outbound folder (the process died in between), write them again from the record.
 */
async function restoreOutputs(db: Db, run: RunRecord): Promise<void> {
  if (!run.resultPath) return;
  const dir = path.dirname(run.resultPath);
  if (!(await exists(run.resultPath))) await writeResultFile(dir, path.basename(run.resultPath), await readRunResults(db, run.id));
  const summaryPath = path.join(dir, outputNames(run.fileName).summary);
  if (run.summary && !(await exists(summaryPath))) await writeJsonAtomic(summaryPath, run.summary);
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
