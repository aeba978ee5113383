/**
 * BullMQ workers around the job processors. serve runs all three queues; `rostermatch worker`
 * runs only matching, on any machine that reaches the same Redis and database.
 */
import { DelayedError, Job, Queue, UnrecoverableError, Worker, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { isRostermatchError, RostermatchError } from '../errors/index.ts';
import { runBulkJob } from '../export/bulk-job.ts';
import { failBulkJob, getBulkJob, getRun, RECORDED_STATES } from '../store/index.ts';
import { connectRedis } from './connection.ts';
import { execChunk, execFinalise, execIntake, failRunPermanently, type JobContext } from './jobs.ts';
import { QUEUE, RETRY, retryDelayMs, type ChunkJob, type ExportJob, type FinaliseJob, type IntakeJob, type StoreJob } from './names.ts';
import { workerName } from './status.ts';

export type Role = keyof typeof QUEUE;

export interface WorkerOptions {
  redisUrl: string;
  /** Namespace of the queues' Redis keys; every process of one deployment uses the same. */
  prefix: string;
  roles: readonly Role[];
  /** Match jobs processed at once by this process. @defaultValue 1 */
  concurrency?: number;
  /** How long a job is locked to its worker; a dead worker's jobs are taken over after it. @defaultValue 30000 */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for. @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** The export role: where jobs write their files, how long they are kept, how many run at once. */
  exports?: { root: string; keepMs: number; concurrency: number };
}

export interface WorkerSet {
  workers: Worker[];
  /** Stops taking jobs and lets running ones finish, for at most `deadlineMs`; then hands them back. */
  close(deadlineMs: number): Promise<string[]>;
}

/** What a matching-only process has: no drop folders, no flows to add. */
export type MatchContext = Pick<JobContext, 'db' | 'log' | 'workerId' | 'chunkDelayMs' | 'candidates' | 'snapshotDir'>;

/**
 * A refused job waits `delay` in the delayed set, where any worker may take it once it is due,
 * while the refusing worker keeps its slot for `pause`. Its deployment's idle workers, blocked
 * on the queue, are woken for it meanwhile; without the pause the refusing worker would take it
 * straight back. The delay grows so that jobs of a deployment that is down circle slowly.
 */
const HAND_BACK = { pauseMs: 1000, firstDelayMs: 250, maxDelayMs: 30_000 };

/**
 * Wraps a processor with the two rules every job follows:
 * - A job of another store (another deployment sharing this Redis and prefix) is handed back —
 *   delayed a little, not failed and never completed — with an error in the log, so a worker
 *   of its own deployment takes it. A job from before jobs named their store is taken only if its
 *   run is here.
 * - A bad file is not worth retrying: the processor already failed the run and told the partner.
 */
function processor<T extends StoreJob>(ctx: MatchContext, fn: (job: Job<T>) => Promise<void>, held: (data: T) => Promise<boolean> = async (d) => (await getRun(ctx.db, (d as unknown as IntakeJob).runId)) !== undefined): Processor<T> {
  return async (job, token) => {
    const mine = job.data.store === undefined ? await held(job.data) : job.data.store === ctx.db.storeId;
    if (!mine) {
      const offered = job.attemptsStarted;
      // Every time at first, then less often: a deployment that is down leaves its jobs circling.
      if (offered <= 3 || Number.isInteger(Math.log2(offered))) {
        ctx.log.error(
          { queue: job.queueName, jobId: job.id, jobStore: job.data.store ?? null, store: ctx.db.storeId, offered },
          'job belongs to another deployment\'s store; handed back, not done (give each deployment its own ROSTERMATCH_QUEUE_PREFIX)',
        );
      }
      await job.moveToDelayed(Date.now() + Math.min(HAND_BACK.maxDelayMs, HAND_BACK.firstDelayMs * 2 ** Math.min(offered - 1, 10)), token);
      await new Promise((r) => setTimeout(r, HAND_BACK.pauseMs));
      throw new DelayedError();
    }
    try {
      await fn(job);
    } catch (e) {
      if (isRostermatchError(e)) throw new UnrecoverableError(e.message);
      throw e;
    }
  };
}

export function startWorkers(ctx: JobContext | MatchContext, opts: WorkerOptions): WorkerSet {
  const full = 'flows' in ctx ? ctx : undefined;
  if (!full && (opts.roles.includes('intake') || opts.roles.includes('finalise') || opts.roles.includes('export'))) {
    throw new Error('intake, finalise and export workers need the drop folders, flows and files of serve');
  }
  if (opts.roles.includes('export') && !opts.exports) throw new Error('an export worker needs exports: its folder and how long files are kept');
  const connections: Redis[] = [];
  const conn = () => {
    const c = connectRedis(opts.redisUrl);
    connections.push(c);
    return c;
  };
  const common = {
    prefix: opts.prefix,
    // Names the worker's Redis client, so Queue.getWorkers (rostermatch status) says who it is and
    // which store it holds: a process sees another deployment's workers on its prefix.
    name: workerName(ctx.workerId, ctx.db.storeId),
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: 3,
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
    // RETRY's 'capped' backoff; a job with another backoff type keeps BullMQ's own.
    settings: { backoffStrategy: retryDelayMs },
  };
  const workers: Worker[] = [];
  const queues: Queue[] = [];
  if (opts.roles.includes('intake')) {
    workers.push(new Worker<IntakeJob>(QUEUE.intake, processor(ctx, (job) => execIntake(full!, job.data)), { ...common, connection: conn(), concurrency: 1 }));
  }
  if (opts.roles.includes('match')) {
    const parents = new Queue(QUEUE.finalise, { connection: conn(), prefix: opts.prefix });
    parents.on('error', () => {});
    queues.push(parents);
    const progress = (job: Job<ChunkJob>) => async (pct: number) => {
      await job.updateProgress(100);
      const parent = job.parent?.id && (await Job.fromId(parents, job.parent.id));
      if (parent) await parent.updateProgress(pct);
    };
    workers.push(
      new Worker<ChunkJob>(QUEUE.match, processor(ctx, (job) => execChunk(ctx, job.data, progress(job))), {
        ...common,
        connection: conn(),
        concurrency: opts.concurrency ?? 1,
      }),
    );
  }
  if (opts.roles.includes('finalise')) {
    workers.push(new Worker<FinaliseJob>(QUEUE.finalise, processor(ctx, (job) => execFinalise(full!, job.data, (pct) => job.updateProgress(pct))), { ...common, connection: conn(), concurrency: 1 }));
  }
  if (opts.roles.includes('export')) {
    const ex = opts.exports!;
    const run = async (job: Job<ExportJob>) => {
      const outcome = await runBulkJob(ctx.db, job.data.bulkJobId, { root: ex.root, keepMs: ex.keepMs });
      // A job row that is gone was queued by this store (its store id says so): an anomaly, never done.
      if (outcome === 'not-found') throw new RostermatchError('RUN_NOT_FOUND', `export ${job.data.bulkJobId} is not in this store (${ctx.db.storeId})`);
      ctx.log.info({ bulkJobId: job.data.bulkJobId, outcome }, 'bulk export job ended');
    };
    // Several at once, so that one partner's large export never holds up another's.
    workers.push(new Worker<ExportJob>(QUEUE.export, processor(ctx, run, async (d) => (await getBulkJob(ctx.db, d.bulkJobId)) !== undefined), { ...common, connection: conn(), concurrency: ex.concurrency }));
  }
  for (const w of workers) {
    w.on('error', (e) => ctx.log.warn({ queue: w.name, err: e.message }, 'worker error'));
    // The last attempt of a parse or finalise failed for a reason that was not the file's fault:
    // the run must not stay "in progress" for ever.
    w.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? RETRY.attempts);
      ctx.log.warn({ queue: w.name, jobId: job.id, attempt: job.attemptsMade, final, err: err.message }, 'job failed');
      if (final && w.name === QUEUE.export) {
        // The client's next status request gets a 500 with an OperationOutcome: it may ask again.
        void failBulkJob(ctx.db, (job.data as ExportJob).bulkJobId, err.message, opts.exports!.keepMs).catch(() => {});
        return;
      }
      // A chunk that fails for good is finalise's to report: it finds the chunk's rows missing.
      if (!final || err instanceof UnrecoverableError || w.name === QUEUE.match) return;
      void (async () => {
        const run = await getRun(ctx.db, (job.data as IntakeJob).runId);
        if (run && full && !RECORDED_STATES.includes(run.state) && run.state !== 'failed') {
          await failRunPermanently(full, run, new RostermatchError('FILE_UNREADABLE', `processing failed after ${job.attemptsMade} attempts`, { file: run.fileName }));
        }
      })().catch(() => {});
    });
  }
  return {
    workers,
    async close(deadlineMs) {
      const problems: string[] = [];
      // worker.close() waits for running jobs, and can hang while Redis is unreachable: give it a
      // deadline, then close without waiting so the jobs' locks lapse and another worker takes them.
      await Promise.all(
        workers.map(async (w) => {
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), deadlineMs)));
          const result = await Promise.race([w.close().then(() => 'closed' as const), deadline]).catch((e: Error) => {
            problems.push(`${w.name}: ${e.message}`);
            return 'error' as const;
          });
          clearTimeout(timer);
          if (result !== 'closed') await Promise.race([w.close(true), new Promise((r) => setTimeout(r, 1000))]).catch(() => {});
        }),
      );
      await Promise.all(queues.map((q) => Promise.race([q.close(), new Promise((r) => setTimeout(r, 1000))]).catch(() => {})));
      for (const c of connections) c.disconnect();
      return problems;
    },
  };
}
