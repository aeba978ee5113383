/**
 * Queue names, job ids and job data. Job data carries ids only — never roster rows — because
 * Redis keeps job data in clear text. Deterministic job ids make re-adding a job a no-op while
 * it is still in Redis; the database is the record of what was processed.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

export const QUEUE = {
  /** Parse and normalise a claimed file. Runs where the drop folders are (serve). */
  intake: 'rostermatch-intake',
  /** Match one chunk of a run's rows. Any worker on any machine. */
  match: 'rostermatch-match',
  /** Record the outcome, write the result file, change the Group, export. Runs in serve. */
  finalise: 'rostermatch-finalise',
  /** Write one Bulk Data export a client asked for over FHIR. Runs in serve, which serves the files. */
  export: 'rostermatch-export',
} as const;

/**
 * Where a deployment's queues live in Redis. Every process of one deployment must agree on it, and
 * two deployments on one Redis must not share it by accident (their workers would take each
 * other's jobs), so by default it is derived from the store: the embedded store's folder (which
 * `status` can name while serve holds the store), or a PostgreSQL store's identity (which serve
 * and workers on other machines read from the same database).
 * @defaultValue $ROSTERMATCH_QUEUE_PREFIX, else `rostermatch-<12 hex of sha256(store key)>`
 */
export function queuePrefix(store: StoreKey): string {
  const set = process.env.ROSTERMATCH_QUEUE_PREFIX;
  if (set) return set;
  const key = store.kind === 'pglite' ? `pglite:${path.resolve(store.embeddedDir)}` : `postgres:${store.storeId}`;
  return `rostermatch-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}
export type StoreKey = { kind: 'pglite'; embeddedDir: string } | { kind: 'postgres'; storeId: string };

/** What the prefix of a process on this store is: `db.kind` and where it lives. */
export const storeKey = (db: { kind: 'pglite' | 'postgres'; storeId: string }, embeddedDir: string): StoreKey =>
  db.kind === 'pglite' ? { kind: 'pglite', embeddedDir } : { kind: 'postgres', storeId: db.storeId };

/**
 * Every job names the store that holds its run (`Db.storeId`). A process holding another store
 * hands the job back instead of finding "no such run" and calling it done. Absent on jobs queued
 * before stores had an identity: those are taken only by a process that holds their run.
 */
export interface StoreJob {
  readonly store?: string;
}
export interface IntakeJob extends StoreJob {
  readonly runId: string;
}
export interface ChunkJob extends StoreJob {
  readonly runId: string;
  readonly chunk: number;
  readonly from: number;
  readonly to: number;
}
export interface FinaliseJob extends StoreJob {
  readonly runId: string;
}
export interface ExportJob extends StoreJob {
  readonly bulkJobId: string;
}

/** The store is in the id: two deployments sharing a prefix would otherwise dedupe each other's files. */
export const intakeJobId = (store: string, partner: string, sha256: string) => `intake.${store}.${partner}.${sha256}`;
export const chunkJobId = (runId: string, chunk: number) => `chunk.${runId}.${chunk}`;
export const finaliseJobId = (runId: string) => `finalise.${runId}`;
export const exportJobId = (bulkJobId: string) => `export.${bulkJobId}`;

/** Rows per match job: small enough that two workers share even a modest file. */
export const CHUNK_ROWS = 1000;

/**
 * Transient failures (a database or Redis restart) retry with exponential backoff from 1 s,
 * capped at 30 s, for about 18 minutes: a PostgreSQL restart or failover must not fail a run, and
 * the run resumes within 30 s of the database's return. (Six plain exponential attempts gave up
 * after 31 s: a database down for a minute failed every run in progress.)
 */
export const RETRY = { attempts: 40, backoff: { type: 'capped' as const } };

/** The delay before retry `attemptsMade` (1, 2, …) of a job whose backoff is RETRY's. */
export function retryDelayMs(attemptsMade: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attemptsMade - 1));
}
