import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Outcome, RowResult } from '../src/model/index.ts';
import { finaliseJobId, QUEUE } from '../src/queue/index.ts';
import { createMetrics, stageDurations, type Metrics } from '../src/service/metrics.ts';
import { completeRun, createRun, failRun, getRun, insertRunRows, listReviewItems, queueForReview, rejectReviewItem, setRunState, type Db, type Queryable, type RunState } from '../src/store/index.ts';
import { freePort, onCleanup, REDIS_URL, testPrefix, waitFor } from './daemon-helpers.ts';
import { STORES, tempDb } from './helpers.ts';

// ---- reading the exposition text --------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments and blank lines skipped). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with exactly these labels, or undefined. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).sort();
  const hits = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(want));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

/** label value → sample value, for the samples of `name` whose other labels are `where`. */
function byLabel(samples: Sample[], name: string, label: string, where: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name || !Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue;
    out[s.labels[label]!] = s.value;
  }
  return out;
}

async function scrape(m: Metrics): Promise<Sample[]> {
  return parseExposition(await m.render());
}

// ---- fixtures ---------------------------------------------------------------------------------

function sharedRedis(): Redis {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  r.on('error', () => {});
  onCleanup(async () => r.disconnect());
  return r;
}

async function metricsFor(db: Queryable, connection: Redis, prefix: string, timeoutMs?: number): Promise<Metrics> {
  const m = await createMetrics({ db, connection, prefix, defaultMetrics: false, ...(timeoutMs ? { timeoutMs } : {}) });
  onCleanup(() => m.close());
  return m;
}

function worker(name: string, prefix: string, fn: (data: { runId?: string; fail?: boolean }) => Promise<void>): Worker {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  connection.on('error', () => {});
  const w = new Worker(name, async (job) => fn(job.data), { connection, prefix });
  w.on('error', () => {});
  onCleanup(async () => {
    await w.close();
    connection.disconnect();
  });
  return w;
}

function queue(name: string, prefix: string): Queue {
  const q = new Queue(name, { connection: { host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) }, prefix });
  q.on('error', () => {});
  onCleanup(() => q.close());
  return q;
}

const counts = (c: Partial<Record<Outcome, number>>): Record<Outcome, number> => ({ matched: 0, ambiguous: 0, possible: 0, no_match: 0, invalid: 0, ...c });

/** A run that went through `states` at the given times (ISO), the first being when it was received. */
async function addRun(db: Db, id: string, partner: string, states: [RunState, string][], outcomes?: Record<Outcome, number>): Promise<void> {
  const [[, receivedAt], ...rest] = states as [[RunState, string], ...[RunState, string][]];
  await createRun(db, { id, partner, fileName: `${id}.csv`, fileSha256: id, receivedAt, state: 'received', pipeline: {} });
  for (const [state, at] of rest) {
    if (state === 'completed') await completeRun(db, id, { finishedAt: at, groupId: `${partner}-group`, counts: outcomes ?? counts({}), resultPath: `/out/${id}.results.csv` });
    else if (state === 'failed') await failRun(db, id, { code: 'TEST', message: 'test' }, at);
    else await setRunState(db, id, state, at);
  }
}

const row = (index: number, outcome: Outcome, candidates: string[]): RowResult => ({
  index,
  line: index + 2,
  recordId: `rec-${index}`,
  outcome,
  candidates: candidates.map((patientId) => ({ patientId, score: 5, probability: 0.7, comparisons: [] })),
});

const iso = (ms: number) => new Date(ms).toISOString();

// ---- tests ------------------------------------------------------------------------------------

describe('stageDurations', () => {
  it('adds up each stage of a completed run, repeated states included, and ends the total at the finalise job', () => {
    const t0 = Date.parse('2026-11-20T10:00:00.000Z');
    const timeline = [
      { state: 'received', at: iso(t0) },
      { state: 'parsing', at: iso(t0 + 2_000) },
      { state: 'parsing', at: iso(t0 + 4_000) }, // intake retried after a crash
      { state: 'matching', at: iso(t0 + 7_000) },
      { state: 'completed', at: iso(t0 + 67_000) },
    ];
    expect(stageDurations(timeline, t0 + 70_000)).toEqual({ queued: 2, parsing: 5, matching: 60, publishing: 3, total: 70 });
    expect(stageDurations(timeline)).toEqual({ queued: 2, parsing: 5, matching: 60, total: 67 });
    expect(stageDurations([{ state: 'running', at: iso(t0) }, { state: 'completed', at: iso(t0 + 1_000) }])).toEqual({ total: 1 });
    expect(stageDurations(timeline.slice(0, 4))).toEqual({});
  });
});

describe.each(STORES)('metrics from the database (%s)', (store) => {
  it('reports runs by partner and state, rows of completed runs by outcome, and the open review backlog', async () => {
    const { db } = await tempDb(store);
    const t = Date.parse('2026-11-20T10:00:00.000Z');
    await addRun(db, 'n1', 'north', [['received', iso(t)], ['parsing', iso(t + 1)], ['matching', iso(t + 2)], ['completed', iso(t + 3)]], counts({ matched: 3, ambiguous: 1, possible: 2, no_match: 4 }));
    await addRun(db, 'n2', 'north', [['received', iso(t)], ['completed', iso(t + 5)]], counts({ matched: 5, no_match: 1, invalid: 2 }));
    await addRun(db, 'n3', 'north', [['received', iso(t)], ['parsing', iso(t + 1)], ['failed', iso(t + 2)]]);
    await addRun(db, 'n4', 'north', [['received', iso(t)], ['parsing', iso(t + 1)], ['matching', iso(t + 2)]]);
    await addRun(db, 's1', 'south', [['received', iso(t)]]);
    await addRun(db, 's2', 'south', [['received', iso(t)], ['completed', iso(t + 1)]], counts({ matched: 7 }));

    // n1's rows that wait for a person: two possible, one ambiguous; one possible is then rejected.
    await db.transaction(async (tx) => {
      await insertRunRows(tx, 'n1', [row(0, 'matched', ['p1']), row(1, 'possible', ['p2']), row(2, 'possible', ['p3']), row(3, 'ambiguous', ['p4', 'p5'])]);
      await queueForReview(tx, 'n1', 'north');
    });
    const first = (await listReviewItems(db, { partner: 'north', state: 'open' })).find((i) => i.outcome === 'possible')!;
    expect(await db.transaction((tx) => rejectReviewItem(tx, first.id, 'alice', iso(t + 10)))).toMatchObject({ ok: true });

    const m = await metricsFor(db, sharedRedis(), testPrefix());
    const s = await scrape(m);
    expect(byLabel(s, 'rostermatch_runs', 'state', { partner: 'north' })).toEqual({ received: 0, running: 0, parsing: 0, matching: 1, completed: 2, failed: 1 });
    expect(byLabel(s, 'rostermatch_runs', 'state', { partner: 'south' })).toEqual({ received: 1, running: 0, parsing: 0, matching: 0, completed: 1, failed: 0 });
    expect(byLabel(s, 'rostermatch_rows', 'outcome', { partner: 'north' })).toEqual({ matched: 8, ambiguous: 1, possible: 2, no_match: 5, invalid: 2 });
    expect(byLabel(s, 'rostermatch_rows', 'outcome', { partner: 'south' })).toEqual({ matched: 7, ambiguous: 0, possible: 0, no_match: 0, invalid: 0 });
    expect(byLabel(s, 'rostermatch_review_open', 'outcome', { partner: 'north' })).toEqual({ possible: 1, ambiguous: 1 });
    expect(byLabel(s, 'rostermatch_review_open', 'outcome', { partner: 'south' })).toEqual({});
    expect(byLabel(s, 'rostermatch_scrape_error', 'source')).toEqual({ runs: 0, rows: 0, review: 0, queues: 0 });

    // The gauges follow the database: a run that moves on moves in the next scrape.
    await setRunState(db, 's1', 'parsing', iso(t + 20));
    const again = await scrape(m);
    expect(valueOf(again, 'rostermatch_runs', { partner: 'south', state: 'received' })).toBe(0);
    expect(valueOf(again, 'rostermatch_runs', { partner: 'south', state: 'parsing' })).toBe(1);
    // No patient or file data in any label.
    for (const x of again) expect(Object.values(x.labels).join(' ')).not.toMatch(/p[1-5]\b|rec-|\.csv/);
  });
});

describe('metrics from the queues', () => {
  it('reports queue depth per queue and state, and counts jobs that failed for good in any process', async () => {
    const { db } = await tempDb();
    const prefix = testPrefix();
    const m = await metricsFor(db, sharedRedis(), prefix);
    const before = await scrape(m);
    expect(byLabel(before, 'rostermatch_job_failures_total', 'queue')).toEqual({ intake: 0, match: 0, finalise: 0, export: 0 });
    expect(byLabel(before, 'rostermatch_queue_jobs', 'state', { queue: 'match' })).toMatchObject({ waiting: 0, active: 0, failed: 0 });

    // A worker of "another process" whose match jobs throw: one job gets 1 attempt, one gets 2.
    worker(QUEUE.match, prefix, async (data) => {
      throw new Error(`chunk of ${data.runId} broke`);
    });
    const match = queue(QUEUE.match, prefix);
    await match.add('match', { runId: 'a' }, { attempts: 1 });
    await match.add('match', { runId: 'b' }, { attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    const seen = await waitFor('both match jobs to fail', async () => {
      const s = await scrape(m);
      return valueOf(s, 'rostermatch_queue_jobs', { queue: 'match', state: 'failed' }) === 2 && valueOf(s, 'rostermatch_job_failures_total', { queue: 'match' }) === 2 && s;
    }, 15_000);
    expect(valueOf(seen, 'rostermatch_queue_workers', { queue: 'match' })).toBeGreaterThan(0);
    expect(valueOf(seen, 'rostermatch_queue_workers', { queue: 'intake' })).toBe(0);
    // A retried attempt is not a failure: still two, not three.
    await new Promise((r) => setTimeout(r, 300));
    expect(valueOf(await scrape(m), 'rostermatch_job_failures_total', { queue: 'match' })).toBe(2);

    // An intake that fails for good on its first attempt (a bad file).
    worker(QUEUE.intake, prefix, async () => {
      throw new UnrecoverableError('bad file');
    });
    const intake = queue(QUEUE.intake, prefix);
    await intake.add('intake', { runId: 'c' }, { attempts: 5 });
    await waitFor('the intake failure to be counted', async () => valueOf(await scrape(m), 'rostermatch_job_failures_total', { queue: 'intake' }) === 1, 15_000);
    await intake.pause();
    await intake.add('intake', { runId: 'd' });
    await intake.add('intake', { runId: 'e' });
    await intake.add('intake', { runId: 'f' }, { delay: 60_000 });
    const finalise = queue(QUEUE.finalise, prefix);
    await finalise.add('finalise', { runId: 'g' }, { priority: 3 });

    const s = await scrape(m);
    expect(byLabel(s, 'rostermatch_queue_jobs', 'state', { queue: 'intake' })).toEqual({ waiting: 2, active: 0, delayed: 1, prioritized: 0, 'waiting-children': 0, completed: 0, failed: 1 });
    // BullMQ 6 keeps a paused queue's jobs in waiting; rostermatch_queue_paused says it is paused.
    expect(valueOf(s, 'rostermatch_queue_paused', { queue: 'intake' })).toBe(1);
    expect(valueOf(s, 'rostermatch_queue_paused', { queue: 'match' })).toBe(0);
    expect(byLabel(s, 'rostermatch_queue_jobs', 'state', { queue: 'finalise' })).toMatchObject({ prioritized: 1, waiting: 0, failed: 0 });
    expect(byLabel(s, 'rostermatch_queue_jobs', 'state', { queue: 'match' })).toMatchObject({ failed: 2, waiting: 0, active: 0, delayed: 0 });
    expect(byLabel(s, 'rostermatch_job_failures_total', 'queue')).toEqual({ intake: 1, match: 2, finalise: 0, export: 0 });
    expect(byLabel(s, 'rostermatch_scrape_error', 'source')).toEqual({ runs: 0, rows: 0, review: 0, queues: 0 });
  });

  it('observes each stage of a run once, when its finalise job completes', async () => {
    const { db } = await tempDb();
    const prefix = testPrefix();
    const m = await metricsFor(db, sharedRedis(), prefix);
    const bucket = (s: Sample[], stage: string, le: string) => valueOf(s, 'rostermatch_stage_duration_seconds_bucket', { stage, le });
    const countOf = (s: Sample[], stage: string) => valueOf(s, 'rostermatch_stage_duration_seconds_count', { stage });
    const sumOf = (s: Sample[], stage: string) => valueOf(s, 'rostermatch_stage_duration_seconds_sum', { stage })!;
    expect(countOf(await scrape(m), 'total')).toBe(0);

    // The run was received a minute ago, parsed for 3 s and is now matching.
    const t0 = Date.now() - 60_000;
    await addRun(db, 'r1', 'north', [['received', iso(t0)], ['parsing', iso(t0 + 2_000)], ['matching', iso(t0 + 5_000)]]);
    await addRun(db, 'r2', 'north', [['received', iso(t0)], ['parsing', iso(t0 + 1_000)], ['matching', iso(t0 + 2_000)]]);
    await addRun(db, 'r3', 'north', [['received', iso(t0)], ['parsing', iso(t0 + 1_000)], ['matching', iso(t0 + 2_000)]]);
    // The finalise worker records the outcome as serve's does, or finds the rows missing and fails the run.
    worker(QUEUE.finalise, prefix, async (data) => {
      const run = await getRun(db, data.runId!);
      if (run?.state !== 'matching') return;
      if (data.fail) await failRun(db, run.id, { code: 'MATCH_INCOMPLETE', message: 'rows missing' }, new Date().toISOString());
      else await completeRun(db, run.id, { finishedAt: new Date().toISOString(), groupId: 'g', counts: counts({ matched: 1 }), resultPath: '/out/r.csv' });
    });
    const finalise = queue(QUEUE.finalise, prefix);
    await finalise.add('finalise', { runId: 'r1' }, { jobId: finaliseJobId('r1') });

    const s = await waitFor('the run to be observed', async () => {
      const x = await scrape(m);
      return countOf(x, 'total') === 1 && x;
    }, 15_000);
    for (const stage of ['queued', 'parsing', 'matching', 'publishing', 'total']) expect(countOf(s, stage)).toBe(1);
    expect(sumOf(s, 'queued')).toBe(2);
    expect(sumOf(s, 'parsing')).toBe(3);
    expect(sumOf(s, 'matching')).toBeGreaterThanOrEqual(55);
    expect(sumOf(s, 'matching')).toBeLessThan(75);
    expect(sumOf(s, 'publishing')).toBeGreaterThanOrEqual(0);
    expect(sumOf(s, 'publishing')).toBeLessThan(5);
    expect(sumOf(s, 'total')).toBeCloseTo(sumOf(s, 'queued') + sumOf(s, 'parsing') + sumOf(s, 'matching') + sumOf(s, 'publishing'), 2);
    expect([bucket(s, 'queued', '1'), bucket(s, 'queued', '5'), bucket(s, 'queued', '+Inf')]).toEqual([0, 1, 1]);
    expect([bucket(s, 'total', '30'), bucket(s, 'total', '120')]).toEqual([0, 1]);

    // A finalise job that runs again for the completed run, and one whose run fails: not observed.
    await finalise.add('finalise', { runId: 'r1' }, { jobId: 'finalise-again.r1' });
    await finalise.add('finalise', { runId: 'r2', fail: true }, { jobId: finaliseJobId('r2') });
    await finalise.add('finalise', { runId: 'r3' }, { jobId: finaliseJobId('r3') });
    const after = await waitFor('the next run to be observed', async () => {
      const x = await scrape(m);
      return countOf(x, 'total') === 2 && x;
    }, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    const settled = await scrape(m);
    expect(countOf(settled, 'total')).toBe(2);
    expect(countOf(settled, 'queued')).toBe(2);
    expect(sumOf(after, 'parsing')).toBe(3 + 1);
    expect(valueOf(settled, 'rostermatch_job_failures_total', { queue: 'finalise' })).toBe(0);
    expect(byLabel(settled, 'rostermatch_runs', 'state', { partner: 'north' })).toMatchObject({ completed: 2, failed: 1, matching: 0 });
  });
});

describe('metrics when a source is down', () => {
  it('still reports the database when Redis is unreachable, and marks the queues as not scraped', async () => {
    const { db } = await tempDb();
    await addRun(db, 'n1', 'north', [['received', '2026-11-20T10:00:00.000Z']]);
    const port = await freePort();
    const connection = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    connection.on('error', () => {});
    onCleanup(async () => connection.disconnect());

    const started = Date.now();
    const m = await metricsFor(db, connection, testPrefix(), 1000);
    const s = await scrape(m);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(valueOf(s, 'rostermatch_runs', { partner: 'north', state: 'received' })).toBe(1);
    expect(byLabel(s, 'rostermatch_scrape_error', 'source')).toEqual({ runs: 0, rows: 0, review: 0, queues: 1 });
    expect(s.filter((x) => x.name === 'rostermatch_queue_jobs' || x.name === 'rostermatch_queue_workers')).toEqual([]);
    expect(byLabel(s, 'rostermatch_job_failures_total', 'queue')).toEqual({ intake: 0, match: 0, finalise: 0, export: 0 });
    const closing = Date.now();
    await m.close();
    expect(Date.now() - closing).toBeLessThan(3000);
  });

  it('still reports the queues when the database is unreachable, and marks its families as not scraped', async () => {
    const port = await freePort();
    const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'nobody', database: 'none', connectionTimeoutMillis: 500 });
    pool.on('error', () => {});
    onCleanup(() => pool.end());
    const db: Queryable = { query: async <T>(sql: string, params?: unknown[]) => ({ rows: (await pool.query(sql, params)).rows as T[] }), exec: (sql) => pool.query(sql), copyIn: () => Promise.reject(new Error('metrics never copy')) };

    const m = await metricsFor(db, sharedRedis(), testPrefix(), 1000);
    const s = await scrape(m);
    expect(byLabel(s, 'rostermatch_scrape_error', 'source')).toEqual({ runs: 1, rows: 1, review: 1, queues: 0 });
    expect(s.filter((x) => ['rostermatch_runs', 'rostermatch_rows', 'rostermatch_review_open'].includes(x.name))).toEqual([]);
    expect(valueOf(s, 'rostermatch_queue_jobs', { queue: 'intake', state: 'waiting' })).toBe(0);
  });

  it('serves the default process metrics under the rostermatch_ prefix when asked', async () => {
    const { db } = await tempDb();
    const m = await createMetrics({ db, connection: sharedRedis(), prefix: testPrefix() });
    onCleanup(() => m.close());
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = await scrape(m);
    expect(valueOf(s, 'rostermatch_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(s.some((x) => x.name.startsWith('rostermatch_nodejs_'))).toBe(true);
  });
});
