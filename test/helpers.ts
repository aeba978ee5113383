/** Test fixtures: real temporary folders, a real embedded database, hand-written FHIR patients. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { createLogger } from '../src/config/index.ts';
import { parsePipeline, type Pipeline } from '../src/pipeline/index.ts';
import { openEmbedded, type Db } from '../src/store/index.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

export async function tempDir(prefix = 'rostermatch-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function tempDb(): Promise<{ db: Db; dir: string }> {
  const dir = await tempDir();
  const db = await openEmbedded(path.join(dir, 'db'));
  cleanups.unshift(() => db.close());
  return { db, dir };
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
