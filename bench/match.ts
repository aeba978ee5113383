/**
 * Matching benchmark: generate an index and a roster with ground truth, load the index, then match
 * the roster one-shot (as `rostermatch match` does) in a process of its own — so its peak RSS is
 * the matching's alone — twice: first with no candidate-index snapshot on disk (the in-memory copy
 * is built from the database, as after a fresh load), then again with the snapshot the first run
 * left (as every later run). Prints quality, speed and where each run's time went. Figures print
 * as a table and are written as JSON, so runs can be compared.
 *
 *   npm run bench:match -- --patients 1000000 --roster 100000 --seed 7 [--store pglite|postgres]
 *        [--candidates auto|memory|database] [--json out.json] [--keep DIR]
 *        [--reuse --keep DIR --database-url URL]   (match again data and an index an earlier run kept)
 *        [--heap-mb N]   V8 heap limit of the matching process (default 1024)
 *
 * With --store postgres it needs a server where it may create a database (BENCH_DATABASE_URL,
 * default postgres://<user>@127.0.0.1:5432/postgres).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/config/index.ts';
import { benchArgs } from './args.ts';
import { measuredOn, printTable } from './report.ts';
import { admin, databaseUrl as urlOf } from './server.ts';
import { accuracy, readTruth } from '../src/evaluate/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile, type CandidateMode } from '../src/run/index.ts';
import { generateSamples } from '../src/samples/index.ts';
import { countIndex, openEmbedded, openPostgres, openStore, streamRunResults } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:match -- [--patients N] [--roster N] [--seed N] [--store pglite|postgres]
       [--candidates auto|memory|database] [--json FILE] [--keep DIR] [--heap-mb N]
       [--reuse --keep DIR [--database-url URL]]   match again the data and index an earlier --keep run left
  defaults: --patients 100000 --roster 10000 --seed 7 --store pglite --candidates auto --heap-mb 1024`;

const options = {
  patients: { type: 'string', default: '100000' },
  roster: { type: 'string', default: '10000' },
  seed: { type: 'string', default: '7' },
  json: { type: 'string' },
  keep: { type: 'string' },
  store: { type: 'string', default: 'pglite' },
  candidates: { type: 'string', default: 'auto' },
  // Internal: the matching phase, run by the benchmark in a child process.
  phase: { type: 'string' },
  work: { type: 'string' },
  'database-url': { type: 'string' },
  reuse: { type: 'boolean', default: false },
  // V8 grows its heap lazily up to its own limit; capped, it collects sooner and RSS follows the live set.
  'heap-mb': { type: 'string', default: '1024' },
} as const;
const values = benchArgs(options, USAGE);
if (values.reuse && !values.keep) {
  console.error(`--reuse needs --keep DIR, the folder an earlier run kept\n${USAGE}`);
  process.exit(2);
}
if (!['pglite', 'postgres'].includes(values.store)) throw new Error('--store is pglite or postgres');
if (!['auto', 'memory', 'database'].includes(values.candidates)) throw new Error('--candidates is auto, memory or database');
const ROSTER = path.join('rosters', 'district7-fall.csv');

if (values.phase === 'match') await matchPhase();
else await benchmark();

/** The child: match the roster against the loaded index and report as one JSON line. */
async function matchPhase(): Promise<void> {
  const work = values.work!;
  const db = await openStore({ databaseUrl: values['database-url'], embeddedDir: path.join(work, 'db') });
  const out = await runFile(db, createLogger('silent'), {
    file: path.join(work, ROSTER),
    pipeline: await loadPartnerPipeline('pipelines', 'school-district-7'),
    outDir: path.join(work, 'out'),
    exportsDir: path.join(work, 'exports'),
    snapshotDir: path.join(work, 'cache'),
    candidates: values.candidates as CandidateMode,
    force: true,
  });
  if (out.kind !== 'completed') throw new Error('unexpected duplicate run');
  await db.close();
  process.stdout.write(`${JSON.stringify({ summary: out.summary, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
}

interface ChildReport {
  summary: { runId: string; rows: number; counts: Record<string, number>; timingsMs: Record<string, number> };
  peakRssMb: number;
}

/** One one-shot run of the roster, in a process of its own. */
async function matchInChild(work: string, databaseUrl: string | undefined): Promise<ChildReport> {
  const child = spawn(
    process.execPath,
    [`--max-old-space-size=${values['heap-mb']}`, process.argv[1]!, '--phase', 'match', '--work', work, '--store', values.store, '--candidates', values.candidates, ...(databaseUrl ? ['--database-url', databaseUrl] : [])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`the matching process failed (exit ${code})`);
  return JSON.parse(out) as ChildReport;
}

/** Scores a run against the ground truth, in the parent: the matching process's memory stays its own. */
async function score(databaseUrl: string | undefined, work: string, runId: string): Promise<ReturnType<typeof accuracy> & { indexPatients: number }> {
  const db = await openStore({ databaseUrl, embeddedDir: path.join(work, 'db') });
  const indexPatients = (await countIndex(db)).patients;
  const scored = [];
  for await (const page of streamRunResults(db, runId)) {
    for (const r of page) scored.push({ recordId: r.recordId, outcome: r.outcome, patientId: r.patientId, candidateIds: r.candidates.map((c) => c.patientId) });
  }
  await db.close();
  return { ...accuracy(scored, await readTruth(path.join(work, 'truth', 'district7-fall.truth.csv'))), indexPatients };
}

async function benchmark(): Promise<void> {
  const patients = Number(values.patients);
  const roster = Number(values.roster);
  const seed = Number(values.seed);
  const work = values.keep ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-')));
  const secs = (t: number) => (performance.now() - t) / 1000;
  let pgName: string | undefined;
  try {
    // --reuse: the data in --keep and the index in --database-url were made by an earlier run.
    let generateS = 0;
    let loadS = 0;
    let loaded = 0;
    let databaseUrl = values['database-url'];
    if (!values.reuse) {
      let t = performance.now();
      await generateSamples({ patients, seed, outDir: work, rosterRows: { school: roster, payer: 1, clinic: 1 }, immunizations: false });
      generateS = secs(t);
      if (values.store === 'postgres') {
        pgName = `rm_bench_${process.pid}`;
        await admin(`CREATE DATABASE ${pgName}`);
        databaseUrl = urlOf(pgName);
      }
      const db = databaseUrl ? await openPostgres(databaseUrl) : await openEmbedded(path.join(work, 'db'));
      t = performance.now();
      loaded = (await loadIndexFile(db, path.join(work, 'iis', 'Patient.ndjson'))).patients.inserted;
      loadS = secs(t);
      await db.close();
    }

    // --reuse keeps the snapshot an earlier run left; otherwise the first run starts without one.
    if (!values.reuse) await fs.rm(path.join(work, 'cache'), { recursive: true, force: true });
    const first = await matchInChild(work, databaseUrl);
    const second = await matchInChild(work, databaseUrl);
    const s = first.summary;
    const a = await score(databaseUrl, work, s.runId);
    const runFigures = (m: ChildReport) => ({
      seconds: +(m.summary.timingsMs.total! / 1000).toFixed(2),
      candidateIndexSeconds: +((m.summary.timingsMs.candidates ?? 0) / 1000).toFixed(2),
      matchSeconds: +(m.summary.timingsMs.match! / 1000).toFixed(2),
      parseAndStoreSeconds: +(m.summary.timingsMs.parseAndStore! / 1000).toFixed(2),
      recordSeconds: +(m.summary.timingsMs.record! / 1000).toFixed(2),
      exportSeconds: +(m.summary.timingsMs.export! / 1000).toFixed(2),
      matchStageRowsPerSecond: Math.round(m.summary.rows / (m.summary.timingsMs.match! / 1000)),
      peakRssMb: m.peakRssMb,
      timingsMs: m.summary.timingsMs,
    });
    const figures = {
      ...measuredOn(),
      store: values.store,
      candidates: values.candidates,
      // What the store holds: with --reuse, --patients is not what an earlier run loaded.
      patients: a.indexPatients,
      rosterRows: s.rows,
      seed,
      generateSeconds: +generateS.toFixed(1),
      indexLoadSeconds: values.reuse ? null : +loadS.toFixed(1),
      indexLoadPatientsPerSecond: values.reuse ? null : Math.round(loaded / loadS),
      precision: +a.precision.toFixed(5),
      recall: +a.recall.toFixed(5),
      f1: +a.f1.toFixed(5),
      falseMatchesPer10k: +a.falseMatchesPer10k.toFixed(2),
      reviewShare: +((s.counts.possible! + s.counts.ambiguous!) / s.rows).toFixed(4),
      counts: s.counts,
      firstRun: runFigures(first),
      snapshotRun: runFigures(second),
      matchingProcessHeapLimitMb: Number(values['heap-mb']),
    };
    const both = (f: (r: ReturnType<typeof runFigures>) => number | string) => `${f(figures.firstRun)} / ${f(figures.snapshotRun)}`;
    const table: [string, string | number][] = [
      ['index patients', figures.patients],
      ['roster rows', figures.rosterRows],
      ['index load (s)', figures.indexLoadSeconds ?? '— (reused)'],
      ['index load (patients/s)', figures.indexLoadPatientsPerSecond ?? '— (reused)'],
      ['precision (auto-matched)', figures.precision],
      ['recall (auto-matched)', figures.recall],
      ['F1', figures.f1],
      ['false matches / 10,000 rows', figures.falseMatchesPer10k],
      ['share sent to review', figures.reviewShare],
      ['store / candidates', `${figures.store} / ${figures.candidates}`],
      ['one-shot run: first / from snapshot', ''],
      ['  whole run (s)', both((r) => r.seconds)],
      ['  candidate index (s)', both((r) => r.candidateIndexSeconds)],
      ['  matching (s)', both((r) => r.matchSeconds)],
      ['  parse and store rows (s)', both((r) => r.parseAndStoreSeconds)],
      ['  record: Group, review (s)', both((r) => r.recordSeconds)],
      ['  export (s)', both((r) => r.exportSeconds)],
      ['  match stage (rows/s)', both((r) => r.matchStageRowsPerSecond)],
      ['  peak RSS (MB)', `${both((r) => r.peakRssMb)} (heap limit ${values['heap-mb']} MB)`],
    ];
    printTable(table);
    if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    if (pgName) await admin(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`).catch(() => {});
    if (!values.keep) await fs.rm(work, { recursive: true, force: true });
  }
}
