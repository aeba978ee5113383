/**
 * Queue names, job ids and job data. Job data carries ids only — never roster rows — because
 * Redis keeps job data in clear text. Deterministic job ids make re-adding a job a no-op while
 * it is still in Redis; the database is the record of what was processed.
 */
export const QUEUE = {
  /** Parse and normalise a claimed file. Runs where the drop folders are (serve). */
  intake: 'rostermatch-intake',
  /** Match one chunk of a run's rows. Any worker on any machine. */
  match: 'rostermatch-match',
  /** Record the outcome, write the result file, change the Group, export. Runs in serve. */
  finalise: 'rostermatch-finalise',
} as const;

/** @defaultValue "rostermatch", or $ROSTERMATCH_QUEUE_PREFIX */
export function queuePrefix(): string {
  return process.env.ROSTERMATCH_QUEUE_PREFIX ?? 'rostermatch';
}

export interface IntakeJob {
  readonly runId: string;
}
export interface ChunkJob {
  readonly runId: string;
  readonly chunk: number;
  readonly from: number;
  readonly to: number;
}
export interface FinaliseJob {
  readonly runId: string;
}

export const intakeJobId = (partner: string, sha256: string) => `intake.${partner}.${sha256}`;
export const chunkJobId = (runId: string, chunk: number) => `chunk.${runId}.${chunk}`;
export const finaliseJobId = (runId: string) => `finalise.${runId}`;

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
