/**
 * Deployments that share one Redis. Each deployment is a store (an embedded data folder, or a
 * PostgreSQL database) and the processes that serve it. Their queues must not mix by default, a
 * worker must never call another store's job done, and every process says when another
 * deployment's workers are on its prefix. Real processes, real Redis, real stores.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../src/cli/status.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { connectRedis, QUEUE, chunkJobId, startWorkers } from '../src/queue/index.ts';
import type { Db } from '../src/store/index.ts';
import { openFreshEmbedded, seedDataDir, tempDir, tempDb } from './helpers.ts';
import { onCleanup, pipelinesDir, REDIS_URL, SAMPLE, spawnCli, testPrefix, uninterrupted, waitFor, type Proc, type Reference } from './daemon-helpers.ts';

const ROSTER = SAMPLE.roster;
const PARTNER = SAMPLE.partner;
const RESULTS = 'district7-fall.results.csv';

let reference: Buffer;

beforeAll(async () => {
  [{ results: reference }] = (await uninterrupted([{ file: ROSTER, pipelineFile: `pipelines/${PARTNER}.yaml` }])) as [Reference];
}, 120_000);

interface Deployment {
  data: string;
  drop: string;
  serve: Proc;
  health(): Promise<Record<string, unknown>>;
  status(): Promise<StatusReport>;
}

/** One deployment on the embedded store: its own data folder and drop root, a serve process. */
async function deployment(env: Record<string, string> = {}): Promise<Deployment> {
  const dir = await tempDir();
  const data = path.join(dir, 'data');
  // A copy of the run's migrated template store, with an identity of its own: each deployment is its own store.
  const db = await openFreshEmbedded(path.join(data, 'db'));
  await loadIndexFile(db, 'samples/iis/Patient.ndjson');
  await db.close();
  const drop = path.join(dir, 'drop');
  await fs.mkdir(path.join(drop, PARTNER, 'inbound'), { recursive: true });
  const all = { REDIS_URL, ROSTERMATCH_DATA: data, ROSTERMATCH_TEST_CHUNK_DELAY_MS: '100', ...env };
  const serve = spawnCli(
    ['serve', '--drop-root', drop, '--pipelines', await pipelinesDir(dir), '--port', '0', '--quiet-ms', '300', '--scan-ms', '200', '--chunk-rows', '50', '--concurrency', '2'],
    all,
  );
  await serve.waitForOutput(/health at (\S+)\/healthz/);
  const url = /health at (\S+)\/healthz/.exec(serve.output())![1]!;
  return {
    data,
    drop,
    serve,
    health: async () => (await (await fetch(`${url}/healthz`)).json()) as Record<string, unknown>,
    status: async () => {
      const out = await new Promise<string>((resolve) => {
        const p = spawnCli(['status', '--json'], all);
        void p.exited.then(() => resolve(p.output()));
      });
      return JSON.parse(out.slice(out.indexOf('{'))) as StatusReport;
    },
  };
}

/** Deletes a prefix's keys after the test (testPrefix does that for the prefixes it makes). */
function cleanPrefix(prefix: string): void {
  onCleanup(async () => {
    const r = connectRedis(REDIS_URL);
    try {
      for (let cursor = '0'; ; ) {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await r.del(...keys);
        if ((cursor = next) === '0') break;
      }
    } finally {
      r.disconnect();
    }
  });
}

const drop = (d: Deployment) => fs.copyFile(ROSTER, path.join(d.drop, PARTNER, 'inbound', path.basename(ROSTER)));
const resultOf = async (d: Deployment) => {
  const file = path.join(d.drop, PARTNER, 'outbound', RESULTS);
  await waitFor(`${file}`, () => fs.access(file).then(() => true), 120_000);
  return fs.readFile(file);
};

describe('deployments sharing one Redis', () => {
  it('get a queue prefix of their own by default, and status lists every deployment on the Redis', async () => {
    const a = await deployment();
    const b = await deployment();
    const [ha, hb] = [await a.health(), await b.health()];
    for (const h of [ha, hb]) cleanPrefix(h.queuePrefix as string);
    expect(ha.queuePrefix).toMatch(/^rostermatch-[0-9a-f]{12}$/);
    expect(hb.queuePrefix).toMatch(/^rostermatch-[0-9a-f]{12}$/);
    expect(ha.queuePrefix).not.toBe(hb.queuePrefix);
    expect(ha.otherDeploymentsOnPrefix).toBeUndefined();

    // status, while serve holds the embedded store, still finds its prefix from the data folder.
    const report = await a.status();
    expect(report.redis).toMatchObject({ ok: true, prefix: ha.queuePrefix });
    if (!report.redis.ok) throw new Error(report.redis.error);
    const prefixes = report.redis.deployments.map((d) => d.prefix);
    expect(prefixes).toContain(ha.queuePrefix);
    expect(prefixes).toContain(hb.queuePrefix);
    const mine = report.redis.deployments.find((d) => d.prefix === ha.queuePrefix)!;
    expect(mine.store).toMatch(/^[0-9a-f]{32}$/);
    expect(mine.workers).toEqual([expect.objectContaining({ name: expect.stringMatching(new RegExp(`:${a.serve.child.pid}$`)), queues: ['intake', 'match', 'finalise', 'export'] })]);

    await Promise.all([drop(a), drop(b)]);
    expect((await resultOf(a)).equals(reference)).toBe(true);
    expect((await resultOf(b)).equals(reference)).toBe(true);
  }, 180_000);

  it('on one prefix, each finish their own run with the right result file: a worker hands another store\'s jobs back', async () => {
    const prefix = testPrefix();
    const a = await deployment({ ROSTERMATCH_QUEUE_PREFIX: prefix });
    const b = await deployment({ ROSTERMATCH_QUEUE_PREFIX: prefix });
    // The second to start says so at once, and both say so in /healthz.
    await b.serve.waitForOutput(/workers of another deployment \(another store\) are on this queue prefix/);
    expect((await a.health()).otherDeploymentsOnPrefix).toEqual([expect.objectContaining({ workers: [expect.stringMatching(new RegExp(`:${b.serve.child.pid}$`))] })]);
    expect((await b.health()).otherDeploymentsOnPrefix).toEqual([expect.objectContaining({ workers: [expect.stringMatching(new RegExp(`:${a.serve.child.pid}$`))] })]);

    // Only A gets a file: B's workers take some of its jobs, and must give every one back.
    await drop(a);
    expect((await resultOf(a)).equals(reference)).toBe(true);
    expect(b.serve.output()).toMatch(/handed back, not done/);
    await drop(b);
    expect((await resultOf(b)).equals(reference)).toBe(true);

    const report = await a.status();
    if (!report.redis.ok) throw new Error(report.redis.error);
    expect(report.redis.deployments.filter((d) => d.prefix === prefix)).toHaveLength(2);
  }, 180_000);
});

describe('a job its worker\'s store does not hold', () => {
  /** A match worker on store `db`, logging into `lines`, and the queue it takes jobs from. */
  async function matchWorker(db: Db) {
    const prefix = testPrefix();
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
    const set = startWorkers({ db, log, workerId: 'test:1' }, { redisUrl: REDIS_URL, prefix, roles: ['match'] });
    const connection = connectRedis(REDIS_URL);
    const queue = new Queue(QUEUE.match, { connection, prefix });
    onCleanup(async () => {
      await set.close(1000);
      await queue.close();
      connection.disconnect();
    });
    return { queue, lines };
  }

  it('is handed back, never completed or failed: another store\'s, or an old job whose run is not here', async () => {
    const { db } = await tempDb();
    const { queue, lines } = await matchWorker(db);
    const foreign = await queue.add('match', { runId: 'r-elsewhere', store: 'f'.repeat(32), chunk: 0, from: 0, to: 50 }, { jobId: chunkJobId('r-elsewhere', 0) });
    const legacy = await queue.add('match', { runId: 'r-old', chunk: 0, from: 0, to: 50 }, { jobId: chunkJobId('r-old', 0) });
    await waitFor('both offered twice', async () => (await queue.getJob(foreign.id!))!.attemptsStarted >= 2 && (await queue.getJob(legacy.id!))!.attemptsStarted >= 2, 20_000);
    for (const id of [foreign.id!, legacy.id!]) {
      const state = await queue.getJobState(id);
      expect(['delayed', 'waiting', 'active']).toContain(state);
    }
    expect(await queue.getJobCounts('completed', 'failed')).toEqual({ completed: 0, failed: 0 });
    const refusals = lines.filter((l) => String(l.msg).includes('handed back, not done'));
    expect(refusals.some((l) => l.jobStore === 'f'.repeat(32) && l.store === db.storeId)).toBe(true);
    expect(refusals.some((l) => l.jobStore === null)).toBe(true);
  });

  it('fails loudly when it names this store but the run is not in it', async () => {
    const { db } = await tempDb();
    const { queue } = await matchWorker(db);
    const job = await queue.add('match', { runId: 'r-gone', store: db.storeId, chunk: 0, from: 0, to: 50 }, { jobId: chunkJobId('r-gone', 0) });
    await waitFor('the job to fail', async () => (await queue.getJobState(job.id!)) === 'failed', 20_000);
    expect((await queue.getJob(job.id!))!.failedReason).toMatch(/RUN_NOT_FOUND: run r-gone is not in this store/);
  });
});

describe('serve started through npx', () => {
  it('exits when npx is killed with SIGTERM, instead of serving on unseen', async () => {
    const dir = await tempDir();
    const data = path.join(dir, 'data');
    const dropRoot = path.join(dir, 'drop');
    await fs.mkdir(dropRoot);
    await seedDataDir(data); // serve opens a copy of the run's template store rather than creating one
    const npx = spawn('npx', ['rostermatch', 'serve', '--drop-root', dropRoot, '--port', '0'], {
      env: { ...process.env, REDIS_URL, ROSTERMATCH_DATA: data, ROSTERMATCH_QUEUE_PREFIX: testPrefix() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npx.stdout!.on('data', (d) => (out += d));
    npx.stderr!.on('data', (d) => (out += d));
    const npxExited = new Promise((r) => npx.once('exit', r));
    await waitFor('serve to start', async () => /health at/.test(out), 60_000);
    // The embedded store's lock names the process that holds it: serve itself, not npx.
    const pid = Number((await fs.readFile(path.join(data, 'db', 'rostermatch.pid'), 'utf8')).trim());
    expect(pid).not.toBe(npx.pid);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    onCleanup(async () => {
      if (alive()) process.kill(pid, 'SIGKILL');
    });
    npx.kill('SIGTERM');
    await npxExited;
    await waitFor('serve to exit after its parent', async () => !alive(), 30_000);
    await expect(fs.access(path.join(data, 'db', 'rostermatch.pid'))).rejects.toThrow(); // shut down cleanly: the lock released
  });
});
