/**
 * Matching benchmark: generate an index and a roster with ground truth, load the index into the
 * embedded store, match the roster, and print quality and speed. Figures are printed as a table
 * and written as JSON so runs can be compared.
 *
 *   npm run bench:match -- --patients 1000000 --roster 100000 --seed 7 [--store pglite|postgres]
 *        [--candidates auto|memory|database] [--json out.json] [--keep DIR]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/config/index.ts';
import { accuracy, readTruth } from '../src/evaluate/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { generateSamples } from '../src/samples/index.ts';
import { openEmbedded, openPostgres, readRunResults } from '../src/store/index.ts';
import type { CandidateMode } from '../src/run/index.ts';
import pg from 'pg';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? `postgres://${os.userInfo().username}@127.0.0.1:5432/postgres`;

const { values } = parseArgs({
  options: {
    patients: { type: 'string', default: '100000' },
    roster: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '7' },
    json: { type: 'string' },
    keep: { type: 'string' },
    store: { type: 'string', default: 'pglite' },
    candidates: { type: 'string', default: 'auto' },
  },
});
if (!['pglite', 'postgres'].includes(values.store)) throw new Error('--store is pglite or postgres');
if (!['auto', 'memory', 'database'].includes(values.candidates)) throw new Error('--candidates is auto, memory or database');
const patients = Number(values.patients);
const roster = Number(values.roster);
const seed = Number(values.seed);

const work = values.keep ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-')));
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const secs = (t: number) => (performance.now() - t) / 1000;

try {
  let t = performance.now();
  await generateSamples({ patients, seed, outDir: work, rosterRows: { school: roster, payer: 1, clinic: 1 }, immunizations: false });
  const generateS = secs(t);

  let pgName: string | undefined;
  let db;
  if (values.store === 'postgres') {
    pgName = `rm_bench_${process.pid}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${pgName}`);
    await admin.end();
    db = await openPostgres(Object.assign(new URL(ADMIN_URL), { pathname: `/${pgName}` }).href);
  } else db = await openEmbedded(path.join(work, 'db'));
  t = performance.now();
  const load = await loadIndexFile(db, path.join(work, 'iis', 'Patient.ndjson'));
  const loadS = secs(t);

  const out = await runFile(db, createLogger('silent'), {
    file: path.join(work, 'rosters', 'district7-fall.csv'),
    pipeline: await loadPartnerPipeline('pipelines', 'school-district-7'),
    outDir: path.join(work, 'out'),
    exportsDir: path.join(work, 'exports'),
    candidates: values.candidates as CandidateMode,
  });
  if (out.kind !== 'completed') throw new Error('unexpected duplicate run');
  const rows = await readRunResults(db, out.run.id);
  await db.close();
  if (pgName) {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`);
    await admin.end();
  }
  const a = accuracy(
    rows.map((r) => ({ recordId: r.recordId, outcome: r.outcome, patientId: r.patientId, candidateIds: r.candidates.map((c) => c.patientId) })),
    await readTruth(path.join(work, 'truth', 'district7-fall.truth.csv')),
  );
  const s = out.summary;
  const figures = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    store: values.store,
    candidates: values.candidates,
    patients,
    rosterRows: s.rows,
    seed,
    generateSeconds: +generateS.toFixed(1),
    indexLoadSeconds: +loadS.toFixed(1),
    indexLoadPatientsPerSecond: Math.round(load.patients.inserted / loadS),
    precision: +a.precision.toFixed(5),
    recall: +a.recall.toFixed(5),
    f1: +a.f1.toFixed(5),
    falseMatchesPer10k: +a.falseMatchesPer10k.toFixed(2),
    reviewShare: +((s.counts.possible + s.counts.ambiguous) / s.rows).toFixed(4),
    counts: s.counts,
    candidateLoadSeconds: +((s.timingsMs.candidates ?? 0) / 1000).toFixed(1),
    matchStageRowsPerSecond: Math.round(s.rows / (s.timingsMs.match! / 1000)),
    matchStageWithLoadRowsPerSecond: Math.round(s.rows / ((s.timingsMs.match! + (s.timingsMs.candidates ?? 0)) / 1000)),
    runSeconds: +(s.timingsMs.total / 1000).toFixed(2),
    runTimingsMs: s.timingsMs,
    peakRssMb: peakRssMb(),
  };
  const table: [string, string | number][] = [
    ['index patients', figures.patients],
    ['roster rows', figures.rosterRows],
    ['index load (s)', figures.indexLoadSeconds],
    ['index load (patients/s)', figures.indexLoadPatientsPerSecond],
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
    ['peak RSS (MB)', figures.peakRssMb],
  ];
  for (const [k, v] of table) console.log(`${k.padEnd(30)} ${v}`);
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  if (!values.keep) await fs.rm(work, { recursive: true, force: true });
}
