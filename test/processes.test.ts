/**
 * The daemon as operators run it: separate processes sharing Redis and PostgreSQL. A worker is
 * killed with SIGKILL mid-run, Redis is restarted mid-run, two workers share one file, and
 * SIGTERM shuts a busy serve down in bounded time. Each interrupted run must end exactly like an
 * uninterrupted one: the same result file byte for byte, the same Group member for member,
 * changed once.
 */
import { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, finaliseJobId, QUEUE } from '../src/queue/index.ts';
import {
  chunksBy,
  chunksDone,
  deployment,
  expectSameAsUninterrupted as sameAs,
  onCleanup,
  ownRedis,
  REDIS_URL,
  runState,
  SAMPLE,
  uninterrupted,
  waitFor,
  type Deployment,
  type Proc,
  type Reference,
} from './daemon-helpers.ts';

let reference: Reference;
beforeAll(async () => {
  [reference] = (await uninterrupted([{ file: SAMPLE.roster, pipelineFile: `pipelines/${SAMPLE.partner}.yaml` }])) as [Reference];
}, 120_000);

const expectSameAsUninterrupted = (d: Deployment) => sameAs(d, reference);

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
    const d = await deployment({ redisUrl: redis.url });
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    await d.drop_();
    await waitFor('some chunks', async () => (await chunksDone(d.db)) >= 4);
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
    const d = await deployment({ redisUrl: redis.url });
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
    await waitFor('some chunks', async () => (await chunksDone(d.db)) >= 2);
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
