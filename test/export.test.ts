import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportGroup, parseExportParams } from '../src/export/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { applyMembership, ensureGroup } from '../src/store/index.ts';
import { fhirImmunization, fhirPatient, tempDb, writeNdjson, STORES, type StoreKind } from './helpers.ts';

const at = (iso: string) => () => new Date(iso);

async function setup(store: StoreKind) {
  const { db, dir } = await tempDb(store);
  const patients = ['a', 'b', 'c'].map((id, i) => fhirPatient({ id, given: `G${id}`, family: 'Fam', birthDate: `2015-01-0${i + 1}` }));
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), patients), { now: at('2026-01-01T00:00:00Z') });
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'I.ndjson'), [fhirImmunization('ia', 'a'), fhirImmunization('ib1', 'b'), fhirImmunization('ib2', 'b'), fhirImmunization('ic', 'c')]), {
    now: at('2026-01-01T00:00:00Z'),
  });
  await db.transaction(async (tx) => {
    await ensureGroup(tx, { id: 'g1', partner: 'p', name: 'G', mode: 'replace' });
    await applyMembership(tx, 'g1', ['a', 'b'], 'replace', { actor: 'test', at: '2026-01-02T00:00:00Z' });
  });
  return { db, dir };
}

const lines = async (f: string) => (await fs.readFile(f, 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe.each(STORES)('Bulk Data export of a Group (%s)', (store) => {
  it('writes members only, with a manifest in the Bulk Data shape', async () => {
    const { db, dir } = await setup(store);
    const r = await exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'exports'), now: new Date('2026-03-01T12:00:00.123Z') });
    expect(r.dir).toBe(path.join(dir, 'exports', 'g1', '20260301T120000Z'));
    expect((await lines(path.join(r.dir, 'Patient.ndjson'))).map((p) => p.id)).toEqual(['a', 'b']);
    expect((await lines(path.join(r.dir, 'Immunization.ndjson'))).map((p) => p.id)).toEqual(['ia', 'ib1', 'ib2']);
    const manifest = JSON.parse(await fs.readFile(path.join(r.dir, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual({
      transactionTime: '2026-03-01T12:00:00.123Z',
      request: 'Group/g1/$export?_type=Patient,Immunization',
      requiresAccessToken: false,
      output: [
        { type: 'Patient', url: `file://${r.dir}/Patient.ndjson`, count: 2 },
        { type: 'Immunization', url: `file://${r.dir}/Immunization.ndjson`, count: 3 },
      ],
      error: [],
    });
    expect((await fs.readdir(path.join(dir, 'exports', 'g1'))).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('filters by _type and by _since, including all data of members who joined after _since', async () => {
    const { db, dir } = await setup(store);
    // Later: b's immunization ib2 changes, and c joins the Group.
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'I2.ndjson'), [{ ...fhirImmunization('ib2', 'b'), lotNumber: 'L2' }]), { now: at('2026-02-01T00:00:00Z') });
    await db.transaction((tx) => applyMembership(tx, 'g1', ['c'], 'append', { actor: 'test', at: '2026-02-02T00:00:00Z' }));
    const r = await exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'x'), since: '2026-01-15T00:00:00.000Z', types: ['Immunization'] });
    expect(r.manifest.output.map((o) => o.type)).toEqual(['Immunization']);
    expect(r.manifest.request).toBe('Group/g1/$export?_type=Immunization&_since=2026-01-15T00:00:00.000Z');
    expect((await lines(path.join(r.dir, 'Immunization.ndjson'))).map((p) => p.id)).toEqual(['ib2', 'ic']);
    await expect(fs.access(path.join(r.dir, 'Patient.ndjson'))).rejects.toThrow();
  });

  it('stamps resources with when this index last changed them', async () => {
    const { db, dir } = await setup(store);
    const r = await exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'x') });
    const [a] = await lines(path.join(r.dir, 'Patient.ndjson'));
    expect(a.meta.lastUpdated).toBe('2026-01-01T00:00:00.000Z');
  });

  it('refuses unknown types, malformed instants and unknown Groups', async () => {
    expect(() => parseExportParams({ type: 'Patient,Observation' })).toThrow(/EXPORT_INVALID_REQUEST: _type "Observation"/);
    expect(() => parseExportParams({ since: '2026-01-01' })).toThrow(/_since must be a FHIR instant/);
    expect(parseExportParams({ since: '2026-01-01T00:00:00+02:00' })).toEqual({ types: ['Patient', 'Immunization'], since: '2025-12-31T22:00:00.000Z' });
    const { db, dir } = await tempDb(store);
    await expect(exportGroup(db, { groupId: 'nope', outRoot: dir })).rejects.toThrow(/GROUP_NOT_FOUND/);
  });
});
