/** Fixtures for the daemon's tests: a drop root, a pipelines folder, real Redis, real processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, expect } from 'vitest';
import { stringify } from 'yaml';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPipelineFile } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { openPostgres, type Db } from '../src/store/index.ts';
import { openFreshEmbedded, quietLog, tempDir, tempPgDatabase, testPipeline } from './helpers.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()!().catch(() => {});
});
export function onCleanup(fn: () => Promise<void>): void {
  stops.push(fn);
}

/** A queue prefix no other test shares; its keys are deleted afterwards. */
export function testPrefix(redisUrl = REDIS_URL): string {
  const { prefix, drop } = fileQueuePrefix(redisUrl);
  onCleanup(drop);
  return prefix;
}

/** A queue prefix no other test shares, whose keys `drop` deletes (a file's beforeAll to its afterAll). */
export function fileQueuePrefix(redisUrl = REDIS_URL): { prefix: string; drop: () => Promise<void> } {
  const prefix = `rmtest-${randomBytes(4).toString('hex')}`;
  const drop = async () => {
    // The test may have stopped this Redis: fail fast instead of queueing commands for ever.
    const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await r.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } catch {
      // nothing to clean where Redis is gone
    } finally {
      r.disconnect();
    }
  };
  return { prefix, drop };
}

/** The shipped pipelines plus the hand-written test-school one. */
export async function pipelinesDir(dir: string): Promise<string> {
  const out = path.join(dir, 'pipelines');
  await fs.cp('pipelines', out, { recursive: true });
  const p = testPipeline({ file: { encoding: 'utf-8', delimiter: ',', namePattern: '*.csv' } });
  await fs.writeFile(path.join(out, 'test-school.yaml'), stringify(p));
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function runState(db: Db, fileName: string): Promise<{ id: string; state: string } | undefined> {
  const { rows } = await db.query<{ id: string; state: string }>('SELECT id, state FROM run WHERE file_name = $1 ORDER BY received_at DESC LIMIT 1', [fileName]);
  return rows[0];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** The real CLI in its own process, as an operator starts it. */
export function spawnCli(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [path.resolve('src/cli/main.ts'), ...args], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    output: () => out,
    waitForOutput: async (re, timeoutMs = 30_000) => {
      await waitFor(`output ${re}`, async () => re.test(out), timeoutMs);
    },
    exited,
  };
}

/** A Redis server of the test's own, on a free port, that the test may stop and restart. */
export async function ownRedis(extraArgs: string[] = []): Promise<{ url: string; stop(): Promise<void>; start(): Promise<void> }> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    await waitFor('redis to start', async () => {
      const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    });
  };
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const c = child;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  await start();
  onCleanup(stop);
  return { url: `redis://127.0.0.1:${port}`, stop, start };
}

/** A PostgreSQL server of the test's own (never the shared one), on a free port, that the test may stop and restart. */
export async function ownPostgres(): Promise<{ url: string; stop(mode?: 'fast' | 'immediate'): Promise<void>; start(): Promise<void> }> {
  const bin = await postgresBin();
  const port = await freePort();
  const dir = await tempDir('rm-pg-');
  const data = path.join(dir, 'data');
  // postgres refuses to run as root: run it as the postgres user where the tests run as root.
  const asUser = process.getuid?.() === 0 ? await userIds('postgres') : undefined;
  if (asUser) await fs.chown(dir, asUser.uid, asUser.gid);
  await new Promise<void>((resolve, reject) => {
    const c = spawn(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'], { stdio: 'ignore', ...asUser });
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`initdb exited ${code}`))));
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'], { stdio: 'ignore', ...asUser });
    await waitFor('postgres to start', async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => {});
      try {
        await c.connect();
        return (await c.query('SELECT 1 AS one')).rows[0].one === 1;
      } finally {
        await c.end().catch(() => {});
      }
    }, 30_000, 200);
  };
  /** fast: the operator's `pg_ctl stop`; immediate: like a crash, recovery at the next start. */
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const c = child;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    await gone;
  };
  await start();
  onCleanup(() => stop('immediate'));
  return { url, stop, start };
}

async function postgresBin(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await fs.readdir(root).catch(() => [])).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${root}`);
  return path.join(root, versions[0]!, 'bin');
}

async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const line = (await fs.readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no ${name} user to run PostgreSQL as`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** The committed sample roster most process tests drop, and what it feeds. */
export const SAMPLE = {
  roster: 'samples/rosters/district7-fall.csv',
  partner: 'school-district-7',
  group: 'school-district-7-students',
  rows: 1200,
  chunks: 24,
} as const;

export interface Reference {
  results: Buffer;
  members: string[];
  rows: number;
  counts: Record<string, number>;
}

/**
 * The uninterrupted run, inline on the embedded store: what every interrupted run must equal.
 * One folder per call; the caller may run several files through it, one at a time.
 */
export async function uninterrupted(files: { file: string; pipelineFile: string }[]): Promise<Reference[]> {
  const dir = await fs.mkdtemp('/tmp/rm-ref-');
  const db = await openFreshEmbedded(path.join(dir, 'db'));
  try {
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const out: Reference[] = [];
    for (const f of files) {
      const pipeline = await loadPipelineFile(f.pipelineFile);
      const run = await runFile(db, quietLog, { file: f.file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'exports') });
      if (run.kind !== 'completed') throw new Error(`reference run of ${f.file} did not complete`);
      out.push({ results: await fs.readFile(run.resultPath), members: await members(db, pipeline.group.id), rows: run.summary.rows, counts: run.summary.counts });
    }
    return out;
  } finally {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function members(db: Db, groupId: string): Promise<string[]> {
  const { rows } = await db.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1 ORDER BY patient_id', [groupId]);
  return rows.map((r) => r.patient_id);
}

export interface Deployment {
  env: Record<string, string>;
  drop: string;
  dir: string;
  pipelines: string;
  db: Db;
  serve(args?: string[]): Proc;
  worker(args?: string[]): Proc;
  /** Copies the sample roster (or `file`) into the partner's inbound folder, under `as` if given. */
  drop_(opts?: { file?: string; partner?: string; as?: string }): Promise<void>;
  inbound(partner?: string): string;
  outbound(partner?: string): string;
}

export interface DeploymentOptions {
  redisUrl?: string;
  /** A PostgreSQL server of the test's own; unset: a fresh database on the shared test server. */
  databaseUrl?: string;
  chunkDelayMs?: number;
  /** serve's quiet period for files written in place; 'default': the CLI's own. @defaultValue 300 */
  quietMs?: number | 'default';
  env?: Record<string, string>;
}

/**
 * serve and workers as an operator runs them, in their own processes, on real Redis and
 * PostgreSQL, with the sample index loaded and every timer short enough for a test.
 */
export async function deployment(o: DeploymentOptions = {}): Promise<Deployment> {
  const redisUrl = o.redisUrl ?? REDIS_URL;
  const dir = await tempDir();
  const databaseUrl = o.databaseUrl ?? (await tempPgDatabase());
  const db = await openPostgres(databaseUrl);
  onCleanup(() => db.close());
  await loadIndexFile(db, 'samples/iis/Patient.ndjson');
  const pipelines = await pipelinesDir(dir);
  const drop = path.join(dir, 'drop');
  const inbound = (partner: string = SAMPLE.partner) => path.join(drop, partner, 'inbound');
  await fs.mkdir(inbound(), { recursive: true });
  const env = {
    REDIS_URL: redisUrl,
    DATABASE_URL: databaseUrl,
    ROSTERMATCH_QUEUE_PREFIX: testPrefix(redisUrl),
    ROSTERMATCH_DATA: path.join(dir, 'data'),
    ROSTERMATCH_TEST_CHUNK_DELAY_MS: String(o.chunkDelayMs ?? 400),
    ...o.env,
  };
  const fast = ['--lock-ms', '2000', '--stalled-ms', '1000'];
  const quiet = o.quietMs === 'default' ? [] : ['--quiet-ms', String(o.quietMs ?? 300)];
  return {
    env,
    drop,
    dir,
    pipelines,
    db,
    // Later arguments win: a test may pass e.g. its own --quiet-ms.
    serve: (args = []) =>
      spawnCli(['serve', '--drop-root', drop, '--pipelines', pipelines, '--port', '0', ...quiet, '--scan-ms', '200', '--reconcile-ms', '1000', '--chunk-rows', '50', ...fast, ...args], env),
    worker: (args = []) => spawnCli(['worker', ...fast, ...args], env),
    drop_: async ({ file = SAMPLE.roster, partner = SAMPLE.partner, as = path.basename(file) } = {}) => {
      await fs.mkdir(inbound(partner), { recursive: true });
      await fs.copyFile(file, path.join(inbound(partner), as));
    },
    inbound,
    outbound: (partner = SAMPLE.partner) => path.join(drop, partner, 'outbound'),
  };
}

export async function chunksBy(db: Db, runId?: string): Promise<Map<string, number>> {
  const { rows } = await db.query<{ worker: string; n: number }>(
    'SELECT worker, count(*)::int AS n FROM run_chunk WHERE $1::text IS NULL OR run_id = $1 GROUP BY worker',
    [runId ?? null],
  );
  return new Map(rows.map((r) => [r.worker, r.n]));
}

export const chunksDone = async (db: Db): Promise<number> => [...(await chunksBy(db)).values()].reduce((x, y) => x + y, 0);

/**
 * The run of `fileName` ended exactly as the uninterrupted one: its result file byte for byte,
 * its Group member for member and changed once (by this run), and each of its rows in run_row
 * exactly once.
 */
export async function expectSameAsUninterrupted(
  d: Deployment,
  ref: Reference,
  {
    fileName = path.basename(SAMPLE.roster),
    partner = SAMPLE.partner,
    group = SAMPLE.group,
    failedRuns = 0,
  }: { fileName?: string; partner?: string; group?: string; /** runs of the file that were failed (and left no rows) on the way */ failedRuns?: number } = {},
): Promise<void> {
  const base = fileName.replace(/\.[^.]+$/, '');
  const file = path.join(d.outbound(partner), `${base}.results.csv`);
  const summaryFile = path.join(d.outbound(partner), `${base}.summary.json`);
  await waitFor(`the result file of ${fileName}`, () => fs.access(file).then(() => true));
  await waitFor(`the summary of ${fileName}`, () => fs.access(summaryFile).then(() => true), 10_000);
  const { rows: runs } = await d.db.query<{ id: string; state: string }>('SELECT id, state FROM run WHERE partner = $1 AND file_name = $2 ORDER BY state', [partner, fileName]);
  expect(runs.map((r) => r.state), `runs of ${fileName}`).toEqual(['completed', ...Array<string>(failedRuns).fill('failed')]);
  const runId = runs[0]!.id;
  expect((await fs.readFile(file)).equals(ref.results), `${fileName}: result file identical to the uninterrupted run's`).toBe(true);
  expect(await members(d.db, group)).toEqual(ref.members);
  const events = await d.db.query<{ action: string; n: number; run_id: string }>(
    'SELECT action, count(*)::int AS n, run_id FROM group_event WHERE group_id = $1 GROUP BY action, run_id',
    [group],
  );
  expect(events.rows).toEqual([{ action: 'added', n: ref.members.length, run_id: runId }]);
  const rows = await d.db.query<{ n: number; distinct_rows: number }>('SELECT count(*)::int AS n, count(DISTINCT row_index)::int AS distinct_rows FROM run_row WHERE run_id = $1', [runId]);
  expect(rows.rows[0]).toEqual({ n: ref.rows, distinct_rows: ref.rows });
  const all = await d.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_row WHERE run_id = ANY($1::text[])', [runs.map((r) => r.id)]);
  expect(all.rows[0]!.n, `rows recorded for every run of ${fileName}`).toBe(ref.rows);
  const summary = JSON.parse(await fs.readFile(summaryFile, 'utf8')) as { runId: string; counts: Record<string, number>; group: { id: string; sizeAfter: number } };
  expect(summary).toMatchObject({ runId, counts: ref.counts, group: { id: group, sizeAfter: ref.members.length } });
}
