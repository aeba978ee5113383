/**
 * Export benchmark: the Bulk Data export of one Group against a floor measured in the same run —
 * COPY of the very same join (the Group's members' resources, in the export's order) to a file,
 * what `\copy` does, planned as the server plans it; and the same COPY walking the members' index
 * as the export does, the floor of that plan. The export runs in a process of its own, so its peak
 * RSS is the export's alone.
 *
 * Then the FHIR path of the same export, as a partner meets it: `rostermatch serve` as a child
 * process on the same store (its own queue prefix and data folder, matching left to workers), a
 * SMART Backend Services client registered in the store, a token, a real HTTP `Group/[id]/$export`
 * kick-off and polling every second until the manifest; timed from kick-off to manifest, with the
 * serve process's peak RSS (VmHWM in /proc/<pid>/status) and its RSS when the kick-off was sent.
 *
 * The store is filled by SQL (generate_series, bench/fill.ts) with FHIR Patients and Immunizations
 * of the size the sample generator writes, and is never analysed (autovacuum off for its tables),
 * as a store may be after a load. Members hold --member-immunizations between them, the other
 * patients the rest: the issue's Group of school children averaged 16 Immunizations a member.
 *
 *   npm run bench:export -- [--patients 200000] [--immunizations N] [--members N[,N…]] [--member-immunizations N]
 *        [--store postgres|pglite] [--repeat 1] [--json FILE] [--keep DIR [--reuse]] [--no-fhir]
 *
 * With --store postgres it creates a database of its own on BENCH_DATABASE_URL's server (default
 * postgres://<user>@127.0.0.1:5432/postgres), dropped at the end unless --keep; the FHIR path needs
 * Redis at REDIS_URL (default redis://127.0.0.1:6379).
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
import { jobFiles, ownQueuePrefix, procMemory, registerClient, sampleRss, spawnServe, timedGroupExport } from './fhir-export.ts';
import { fillStore, GROUP, GROUP_PARTNER, type Sizes } from './fill.ts';
import { measuredOn, printColumns, printTable } from './report.ts';
import { admin, databaseUrl, dropQueueKeys } from './server.ts';
import { exportGroup } from '../src/export/index.ts';
import { getBulkJob, openEmbedded, openPostgres, openStore, type Db } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:export -- [--patients N] [--immunizations N] [--members N[,N…]] [--member-immunizations N]
       [--store postgres|pglite] [--repeat N] [--json FILE] [--keep DIR [--reuse]] [--no-fhir]
  defaults: --patients 200000 (raised to --members), --immunizations 10.1 a patient (raised to 16 a member),
            --members 8.7% of the patients, --member-immunizations 16 a member (at most all of them),
            --store postgres, --repeat 1
  --members A,B   one store and one measurement per size, in turn, then a table of them all
                  (e.g. --members 100000,500000: 200k patients with a 100k-member Group, then
                  500k patients all in the Group, 8M Immunizations)
  --repeat N      measure floor, export and FHIR export N times each, alternately, and keep the best of each
  --keep DIR      fill into DIR (and, for postgres, a database named in DIR/store.json) and keep them;
                  with several --members, into DIR/members-<N> each
  --reuse         with --keep DIR: measure again the store an earlier --keep run filled
  --no-fhir       leave out the FHIR path (serve as a child process, kick-off to manifest over HTTP)
  --json FILE     the figures; with several --members, {date, node, cpus, runs: [one per size]}
  the issue's size: --patients 1000000 --immunizations 10100000 --members 87000`;

const values = benchArgs(
  {
    patients: { type: 'string' },
    immunizations: { type: 'string' },
    members: { type: 'string' },
    'member-immunizations': { type: 'string' },
    store: { type: 'string', default: 'postgres' },
    repeat: { type: 'string', default: '1' },
    json: { type: 'string' },
    keep: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    'no-fhir': { type: 'boolean', default: false },
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
const memberSizes: (number | undefined)[] = values.members === undefined ? [undefined] : values.members.split(',').map((m) => (m.trim() === '' || !/^\d+$/.test(m.trim()) ? usageError('--members must be whole numbers, separated by commas') : Number(m)));

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
  const all: Figures[] = [];
  for (const [i, members] of memberSizes.entries()) {
    const s = sizes(members);
    if (memberSizes.length > 1) console.log(`${i > 0 ? '\n' : ''}── ${s.members} members ──`);
    all.push(await measureSize(s, values.keep && memberSizes.length > 1 ? path.join(values.keep, `members-${s.members}`) : values.keep));
  }
  if (memberSizes.length > 1) {
    console.log();
    printColumns(
      ['members', 'kick-off→manifest (s)', 'MB written', 'MB/s', 'serve RSS at kick-off / peak (MB)', 'floor (s)', 'ratio'],
      all.map((f) => [f.members, f.fhir?.kickOffToManifestSeconds ?? '—', f.fhir?.writtenMb ?? '—', f.fhir?.mbPerSecond ?? '—', f.fhir ? `${f.fhir.serveRssAtKickOffMb} / ${f.fhir.servePeakRssMb}` : '—', f.floorSeconds, f.fhir ? `${f.fhir.toFloor}×` : '—']),
    );
  }
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(memberSizes.length > 1 ? { ...measuredOn(), runs: all } : all[0], null, 2)}\n`);
}

/** Fill (or reuse) one store of these sizes and measure it. */
async function measureSize(s: Sizes, keep: string | undefined): Promise<Figures> {
  const work = keep ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-export-')));
  const pgName = `rm_bench_export_${process.pid}_${s.members}`;
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
      filled = await fill(url, work, s);
      if (keep) await fs.writeFile(path.join(work, 'store.json'), `${JSON.stringify(filled, null, 2)}\n`);
    }
    let best: Measured | undefined;
    for (let i = 0; i < Number(values.repeat); i++) {
      const floor = await measureFloors(filled, work);
      const e = await exportInChild(work, filled.databaseUrl);
      const exportBytes = await sizeOf(e.dir);
      await fs.rm(path.join(work, 'exports'), { recursive: true, force: true });
      if (exportBytes !== floor.bytes) throw new Error(`the export wrote ${exportBytes} bytes where the floor wrote ${floor.bytes}`);
      const f = values['no-fhir'] ? undefined : await fhirExport(work, filled.databaseUrl);
      if (f && f.bytes.Patient + f.bytes.Immunization !== floor.bytes) throw new Error(`the FHIR export wrote ${f.bytes.Patient + f.bytes.Immunization} bytes of Patients and Immunizations where the floor wrote ${floor.bytes}`);
      best = {
        floorS: Math.min(best?.floorS ?? Infinity, floor.plainS),
        indexFloorS: Math.min(best?.indexFloorS ?? Infinity, floor.indexS),
        exportS: Math.min(best?.exportS ?? Infinity, e.seconds),
        exportBytes,
        rssMb: Math.max(best?.rssMb ?? 0, e.peakRssMb),
        counts: e.counts,
        ...(f ? { fhir: best?.fhir && best.fhir.seconds <= f.seconds ? { ...best.fhir, peakRssMb: Math.max(best.fhir.peakRssMb, f.peakRssMb) } : { ...f, peakRssMb: Math.max(best?.fhir?.peakRssMb ?? 0, f.peakRssMb) } } : {}),
      };
    }
    return report(filled, best!);
  } finally {
    if (created && !keep) await admin(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`).catch(() => {});
    if (!keep) await fs.rm(work, { recursive: true, force: true });
  }
}

interface Measured {
  floorS: number;
  indexFloorS: number;
  exportS: number;
  exportBytes: number;
  rssMb: number;
  counts: Record<string, number>;
  fhir?: FhirMeasured;
}

function sizes(membersOption: number | undefined): Sizes {
  const members0 = membersOption ?? (values.patients === undefined ? undefined : Math.round(Number(values.patients) * 0.087));
  const patients = values.patients === undefined ? Math.max(200_000, members0 ?? 0) : Number(values.patients);
  const members = members0 ?? Math.round(patients * 0.087);
  const immunizations = values.immunizations === undefined ? Math.max(Math.round(patients * 10.1), 16 * members) : Number(values.immunizations);
  const memberImmunizations = values['member-immunizations'] === undefined ? Math.min(16 * members, immunizations) : Number(values['member-immunizations']);
  for (const [k, v] of Object.entries({ patients, immunizations, members, memberImmunizations })) {
    if (!Number.isSafeInteger(v) || v < 0) usageError(`--${k} must be a whole number`);
  }
  if (patients < 1 || members > patients) usageError('--members must be at most --patients, which must be at least 1');
  if (memberImmunizations > immunizations || (members === patients && memberImmunizations !== immunizations)) usageError('--member-immunizations must fit in --immunizations');
  return { patients, immunizations, members, memberImmunizations };
}

/** Fills a fresh store. */
async function fill(url: string | undefined, work: string, s: Sizes): Promise<Filled> {
  const t = performance.now();
  const db: Db = url ? await openPostgres(url) : await openEmbedded(path.join(work, 'db'));
  try {
    await fillStore(db, s, (done) => process.stderr.write(`\rfilled ${done} of ${s.patients} patients`));
    process.stderr.write('\n');
  } finally {
    await db.close();
  }
  return { store: values.store, ...(url ? { databaseUrl: url } : {}), patients: s.patients, immunizations: s.immunizations, members: s.members, fillSeconds: secs(t) };
}

interface FhirMeasured {
  /** Kick-off sent → manifest read, polling every second. */
  seconds: number;
  /** The job's own time in the store: created (kick-off) → finished. */
  jobSeconds: number;
  bytes: Record<string, number>;
  counts: Record<string, number>;
  rssAtKickOffMb: number;
  /** VmHWM: the serve process's peak since it started (start-up included). */
  peakRssMb: number;
  /** The most RSS sampled (every 100 ms) between kick-off and manifest. */
  sampledMaxRssMb: number;
  startSeconds: number;
}

/**
 * The FHIR path: a client registered in the store, serve started on it as a child process, one
 * Group $export kick-off as a partner sends it (no _type: every type its scopes read), polled to
 * the manifest. A fresh serve each time, so VmHWM is this export's (or start-up's) peak.
 */
async function fhirExport(work: string, url: string | undefined): Promise<FhirMeasured> {
  const dataDir = url ? path.join(work, 'serve-data') : work;
  const open = () => (url ? openPostgres(url) : openEmbedded(path.join(work, 'db')));
  let db = await open();
  const client = await registerClient(db, GROUP_PARTNER).finally(() => db.close());
  const prefix = ownQueuePrefix('bench');
  const t = performance.now();
  const serve = await spawnServe({ dataDir, ...(url ? { databaseUrl: url } : {}), queuePrefix: prefix });
  try {
    const startSeconds = secs(t);
    // Let start-up's work (reconcile, metrics, first scan) settle before the baseline.
    await new Promise((r) => setTimeout(r, 2000));
    const before = await procMemory(serve.pid);
    const sampler = sampleRss(serve.pid);
    const e = await timedGroupExport({ fhirBase: serve.fhirBase, client, groupId: GROUP }).catch((err: Error) => {
      throw new Error(`${err.message}\nserve said:\n${serve.output().slice(-4000)}`);
    });
    const sampledMax = await sampler.stop();
    const after = await procMemory(serve.pid);
    const files = await jobFiles(serve.bulkRoot, e.jobId);
    await serve.stop();
    db = await open();
    const job = await getBulkJob(db, e.jobId).finally(() => db.close());
    await fs.rm(path.join(serve.bulkRoot, e.jobId), { recursive: true, force: true });
    return {
      seconds: +e.seconds.toFixed(2),
      jobSeconds: +((Date.parse(job!.finishedAt!) - Date.parse(job!.createdAt)) / 1000).toFixed(2),
      bytes: Object.fromEntries(Object.entries(files).map(([f, b]) => [f.replace(/\.ndjson$/, ''), b])),
      counts: Object.fromEntries(e.manifest.output.map((o) => [o.type, o.count])),
      rssAtKickOffMb: before.rssMb,
      peakRssMb: after.hwmMb,
      sampledMaxRssMb: Math.max(sampledMax, after.rssMb),
      startSeconds,
    };
  } finally {
    await serve.stop();
    await dropQueueKeys(prefix);
    if (url) await fs.rm(dataDir, { recursive: true, force: true });
  }
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

type Figures = ReturnType<typeof report>;

function report(filled: Filled, m: Measured) {
  const mb = (b: number) => +(b / 2 ** 20).toFixed(1);
  const f = m.fhir;
  const written = f ? Object.values(f.bytes).reduce((a, b) => a + b, 0) : 0;
  const figures = {
    ...measuredOn(),
    store: filled.store,
    patients: filled.patients,
    immunizations: filled.immunizations,
    members: filled.members,
    exported: m.counts,
    exportMb: mb(m.exportBytes),
    fillSeconds: values.reuse ? null : filled.fillSeconds,
    repeat: Number(values.repeat),
    floorSeconds: m.floorS,
    indexWalkFloorSeconds: m.indexFloorS,
    exportSeconds: m.exportS,
    exportToFloor: +(m.exportS / m.floorS).toFixed(2),
    exportToIndexWalkFloor: +(m.exportS / m.indexFloorS).toFixed(2),
    exportProcessPeakRssMb: m.rssMb,
    fhir: f
      ? {
          manifestCounts: f.counts,
          filesMb: Object.fromEntries(Object.entries(f.bytes).map(([t, b]) => [t, mb(b)])),
          writtenMb: mb(written),
          serveStartSeconds: f.startSeconds,
          kickOffToManifestSeconds: f.seconds,
          jobSeconds: f.jobSeconds,
          mbPerSecond: +(written / 2 ** 20 / f.seconds).toFixed(1),
          toFloor: +(f.seconds / m.floorS).toFixed(2),
          toIndexWalkFloor: +(f.seconds / m.indexFloorS).toFixed(2),
          jobToFloor: +(f.jobSeconds / m.floorS).toFixed(2),
          serveRssAtKickOffMb: f.rssAtKickOffMb,
          servePeakRssMb: f.peakRssMb,
          serveSampledMaxRssMb: f.sampledMaxRssMb,
        }
      : null,
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
  const x = figures.fhir;
  if (x) {
    table.push(
      ['FHIR $export manifest', Object.entries(x.manifestCounts).map(([t, c]) => `${t} ${c}`).join(', ')],
      ['  files written (MB)', `${x.writtenMb} (${Object.entries(x.filesMb).map(([t, v]) => `${t} ${v}`).join(', ')})`],
      ['  kick-off → manifest (s)', `${x.kickOffToManifestSeconds} (job ${x.jobSeconds}; polled every 1 s)`],
      ['  MB/s written', x.mbPerSecond],
      ['  / floor', `${x.toFloor}× (job: ${x.jobToFloor}×)`],
      ['  / index-walk floor', `${x.toIndexWalkFloor}×`],
      ['  serve RSS at kick-off (MB)', x.serveRssAtKickOffMb],
      ['  serve peak RSS, VmHWM (MB)', `${x.servePeakRssMb} (most sampled during the export: ${x.serveSampledMaxRssMb})`],
    );
  }
  printTable(table);
  return figures;
}

if (values.phase === 'export') await exportPhase();
else await benchmark();
