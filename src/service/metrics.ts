/**
 * GET /metrics for `rostermatch serve`: Prometheus text from a private prom-client registry.
 *
 * Two kinds of metric, fed two ways:
 * - State (runs, rows, review backlog, queue depth) is read at scrape time from the system of
 *   record — the database — and from BullMQ, so every serve process reports the same numbers and
 *   a restart loses nothing. One query per family, each with a deadline; a family whose source
 *   fails or is late is left out of that scrape and `rostermatch_scrape_error{source}` says so.
 * - Events (job failures, stage durations) are counted as they happen, from BullMQ's event
 *   streams (QueueEvents). The streams carry every process's events, so matching done by
 *   `rostermatch worker` on other machines is counted here too.
 *
 * Labels are low-cardinality by construction: partner ids, run states, outcomes, queue roles and
 * stage names. Never a patient, a record id or a file name.
 */
import { Job, Queue, QueueEvents, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { OUTCOMES, type Outcome } from '../model/index.ts';
import { finaliseJobId, JOB_STATES, QUEUE, queueStatus } from '../queue/index.ts';
import type { Queryable, RunState } from '../store/index.ts';

export interface Metrics {
  registry: Registry;
  /** The Content-Type header for render()'s text. */
  contentType: string;
  /** The exposition text. Never throws for a failing database or Redis: see rostermatch_scrape_error. */
  render(): Promise<string>;
  /** Stops listening to the queues' events. The shared Redis connection and the database stay open. */
  close(): Promise<void>;
}

export interface MetricsOptions {
  db: Queryable;
  /** The process's shared (non-blocking) Redis client. QueueEvents get their own connections. */
  connection: Redis;
  /** BullMQ key prefix of the deployment's queues. */
  prefix: string;
  /** Deadline for each scrape-time source. @defaultValue 3000 */
  timeoutMs?: number;
  /** Node.js process metrics (CPU, memory, event loop, GC) as rostermatch_process_* etc. @defaultValue true */
  defaultMetrics?: boolean;
}

const RUN_STATES = ['received', 'running', 'parsing', 'matching', 'completed', 'failed'] as const satisfies readonly RunState[];
const REVIEW_OUTCOMES = ['possible', 'ambiguous'] as const satisfies readonly Outcome[];
type Role = keyof typeof QUEUE;
const ROLES = Object.keys(QUEUE) as Role[];

/**
 * Where a queued run spends its time, from its timeline (received → parsing → matching →
 * completed) and its finalise job:
 * - queued: received → parsing (waiting for an intake worker)
 * - parsing: parsing → matching (reading, normalising and storing the rows)
 * - matching: matching → completed (chunks waiting and being scored, then the outcome recorded)
 * - publishing: completed → finalise job finished (result file, Group, export, archive)
 * - total: received → finalise job finished (the partner has its results)
 */
export const STAGES = ['queued', 'parsing', 'matching', 'publishing', 'total'] as const;
export type Stage = (typeof STAGES)[number];
const STAGE_OF: Partial<Record<RunState, Stage>> = { received: 'queued', parsing: 'parsing', matching: 'matching' };

/** Sources read at scrape time, each the label of one rostermatch_scrape_error series. */
const SOURCES = ['runs', 'rows', 'review', 'queues'] as const;
type Source = (typeof SOURCES)[number];

/**
 * Seconds spent in each stage of a completed run. A state that repeats (an intake retried after a
 * crash) adds up; time in states that are not stages (an inline run's `running`) is left out.
 * `finishedMs` is when the finalise job finished; without it there is no publishing stage and the
 * total ends at `completed`.
 */
export function stageDurations(timeline: readonly { state: string; at: string }[], finishedMs?: number): Partial<Record<Stage, number>> {
  const out: Partial<Record<Stage, number>> = {};
  const ms = timeline.map((t) => Date.parse(t.at));
  const completed = timeline.findLastIndex((t) => t.state === 'completed');
  if (completed < 0 || Number.isNaN(ms[0]!)) return out;
  for (let i = 0; i < completed; i++) {
    const stage = STAGE_OF[timeline[i]!.state as RunState];
    const d = ms[i + 1]! - ms[i]!;
    if (stage && d >= 0) out[stage] = (out[stage] ?? 0) + d / 1000;
  }
  let end = ms[completed]!;
  if (finishedMs !== undefined && finishedMs >= end) {
    out.publishing = (finishedMs - end) / 1000;
    end = finishedMs;
  }
  if (end >= ms[0]!) out.total = (end - ms[0]!) / 1000;
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Run ids already observed, so a finalise job that runs again for a completed run is not counted twice. */
class RecentIds {
  readonly #ids = new Set<string>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  /** False when `id` was already added. */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.#max) this.#ids.delete(this.#ids.values().next().value!);
    return true;
  }
}

export async function createMetrics(o: MetricsOptions): Promise<Metrics> {
  const timeoutMs = o.timeoutMs ?? 3000;
  const registry = new Registry();
  if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'rostermatch_' });

  // ---- scrape-time families -------------------------------------------------------------------
  // Every family's collect() joins one refresh per scrape, so a scrape costs one query per family
  // however the registry is read (render() or registry.metrics()).
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => (refreshing ??= collectAll().finally(() => (refreshing = undefined)));
  const collect = async () => {
    await refresh();
  };

  const runs = new Gauge({
    name: 'rostermatch_runs',
    help: 'Runs (one per dropped file) by partner and current state, from the database.',
    labelNames: ['partner', 'state'] as const,
    registers: [registry],
    collect,
  });
  const rows = new Gauge({
    name: 'rostermatch_rows',
    help: 'Rows of completed runs by partner and outcome (matched, ambiguous, possible, no_match, invalid), from the database.',
    labelNames: ['partner', 'outcome'] as const,
    registers: [registry],
    collect,
  });
  const reviewOpen = new Gauge({
    name: 'rostermatch_review_open',
    help: 'Review items waiting for a person (possible and ambiguous rows) by partner and outcome, from the database.',
    labelNames: ['partner', 'outcome'] as const,
    registers: [registry],
    collect,
  });
  const queueJobs = new Gauge({
    name: 'rostermatch_queue_jobs',
    help: 'Jobs in each BullMQ queue (intake, match, finalise) by job state. completed and failed count only the jobs still retained.',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    collect,
  });
  const queuePaused = new Gauge({
    name: 'rostermatch_queue_paused',
    help: '1 when the BullMQ queue is paused.',
    labelNames: ['queue'] as const,
    registers: [registry],
    collect,
  });
  const queueWorkers = new Gauge({
    name: 'rostermatch_queue_workers',
    help: 'Worker connections on each BullMQ queue, from every process.',
    labelNames: ['queue'] as const,
    registers: [registry],
    collect,
  });
  const scrapeError = new Gauge({
    name: 'rostermatch_scrape_error',
    help: '1 when the last scrape could not read this source (failed or timed out); its metric family is then absent from the scrape.',
    labelNames: ['source'] as const,
    registers: [registry],
    collect,
  });

  // ---- event-fed families ---------------------------------------------------------------------
  const failures = new Counter({
    name: 'rostermatch_job_failures_total',
    help: 'Jobs that failed for good (attempts used up, unrecoverable, or stalled too often), in any process, since this process started.',
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  const stageSeconds = new Histogram({
    name: 'rostermatch_stage_duration_seconds',
    help: 'Time a completed queued run spent in each stage: queued, parsing, matching, publishing, and total (received to results published).',
    labelNames: ['stage'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200],
    registers: [registry],
  });
  for (const role of ROLES) failures.inc({ queue: role }, 0);
  for (const stage of STAGES) stageSeconds.zero({ stage });

  // On the shared connection (plain commands only), to read finished finalise jobs. Closed in
  // close(); the client is the caller's and stays open.
  const finaliseQueue = new Queue(QUEUE.finalise, { connection: o.connection, prefix: o.prefix });
  finaliseQueue.on('error', () => {});

  async function readRuns() {
    const { rows: r } = await o.db.query<{ partner: string; state: string; n: number }>('SELECT partner, state, count(*)::int AS n FROM run GROUP BY partner, state');
    return r;
  }
  async function readRows() {
    const { rows: r } = await o.db.query<{ partner: string; outcome: string; n: string }>(
      `SELECT r.partner, c.key AS outcome, sum(c.value::bigint)::text AS n
         FROM run r, jsonb_each_text(r.counts) c
        WHERE r.state = 'completed' AND r.counts IS NOT NULL
        GROUP BY r.partner, c.key`,
    );
    return r;
  }
  async function readReview() {
    const { rows: r } = await o.db.query<{ partner: string; outcome: string; n: number }>(
      `SELECT partner, outcome, count(*)::int AS n FROM review_item WHERE state = 'open' GROUP BY partner, outcome`,
    );
    return r;
  }
  async function readQueues() {
    // The shared client retries while Redis is away and would queue our commands until it is
    // back: a scrape in that state fails at once instead of adding to the pile.
    const status = o.connection.status;
    if (status !== 'ready' && status !== 'wait') throw new Error(`Redis connection is ${status}`);
    return queueStatus(o.connection, o.prefix);
  }

  async function collectAll(): Promise<void> {
    const settle = <T>(source: Source, p: () => Promise<T>) => withTimeout(p(), timeoutMs, source).then((value) => ({ ok: true as const, value }), () => ({ ok: false as const }));
    const [r, w, v, q] = await Promise.all([settle('runs', readRuns), settle('rows', readRows), settle('review', readReview), settle('queues', readQueues)]);
    // Applied together, after every read: a concurrent scrape never sees half of one.
    for (const g of [runs, rows, reviewOpen, queueJobs, queuePaused, queueWorkers, scrapeError]) g.reset();
    scrapeError.set({ source: 'runs' }, r.ok ? 0 : 1);
    scrapeError.set({ source: 'rows' }, w.ok ? 0 : 1);
    scrapeError.set({ source: 'review' }, v.ok ? 0 : 1);
    scrapeError.set({ source: 'queues' }, q.ok ? 0 : 1);
    if (r.ok) {
      for (const partner of new Set(r.value.map((x) => x.partner))) for (const state of RUN_STATES) runs.set({ partner, state }, 0);
      for (const x of r.value) runs.set({ partner: x.partner, state: x.state }, x.n);
    }
    if (w.ok) {
      for (const partner of new Set(w.value.map((x) => x.partner))) for (const outcome of OUTCOMES) rows.set({ partner, outcome }, 0);
      for (const x of w.value) if ((OUTCOMES as readonly string[]).includes(x.outcome)) rows.set({ partner: x.partner, outcome: x.outcome }, Number(x.n));
    }
    if (v.ok) {
      for (const partner of new Set(v.value.map((x) => x.partner))) for (const outcome of REVIEW_OUTCOMES) reviewOpen.set({ partner, outcome }, 0);
      for (const x of v.value) reviewOpen.set({ partner: x.partner, outcome: x.outcome }, x.n);
    }
    if (q.ok) {
      for (const s of q.value) {
        for (const state of JOB_STATES) queueJobs.set({ queue: s.role, state }, s.counts[state]);
        queuePaused.set({ queue: s.role }, s.paused ? 1 : 0);
        queueWorkers.set({ queue: s.role }, s.workers.length);
      }
    }
  }

  // ---- queue events ---------------------------------------------------------------------------
  // Why events and not the database for stage durations: a histogram counts observations, one
  // per run; rebuilding it from the run table at every scrape would scan every run ever recorded
  // (unbounded) to report history Prometheus already has. The finalise job's 'completed' event
  // arrives once per run, whichever process finished it, and costs one small query. The counts
  // start again when serve restarts, as Prometheus counters and histograms may.
  //
  // QueueEvents blocks on XREAD and so needs a connection of its own: it gets the shared
  // client's options, and BullMQ creates, owns and closes that connection. It reads from "now"
  // in Redis's clock, so events from the moment this function returns are not missed while the
  // first XREAD is still on its way.
  const lastEventId = await withTimeout(o.connection.time(), Math.min(timeoutMs, 1000), 'Redis TIME').then(
    ([s, us]) => `${Number(s) * 1000 + Math.floor(Number(us) / 1000)}-0`,
    () => '$',
  );
  const eventConnection = { ...o.connection.options, maxRetriesPerRequest: null } as ConnectionOptions;
  const events = ROLES.map((role) => {
    const e = new QueueEvents(QUEUE[role], { connection: eventConnection, prefix: o.prefix, lastEventId });
    e.on('error', () => {});
    e.on('failed', () => failures.inc({ queue: role }));
    return e;
  });
  const observed = new RecentIds(10_000);
  const pending = new Set<Promise<void>>();
  events[ROLES.indexOf('finalise')]!.on('completed', ({ jobId }) => {
    const p = observeRun(jobId).catch(() => {});
    pending.add(p);
    void p.finally(() => pending.delete(p));
  });

  async function observeRun(jobId: string): Promise<void> {
    const job = await Job.fromId<{ runId?: string }>(finaliseQueue, jobId).catch(() => undefined);
    const idPrefix = finaliseJobId('');
    const runId = job?.data.runId ?? (jobId.startsWith(idPrefix) ? jobId.slice(idPrefix.length) : undefined);
    if (!runId) return;
    const { rows: r } = await withTimeout(
      o.db.query<{ state: RunState; timeline: { state: string; at: string }[] }>('SELECT state, timeline FROM run WHERE id = $1', [runId]),
      timeoutMs,
      'run timeline',
    );
    // A finalise job also completes, doing nothing, for a run that failed or was already done.
    if (r[0]?.state !== 'completed' || !observed.add(runId)) return;
    const durations = stageDurations(r[0].timeline, job?.finishedOn);
    for (const stage of STAGES) if (durations[stage] !== undefined) stageSeconds.observe({ stage }, durations[stage]);
  }

  let closing: Promise<void> | undefined;
  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close: () =>
      (closing ??= (async () => {
        const bounded = (p: Promise<unknown>) => withTimeout(p, 2000, 'close').catch(() => {});
        await Promise.all([...events.map((e) => bounded(e.close())), bounded(finaliseQueue.close())]);
        await bounded(Promise.all(pending));
      })()),
  };
}
