/**
 * The daemon as operators run it: separate processes sharing Redis and PostgreSQL. A worker is
 * killed with SIGKILL mid-run, Redis is restarted mid-run, two workers share one file, and
 * SIGTERM shuts a busy serve down in bounded time. Each interrupted run must end exactly like an
 * uninterrupted one: the same result file byte for byte, the same Group member for member,
 * changed once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, finaliseJobId, QUEUE } from '../src/queue/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { openEmbedded, openPostgres, type Db } from '../src/store/index.ts';
import { quietLog, tempDir, tempPgDatabase } from './helpers.ts';
import { onCleanup, ownRedis, pipelinesDir, REDIS_URL, runState, spawnCli, testPrefix, waitFor, type Proc } from './daemon-helpers.ts';

const ROSTER = 'samples/rosters/district7-fall.csv';
const PARTNER = 'school-district-7';
const GROUP = 'school-district-7-students';

let reference: { results: Buffer; members: string[] };

beforeAll(async () => {
  // The uninterrupted run, inline on the embedded store: what every interrupted run must equal.
  const dir = await fs.mkdtemp('/tmp/rm-ref-');
  const db = await openEmbedded(path.join(dir, 'db'));
  await loadIndexFile(db, 'samples/iis/Patient.ndjson');
  const out = await runFile(db, quietLog, {
    file: ROSTER,
    pipeline: await loadPartnerPipeline('pipelines', PARTNER),
    outDir: path.join(dir, 'out'),
    exportsDir: path.join(dir, 'exports'),
  });
  if (out.kind !== 'completed') throw new Error('reference run did not complete');
  const { rows } = await db.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1 ORDER BY patient_id', [GROUP]);
  reference = { results: await fs.readFile(out.resultPath), members: rows.map((r) => r.patient_id) };
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
}, 120_000);

interface Deployment {
  env: Record<string, string>;
  drop: string;
  dir: string;
  db: Db;
  serve(args?: string[]): Proc;
  worker(args?: string[]): Proc;
  drop_(): Promise<void>;
}

async function deployment(redisUrl = REDIS_URL, chunkDelayMs = 400): Promise<Deployment> {
  const dir = await tempDir();
  const databaseUrl = await tempPgDatabase();
  const db = await openPostgres(databaseUrl);
  onCleanup(() => db.close());
  await loadIndexFile(db, 'samples/iis/Patient.ndjson');
  const pipelines = await pipelinesDir(dir);
  const drop = path.join(dir, 'drop');
  await fs.mkdir(path.join(drop, PARTNER, 'inbound'), { recursive: true });
  const env = {
    REDIS_URL: redisUrl,
    DATABASE_URL: databaseUrl,
    ROSTERMATCH_QUEUE_PREFIX: testPrefix(redisUrl),
    ROSTERMATCH_DATA: path.join(dir, 'data'),
    ROSTERMATCH_TEST_CHUNK_DELAY_MS: String(chunkDelayMs),
  };
  const fast = ['--lock-ms', '2000', '--stalled-ms', '1000'];
  return {
    env,
    drop,
    dir,
    db,
    serve: (args = []) =>
      spawnCli(['serve', '--drop-root', drop, '--pipelines', pipelines, '--port', '0', '--quiet-ms', '300', '--scan-ms', '200', '--reconcile-ms', '1000', '--chunk-rows', '50', ...fast, ...args], env),
    worker: (args = []) => spawnCli(['worker', ...fast, ...args], env),
    drop_: () => fs.copyFile(ROSTER, path.join(drop, PARTNER, 'inbound', path.basename(ROSTER))),
  };
}

async function chunksBy(db: Db): Promise<Map<string, number>> {
  const { rows } = await db.query<{ worker: string; n: number }>('SELECT worker, count(*)::int AS n FROM run_chunk GROUP BY worker');
  return new Map(rows.map((r) => [r.worker, r.n]));
}

async function expectSameAsUninterrupted(d: Deployment): Promise<void> {
  const file = path.join(d.drop, PARTNER, 'outbound', 'district7-fall.results.csv');
  await waitFor('the result file', () => fs.access(file).then(() => true));
  const results = await fs.readFile(file);
  expect(results.equals(reference.results)).toBe(true);
  const members = (await d.db.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1 ORDER BY patient_id', [GROUP])).rows.map((r) => r.patient_id);
  expect(members).toEqual(reference.members);
  const events = await d.db.query<{ action: string; n: number; runs: number }>(
    'SELECT action, count(*)::int AS n, count(DISTINCT run_id)::int AS runs FROM group_event WHERE group_id = $1 GROUP BY action',
    [GROUP],
  );
  expect(events.rows).toEqual([{ action: 'added', n: reference.members.length, runs: 1 }]);
  const rows = await d.db.query<{ n: number; distinct_rows: number }>('SELECT count(*)::int AS n, count(DISTINCT row_index)::int AS distinct_rows FROM run_row');
  expect(rows.rows[0]).toEqual({ n: 1200, distinct_rows: 1200 });
}

const pidOf = (p: Proc) => `:${p.child.pid}`;

describe('the daemon across processes', () => {
  it('finishes a run on another worker after one is killed with SIGKILL mid-run, as if nothing happened', async () => {
    const d = await deployment();
    const serve = d.serve(['--concurrency', '0']);
    await serve.waitForOutput(/health at/);
    const a = d.worker(['--concurrency', '2']);
    await a.waitForOutput(/taking match jobs/);
    await d.drop_();
    await waitFor('worker A to finish some chunks', async () => [...(await chunksBy(d.db)).entries()].some(([w, n]) => w.endsWith(pidOf(a)) && n >= 3));
    a.child.kill('SIGKILL');
    await a.exited;
    const b = d.worker(['--concurrency', '2']);
    await waitFor('the run to complete', async () => (await runState(d.db, 'district7-fall.csv'))?.state === 'completed', 120_000);
    const by = await chunksBy(d.db);
    expect([...by.keys()].some((w) => w.endsWith(pidOf(b)))).toBe(true);
    expect([...by.values()].reduce((x, y) => x + y, 0)).toBe(24);
    await expectSameAsUninterrupted(d);
  });

  it('finishes a run when Redis restarts empty mid-run, re-deriving the jobs from the database', async () => {
    const redis = await ownRedis();
    const d = await deployment(redis.url);
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    await d.drop_();
    await waitFor('some chunks', async () => [...(await chunksBy(d.db)).values()].reduce((x, y) => x + y, 0) >= 4);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.start();
    await waitFor('the run to complete', async () => (await runState(d.db, 'district7-fall.csv'))?.state === 'completed', 120_000);
    expect(serve.output()).toMatch(/flow missing from Redis; re-adding/);
    await expectSameAsUninterrupted(d);
  });

  it('splits one file\'s chunks between two worker processes', async () => {
    const d = await deployment();
    const serve = d.serve(['--concurrency', '0']);
    await serve.waitForOutput(/health at/);
    const w1 = d.worker(['--concurrency', '1']);
    const w2 = d.worker(['--concurrency', '1']);
    await Promise.all([w1.waitForOutput(/taking match jobs/), w2.waitForOutput(/taking match jobs/)]);
    await d.drop_();
    await waitFor('the run to complete', async () => (await runState(d.db, 'district7-fall.csv'))?.state === 'completed', 120_000);
    const by = await chunksBy(d.db);
    const n1 = [...by.entries()].find(([w]) => w.endsWith(pidOf(w1)))?.[1] ?? 0;
    const n2 = [...by.entries()].find(([w]) => w.endsWith(pidOf(w2)))?.[1] ?? 0;
    expect(n1).toBeGreaterThan(0);
    expect(n2).toBeGreaterThan(0);
    expect(n1 + n2).toBe(24);
    await expectSameAsUninterrupted(d);
    // Progress is reported on the run's finalise job as chunks finish.
    const connection = connectRedis(REDIS_URL);
    const finalise = new Queue(QUEUE.finalise, { connection, prefix: d.env.ROSTERMATCH_QUEUE_PREFIX });
    onCleanup(async () => {
      await finalise.close();
      connection.disconnect();
    });
    const run = (await runState(d.db, 'district7-fall.csv'))!;
    expect((await finalise.getJob(finaliseJobId(run.id)))?.progress).toBe(100);
  });

  it('shuts down within a bounded time even while Redis is unreachable', async () => {
    const redis = await ownRedis();
    const d = await deployment(redis.url);
    const serve = d.serve(['--concurrency', '2', '--grace-ms', '2000']);
    await serve.waitForOutput(/health at/);
    await redis.stop();
    const t0 = Date.now();
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('shuts down on SIGTERM within a bounded time, exit 0, and a restarted serve finishes the run', async () => {
    const d = await deployment();
    const first = d.serve(['--concurrency', '2', '--grace-ms', '3000']);
    await first.waitForOutput(/health at/);
    await d.drop_();
    await waitFor('some chunks', async () => [...(await chunksBy(d.db)).values()].reduce((x, y) => x + y, 0) >= 2);
    const t0 = Date.now();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await runState(d.db, 'district7-fall.csv'))?.state).toBe('matching');
    const second = d.serve(['--concurrency', '2']);
    await second.waitForOutput(/health at/);
    await waitFor('the run to complete', async () => (await runState(d.db, 'district7-fall.csv'))?.state === 'completed', 120_000);
    await expectSameAsUninterrupted(d);
  });
});
