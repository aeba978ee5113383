/** Test fixtures: real temporary folders, a real embedded database, hand-written FHIR patients. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync } from 'node:fs';
import { afterEach, inject } from 'vitest';
import { createLogger } from '../src/config/index.ts';
import { exportGroup } from '../src/export/index.ts';
import { parsePipeline, type Pipeline } from '../src/pipeline/index.ts';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openEmbedded, openPostgres, type Db } from '../src/store/index.ts';
import { EMBEDDED_LOCK_FILE } from '../src/store/db.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

export async function tempDir(prefix = 'rostermatch-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Storage-touching tests run on both stores, as the product does. */
export const STORES = ['pglite', 'postgres'] as const;
export type StoreKind = (typeof STORES)[number];

/** A server where the tests may create and drop databases (CI starts the local one). */
export const TEST_PG_URL = process.env.TEST_DATABASE_URL ?? `postgres://${os.userInfo().username}@127.0.0.1:5432/postgres`;

/** One statement on the test server's admin database (CREATE or DROP DATABASE, which take no transaction). */
export async function pgAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: TEST_PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A fresh, empty database on the local PostgreSQL server; dropped after the test. Returns its URL. */
export async function tempPgDatabase(): Promise<string> {
  const { url, drop } = await filePgDatabase();
  cleanups.push(drop);
  return url;
}

/** A fresh, empty database on the local PostgreSQL server that lives until `drop` (a file's beforeAll to its afterAll). */
export async function filePgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `rm_test_${randomBytes(6).toString('hex')}`;
  await pgAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** The resources of the Group's next export (`export` as a partner gets it), by type; none of a type: []. */
export async function exportedResources(db: Db, dir: string, groupId: string): Promise<{ Patient: Record<string, unknown>[]; Immunization: Record<string, unknown>[] }> {
  const { dir: out } = await exportGroup(db, { groupId, outRoot: path.join(dir, 'exports') });
  const read = async (type: string) => {
    const text = await fs.readFile(path.join(out, `${type}.ndjson`), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { Patient: await read('Patient'), Immunization: await read('Immunization') };
}

export async function tempDb(kind: StoreKind = 'pglite'): Promise<{ db: Db; dir: string }> {
  const dir = await tempDir();
  const db = kind === 'pglite' ? await openFreshEmbedded(path.join(dir, 'db')) : await openPostgres(await tempPgDatabase());
  cleanups.unshift(() => db.close());
  return { db, dir };
}

/**
 * Opens a new embedded store in the folder `at` (not there yet): a copy of the run's template
 * store with an identity of its own, or, without a template, one created from nothing.
 */
export async function openFreshEmbedded(at: string): Promise<Db> {
  const copied = await copyTemplateStore(at);
  const db = await openEmbedded(at);
  if (!copied) return db;
  try {
    // The product read the template's identity on opening; the copy's own replaces it.
    return { ...db, storeId: await newStoreIdentity(db) };
  } catch (e) {
    await db.close();
    throw e;
  }
}

/**
 * The run's template store (test/setup/pglite-template.ts: migrated, empty, closed), or undefined
 * outside a run that made one: then stores are created from nothing, as the product does.
 */
function templateStore(): string | undefined {
  let dir: string | undefined;
  try {
    dir = inject('pgliteTemplate');
  } catch {
    return undefined;
  }
  return dir && existsSync(dir) ? dir : undefined;
}

/** Copies the template store to `dir` (which must not exist yet); false, copying nothing, when there is none. */
async function copyTemplateStore(dir: string): Promise<boolean> {
  const template = templateStore();
  if (!template || existsSync(dir)) return false;
  // cpSync copies natively (about 0.2 s for the template's 40 MB, against a second or more for fs.cp).
  cpSync(template, dir, { recursive: true });
  await fs.rm(path.join(dir, EMBEDDED_LOCK_FILE), { force: true });
  return true;
}

/** Gives a copied store an identity of its own, made as migrations.ts makes a new store's (the column's default). */
async function newStoreIdentity(db: Db): Promise<string> {
  const { rows } = await db.query<{ id: string }>('UPDATE store_identity SET id = DEFAULT RETURNING id');
  return rows[0]!.id;
}

/**
 * Puts a copy of the template store where the embedded store of the data folder `dataDir` lives
 * (resolvePaths: <dataDir>/db), with an identity of its own, unless a store is already there: a
 * CLI process or serve on a fresh data folder then opens it rather than creating one from nothing.
 * Not for tests of creating a store.
 */
export async function seedDataDir(dataDir: string): Promise<void> {
  const at = path.join(dataDir, 'db');
  if (!(await copyTemplateStore(at))) return;
  const db = await openEmbedded(at);
  try {
    await newStoreIdentity(db);
  } finally {
    await db.close();
  }
}

export const quietLog = createLogger('silent');

export interface PatientSpec {
  id: string;
  given: string;
  family: string;
  birthDate: string;
  gender?: 'male' | 'female';
  middle?: string;
  suffix?: string;
  street?: string;
  city?: string;
  zip?: string;
  phone?: string;
  mrn?: string;
}

export const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.7.1';

export function fhirPatient(p: PatientSpec): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id: p.id,
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.9999.1', value: `IIS-${p.id}` }, ...(p.mrn ? [{ system: MRN_SYSTEM, value: p.mrn }] : [])],
    name: [{ use: 'official', family: p.family, given: [p.given, ...(p.middle ? [p.middle] : [])], ...(p.suffix ? { suffix: [p.suffix] } : {}) }],
    gender: p.gender ?? 'female',
    birthDate: p.birthDate,
    address: [{ line: [p.street ?? '12 Oak Street'], city: p.city ?? 'Springfield', state: 'IL', postalCode: p.zip ?? '62701' }],
    telecom: p.phone ? [{ system: 'phone', value: p.phone }] : [],
  };
}

export function fhirImmunization(id: string, patientId: string, cvx = '08', date = '2015-06-01'): Record<string, unknown> {
  return {
    resourceType: 'Immunization',
    id,
    status: 'completed',
    vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: cvx }] },
    patient: { reference: `Patient/${patientId}` },
    occurrenceDateTime: date,
  };
}

export async function writeNdjson(file: string, resources: unknown[]): Promise<string> {
  await fs.writeFile(file, resources.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** A pipeline for hand-written test rosters: plain headers, ISO dates. */
export function testPipeline(overrides: Record<string, unknown> = {}): Pipeline {
  const base = {
    partner: 'test-school',
    displayName: 'Test School',
    file: { encoding: 'utf-8', delimiter: ',' },
    columns: {
      recordId: ['id'],
      given: ['first'],
      family: ['last'],
      middle: ['middle'],
      birthDate: ['dob'],
      sex: ['sex'],
      street: ['street'],
      zip: ['zip'],
      phone: ['phone'],
    },
    dates: { birthDate: ['YYYY-MM-DD', 'MM/DD/YYYY'] },
    group: { id: 'test-school-students', name: 'Test School students', mode: 'replace' },
    thresholds: { match: 18, possible: 6 },
  };
  return parsePipeline(JSON.stringify({ ...base, ...overrides }), 'test-pipeline.yaml');
}

export async function writeText(file: string, text: string | Buffer): Promise<string> {
  await fs.writeFile(file, text);
  return file;
}

const MAIN = path.resolve('src/cli/main.ts');

/** The real CLI as a user runs it (on the embedded store unless `env` names a server); never throws. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  // A command on the embedded store of a data folder not made yet starts on a copy of the template.
  const dataDir = cliDataDir(args) ?? env.ROSTERMATCH_DATA;
  if (dataDir && !env.DATABASE_URL && !args.includes('--help')) await seedDataDir(dataDir);
  try {
    const r = await promisify(execFile)(process.execPath, [MAIN, ...args], { env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'warn', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function cliDataDir(args: string[]): string | undefined {
  const i = args.indexOf('--data-dir');
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length);
}
