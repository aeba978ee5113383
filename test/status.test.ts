/**
 * `rostermatch status` and what it stands on: queueStatus on real Redis, listRuns on both stores,
 * the real CLI, and the embedded store's one-process lock against a real serve process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { QUEUE, queueStatus, startWorkers, type QueueStatus } from '../src/queue/index.ts';
import { createRun, failRun, listRuns, openEmbedded, openPostgres, recordChunk, setRunState, type Db } from '../src/store/index.ts';
import type { StatusReport } from '../src/cli/status.ts';
import { startServe } from '../src/service/index.ts';
import { freePort, onCleanup, pipelinesDir, REDIS_URL, spawnCli, testPrefix, waitFor } from './daemon-helpers.ts';
import { quietLog, runCli as cli, seedDataDir, STORES, tempDb, tempDir, tempPgDatabase } from './helpers.ts';



function redis(): Redis {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  onCleanup(async () => r.disconnect());
  return r;
}

function queue(name: string, prefix: string): Queue {
  const q = new Queue(name, { connection: redis(), prefix });
  onCleanup(() => q.close());
  return q;
}

const byRole = (s: QueueStatus[] | null, role: string) => s!.find((q) => q.role === role)!;

/** A run of partner `p` received `at` (seconds into 2026-11-01), in `state`. */
async function run(db: Db, id: string, partner: string, at: number, state: 'completed' | 'failed' | 'matching' | 'received' = 'completed') {
  const receivedAt = new Date(Date.UTC(2026, 10, 1, 0, 0, at)).toISOString();
  const r = await createRun(db, { id, partner, fileName: `${id}.csv`, fileSha256: id, receivedAt, state: 'received', pipeline: {} });
  expect(r.created).toBe(true);
  if (state === 'matching') await setRunState(db, id, 'matching', receivedAt, { rowCount: 4000, chunkCount: 4 });
  if (state === 'failed') await failRun(db, id, { code: 'FILE_MALFORMED_CSV', message: 'broken' }, receivedAt);
  if (state === 'completed') {
    await db.query(`UPDATE run SET state = 'completed', finished_at = $2, counts = $3 WHERE id = $1`, [
      id,
      new Date(Date.parse(receivedAt) + 1500).toISOString(),
      JSON.stringify({ matched: 7, ambiguous: 1, possible: 2, no_match: 3, invalid: 0 }),
    ]);
  }
}

describe('queueStatus', () => {
  it('counts every queue\'s jobs by state and names the connected workers', async () => {
    const prefix = testPrefix();
    const intake = queue(QUEUE.intake, prefix);
    await intake.add('a', { runId: 'a' });
    await intake.add('b', { runId: 'b' });
    await intake.add('c', { runId: 'c' }, { delay: 60_000 });
    await intake.add('d', { runId: 'd' }, { priority: 3 });

    // Finalise: a real worker completes one job and fails another; then the queue is paused.
    const finalise = queue(QUEUE.finalise, prefix);
    const finisher = new Worker(
      QUEUE.finalise,
      async (job) => {
        if (job.data.fail) throw new Error('no');
      },
      { connection: redis(), prefix, name: 'test-finaliser' },
    );
    onCleanup(() => finisher.close());
    await finalise.add('ok', { fail: false });
    await finalise.add('bad', { fail: true }, { attempts: 1 });
    const r = redis();
    await waitFor('finalise jobs to finish', async () => {
      const c = byRole(await queueStatus(r, prefix), 'finalise').counts;
      return c.completed === 1 && c.failed === 1;
    });
    await finalise.pause();

    // Match: rostermatch's own workers, named <host>:<pid> by startWorkers.
    const { db } = await tempDb('postgres');
    const set = startWorkers({ db, log: quietLog, workerId: `${os.hostname()}:${process.pid}` }, { redisUrl: REDIS_URL, prefix, roles: ['match'], concurrency: 1 });
    onCleanup(async () => void (await set.close(1000)));
    await set.workers[0]!.waitUntilReady();

    const status = await waitFor('the match worker to show', async () => {
      const s = await queueStatus(r, prefix);
      return byRole(s, 'match').workers.length > 0 && s;
    });
    expect(status.map((q) => q.role)).toEqual(['intake', 'match', 'finalise', 'export']);
    expect(byRole(status, 'intake')).toMatchObject({
      queue: QUEUE.intake,
      paused: false,
      counts: { waiting: 2, active: 0, delayed: 1, prioritized: 1, 'waiting-children': 0, completed: 0, failed: 0 },
      workers: [],
    });
    expect(byRole(status, 'finalise')).toMatchObject({ paused: true, counts: { completed: 1, failed: 1, waiting: 0 } });
    expect(byRole(status, 'finalise').workers.map((w) => w.name)).toEqual(['test-finaliser']);
    const [w] = byRole(status, 'match').workers;
    expect(w).toMatchObject({ name: `${os.hostname()}:${process.pid}` });
    expect(w!.addr).toMatch(/:\d+$/);
    expect(w!.ageSeconds).toBeGreaterThanOrEqual(0);

    // A prefix nobody uses: all zero, nobody working — not another deployment's numbers.
    const other = await queueStatus(r, `${prefix}-other`);
    expect(other.every((q) => Object.values(q.counts).every((n) => n === 0) && q.workers.length === 0)).toBe(true);
    // The caller's connection is still open: queueStatus closed only its own Queue objects.
    expect(await r.ping()).toBe('PONG');
  });
});

describe.each(STORES)('listRuns (%s)', (kind) => {
  it('lists runs newest first, filtered by partner and state, a page at a time', async () => {
    const { db } = await tempDb(kind);
    await run(db, 'r1', 'north', 1);
    await run(db, 'r2', 'south', 2, 'failed');
    await run(db, 'r3', 'north', 3, 'matching');
    // Two at the same instant: id breaks the tie.
    await run(db, 'r4a', 'north', 4);
    await run(db, 'r4b', 'south', 4);
    await run(db, 'r5', 'north', 5, 'received');

    const ids = (rs: { id: string }[]) => rs.map((r) => r.id);
    expect(ids(await listRuns(db))).toEqual(['r5', 'r4b', 'r4a', 'r3', 'r2', 'r1']);
    expect(ids(await listRuns(db, { limit: 2 }))).toEqual(['r5', 'r4b']);
    expect(ids(await listRuns(db, { partner: 'north' }))).toEqual(['r5', 'r4a', 'r3', 'r1']);
    expect(ids(await listRuns(db, { state: 'completed' }))).toEqual(['r4b', 'r4a', 'r1']);
    expect(ids(await listRuns(db, { state: ['failed', 'matching'] }))).toEqual(['r3', 'r2']);
    expect(ids(await listRuns(db, { partner: 'south', state: 'completed' }))).toEqual(['r4b']);
    expect(await listRuns(db, { partner: 'nobody' })).toEqual([]);

    // Paging: by instant, and by keyset cursor (which splits the two runs of the same instant).
    const page1 = await listRuns(db, { limit: 2 });
    const page2 = await listRuns(db, { limit: 2, before: page1[1]! });
    expect(ids(page2)).toEqual(['r4a', 'r3']);
    expect(ids(await listRuns(db, { limit: 10, before: page2[1]! }))).toEqual(['r2', 'r1']);
    expect(ids(await listRuns(db, { before: '2026-11-01T00:00:04Z' }))).toEqual(['r3', 'r2', 'r1']);

    const [r3] = await listRuns(db, { state: 'matching' });
    expect(r3).toMatchObject({ id: 'r3', partner: 'north', fileName: 'r3.csv', state: 'matching', rowCount: 4000, chunkCount: 4, receivedAt: '2026-11-01T00:00:03.000Z' });
  });
});

describe('rostermatch status', () => {
  /** Three runs, one of them half matched, in a data folder's embedded store or on the PostgreSQL server. */
  async function dataWithRuns(kind: 'pglite' | 'postgres'): Promise<{ data: string; databaseUrl: string }> {
    const data = path.join(await tempDir(), 'data');
    const databaseUrl = kind === 'postgres' ? await tempPgDatabase() : '';
    if (kind === 'pglite') await seedDataDir(data); // a copy of the run's migrated template store
    const db = kind === 'postgres' ? await openPostgres(databaseUrl) : await openEmbedded(path.join(data, 'db'));
    await run(db, 'aaaaaaaa-1', 'north', 1);
    await run(db, 'bbbbbbbb-2', 'south', 2, 'failed');
    await run(db, 'cccccccc-3', 'north', 3, 'matching');
    await recordChunk(db, 'cccccccc-3', 0, 'w1', new Date().toISOString());
    await recordChunk(db, 'cccccccc-3', 2, 'w1', new Date().toISOString());
    await db.close();
    return { data, databaseUrl };
  }

  it('prints queue depths, workers and the last runs, as text and as JSON', async () => {
    const { data } = await dataWithRuns('pglite');
    const prefix = testPrefix();
    const intake = queue(QUEUE.intake, prefix);
    await intake.add('x', { runId: 'x' });
    await intake.add('y', { runId: 'y' }, { delay: 60_000 });
    const env = { ROSTERMATCH_DATA: data, ROSTERMATCH_QUEUE_PREFIX: prefix, REDIS_URL };

    const j = await cli(['status', '--json'], env);
    expect(j.code, j.stderr).toBe(0);
    const report = JSON.parse(j.stdout) as StatusReport;
    expect(report.redis).toMatchObject({ ok: true, prefix });
    if (!report.redis.ok || !report.store.ok) throw new Error('expected both parts');
    expect(byRole(report.redis.queues, 'intake').counts).toMatchObject({ waiting: 1, delayed: 1 });
    expect(report.store.kind).toBe('pglite');
    expect(report.store.runs.map((r) => [r.id, r.state, r.chunksDone, r.chunkCount])).toEqual([
      ['cccccccc-3', 'matching', 2, 4],
      ['bbbbbbbb-2', 'failed', null, null],
      ['aaaaaaaa-1', 'completed', null, null],
    ]);
    expect(report.store.runs[1]!.error).toEqual({ code: 'FILE_MALFORMED_CSV', message: 'broken' });
    expect(report.store.runs[2]).toMatchObject({ durationMs: 1500, counts: { matched: 7, possible: 2 } });

    const limited = JSON.parse((await cli(['status', '--json', '--limit', '1', '--partner', 'north'], env)).stdout) as StatusReport;
    expect(limited.store.ok && limited.store.runs.map((r) => r.id)).toEqual(['cccccccc-3']);

    const t = await cli(['status'], env);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`^queues \\(redis://[^,]+, prefix ${prefix}\\)`));
    expect(t.stdout).toMatch(/^ {2}queue +waiting +active +delayed +prioritized +waiting-children +completed +failed$/m);
    expect(t.stdout).toMatch(/^ {2}intake +1 +0 +1 +0 +0 +0 +0$/m);
    expect(t.stdout).toMatch(/^workers\n {2}none connected$/m);
    expect(t.stdout).toMatch(/^ {2}cccccccc +north +cccccccc-3\.csv +matching +2026-11-01 00:00:03Z .* 2\/4 chunks \(50%\) /m);
    expect(t.stdout).toMatch(/^ {2}bbbbbbbb +south .* failed .* FILE_MALFORMED_CSV$/m);
    expect(t.stdout).toMatch(/^ {2}aaaaaaaa +north +aaaaaaaa-1\.csv +completed +2026-11-01 00:00:01Z +7 +1 +2 +3 +0 +1\.5 s$/m);
  });

  it('says Redis is unreachable, fast, and still lists the runs', async () => {
    const { data, databaseUrl } = await dataWithRuns('postgres');
    const port = await freePort();
    const t0 = performance.now();
    const r = await cli(['status'], { ROSTERMATCH_DATA: data, DATABASE_URL: databaseUrl, REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`Redis unreachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
    expect(r.stdout).toMatch(/^last runs \(postgres:\/\/.*\/rm_test_\w+\)$/m);
    expect(r.stdout).toMatch(/^ {2}cccccccc +north .* 2\/4 chunks \(50%\) /m);
    await expect(fs.access(path.join(data, 'db'))).rejects.toThrow(); // no embedded store was made
  });

  it('gives up on a database server that accepts but never answers, and still shows the queues', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    onCleanup(async () => void silent.close());
    const port = (silent.address() as net.AddressInfo).port;
    const r = await cli(['status'], { DATABASE_URL: `postgres://x@127.0.0.1:${port}/db`, ROSTERMATCH_QUEUE_PREFIX: testPrefix(), REDIS_URL });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^queues \(/m);
    expect(r.stdout).toMatch(/runs unavailable: .*timeout/i);
  });
});

describe('the embedded store lock', () => {
  it('lets only one process open the store: serve holds it, others get STORE_BUSY naming its pid, status still shows the queues', async () => {
    const dir = await tempDir();
    const data = path.join(dir, 'data');
    const prefix = testPrefix();
    const env = { ROSTERMATCH_DATA: data, ROSTERMATCH_QUEUE_PREFIX: prefix, REDIS_URL, DATABASE_URL: '' };
    await seedDataDir(data); // serve opens a copy of the run's template store rather than creating one
    const serve = spawnCli(['serve', '--drop-root', path.join(dir, 'drop'), '--pipelines', await pipelinesDir(dir), '--port', '0', '--concurrency', '1'], env);
    await serve.waitForOutput(/serving /, 60_000);
    const pid = serve.child.pid!;
    expect(await fs.readFile(path.join(data, 'db', 'rostermatch.pid'), 'utf8')).toBe(`${pid}\n`);

    // In this process.
    await expect(openEmbedded(path.join(data, 'db'))).rejects.toThrow(new RegExp(`^STORE_BUSY: .* held by process ${pid} .*DATABASE_URL`));
    // A one-shot command beside serve.
    const match = await cli(['match', 'samples/rosters/district7-fall.csv', '--partner', 'school-district-7'], env);
    expect(match.code).toBe(1);
    expect(match.stderr).toMatch(new RegExp(`^rostermatch: STORE_BUSY: the embedded store in \\S+ is held by process ${pid} `));
    // status: the queues and serve's workers from Redis, the runs said to be unavailable, exit 0.
    const st = await cli(['status', '--json'], env);
    expect(st.code, st.stderr).toBe(0);
    const report = JSON.parse(st.stdout) as StatusReport;
    expect(report.store).toMatchObject({ ok: false, error: { code: 'STORE_BUSY' } });
    expect(!report.store.ok && report.store.error.message).toMatch(`held by process ${pid} `);
    if (!report.redis.ok) throw new Error(report.redis.error);
    for (const role of ['intake', 'match', 'finalise', 'export']) expect(byRole(report.redis.queues, role).workers.map((w) => w.name), role).toEqual([`${os.hostname()}:${pid}`]);
    const text = await cli(['status'], env);
    expect(text.stdout).toMatch(new RegExp(`^ {2}match +${os.hostname()}:${pid} `, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^runs unavailable: STORE_BUSY: .* held by process ${pid} `, 'm'));

    // serve stops: the lock goes with it, and the store opens again.
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    await expect(fs.access(path.join(data, 'db', 'rostermatch.pid'))).rejects.toThrow();
    const db = await openEmbedded(path.join(data, 'db'));
    await db.close();
  }, 120_000);

  it('takes over a stale lock, refuses a second open in the same process, and reopens after close', async () => {
    const dir = path.join(await tempDir(), 'db');
    const lock = path.join(dir, 'rostermatch.pid');
    // The pid of a process that has exited.
    const gone = spawn(process.execPath, ['-e', '']);
    const deadPid = gone.pid!;
    await new Promise((r) => gone.once('exit', r));
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(lock, `${deadPid}\n`);

    const db = await openEmbedded(dir);
    expect(await fs.readFile(lock, 'utf8')).toBe(`${process.pid}\n`);
    await expect(openEmbedded(dir)).rejects.toThrow(new RegExp(`^STORE_BUSY: .* held by process ${process.pid} \\(this process`));
    await db.query('CREATE TABLE kept (x int)');
    await db.close();
    await expect(fs.access(lock)).rejects.toThrow();

    const again = await openEmbedded(dir);
    expect((await again.query<{ n: number }>('SELECT count(*)::int AS n FROM kept')).rows).toEqual([{ n: 0 }]);
    await again.close();
    await again.close(); // idempotent
  }, 60_000);

  it('serve waits for a store another command holds, and gives up with STORE_BUSY after its wait', async () => {
    const dir = await tempDir();
    const data = path.join(dir, 'data');
    await seedDataDir(data); // a copy of the run's migrated template store
    const held = await openEmbedded(path.join(data, 'db'));
    const opts = { dropRoot: path.join(dir, 'drop'), dataDir: data, pipelinesDir: await pipelinesDir(dir), redisUrl: REDIS_URL, queuePrefix: testPrefix(), port: 0, log: quietLog };
    await expect(startServe({ ...opts, storeWaitMs: 300 })).rejects.toThrow(/STORE_BUSY/);

    const starting = startServe({ ...opts, storeWaitMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1000));
    await held.close();
    const service = await starting;
    onCleanup(async () => void (await service.close()));
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
  });
});
