/**
 * Index-load benchmark: `index load` of generated FHIR Patients (and, with --immunizations, their
 * Immunizations) into a fresh store, against a floor measured in the same run — COPY of the very
 * same NDJSON lines into a table of one jsonb column, what `\copy` does — and then a reload of the
 * same file (every line unchanged), as a nightly extract of a quiet day would be.
 *
 *   npm run bench:load -- [--patients 100000] [--immunizations] [--store postgres|pglite] [--seed 7] [--json FILE]
 *
 * With --store postgres it creates and drops a database of its own on BENCH_DATABASE_URL's server
 * (default postgres://<user>@127.0.0.1:5432/postgres).
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { benchArgs } from './args.ts';
import { measuredOn, printTable } from './report.ts';
import { admin, databaseUrl } from './server.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { generateSamples } from '../src/samples/index.ts';
import { openEmbedded, openPostgres, type Db } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:load -- [--patients N] [--immunizations] [--store postgres|pglite] [--seed N] [--json FILE]
  defaults: --patients 100000 --store postgres --seed 7 (Patients only)`;
const values = benchArgs(
  {
    patients: { type: 'string', default: '100000' },
    immunizations: { type: 'boolean', default: false },
    store: { type: 'string', default: 'postgres' },
    seed: { type: 'string', default: '7' },
    json: { type: 'string' },
  } as const,
  USAGE,
);
if (!['pglite', 'postgres'].includes(values.store)) {
  console.error(`--store is pglite or postgres\n${USAGE}`);
  process.exit(2);
}
const secs = (t: number) => +((performance.now() - t) / 1000).toFixed(2);

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-load-'));
const pgName = `rm_bench_load_${process.pid}`;
try {
  await generateSamples({ patients: Number(values.patients), seed: Number(values.seed), outDir: work, rosterRows: { school: 1, payer: 1, clinic: 1 }, immunizations: values.immunizations });
  const files = ['Patient.ndjson', ...(values.immunizations ? ['Immunization.ndjson'] : [])].map((f) => path.join(work, 'iis', f));
  let db: Db;
  let floor: (file: string) => Promise<void>;
  if (values.store === 'postgres') {
    await admin(`CREATE DATABASE ${pgName}`);
    const url = databaseUrl(pgName);
    db = await openPostgres(url);
    floor = async (file) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await pipeline(createReadStream(file), c.query(copyFrom('COPY copy_floor (resource) FROM STDIN')));
      await c.end();
    };
  } else {
    db = await openEmbedded(path.join(work, 'db'));
    floor = async (file) => {
      await db.copyIn('copy_floor', ['resource'], await fs.readFile(file, 'utf8'));
    };
  }
  // The floor: the same lines, parsed as jsonb by the server, no index, no work in Node.
  await db.exec('CREATE TABLE copy_floor (resource jsonb)');
  let t = performance.now();
  for (const f of files) await floor(f);
  const floorS = secs(t);
  await db.exec('DROP TABLE copy_floor');

  t = performance.now();
  const reports = [];
  for (const f of files) reports.push(await loadIndexFile(db, f));
  const loadS = secs(t);
  t = performance.now();
  for (const f of files) await loadIndexFile(db, f);
  const reloadS = secs(t);
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM patient_block');
  await db.close();

  const patients = reports[0]!.patients.inserted;
  const immunizations = reports[1]?.immunizations.inserted ?? 0;
  const figures = {
    ...measuredOn(),
    store: values.store,
    patients,
    immunizations,
    blockingKeys: rows[0]!.n,
    floorSeconds: floorS,
    loadSeconds: loadS,
    loadToFloor: +(loadS / floorS).toFixed(2),
    patientsPerSecond: Math.round(patients / loadS),
    reloadUnchangedSeconds: reloadS,
  };
  const table: [string, string | number][] = [
    ['store', figures.store],
    ['patients / immunizations', `${patients} / ${immunizations}`],
    ['blocking keys', figures.blockingKeys],
    ['floor: COPY of the lines (s)', floorS],
    ['index load (s)', loadS],
    ['index load / floor', `${figures.loadToFloor}×`],
    ['index load (patients/s)', figures.patientsPerSecond],
    ['reload, all unchanged (s)', reloadS],
  ];
  printTable(table);
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  if (values.store === 'postgres') await admin(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
}
