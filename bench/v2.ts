/**
 * HL7 v2 throughput (issue 13): the same people as a flat roster and as a batch of VXU messages
 * (src/samples/hl7v2.ts writes the batch from the roster's own rows), each run end to end with
 * runFile — read, match, record, publish (result file, the reply batch, the Group's export) —
 * against the same index on PostgreSQL, in a process of its own. The roster's rows/s is the
 * floor; the VXU batch's messages/s is measured against it (target: at most 1.5× slower). The
 * parse stage alone (rosterChunks) is timed for each file too, so the note can say where a
 * difference comes from.
 *
 *   npm run bench:v2 -- --patients 1000000 --rows 100000 --seed 7 [--candidates auto|memory|database]
 *        [--json out.json] [--keep DIR]   (keeps the data, the candidate snapshot and the database)
 *        [--reuse --keep DIR]            (runs again on what an earlier --keep run left: no generating, no loading)
 *
 * Needs a PostgreSQL server where it may create a database (BENCH_DATABASE_URL, default
 * postgres://<user>@127.0.0.1:5432/postgres).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/config/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { rosterChunks } from '../src/parse/index.ts';
import { loadPartnerPipeline, type Pipeline } from '../src/pipeline/index.ts';
import { candidatesFor, runFile, type CandidateMode } from '../src/run/index.ts';
import { generateSamples } from '../src/samples/index.ts';
import { v2PipelineFor, writeV2Batch } from '../src/samples/hl7v2.ts';
import { openPostgres } from '../src/store/index.ts';
import { benchArgs } from './args.ts';
import { measuredOn, printColumns } from './report.ts';
import { admin, databaseUrl as urlOf } from './server.ts';

const USAGE = `usage: npm run bench:v2 -- [--patients N] [--rows N] [--seed N] [--candidates auto|memory|database]
       [--json FILE] [--keep DIR] [--reuse --keep DIR]   run again on the data, snapshot and database an earlier --keep run left
  defaults: --patients 1000000 --rows 100000 --seed 7 --candidates auto`;

const options = {
  patients: { type: 'string', default: '1000000' },
  rows: { type: 'string', default: '100000' },
  seed: { type: 'string', default: '7' },
  candidates: { type: 'string', default: 'auto' },
  json: { type: 'string' },
  keep: { type: 'string' },
  reuse: { type: 'boolean', default: false },
  // Internal: one timed step, run by the benchmark in a child process.
  phase: { type: 'string' },
  work: { type: 'string' },
  side: { type: 'string' },
  group: { type: 'string' },
  'database-url': { type: 'string' },
} as const;
const values = benchArgs(options, USAGE);
if (values.reuse && !values.keep) {
  console.error(`--reuse needs --keep DIR, the folder an earlier run kept\n${USAGE}`);
  process.exit(2);
}
if (!['auto', 'memory', 'database'].includes(values.candidates)) {
  console.error(`--candidates is auto, memory or database\n${USAGE}`);
  process.exit(2);
}

const PARTNER = 'school-district-7';
const ROSTER = path.join('rosters', 'district7-fall.csv');
const BATCH = path.join('rosters', 'district7-fall.vxu.hl7');
/** Where a --keep run leaves the URL of its database, for --reuse. */
const DB_FILE = 'database-url.txt';
type Side = 'roster' | 'vxu';

if (values.phase) await phase();
else await benchmark();

/** The pipeline of one side, feeding a Group of its own (neither run finds the other's members). */
async function pipelineOf(side: Side, group: string): Promise<Pipeline> {
  const school = await loadPartnerPipeline('pipelines', PARTNER);
  const roster: Pipeline = { ...school, group: { ...school.group, id: group, mode: 'append' } };
  return side === 'roster' ? roster : v2PipelineFor(roster, { vxu: 'add', qbp: 'ignore' });
}

/** The child: one timed step, reported as one JSON line. */
async function phase(): Promise<void> {
  const work = values.work!;
  const side = values.side as Side;
  const pipeline = await pipelineOf(side, values.group!);
  const file = path.join(work, side === 'roster' ? ROSTER : BATCH);
  const today = new Date().toISOString().slice(0, 10);
  if (values.phase === 'parse') {
    const t = performance.now();
    let rows = 0;
    for await (const chunk of rosterChunks(file, pipeline, today, { size: 500 })) rows += chunk.length;
    process.stdout.write(`${JSON.stringify({ rows, ms: performance.now() - t, peakRssMb: peakRss() })}\n`);
    return;
  }
  const db = await openPostgres(values['database-url']!);
  const t = performance.now();
  const out = await runFile(db, createLogger('silent'), {
    file,
    pipeline,
    outDir: path.join(work, 'out', side),
    exportsDir: path.join(work, 'exports', side),
    snapshotDir: path.join(work, 'cache'),
    candidates: values.candidates as CandidateMode,
    force: true,
  });
  const ms = performance.now() - t;
  if (out.kind !== 'completed') throw new Error(`run ${out.kind}, not completed`);
  await db.close();
  process.stdout.write(`${JSON.stringify({ rows: out.summary.rows, ms, counts: out.summary.counts, timingsMs: out.summary.timingsMs, peakRssMb: peakRss() })}\n`);
}

function peakRss(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

interface Report {
  rows: number;
  ms: number;
  peakRssMb: number;
  counts?: Record<string, number>;
  timingsMs?: Record<string, number>;
}

async function child(args: string[]): Promise<Report> {
  const c = spawn(process.execPath, [process.argv[1]!, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  const code = await new Promise((r) => c.once('exit', r));
  if (code !== 0) throw new Error(`the ${args.join(' ')} process failed (exit ${code})`);
  return JSON.parse(out) as Report;
}

async function benchmark(): Promise<void> {
  const patients = Number(values.patients);
  const rows = Number(values.rows);
  const seed = Number(values.seed);
  const work = values.keep ? path.resolve(values.keep) : await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-v2-'));
  const secs = (t: number) => (performance.now() - t) / 1000;
  let dropDb: string | undefined;
  try {
    let generateS: number | null = null;
    let loadS: number | null = null;
    let databaseUrl: string;
    if (values.reuse) {
      databaseUrl = (await fs.readFile(path.join(work, DB_FILE), 'utf8')).trim();
    } else {
      let t = performance.now();
      await generateSamples({ patients, seed, outDir: work, rosterRows: { school: rows, payer: 1, clinic: 1 }, immunizations: false });
      generateS = secs(t);
      const name = `rm_bench_v2_${process.pid}`;
      await admin(`CREATE DATABASE ${name}`);
      if (!values.keep) dropDb = name;
      databaseUrl = urlOf(name);
      const db = await openPostgres(databaseUrl);
      t = performance.now();
      await loadIndexFile(db, path.join(work, 'iis', 'Patient.ndjson'));
      loadS = secs(t);
      // Both runs read the candidate index from this snapshot, as every run after the first does.
      await fs.rm(path.join(work, 'cache'), { recursive: true, force: true });
      if (values.candidates !== 'database') await candidatesFor(db, 'memory', { snapshotDir: path.join(work, 'cache') });
      await db.close();
      if (values.keep) await fs.writeFile(path.join(work, DB_FILE), `${databaseUrl}\n`);
    }
    // The batch is written from the roster's own rows: message n is row n.
    let t = performance.now();
    const today = new Date().toISOString().slice(0, 10);
    const school = await loadPartnerPipeline('pipelines', PARTNER);
    const messages = await writeV2Batch(path.join(work, ROSTER), school, path.join(work, BATCH), { kind: 'VXU', today });
    const writeS = secs(t);

    const stamp = Date.now().toString(36);
    const common = ['--work', work, '--candidates', values.candidates, '--database-url', databaseUrl];
    const parse = {
      roster: await child(['--phase', 'parse', '--side', 'roster', '--group', `bench-roster-${stamp}`, ...common]),
      vxu: await child(['--phase', 'parse', '--side', 'vxu', '--group', `bench-vxu-${stamp}`, ...common]),
    };
    const run = {
      roster: await child(['--phase', 'run', '--side', 'roster', '--group', `bench-roster-${stamp}`, ...common]),
      vxu: await child(['--phase', 'run', '--side', 'vxu', '--group', `bench-vxu-${stamp}`, ...common]),
    };
    if (run.roster.rows !== run.vxu.rows || run.vxu.rows !== messages) throw new Error(`the runs saw ${run.roster.rows} rows and ${run.vxu.rows} messages of ${messages}`);

    const bytes = { roster: (await fs.stat(path.join(work, ROSTER))).size, vxu: (await fs.stat(path.join(work, BATCH))).size };
    const perS = (r: Report) => Math.round(r.rows / (r.ms / 1000));
    const s = (ms: number | undefined) => ((ms ?? 0) / 1000).toFixed(2);
    const ratio = (f: (r: Report) => number) => (f(run.roster) > 0 ? `${(f(run.vxu) / f(run.roster)).toFixed(2)}×` : '');
    const t2 = (r: Report, k: string) => r.timingsMs?.[k] ?? 0;
    const publishMs = (r: Report) => t2(r, 'write') + t2(r, 'export');
    const rowsOf = ([label, f]: readonly [string, (r: Report) => number]) => [label, s(f(run.roster)), s(f(run.vxu)), ratio(f)];
    const header = ['', 'roster (rows)', 'VXU (messages)', 'VXU / roster'];
    const table: (string | number)[][] = [
      ['people', run.roster.rows, run.vxu.rows, ''],
      ['file size (MB)', (bytes.roster / 1e6).toFixed(1), (bytes.vxu / 1e6).toFixed(1), `${(bytes.vxu / bytes.roster).toFixed(2)}×`],
      ['parse stage alone (s)', s(parse.roster.ms), s(parse.vxu.ms), `${(parse.vxu.ms / parse.roster.ms).toFixed(2)}×`],
      ['parse stage alone (/s)', perS(parse.roster), perS(parse.vxu), ''],
      ['parse stage peak RSS (MB)', parse.roster.peakRssMb, parse.vxu.peakRssMb, ''],
      ['whole run (s)', s(run.roster.ms), s(run.vxu.ms), `${(run.vxu.ms / run.roster.ms).toFixed(2)}×`],
      ...(
        [
          ['  candidate index (s)', (r: Report) => t2(r, 'candidates')],
          ['  matching (s)', (r: Report) => t2(r, 'match')],
          ['  parse and store rows (s)', (r: Report) => t2(r, 'parseAndStore')],
          ['  record: Group, review (s)', (r: Report) => t2(r, 'record')],
          ['  publish: results, replies, export (s)', publishMs],
        ] as const
      ).map(rowsOf),
      ['whole run (/s)', perS(run.roster), perS(run.vxu), `${(perS(run.roster) / perS(run.vxu)).toFixed(2)}× slower (target ≤ 1.5×)`],
      ['whole run peak RSS (MB)', run.roster.peakRssMb, run.vxu.peakRssMb, ''],
      ['matched / possible / no match / invalid', outcomes(run.roster), outcomes(run.vxu), ''],
    ];
    console.log(`index patients: ${values.reuse ? '(reused)' : patients}; candidates: ${values.candidates}; store: postgres; generate ${generateS?.toFixed(1) ?? '—'} s, index load ${loadS?.toFixed(1) ?? '—'} s, VXU batch written in ${writeS.toFixed(1)} s`);
    printColumns(header, table);
    if (values.json) {
      await fs.writeFile(values.json, `${JSON.stringify({ ...measuredOn(), patients: values.reuse ? null : patients, seed, candidates: values.candidates, bytes, messages, parse, run, generateSeconds: generateS, indexLoadSeconds: loadS }, null, 2)}\n`);
    }
  } finally {
    if (dropDb) await admin(`DROP DATABASE IF EXISTS ${dropDb} WITH (FORCE)`).catch(() => {});
    if (!values.keep) await fs.rm(work, { recursive: true, force: true });
  }
}

function outcomes(r: Report): string {
  const c = r.counts ?? {};
  return [c.matched, c.possible, c.no_match, c.invalid].map((n) => n ?? 0).join(' / ');
}
