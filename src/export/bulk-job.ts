/**
 * One Bulk Data export job, as a client asked for it over FHIR: each type streamed from the
 * store into its own file of the job's folder, then the completion manifest. The FHIR surface
 * (src/fhir) checks the request and queues the job; this runs it, on a queue worker.
 *
 * Cancellation is the job row's state: a DELETE marks it cancelled at once, and the runner, which
 * checks between types and before publishing, removes whatever it wrote. Only a job still
 * running when it finishes publishes a manifest.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { RostermatchError } from '../errors/index.ts';
import { exportInstant, finishBulkJob, writeFhirGroup, getBulkJob, getGroup, setBulkProgress, startBulkJob, type Db } from '../store/index.ts';
import { selectionQuery, WALK_MEMBERS, type ExportType, type Selection } from './index.ts';

export const BULK_TYPES = ['Patient', 'Immunization', 'Group'] as const;
export type BulkType = (typeof BULK_TYPES)[number];

/** A kick-off request, checked: what the job exports. */
export interface BulkParams {
  types: BulkType[];
  since?: string;
  /** Top-level elements to keep, for every type (`_elements` without a type prefix) or per type. */
  elements?: Partial<Record<BulkType, string[]>>;
  patients?: string[];
  filters?: Selection['filters'];
  /** The FHIR base the files are served under (absolute), for the manifest's URLs. */
  baseUrl: string;
  /** What a lenient request skipped: written as an OperationOutcome file of the manifest's error list. */
  skipped?: string[];
}

export interface BulkManifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: true;
  output: { type: BulkType; url: string; count: number }[];
  error: { type: 'OperationOutcome'; url: string; count: number }[];
}

export type BulkOutcome = 'completed' | 'cancelled' | 'not-found';

/** Where a job's files live. */
export const bulkJobDir = (root: string, jobId: string) => path.join(root, jobId);

/** The URL a job's file is downloaded from (the FHIR surface serves that path). */
export const bulkFileUrl = (baseUrl: string, jobId: string, file: string) => `${baseUrl}/bulk/${encodeURIComponent(jobId)}/${file}`;

export async function runBulkJob(db: Db, jobId: string, o: { root: string; keepMs: number; now?: () => Date }): Promise<BulkOutcome> {
  const now = o.now ?? (() => new Date());
  const job = await getBulkJob<BulkParams, BulkManifest>(db, jobId);
  if (!job) return 'not-found';
  // The transactionTime is when the job runs (Bulk Data: "the server's time when the query is
  // run"), read from the store's one clock under its change lock, as every meta.lastUpdated is
  // (src/store/clock.ts): a change at or before it is in this export, a later one in the next
  // `_since` export. Read again by each attempt, which writes the files afresh.
  const transactionTime = await exportInstant(db);
  if (!(await startBulkJob(db, jobId, transactionTime))) return 'cancelled';
  const p = job.params;
  const dir = bulkJobDir(o.root, jobId);
  const stillRunning = async () => (await getBulkJob(db, jobId))?.state === 'running';
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    const output: BulkManifest['output'] = [];
    for (const [i, type] of p.types.entries()) {
      if (!(await stillRunning())) throw new Cancelled();
      await setBulkProgress(db, jobId, `${type}: ${i + 1} of ${p.types.length} types`);
      const file = `${type}.ndjson`;
      const count = await writeBulkType(db, type, job.groupId, transactionTime, p, path.join(dir, file));
      // A type with nothing to export is left out of the manifest, as the IG recommends.
      if (count === 0) await fs.rm(path.join(dir, file), { force: true });
      else output.push({ type, url: bulkFileUrl(p.baseUrl, jobId, file), count });
    }
    const error: BulkManifest['error'] = [];
    if (p.skipped && p.skipped.length > 0) {
      // One OperationOutcome for each thing skipped, as the IG asks, a line each.
      const lines = p.skipped.map((diagnostics) => JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'warning', code: 'not-supported', diagnostics }] }));
      await fs.writeFile(path.join(dir, 'OperationOutcome.ndjson'), `${lines.join('\n')}\n`);
      error.push({ type: 'OperationOutcome', url: bulkFileUrl(p.baseUrl, jobId, 'OperationOutcome.ndjson'), count: lines.length });
    }
    const manifest: BulkManifest = { transactionTime, request: job.request, requiresAccessToken: true, output, error };
    const at = now();
    if (!(await finishBulkJob(db, jobId, { state: 'completed', manifest, at: at.toISOString(), expiresAt: new Date(at.getTime() + o.keepMs).toISOString() }))) throw new Cancelled();
    return 'completed';
  } catch (e) {
    await fs.rm(dir, { recursive: true, force: true });
    if (e instanceof Cancelled) return 'cancelled';
    throw e;
  }
}

class Cancelled extends Error {}

async function writeBulkType(db: Db, type: BulkType, groupId: string, until: string, p: BulkParams, file: string): Promise<number> {
  const elements = p.elements?.[type];
  const g = await getGroup(db, groupId);
  if (!g) throw new RostermatchError('GROUP_NOT_FOUND', `no Group with id "${groupId}"`);
  if (type === 'Group') {
    // The Group changes only when its members do; with _since, it is exported when it changed after it.
    if (p.since && g.updatedAt <= p.since) return 0;
    const out = createWriteStream(file, { mode: 0o600 });
    await writeFhirGroup(db, g, out);
    out.end('\n');
    await finished(out);
    return 1;
  }
  const s: Selection = {
    groupId,
    until,
    ...(g.characteristics ? { defined: g.characteristics } : {}),
    ...(p.since ? { since: p.since } : {}),
    ...(p.patients ? { patients: p.patients } : {}),
    ...(elements ? { elements } : {}),
    ...(p.filters ? { filters: p.filters } : {}),
  };
  return db.copyOut(selectionQuery(type as ExportType, s), createWriteStream(file, { mode: 0o600 }), WALK_MEMBERS);
}
