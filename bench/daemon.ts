/**
 * Daemon benchmark: drop one roster into a running `serve` backed by PostgreSQL and Redis, with
 * `worker` processes doing the matching (one configuration per --workers entry), and print the
 * time from drop (the rename that completes the upload) to the result file, rows/s, the run's
 * stages and the peak RSS of every process. The drop comes once the daemon is up and its workers'
 * candidate index is ready, as a file finds a daemon that has been running; that start-up (spawn
 * to ready) is printed on its own. Figures print as a table and are written as JSON, so
 * runs can be compared.
 *
 * Beside drop→result it prints a floor measured in the same run: reading the roster file and
 * COPYing its lines into PostgreSQL (a table of one text column, no index), what `\copy` of the
 * file does. That is the least any run of the file costs — every row read once and stored once —
 * whatever the matching, so the ratio says how far above the plain I/O of the file a run is.
 *
 *   npm run bench:daemon -- --patients 1000000 --roster 100000 --workers 1
 *
 * Needs Redis (REDIS_URL) and a PostgreSQL server where it may create databases
 * (BENCH_DATABASE_URL, default postgres://<user>@127.0.0.1:5432/postgres).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { benchArgs } from './args.ts';
import { measuredOn } from './report.ts';
import { admin, databaseUrl, dropQueueKeys } from './server.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { generateSamples } from '../src/samples/index.ts';
import { openPostgres } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:daemon -- [--patients N] [--roster N] [--seed N] [--workers N[,N…]] [--chunk-rows N] [--json FILE]
  --workers     one configuration per entry, each with that many worker processes (serve itself matches none)
  --chunk-rows  rows per match job (serve --chunk-rows)
  defaults: --patients 100000 --roster 10000 --seed 7 --workers 1,2 --chunk-rows 1000`;
const values = benchArgs(
  {
    patients: { type: 'string', default: '100000' },
    roster: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '7' },
    workers: { type: 'string', default: '1,2' },
    'chunk-rows': { type: 'string', default: '1000' },
    json: { type: 'string' },
  } as const,
  USAGE,
);
const patients = Number(values.patients);
const roster = Number(values.roster);
const workerCounts = values.workers.split(',').map(Number);
if ([patients, roster, ...workerCounts, Number(values['chunk-rows'])].some((n) => !Number.isInteger(n) || n < 1)) {
  console.error(`--patients, --roster, --workers and --chunk-rows are positive integers\n${USAGE}`);
  process.exit(2);
}
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PARTNER = 'school-district-7';
const ROSTER = path.join('rosters', 'district7-fall.csv');

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-daemon-'));
const databases: string[] = [];
const secs = (t: number) => +((performance.now() - t) / 1000).toFixed(2);

try {
  let t = performance.now();
  await generateSamples({ patients, seed: Number(values.seed), outDir: work, rosterRows: { school: roster, payer: 1, clinic: 1 }, immunizations: false });
  const generateSeconds = secs(t);

  // Load the index once; each configuration gets a copy made by CREATE DATABASE … TEMPLATE.
  const template = `rm_bench_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${template}`);
  databases.push(template);
  const db = await openPostgres(databaseUrl(template));
  t = performance.now();
  const load = await loadIndexFile(db, path.join(work, 'iis', 'Patient.ndjson'));
  const indexLoadSeconds = secs(t);
  await db.close();
  const floorSeconds = await copyFloor(databaseUrl(template), path.join(work, ROSTER));

  const runs = [];
  for (const workers of workerCounts) {
    const name = `${template}_w${workers}`;
    await admin(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    databases.push(name);
    runs.push(await runConfiguration(workers, databaseUrl(name)));
  }
  const figures = {
    ...measuredOn(),
    store: 'postgresql',
    patients: load.patients.inserted,
    rosterRows: roster,
    chunkRows: Number(values['chunk-rows']),
    generateSeconds,
    indexLoadSeconds,
    indexLoadPatientsPerSecond: Math.round(load.patients.inserted / indexLoadSeconds),
    floorSeconds: +floorSeconds.toFixed(3),
    runs: runs.map((r) => ({ ...r, dropToResultToFloor: +(r.dropToResultSeconds / floorSeconds).toFixed(1) })),
  };
  console.log(`index: ${figures.patients} patients loaded in ${indexLoadSeconds} s (${figures.indexLoadPatientsPerSecond}/s); roster: ${roster} rows`);
  console.log(`floor: read + COPY of the roster's ${roster} lines into PostgreSQL, ${figures.floorSeconds} s`);
  console.log(['workers', 'start-up (s)', 'drop→result (s)', '÷ floor', 'rows/s', 'run stages (s from claim)', 'peak RSS MB: serve', 'peak RSS MB: workers'].join('\t'));
  for (const r of figures.runs) {
    const stages = Object.entries(r.stagesSeconds).map(([k, v]) => `${k} ${v}`).join(', ');
    console.log([r.workers, r.warmUpSeconds, r.dropToResultSeconds, `${r.dropToResultToFloor}×`, r.rowsPerSecond, stages, r.peakRssMb.serve, r.peakRssMb.workers.join(', ')].join('\t'));
  }
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  for (const name of databases.reverse()) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
}

async function runConfiguration(workers: number, url: string) {
  const dir = path.join(work, `w${workers}`);
  const drop = path.join(dir, 'drop');
  const inbound = path.join(drop, PARTNER, 'inbound');
  await fs.mkdir(inbound, { recursive: true });
  const env = {
    ...process.env,
    REDIS_URL: redisUrl,
    DATABASE_URL: url,
    ROSTERMATCH_DATA: path.join(dir, 'data'),
    ROSTERMATCH_QUEUE_PREFIX: `rmbench-${randomBytes(4).toString('hex')}`,
    // Info, for the worker's "candidate index ready"; only warnings and errors are passed on.
    LOG_LEVEL: 'info',
  };
  const cli = (args: string[]) => {
    const child = spawn(process.execPath, [path.resolve('src/cli/main.ts'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      out += `${line}\n`;
      if (!/^\{"level":(10|20|30),/.test(line)) process.stderr.write(`${line}\n`);
    });
    return { child, output: () => out };
  };
  // A daemon runs before files come: the drop is timed once it is up and its workers' candidate
  // index is ready (their warm-up, a start-up cost, is reported on its own).
  const tStart = performance.now();
  const serve = cli(['serve', '--drop-root', drop, '--port', '0', '--concurrency', '0', '--chunk-rows', values['chunk-rows'], '--scan-ms', '200']);
  const ws = Array.from({ length: workers }, () => cli(['worker', '--concurrency', '1']));
  await waitUntil(() => /health at/.test(serve.output()), 60_000);
  await Promise.all(ws.map((w) => waitUntil(() => /"msg":"candidate index (ready|not ready)/.test(w.output()), 600_000)));
  const warmUpSeconds = secs(tStart);

  const source = path.join(work, ROSTER);
  const results = path.join(drop, PARTNER, 'outbound', 'district7-fall.results.csv');
  // The upload arrives under a temporary name and is renamed when complete (WinSCP, FileZilla).
  await fs.copyFile(source, path.join(inbound, 'district7-fall.csv.part'));
  await new Promise((r) => setTimeout(r, 500));
  const t0 = performance.now();
  await fs.rename(path.join(inbound, 'district7-fall.csv.part'), path.join(inbound, 'district7-fall.csv'));
  await waitUntil(() => fs.access(results).then(() => true, () => false), 3_600_000);
  const seconds = (performance.now() - t0) / 1000;
  const peak = async (c: ChildProcess) => {
    const status = await fs.readFile(`/proc/${c.pid}/status`, 'utf8');
    return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
  };
  const peakRssMb = { serve: await peak(serve.child), workers: await Promise.all(ws.map((w) => peak(w.child))) };
  await Promise.all([serve, ...ws].map(({ child }) => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM')))));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ timeline: { state: string; at: string }[] }>('SELECT timeline FROM run');
  await c.end();
  await dropQueueKeys(env.ROSTERMATCH_QUEUE_PREFIX, redisUrl);
  const start = Date.parse(rows[0]!.timeline[0]!.at);
  const stagesSeconds = Object.fromEntries(rows[0]!.timeline.map((e) => [e.state, +((Date.parse(e.at) - start) / 1000).toFixed(1)]));
  return { workers, warmUpSeconds, dropToResultSeconds: +seconds.toFixed(1), rowsPerSecond: Math.round(roster / seconds), stagesSeconds, peakRssMb };
}

/** Seconds to read `file` and COPY its lines into a table of one text column of the database at `url` (dropped after). */
async function copyFloor(url: string, file: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('CREATE TABLE bench_floor (line text)');
    const t = performance.now();
    await pipeline(createReadStream(file), c.query(copyFrom('COPY bench_floor (line) FROM STDIN')));
    const seconds = (performance.now() - t) / 1000;
    await c.query('DROP TABLE bench_floor');
    return seconds;
  } finally {
    await c.end();
  }
}


async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
