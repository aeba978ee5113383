/**
 * Fault bench: every fault behind the README's daemon promises, injected into real `serve` and
 * `worker` processes on real Redis and PostgreSQL (or the embedded store), each run compared with
 * the same file run inline and uninterrupted. Prints one row per fault: result file identical,
 * Group identical (members, and one change by one run), rows lost, rows double-counted, and the
 * time from the fault to the result file. The test suite runs the quick ones (test/processes and
 * test/faults); this adds the slow and the disruptive ones (the embedded store under SIGKILL, a
 * crashed PostgreSQL, repeated kills, an upload pausing longer than the quiet period).
 *
 *   npm run bench:faults [-- --only worker-kill,pg-immediate-5s] [--json out.json]
 *
 * Beside each time to recover it prints the ratio to a floor measured in the same run: the same
 * file dropped into a deployment with the bench's defaults (serve matching two chunks at a time on
 * PostgreSQL, 400 ms per chunk) and no fault, drop to result — so "1.5×" reads "recovering took
 * half as long again as a whole run without the fault".
 *
 * Needs Redis (REDIS_URL, default redis://127.0.0.1:6379), a PostgreSQL server where it may create
 * databases (BENCH_DATABASE_URL, default postgres://<user>@127.0.0.1:5432/postgres) and the
 * PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin) for the server it stops and starts.
 * It never stops a server or Redis it did not start itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parse as parseYaml, stringify } from 'yaml';
import { createLogger } from '../src/config/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPipelineFile } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { openEmbedded, openPostgres, type Db } from '../src/store/index.ts';
import { benchArgs } from './args.ts';
import { admin, databaseUrl, dropQueueKeys } from './server.ts';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROSTER = 'samples/rosters/district7-fall.csv';
const PARTNER = 'school-district-7';
const GROUP = 'school-district-7-students';
const FILE = path.basename(ROSTER);
const silent = createLogger('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (f: string) => fs.access(f).then(() => true, () => false);

// ---------------------------------------------------------------- scaffolding

const cleanups: (() => Promise<unknown>)[] = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function tempDir(prefix = 'rm-faults-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
}

function spawnCli(args: string[], env: Record<string, string | undefined>): Proc {
  const child = spawn(process.execPath, [path.resolve('src/cli/main.ts'), ...args], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, output: () => out, exited, waitForOutput: async (re, t = 60_000) => void (await waitFor(`output ${re}`, async () => re.test(out), t)) };
}

async function tempPgDatabase(): Promise<string> {
  const name = `rm_faults_${randomBytes(5).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  cleanups.push(() => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  return databaseUrl(name);
}

function prefix(url = redisUrl): string {
  const p = `rmfaults-${randomBytes(4).toString('hex')}`;
  cleanups.push(() => dropQueueKeys(p, url));
  return p;
}

/** Redis of the bench's own, that it may kill and restart empty. */
async function ownRedis(): Promise<{ url: string; stop(): Promise<void>; start(): Promise<void> }> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor('redis', async () => {
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
  cleanups.push(stop);
  return { url: `redis://127.0.0.1:${port}`, stop, start };
}

/** A PostgreSQL server of the bench's own (run as the postgres user when the bench is root). */
async function ownPostgres(): Promise<{ url: string; stop(mode: 'fast' | 'immediate'): Promise<void>; start(): Promise<void> }> {
  const root = '/usr/lib/postgresql';
  const version = (await fs.readdir(root)).sort((a, b) => Number(b) - Number(a))[0];
  const bin = path.join(root, version!, 'bin');
  const dir = await tempDir('rm-faults-pg-');
  const data = path.join(dir, 'data');
  let user: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    const line = (await fs.readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'))!;
    const [, , uid, gid] = line.split(':');
    user = { uid: Number(uid), gid: Number(gid) };
    await fs.chown(dir, user.uid, user.gid);
  }
  await new Promise<void>((resolve, reject) => {
    const c = spawn(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'], { stdio: 'ignore', ...user });
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`initdb exited ${code}`))));
  });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'], { stdio: 'ignore', ...user });
    await waitFor('postgres', async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => {});
      try {
        await c.connect();
        return true;
      } finally {
        await c.end().catch(() => {});
      }
    }, 60_000, 200);
  };
  const stop = async (mode: 'fast' | 'immediate') => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const c = child;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    await gone;
  };
  await start();
  cleanups.push(() => stop('immediate'));
  return { url, stop, start };
}

// ---------------------------------------------------------------- the uninterrupted runs

interface Reference {
  results: Buffer;
  members: string[];
  rows: number;
}

async function uninterrupted(files: { file: string; pipelineFile: string }[]): Promise<Reference[]> {
  const dir = await tempDir('rm-faults-ref-');
  const db = await openEmbedded(path.join(dir, 'db'));
  try {
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const out: Reference[] = [];
    for (const f of files) {
      const pipeline = await loadPipelineFile(f.pipelineFile);
      const run = await runFile(db, silent, { file: f.file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'exports') });
      if (run.kind !== 'completed') throw new Error(`reference run of ${f.file} did not complete`);
      const { rows } = await db.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1 ORDER BY patient_id', [pipeline.group.id]);
      out.push({ results: await fs.readFile(run.resultPath), members: rows.map((r) => r.patient_id), rows: run.summary.rows });
    }
    return out;
  } finally {
    await db.close();
  }
}

// ---------------------------------------------------------------- a deployment

interface Deployment {
  env: Record<string, string | undefined>;
  drop: string;
  data: string;
  pipelines: string;
  /** The store; on the embedded one it is opened only after serve has stopped (it is one process's). */
  openDb(): Promise<Db>;
  serve(args?: string[]): Proc;
  worker(args?: string[]): Proc;
  inbound(partner?: string): string;
  outbound(partner?: string): string;
}

async function deploy(o: { redisUrl?: string; databaseUrl?: string; embedded?: boolean; chunkDelayMs?: number; quietMs?: number | 'default'; env?: Record<string, string> } = {}): Promise<Deployment> {
  const dir = await tempDir();
  const data = path.join(dir, 'data');
  const databaseUrl = o.embedded ? undefined : (o.databaseUrl ?? (await tempPgDatabase()));
  const setup = databaseUrl ? await openPostgres(databaseUrl) : await openEmbedded(path.join(data, 'db'));
  await loadIndexFile(setup, 'samples/iis/Patient.ndjson');
  await setup.close();
  const pipelines = path.join(dir, 'pipelines');
  await fs.cp('pipelines', pipelines, { recursive: true });
  const drop = path.join(dir, 'drop');
  const inbound = (p = PARTNER) => path.join(drop, p, 'inbound');
  await fs.mkdir(inbound(), { recursive: true });
  const r = o.redisUrl ?? redisUrl;
  const env: Record<string, string | undefined> = {
    REDIS_URL: r,
    DATABASE_URL: databaseUrl ?? '',
    ROSTERMATCH_QUEUE_PREFIX: prefix(r),
    ROSTERMATCH_DATA: data,
    ROSTERMATCH_TEST_CHUNK_DELAY_MS: String(o.chunkDelayMs ?? 400),
    ...o.env,
  };
  let db: Db | undefined;
  cleanups.push(async () => db?.close());
  const fast = ['--lock-ms', '2000', '--stalled-ms', '1000'];
  const quiet = o.quietMs === 'default' ? [] : ['--quiet-ms', String(o.quietMs ?? 300)];
  return {
    env,
    drop,
    data,
    pipelines,
    openDb: async () => (db ??= databaseUrl ? await openPostgres(databaseUrl) : await openEmbedded(path.join(data, 'db'))),
    serve: (args = []) =>
      spawnCli(['serve', '--drop-root', drop, '--pipelines', pipelines, '--port', '0', ...quiet, '--scan-ms', '200', '--reconcile-ms', '1000', '--chunk-rows', '50', ...fast, ...args], env),
    worker: (args = []) => spawnCli(['worker', ...fast, ...args], env),
    inbound,
    outbound: (p = PARTNER) => path.join(drop, p, 'outbound'),
  };
}

const resultFile = (d: Deployment, name = FILE, partner = PARTNER) => path.join(d.outbound(partner), name.replace(/\.[^.]+$/, '.results.csv'));
const waitForResult = (d: Deployment, name = FILE, partner = PARTNER, timeoutMs = 180_000) => waitFor(`${name}'s result file`, () => exists(resultFile(d, name, partner)), timeoutMs);
const chunksDone = async (db: Db) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_chunk')).rows[0]!.n;
const healthOf = (p: Proc) => /health at (\S+)\)/.exec(p.output())?.[1];

// ---------------------------------------------------------------- comparing with the uninterrupted run

interface Verdict {
  resultIdentical: boolean;
  groupIdentical: boolean;
  rowsLost: number;
  rowsDoubled: number;
}

async function verdict(db: Db, d: Deployment, ref: Reference, name = FILE, partner = PARTNER, group = GROUP): Promise<Verdict> {
  const results = await fs.readFile(resultFile(d, name, partner)).catch(() => undefined);
  const { rows: members } = await db.query<{ patient_id: string }>('SELECT patient_id FROM group_member WHERE group_id = $1 ORDER BY patient_id', [group]);
  const { rows: events } = await db.query<{ runs: number; n: number }>('SELECT count(DISTINCT run_id)::int AS runs, count(*)::int AS n FROM group_event WHERE group_id = $1', [group]);
  const { rows: counts } = await db.query<{ n: number; distinct_rows: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT (r.run_id, r.row_index))::int AS distinct_rows FROM run_row r JOIN run ON run.id = r.run_id WHERE run.partner = $1`,
    [partner],
  );
  const sameMembers = JSON.stringify(members.map((m) => m.patient_id)) === JSON.stringify(ref.members);
  const { n, distinct_rows } = counts[0]!;
  return {
    resultIdentical: !!results && results.equals(ref.results),
    groupIdentical: sameMembers && events[0]!.runs === 1 && events[0]!.n === ref.members.length,
    rowsLost: Math.max(0, ref.rows - distinct_rows),
    rowsDoubled: n - distinct_rows + Math.max(0, distinct_rows - ref.rows),
  };
}

interface Row extends Verdict {
  fault: string;
  limit?: boolean;
  recoverSeconds: number | null;
  note: string;
}

/** limit: a known limit the table shows, not a failure of the bench. */
type Scenario = { id: string; fault: string; limit?: boolean; run(refs: { main: Reference }): Promise<Omit<Row, 'fault' | 'limit'>> };

const since = (t: number) => +((performance.now() - t) / 1000).toFixed(1);

/** The floor: the same file through a deployment with the bench's defaults and no fault, drop to result. */
async function cleanRunSeconds(): Promise<number> {
  const d = await deploy();
  const serve = d.serve(['--concurrency', '2']);
  await serve.waitForOutput(/health at/);
  const t = performance.now();
  await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
  await waitForResult(d);
  return since(t);
}

// ---------------------------------------------------------------- the faults

const scenarios: Scenario[] = [
  {
    id: 'worker-kill',
    fault: 'kill -9 of a worker mid-run',
    async run({ main }) {
      const d = await deploy();
      const serve = d.serve(['--concurrency', '0']);
      await serve.waitForOutput(/health at/);
      const a = d.worker(['--concurrency', '2']);
      await a.waitForOutput(/taking match jobs/);
      const db = await d.openDb();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await waitFor('chunks', async () => (await chunksDone(db)) >= 6);
      a.child.kill('SIGKILL');
      const t = performance.now();
      d.worker(['--concurrency', '2']);
      await waitForResult(d);
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: 'chunks taken over after --lock-ms' };
    },
  },
  {
    id: 'serve-kill',
    fault: 'kill -9 of serve while chunks match',
    async run({ main }) {
      const d = await deploy();
      const first = d.serve(['--concurrency', '2']);
      await first.waitForOutput(/health at/);
      const db = await d.openDb();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await waitFor('chunks', async () => (await chunksDone(db)) >= 6);
      first.child.kill('SIGKILL');
      await first.exited;
      const t = performance.now();
      d.serve(['--concurrency', '2']);
      await waitForResult(d);
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: 'new serve takes the stalled chunks' };
    },
  },
  {
    id: 'serve-kill-finalise',
    fault: 'kill -9 of serve between recording and publishing',
    async run({ main }) {
      const d = await deploy({ chunkDelayMs: 0, env: { ROSTERMATCH_TEST_FINALISE_DELAY_MS: '60000' } });
      const first = d.serve(['--concurrency', '2']);
      await first.waitForOutput(/health at/);
      const db = await d.openDb();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await waitFor('recorded', async () => (await db.query<{ state: string }>('SELECT state FROM run')).rows[0]?.state === 'completed');
      first.child.kill('SIGKILL');
      await first.exited;
      d.env.ROSTERMATCH_TEST_FINALISE_DELAY_MS = '0';
      const t = performance.now();
      d.serve(['--concurrency', '2']);
      await waitForResult(d);
      await waitFor('summary', () => exists(path.join(d.outbound(), 'district7-fall.summary.json')), 20_000).catch(() => false);
      const summary = await exists(path.join(d.outbound(), 'district7-fall.summary.json'));
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: summary ? 'outputs rebuilt from the record' : 'NO summary.json' };
    },
  },
  {
    id: 'serve-kill-embedded',
    fault: 'kill -9 of serve on the embedded store (PGlite), twice',
    async run({ main }) {
      const d = await deploy({ embedded: true });
      let serve = d.serve(['--concurrency', '2']);
      await serve.waitForOutput(/health at/);
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      // No second process may open the embedded store: progress is read from serve's log.
      const t = performance.now();
      for (const wait of [3000, 4000]) {
        await sleep(wait);
        serve.child.kill('SIGKILL');
        await serve.exited;
        serve = d.serve(['--concurrency', '2']);
        await serve.waitForOutput(/health at/);
      }
      await waitForResult(d);
      const seconds = since(t);
      serve.child.kill('SIGTERM');
      await serve.exited;
      const db = await d.openDb();
      return { ...(await verdict(db, d, main)), recoverSeconds: seconds, note: 'PGlite folder reopened after each kill (time: from first kill)' };
    },
  },
  {
    id: 'redis-empty',
    fault: 'Redis restarted empty mid-run',
    async run({ main }) {
      const redis = await ownRedis();
      const d = await deploy({ redisUrl: redis.url });
      const serve = d.serve(['--concurrency', '2']);
      await serve.waitForOutput(/health at/);
      const db = await d.openDb();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await waitFor('chunks', async () => (await chunksDone(db)) >= 6);
      await redis.stop();
      const t = performance.now();
      await sleep(2000);
      await redis.start();
      await waitForResult(d);
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: 'flow re-added from the database (--reconcile-ms)' };
    },
  },
  ...(
    [
      { mode: 'fast', down: 5 },
      { mode: 'immediate', down: 5 },
      { mode: 'fast', down: 60 },
    ] as const
  ).map(
    ({ mode, down }): Scenario => ({
      id: `pg-${mode}-${down}s`,
      fault: `PostgreSQL stopped (${mode === 'fast' ? 'fast shutdown' : 'immediate: a crash'}) for ${down} s mid-run`,
      async run({ main }) {
        const server = await ownPostgres();
        const d = await deploy({ databaseUrl: server.url });
        const serve = d.serve(['--concurrency', '0']);
        await serve.waitForOutput(/health at/);
        const worker = d.worker(['--concurrency', '2']);
        await worker.waitForOutput(/taking match jobs/);
        const db = await d.openDb();
        await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
        await waitFor('chunks', async () => (await chunksDone(db)) >= 6);
        const before = { serve: serve.output().length, worker: worker.output().length };
        await server.stop(mode);
        const t = performance.now();
        await sleep(2500);
        const health = await fetch(healthOf(serve)!).then(async (r) => `${r.status} ${JSON.stringify(await r.json())}`, (e: Error) => e.message);
        await sleep(down * 1000 - 2500);
        const alive = serve.child.exitCode === null && worker.child.exitCode === null;
        await server.start();
        const errorNote = path.join(d.outbound(), `${FILE}.error.txt`);
        await waitFor('the result file or an error note', async () => (await exists(resultFile(d))) || (await exists(errorNote)), 180_000);
        if (await exists(errorNote)) {
          const error = (await fs.readFile(errorNote, 'utf8')).split('\n')[1];
          return { ...(await verdict(db, d, main)), recoverSeconds: null, note: `RUN FAILED: ${error}` };
        }
        const logs = [...serve.output().slice(before.serve).matchAll(/"msg":"([^"]+)"/g), ...worker.output().slice(before.worker).matchAll(/"msg":"([^"]+)"/g)].map((m) => m[1]);
        const kinds = [...new Set(logs)].slice(0, 3).join('; ');
        return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: `healthz while down: ${health}; processes ${alive ? 'stayed up' : 'EXITED'}; logged: ${kinds || 'nothing'}` };
      },
    }),
  ),
  {
    id: 'pg-down-drop',
    fault: 'a file dropped while PostgreSQL is down (10 s)',
    async run({ main }) {
      const server = await ownPostgres();
      const d = await deploy({ databaseUrl: server.url, chunkDelayMs: 0 });
      const serve = d.serve(['--concurrency', '2']);
      await serve.waitForOutput(/health at/);
      const db = await d.openDb();
      await server.stop('fast');
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await sleep(10_000);
      const waiting = (await fs.readdir(d.inbound())).includes(FILE);
      await server.start();
      const t = performance.now();
      await waitForResult(d, FILE, PARTNER, 60_000);
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: waiting ? 'waited in inbound, taken when the database returned' : 'NOT IN INBOUND while the database was down' };
    },
  },
  {
    id: 'sigterm',
    fault: 'SIGTERM of serve mid-run, then a new serve',
    async run({ main }) {
      const d = await deploy();
      const first = d.serve(['--concurrency', '2', '--grace-ms', '3000']);
      await first.waitForOutput(/health at/);
      const db = await d.openDb();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await waitFor('chunks', async () => (await chunksDone(db)) >= 4);
      first.child.kill('SIGTERM');
      const code = await first.exited;
      const t = performance.now();
      d.serve(['--concurrency', '2']);
      await waitForResult(d);
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: `exit ${code}` };
    },
  },
  {
    id: 'duplicate',
    fault: 'same bytes dropped again during the run (same name, other name)',
    async run({ main }) {
      const d = await deploy();
      const serve = d.serve(['--concurrency', '2']);
      await serve.waitForOutput(/health at/);
      const db = await d.openDb();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await waitFor('matching', async () => (await db.query<{ state: string }>('SELECT state FROM run')).rows[0]?.state === 'matching');
      const t = performance.now();
      await fs.copyFile(ROSTER, path.join(d.inbound(), FILE));
      await fs.copyFile(ROSTER, path.join(d.inbound(), 'again.csv'));
      await waitForResult(d);
      const notes = (await fs.readdir(d.outbound())).filter((f) => f.endsWith('.duplicate.txt')).length;
      const runs = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run')).rows[0]!.n;
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: `${runs} run, ${notes} duplicate notes` };
    },
  },
  ...(['.filepart', '.part', '.tmp'] as const).map(
    (suffix): Scenario => ({
      id: `rename${suffix}`,
      fault: `${suffix} upload renamed on completion (2 s pause mid-upload)`,
      async run({ main }) {
        const d = await deploy({ chunkDelayMs: 0 });
        const serve = d.serve(['--concurrency', '2']);
        await serve.waitForOutput(/health at/);
        const db = await d.openDb();
        const text = await fs.readFile(ROSTER);
        const temp = path.join(d.inbound(), FILE + suffix);
        await fs.writeFile(temp, text.subarray(0, text.length >> 1));
        await sleep(2000);
        await fs.appendFile(temp, text.subarray(text.length >> 1));
        await sleep(1000);
        const early = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run')).rows[0]!.n;
        const t = performance.now();
        await fs.rename(temp, path.join(d.inbound(), FILE));
        await waitForResult(d);
        return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: early === 0 ? 'not taken before the rename' : 'TAKEN BEFORE THE RENAME' };
      },
    }),
  ),
  ...(
    [
      { pause: 3000, quiet: 'default' },
      { pause: 7000, quiet: 'default' },
      { pause: 7000, quiet: 5000, limit: true },
    ] as const
  ).map(
    ({ pause, quiet, ...rest }): Scenario => ({
      id: `in-place-${pause / 1000}s${quiet === 'default' ? '' : `-quiet${quiet / 1000}s`}`,
      fault: `in-place upload (OpenSSH), 3 writes with ${pause / 1000} s pauses, ${quiet === 'default' ? 'default quiet period (30 s)' : `--quiet-ms ${quiet} (the old default)`}`,
      ...('limit' in rest ? { limit: true } : {}),
      async run({ main }) {
        const d = await deploy({ chunkDelayMs: 0, quietMs: quiet });
        const serve = d.serve(['--concurrency', '2']);
        await serve.waitForOutput(/health at/);
        const db = await d.openDb();
        const text = await fs.readFile(ROSTER, 'utf8');
        // Pieces end on line boundaries: the worst case, a half file that parses cleanly.
        const lines = text.split(/(?<=\n)/);
        const pieces = [lines.slice(0, 400), lines.slice(400, 800), lines.slice(800)].map((p) => p.join(''));
        const h = await fs.open(path.join(d.inbound(), FILE), 'w');
        for (const [i, p] of pieces.entries()) {
          await h.write(p);
          await h.sync();
          if (i < pieces.length - 1) await sleep(pause);
        }
        await h.close();
        const t = performance.now();
        await waitForResult(d);
        await sleep(3000); // anything else that was taken
        const runs = (await db.query<{ n: number; rows: number[] }>('SELECT count(*)::int AS n, array_agg(row_count) AS rows FROM run')).rows[0]!;
        const v = await verdict(db, d, main);
        return { ...v, recoverSeconds: since(t), note: `${runs.n} run(s) of ${runs.rows.join(', ')} rows` };
      },
    }),
  ),
  {
    id: 'in-place-handback',
    fault: 'in-place upload pausing longer than the quiet period (1 s), resuming during the run',
    async run({ main }) {
      const d = await deploy({ quietMs: 1000 });
      const serve = d.serve(['--concurrency', '2']);
      await serve.waitForOutput(/health at/);
      const db = await d.openDb();
      const lines = (await fs.readFile(ROSTER, 'utf8')).split(/(?<=\n)/);
      const h = await fs.open(path.join(d.inbound(), FILE), 'w');
      await h.write(lines.slice(0, 400).join(''));
      await h.sync();
      await waitFor('the half file taken', async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run')).rows[0]!.n === 1, 20_000);
      const t = performance.now();
      await sleep(300);
      await h.write(lines.slice(400).join(''));
      await h.close();
      await waitForResult(d);
      const runs = (await db.query<{ state: string; code: string | null }>(`SELECT state, error->>'code' AS code FROM run ORDER BY received_at`)).rows;
      return { ...(await verdict(db, d, main)), recoverSeconds: since(t), note: `runs: ${runs.map((r) => r.code ?? r.state).join(', ')}` };
    },
  },
  {
    id: 'ten-partners',
    fault: 'ten partners dropping at once (serve + worker)',
    async run() {
      const dir = await tempDir('rm-faults-ten-');
      const partners = Array.from({ length: 10 }, (_, i) => `partner-${String(i + 1).padStart(2, '0')}`);
      const [header, ...lines] = (await fs.readFile(ROSTER, 'utf8')).trimEnd().split('\n');
      const base = parseYaml(await fs.readFile(`pipelines/${PARTNER}.yaml`, 'utf8')) as Record<string, any>;
      const files: { file: string; pipelineFile: string }[] = [];
      for (const [i, p] of partners.entries()) {
        const file = path.join(dir, `${p}-roster.csv`);
        await fs.writeFile(file, `${[header, ...lines.slice(i * 120, (i + 1) * 120)].join('\n')}\n`);
        const pipelineFile = path.join(dir, `${p}.yaml`);
        await fs.writeFile(pipelineFile, stringify({ ...base, partner: p, displayName: p, group: { ...base.group, id: `${p}-students`, name: p } }));
        files.push({ file, pipelineFile });
      }
      const refs = await uninterrupted(files);
      const d = await deploy({ chunkDelayMs: 0 });
      for (const [i, p] of partners.entries()) {
        await fs.copyFile(files[i]!.pipelineFile, path.join(d.pipelines, `${p}.yaml`));
        await fs.mkdir(d.inbound(p), { recursive: true });
      }
      const serve = d.serve(['--concurrency', '2']);
      const worker = d.worker(['--concurrency', '2']);
      await Promise.all([serve.waitForOutput(/health at/), worker.waitForOutput(/taking match jobs/)]);
      const db = await d.openDb();
      const t = performance.now();
      await Promise.all(partners.map((p, i) => fs.copyFile(files[i]!.file, path.join(d.inbound(p), `${p}-roster.csv`))));
      for (const p of partners) await waitForResult(d, `${p}-roster.csv`, p);
      const seconds = since(t);
      const all: Verdict[] = [];
      for (const [i, p] of partners.entries()) all.push(await verdict(db, d, refs[i]!, `${p}-roster.csv`, p, `${p}-students`));
      const crossed = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM group_event e JOIN run r ON r.id = e.run_id JOIN partner_group g ON g.id = e.group_id WHERE g.partner <> r.partner')).rows[0]!.n;
      return {
        resultIdentical: all.every((v) => v.resultIdentical),
        groupIdentical: all.every((v) => v.groupIdentical) && crossed === 0,
        rowsLost: all.reduce((a, v) => a + v.rowsLost, 0),
        rowsDoubled: all.reduce((a, v) => a + v.rowsDoubled, 0),
        recoverSeconds: seconds,
        note: `${crossed} Group changes across partners; time: drop to the last result file`,
      };
    },
  },
];

// ---------------------------------------------------------------- run them

const USAGE = `usage: npm run bench:faults -- [--only ID[,ID…]] [--json FILE]
  --only  the faults to inject (default: all): ${scenarios.map((s) => s.id).join(', ')}
  --json  write one row per fault to FILE`;
const values = benchArgs({ only: { type: 'string' }, json: { type: 'string' } } as const, USAGE);
const only = values.only?.split(',');
const unknown = (only ?? []).filter((id) => !scenarios.some((s) => s.id === id));
if (unknown.length > 0) {
  console.error(`unknown fault: ${unknown.join(', ')}\n${USAGE}`);
  process.exit(2);
}
const chosen = scenarios.filter((s) => !only || only.includes(s.id));
const [main] = (await uninterrupted([{ file: ROSTER, pipelineFile: `pipelines/${PARTNER}.yaml` }])) as [Reference];
process.stderr.write('floor: the same file, no fault … ');
const floorSeconds = await cleanRunSeconds().finally(cleanUp);
process.stderr.write(`${floorSeconds} s\n`);
const rows: Row[] = [];
for (const s of chosen) {
  process.stderr.write(`${s.id}: ${s.fault} … `);
  const t = performance.now();
  try {
    rows.push({ fault: s.fault, ...(s.limit ? { limit: true } : {}), ...(await s.run({ main })) });
  } catch (e) {
    rows.push({ fault: s.fault, resultIdentical: false, groupIdentical: false, rowsLost: NaN, rowsDoubled: NaN, recoverSeconds: null, note: `FAILED: ${(e as Error).message}` });
  } finally {
    await cleanUp();
  }
  process.stderr.write(`${since(t)} s\n`);
}

const yn = (b: boolean) => (b ? 'yes' : 'NO');
const toFloor = (r: Row) => (r.recoverSeconds === null ? '—' : `${(r.recoverSeconds / floorSeconds).toFixed(1)}×`);
console.log(`\nfloor: the same file, no fault (serve matching 2 chunks at a time on PostgreSQL, 400 ms per chunk), drop to result: ${floorSeconds} s`);
console.log('| fault | result file identical | Group identical | rows lost | rows double-counted | time to recover | ÷ floor | note |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.fault}${r.limit ? ' (known limit)' : ''} | ${yn(r.resultIdentical)} | ${yn(r.groupIdentical)} | ${r.rowsLost} | ${r.rowsDoubled} | ${r.recoverSeconds === null ? '—' : `${r.recoverSeconds} s`} | ${toFloor(r)} | ${r.note} |`,
  );
}
if (values.json) await fs.writeFile(values.json, JSON.stringify({ floorSeconds, faults: rows }, null, 2));
process.exit(rows.every((r) => r.limit || (r.resultIdentical && r.groupIdentical && r.rowsLost === 0 && r.rowsDoubled === 0)) ? 0 : 1);
