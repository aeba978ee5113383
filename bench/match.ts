/**
 * Matching benchmark: generate an index and a roster with ground truth, load the index, then match
 * the roster in a process of its own — so its peak RSS is the matching's alone — and print quality
 * and speed. Figures print as a table and are written as JSON, so runs can be compared.
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
    candidates: values.candidates as CandidateMode,
    force: true,
  });
  if (out.kind !== 'completed') throw new Error('unexpected duplicate run');
  await db.close();
  process.stdout.write(`${JSON.stringify({ summary: out.summary, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
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

    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${values['heap-mb']}`, process.argv[1]!, '--phase', 'match', '--work', work, '--store', values.store, '--candidates', values.candidates, ...(databaseUrl ? ['--database-url', databaseUrl] : [])],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`the matching process failed (exit ${code})`);
    const m = JSON.parse(out) as { summary: { runId: string; rows: number; counts: Record<string, number>; timingsMs: Record<string, number> }; peakRssMb: number };
    const s = m.summary;
    const a = await score(databaseUrl, work, s.runId);
    const figures = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
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
      candidateLoadSeconds: +((s.timingsMs.candidates ?? 0) / 1000).toFixed(1),
      matchStageRowsPerSecond: Math.round(s.rows / (s.timingsMs.match! / 1000)),
      matchStageWithLoadRowsPerSecond: Math.round(s.rows / ((s.timingsMs.match! + (s.timingsMs.candidates ?? 0)) / 1000)),
      runSeconds: +(s.timingsMs.total! / 1000).toFixed(2),
      runTimingsMs: s.timingsMs,
      matchingProcessPeakRssMb: m.peakRssMb,
      matchingProcessHeapLimitMb: Number(values['heap-mb']),
    };
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
      ['candidate index load (s)', figures.candidateLoadSeconds],
      ['match stage (rows/s)', figures.matchStageRowsPerSecond],
      ['match stage incl. load (rows/s)', figures.matchStageWithLoadRowsPerSecond],
      ['whole run (s)', figures.runSeconds],
      ['matching process peak RSS (MB)', `${figures.matchingProcessPeakRssMb} (heap limit ${values['heap-mb']} MB)`],
    ];
    for (const [k, v] of table) console.log(`${k.padEnd(32)} ${v}`);
    if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    if (pgName) await admin(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`).catch(() => {});
    if (!values.keep) await fs.rm(work, { recursive: true, force: true });
  }
}
