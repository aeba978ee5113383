/**
 * Export benchmark: the Bulk Data export of one Group against a floor measured in the same run —
 * COPY of the very same join (the Group's members' resources, in the export's order) to a file,
 * what `\copy` does, planned as the server plans it; and the same COPY walking the members' index
 * as the export does, the floor of that plan. The export runs in a process of its own, so its peak
 * RSS is the export's alone.
 *
 * The store is filled by SQL (generate_series) with FHIR Patients and Immunizations of the size
 * the sample generator writes, and is never analysed (autovacuum off for its tables), as a store
 * may be after a load. Members hold --member-immunizations between them, the other patients the
 * rest: the Group of school children averaged 16 Immunizations a member.
 *
 *   npm run bench:export -- [--patients 200000] [--immunizations N] [--members N] [--member-immunizations N]
 *        [--store postgres|pglite] [--repeat 1] [--json FILE] [--keep DIR [--reuse]]
 *
 * With --store postgres it creates a database of its own on BENCH_DATABASE_URL's server (default
 * postgres://<user>@127.0.0.1:5432/postgres), dropped at the end unless --keep.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { benchArgs } from './args.ts';
import { measuredOn, printTable } from './report.ts';
import { admin, databaseUrl } from './server.ts';
import { exportGroup } from '../src/export/index.ts';
import { openEmbedded, openPostgres, openStore, type Db } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:export -- [--patients N] [--immunizations N] [--members N] [--member-immunizations N]
       [--store postgres|pglite] [--repeat N] [--json FILE] [--keep DIR [--reuse]]
  defaults: --patients 200000, --immunizations 10.1 a patient, --members 8.7% of the patients,
            --member-immunizations 16 a member (at most all of them), --store postgres, --repeat 1
  --repeat N   measure floor and export N times each, alternately, and keep the best of each
  --keep DIR   fill into DIR (and, for postgres, a database named in DIR/store.json) and keep them
  --reuse      with --keep DIR: measure again the store an earlier --keep run filled
  the issue's size: --patients 1000000 --immunizations 10100000 --members 87000`;

const values = benchArgs(
  {
    patients: { type: 'string', default: '200000' },
    immunizations: { type: 'string' },
    members: { type: 'string' },
    'member-immunizations': { type: 'string' },
    store: { type: 'string', default: 'postgres' },
    repeat: { type: 'string', default: '1' },
    json: { type: 'string' },
    keep: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    // Internal: the export, run by the benchmark in a child process.
    phase: { type: 'string' },
    work: { type: 'string' },
    'database-url': { type: 'string' },
  } as const,
  USAGE,
);
const usageError = (why: string): never => {
  console.error(`${why}\n${USAGE}`);
  process.exit(2);
};
if (!['pglite', 'postgres'].includes(values.store)) usageError('--store is pglite or postgres');
if (values.reuse && !values.keep) usageError('--reuse needs --keep DIR, the folder an earlier run kept');
if (!(Number(values.repeat) >= 1 && Number.isSafeInteger(Number(values.repeat)))) usageError('--repeat must be a whole number, at least 1');

const GROUP = 'bench-export';
/** What an earlier --keep run filled, for --reuse. */
interface Filled {
  store: string;
  databaseUrl?: string;
  patients: number;
  immunizations: number;
  members: number;
  fillSeconds: number;
}
const secs = (t: number) => +((performance.now() - t) / 1000).toFixed(2);

/** The child: export the Group once and report as one JSON line. */
async function exportPhase(): Promise<void> {
  const db = await openStore({ databaseUrl: values['database-url'], embeddedDir: path.join(values.work!, 'db') });
  const t = performance.now();
  const r = await exportGroup(db, { groupId: GROUP, outRoot: path.join(values.work!, 'exports') });
  const seconds = secs(t);
  await db.close();
  const counts = Object.fromEntries(r.manifest.output.map((o) => [o.type, o.count]));
  process.stdout.write(`${JSON.stringify({ dir: r.dir, seconds, counts, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
}

async function benchmark(): Promise<void> {
  const work = values.keep ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-export-')));
  const pgName = `rm_bench_export_${process.pid}`;
  let created = false;
  try {
    await fs.mkdir(work, { recursive: true });
    let filled: Filled;
    if (values.reuse) filled = JSON.parse(await fs.readFile(path.join(work, 'store.json'), 'utf8')) as Filled;
    else {
      const url = values.store === 'postgres' ? databaseUrl(pgName) : undefined;
      if (url) {
        await admin(`CREATE DATABASE ${pgName}`);
        created = true;
      }
      filled = await fill(url, work, sizes());
      if (values.keep) await fs.writeFile(path.join(work, 'store.json'), `${JSON.stringify(filled, null, 2)}\n`);
    }
    let best: Measured | undefined;
    for (let i = 0; i < Number(values.repeat); i++) {
      const floor = await measureFloors(filled, work);
      const e = await exportInChild(work, filled.databaseUrl);
      const exportBytes = await sizeOf(e.dir);
      await fs.rm(path.join(work, 'exports'), { recursive: true, force: true });
      if (exportBytes !== floor.bytes) throw new Error(`the export wrote ${exportBytes} bytes where the floor wrote ${floor.bytes}`);
      best = {
        floorS: Math.min(best?.floorS ?? Infinity, floor.plainS),
        indexFloorS: Math.min(best?.indexFloorS ?? Infinity, floor.indexS),
        exportS: Math.min(best?.exportS ?? Infinity, e.seconds),
        exportBytes,
        rssMb: Math.max(best?.rssMb ?? 0, e.peakRssMb),
        counts: e.counts,
      };
    }
    await report(filled, best!);
  } finally {
    if (created && !values.keep) await admin(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`).catch(() => {});
    if (!values.keep) await fs.rm(work, { recursive: true, force: true });
  }
}

interface Measured {
  floorS: number;
  indexFloorS: number;
  exportS: number;
  exportBytes: number;
  rssMb: number;
  counts: Record<string, number>;
}

interface Sizes {
  patients: number;
  immunizations: number;
  members: number;
  memberImmunizations: number;
}

function sizes(): Sizes {
  const patients = Number(values.patients);
  const immunizations = values.immunizations === undefined ? Math.round(patients * 10.1) : Number(values.immunizations);
  const members = values.members === undefined ? Math.round(patients * 0.087) : Number(values.members);
  const memberImmunizations = values['member-immunizations'] === undefined ? Math.min(16 * members, immunizations) : Number(values['member-immunizations']);
  for (const [k, v] of Object.entries({ patients, immunizations, members, memberImmunizations })) {
    if (!Number.isSafeInteger(v) || v < 0) usageError(`--${k} must be a whole number`);
  }
  if (patients < 1 || members > patients) usageError('--members must be at most --patients, which must be at least 1');
  if (memberImmunizations > immunizations || (members === patients && memberImmunizations !== immunizations)) usageError('--member-immunizations must fit in --immunizations');
  return { patients, immunizations, members, memberImmunizations };
}

/** Patients per fill statement: a progress line each, and no statement of millions of rows. */
const FILL_BATCH = 50_000;

/** Fills a fresh store, batch by batch of patients: each with its Immunizations and, if a member, its place in the Group. */
async function fill(url: string | undefined, work: string, s: Sizes): Promise<Filled> {
  const t = performance.now();
  const db: Db = url ? await openPostgres(url) : await openEmbedded(path.join(work, 'db'));
  try {
    for (const table of ['patient', 'immunization', 'group_member']) await db.exec(`ALTER TABLE ${table} SET (autovacuum_enabled = off)`);
    await db.exec(`INSERT INTO partner_group (id, partner, name, mode, member_count) VALUES ('${GROUP}', 'bench', 'Bench Group', 'replace', ${s.members})`);
    for (let lo = 0; lo < s.patients; lo += FILL_BATCH) {
      await db.exec(fillBatch(s, lo, Math.min(s.patients, lo + FILL_BATCH) - 1));
      process.stderr.write(`\rfilled ${Math.min(s.patients, lo + FILL_BATCH)} of ${s.patients} patients`);
    }
    process.stderr.write('\n');
  } finally {
    await db.close();
  }
  return { store: values.store, ...(url ? { databaseUrl: url } : {}), patients: s.patients, immunizations: s.immunizations, members: s.members, fillSeconds: secs(t) };
}

/**
 * Patients `lo`..`hi` as SQL. Ids are a scrambling of the ordinal (unique, and not in the order
 * the rows lie in the table, as a load leaves them); each patient's Immunizations lie together.
 * The members are spread evenly over the ordinals, as are both kinds' Immunizations.
 */
function fillBatch(s: Sizes, lo: number, hi: number): string {
  const { patients: P, members: M, memberImmunizations: KM } = s;
  const KN = s.immunizations - KM;
  const id = (n: string) => `lpad(to_hex((${n} * 2654435761) % 1099511627776), 10, '0')`;
  // Item i's share when `total` is spread evenly over `over` items: the shares add up to `total` exactly.
  const even = (i: string, total: number, over: number) => (over === 0 ? '0' : `(((${i}) + 1) * ${total}) / ${over} - ((${i}) * ${total}) / ${over}`);
  const instant = (ts: string) => `to_char(${ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;
  return `
    CREATE TEMP TABLE fill_batch AS
      SELECT n, ${id('n')} AS id, member, date '1990-01-01' + (n * 7 % 12000)::int AS birth,
             timestamptz '2022-01-01T00:00:00Z' + (n * 7919 % 126000000) * interval '1 second' AS lu,
             CASE WHEN member THEN ${even('(n * ' + M + ') / ' + P, KM, M)} ELSE ${even('n - ((n + 1) * ' + M + ') / ' + P, KN, P - M)} END AS doses
        FROM (SELECT n, ((n + 1) * ${M}) / ${P} > (n * ${M}) / ${P} AS member FROM generate_series(${lo}::bigint, ${hi}) n) g;
    INSERT INTO patient (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers, resource, content_hash, last_updated)
      SELECT id, given, middle, family, '', birth::text, sex, street, 'Decatur', 'IL', zip, phone, '[]',
             jsonb_build_object('resourceType', 'Patient', 'id', id, 'meta', jsonb_build_object('lastUpdated', ${instant('lu')}),
               'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:oid:2.16.840.1.113883.3.9999.1', 'value', 'IIS' || (10000000 + n * 89))),
               'name', jsonb_build_array(jsonb_build_object('use', 'official', 'family', family, 'given', jsonb_build_array(given, middle))),
               'gender', sex, 'birthDate', birth::text,
               'address', jsonb_build_array(jsonb_build_object('line', jsonb_build_array(street), 'city', 'Decatur', 'state', 'IL', 'postalCode', zip)),
               'telecom', jsonb_build_array(jsonb_build_object('system', 'phone', 'value', phone))),
             md5(id), lu
        FROM (SELECT *, (ARRAY['Ryan','Brittany','Vincent','Olivia','Noah','Emma','Liam','Sofia','Mateo','Ava'])[1 + n % 10] AS given,
                        (ARRAY['Michael','Grace','James','Rose','Lee','Marie','Alan','Jane'])[1 + n % 8] AS middle,
                        (ARRAY['Adams','Nguyen','Garcia','Smith','Johnson','Okafor','Kowalski','Martinez','Brown','Lee','Patel'])[1 + n % 11] AS family,
                        CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END AS sex,
                        (100 + n % 9800) || ' ' || (ARRAY['8th Ave','Maple St','Oak Dr','Lincoln Blvd'])[1 + n % 4] AS street,
                        lpad((60000 + n % 3000)::text, 5, '0') AS zip, '217-' || lpad((n % 1000)::text, 3, '0') || '-' || lpad((n % 10000)::text, 4, '0') AS phone
                FROM fill_batch) p;
    INSERT INTO immunization (id, patient_id, resource, content_hash, last_updated)
      SELECT id || '-' || k, id,
             jsonb_build_object('resourceType', 'Immunization', 'id', id || '-' || k, 'meta', jsonb_build_object('lastUpdated', ${instant('lu')}), 'status', 'completed',
               'vaccineCode', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object('system', 'http://hl7.org/fhir/sid/cvx',
                 'code', (ARRAY['08','20','10','03','21','115','62','114','141','133'])[1 + (n + k) % 10],
                 'display', (ARRAY['Hep B, adolescent or pediatric','DTaP','IPV','MMR','varicella','Tdap','HPV, quadrivalent','meningococcal MCV4P','Influenza, seasonal, injectable','Pneumococcal conjugate PCV 13'])[1 + (n + k) % 10]))),
               'patient', jsonb_build_object('reference', 'Patient/' || id), 'occurrenceDateTime', (birth + (k * 90)::int)::text, 'primarySource', true),
             md5(id || k), lu
        FROM fill_batch, generate_series(1, doses) k;
    INSERT INTO group_member (group_id, patient_id, added_at) SELECT '${GROUP}', id, timestamptz '2026-01-02T00:00:00Z' FROM fill_batch WHERE member;
    DROP TABLE fill_batch;`;
}

/** The export's lines as a query, to COPY: the Group's resources of a type, by member id then resource id. */
function floorQuery(type: 'Patient' | 'Immunization'): string {
  const [table, owner] = type === 'Patient' ? ['patient', 'id'] : ['immunization', 'patient_id'];
  return `SELECT r.resource::text FROM group_member m JOIN ${table} r ON r.${owner} = m.patient_id
           WHERE m.group_id = '${GROUP}' AND r.last_updated <= now() ORDER BY m.patient_id, r.id`;
}
const TYPES = ['Patient', 'Immunization'] as const;

/** The plan the export forces (src/export): group_member's primary key, then each member's resources by index. */
const INDEX_WALK = 'SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off';
/** A connection to the store that copies each type's lines into a file under `settings`, resolving with the bytes written. */
interface Floor {
  copy(work: string, settings: string): Promise<number>;
  close(): Promise<void>;
}

/** Both floors, timed apart from opening the store (the export's time leaves its opening out too). */
async function measureFloors(filled: Filled, work: string): Promise<{ bytes: number; plainS: number; indexS: number }> {
  const floor = filled.databaseUrl ? await pgFloor(filled.databaseUrl) : await pgliteFloor(path.join(work, 'db'));
  try {
    let t = performance.now();
    const bytes = await floor.copy(work, '');
    const plainS = secs(t);
    t = performance.now();
    await floor.copy(work, INDEX_WALK);
    return { bytes, plainS, indexS: secs(t) };
  } finally {
    await floor.close();
  }
}

/** Each type's floor lines into a file of their own, by `copyType`; resolves with the bytes written. */
async function copyTypes(work: string, copyType: (type: (typeof TYPES)[number], file: string) => Promise<void>): Promise<number> {
  let bytes = 0;
  for (const type of TYPES) {
    const file = path.join(work, `floor-${type}.ndjson`);
    await copyType(type, file);
    bytes += await fileSize(file);
  }
  return bytes;
}

/** The floor on a server: COPY … TO STDOUT into a file, as `\copy` writes it. */
async function pgFloor(url: string): Promise<Floor> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    copy: (work, settings) =>
      copyTypes(work, async (type, file) => {
        await c.query(`BEGIN; ${settings}`);
        await pipeline(c.query(copyTo(`COPY (${floorQuery(type)}) TO STDOUT`)), createWriteStream(file));
        await c.query('COMMIT');
      }),
    close: () => c.end(),
  };
}

/** The floor on PGlite: COPY … TO its blob device, the fastest way out of PGlite, then into a file. */
async function pgliteFloor(dir: string): Promise<Floor> {
  const lite = await PGlite.create(dir);
  return {
    copy: (work, settings) =>
      copyTypes(work, async (type, file) => {
        const { blob } = await lite.transaction(async (tx) => {
          if (settings) await tx.exec(settings);
          return tx.query(`COPY (${floorQuery(type)}) TO '/dev/blob'`);
        });
        await fs.writeFile(file, Buffer.from(await blob!.arrayBuffer()));
      }),
    close: () => lite.close(),
  };
}

async function exportInChild(work: string, url: string | undefined): Promise<{ dir: string; seconds: number; counts: Record<string, number>; peakRssMb: number }> {
  const child = spawn(process.execPath, [process.argv[1]!, '--phase', 'export', '--work', work, ...(url ? ['--database-url', url] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`the export process failed (exit ${code})`);
  return JSON.parse(out) as { dir: string; seconds: number; counts: Record<string, number>; peakRssMb: number };
}

const fileSize = async (file: string) => (await fs.stat(file)).size;

/** Bytes of the export's NDJSON files (the manifest aside). */
async function sizeOf(dir: string): Promise<number> {
  let bytes = 0;
  for (const f of await fs.readdir(dir)) if (f.endsWith('.ndjson')) bytes += await fileSize(path.join(dir, f));
  return bytes;
}

async function report(filled: Filled, m: Measured): Promise<void> {
  const figures = {
    ...measuredOn(),
    store: filled.store,
    patients: filled.patients,
    immunizations: filled.immunizations,
    members: filled.members,
    exported: m.counts,
    exportMb: +(m.exportBytes / 2 ** 20).toFixed(1),
    fillSeconds: values.reuse ? null : filled.fillSeconds,
    repeat: Number(values.repeat),
    floorSeconds: m.floorS,
    indexWalkFloorSeconds: m.indexFloorS,
    exportSeconds: m.exportS,
    exportToFloor: +(m.exportS / m.floorS).toFixed(2),
    exportToIndexWalkFloor: +(m.exportS / m.indexFloorS).toFixed(2),
    exportProcessPeakRssMb: m.rssMb,
  };
  const table: [string, string | number][] = [
    ['store', figures.store],
    ['patients / immunizations', `${figures.patients} / ${figures.immunizations}`],
    ['Group members', figures.members],
    ['exported Patient / Immunization', `${m.counts.Patient} / ${m.counts.Immunization} (${figures.exportMb} MB)`],
    ['fill (s)', figures.fillSeconds ?? '— (reused)'],
    ['floor: COPY of the join (s)', figures.floorSeconds],
    ['  walking the index (s)', figures.indexWalkFloorSeconds],
    ['export (s)', figures.exportSeconds],
    ['export / floor', `${figures.exportToFloor}×`],
    ['export / index-walk floor', `${figures.exportToIndexWalkFloor}×`],
    ['export process peak RSS (MB)', figures.exportProcessPeakRssMb],
  ];
  printTable(table);
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
}

if (values.phase === 'export') await exportPhase();
else await benchmark();
