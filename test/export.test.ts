import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exportGroup, parseExportParams } from '../src/export/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { RostermatchError } from '../src/errors/index.ts';
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
    expect(path.relative(path.join(dir, 'exports', 'g1'), r.dir)).toMatch(/^20260301T120000\.123Z-[0-9a-f]{8}$/);
    expect((await lines(path.join(r.dir, 'Patient.ndjson'))).map((p) => p.id)).toEqual(['a', 'b']);
    expect((await lines(path.join(r.dir, 'Immunization.ndjson'))).map((p) => p.id)).toEqual(['ia', 'ib1', 'ib2']);
    const manifest = JSON.parse(await fs.readFile(path.join(r.dir, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual({
      transactionTime: '2026-03-01T12:00:00.123Z',
      request: `${pathToFileURL(path.join(dir, 'exports')).href}/Group/g1/$export?_type=Patient,Immunization`,
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
    expect(r.manifest.request).toBe(`${pathToFileURL(path.join(dir, 'x')).href}/Group/g1/$export?_type=Immunization&_since=2026-01-15T00:00:00.000Z`);
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
    expect(parseExportParams({ since: '2026-01-01T00:00:00.123456Z' }).since).toBe('2026-01-01T00:00:00.123Z');
    const { db, dir } = await tempDb(store);
    await expect(exportGroup(db, { groupId: 'nope', outRoot: dir })).rejects.toThrow(/GROUP_NOT_FOUND/);
  });
});

describe.each(STORES)('the manifest and folder of an export (%s)', (store) => {
  it('gives two exports of a Group at the same instant a folder each, both recorded', async () => {
    const { db, dir } = await setup(store);
    const now = new Date('2026-03-01T12:00:00.123Z');
    const [a, b] = await Promise.all([0, 1].map(() => exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'exports'), now })));
    expect(a!.dir).not.toBe(b!.dir);
    for (const r of [a!, b!]) {
      expect(JSON.parse(await fs.readFile(path.join(r.dir, 'manifest.json'), 'utf8'))).toEqual(r.manifest);
      expect((await lines(path.join(r.dir, 'Patient.ndjson'))).map((p) => p.id)).toEqual(['a', 'b']);
    }
    // A third, one after the other this time: still its own folder.
    const c = await exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'exports'), now });
    expect(new Set([a!.dir, b!.dir, c.dir]).size).toBe(3);
    expect((await fs.readdir(path.join(dir, 'exports', 'g1'))).sort()).toEqual([a!.dir, b!.dir, c.dir].map((d) => path.basename(d)).sort());
    const { rows } = await db.query<{ dir: string }>('SELECT dir FROM export WHERE group_id = $1 ORDER BY dir', ['g1']);
    expect(rows.map((r) => r.dir)).toEqual([a!.dir, b!.dir, c.dir].sort());
  });

  it('names the Group export by an absolute request URL, and leaves types with nothing out of output', async () => {
    const { db, dir } = await setup(store);
    // c has an Immunization but no Patient change after _since; d has no Immunization at all.
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'D.ndjson'), [fhirPatient({ id: 'd', given: 'Gd', family: 'Fam', birthDate: '2015-02-01' })]), { now: at('2026-01-01T00:00:00Z') });
    await db.transaction(async (tx) => {
      await ensureGroup(tx, { id: 'g-no-shots', partner: 'p', name: 'No shots', mode: 'replace' });
      await applyMembership(tx, 'g-no-shots', ['d'], 'replace', { actor: 'test', at: '2026-01-02T00:00:00Z' });
    });
    const r = await exportGroup(db, { groupId: 'g-no-shots', outRoot: path.join(dir, 'exports'), fhirBase: 'https://iis.example.org/fhir' });
    expect(r.manifest.request).toBe('https://iis.example.org/fhir/Group/g-no-shots/$export?_type=Patient,Immunization');
    expect(r.manifest.output).toEqual([{ type: 'Patient', url: pathToFileURL(path.join(r.dir, 'Patient.ndjson')).href, count: 1 }]);
    expect(r.manifest.error).toEqual([]);
    expect((await fs.readdir(r.dir)).sort()).toEqual(['Patient.ndjson', 'manifest.json']);

    // Nothing changed after _since: an empty output, and no files but the manifest.
    const none = await exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'exports'), since: '2026-02-01T00:00:00.000Z', fhirBase: 'https://iis.example.org/proxy/fhir/' });
    expect(none.manifest).toMatchObject({
      request: 'https://iis.example.org/proxy/fhir/Group/g1/$export?_type=Patient,Immunization&_since=2026-02-01T00:00:00.000Z',
      requiresAccessToken: false,
      output: [],
      error: [],
    });
    expect(await fs.readdir(none.dir)).toEqual(['manifest.json']);
    for (const m of [r.manifest, none.manifest]) expect(new URL(m.request).href).toBe(m.request);
    await expect(exportGroup(db, { groupId: 'g1', outRoot: dir, fhirBase: 'iis.example.org/fhir' })).rejects.toThrow(/USAGE: .*absolute http or https URL/);
  });

  it('refuses a _since that is not an instant, naming the parameter: a day that does not exist, no seconds, no offset, a bare date', () => {
    for (const bad of ['2026-02-30T00:00:00Z', '2026-02-29T00:00:00Z', '2026-01-01T00:00Z', '2026-01-01T00:00:00', '2026-01-01', '2026-01-01T24:00:00Z', '2026-01-01T00:00:00+15:00', 'yesterday', '']) {
      let error: unknown;
      try {
        parseExportParams({ since: bad });
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(RostermatchError);
      expect((error as RostermatchError).code, bad).toBe('EXPORT_INVALID_REQUEST');
      expect((error as RostermatchError).location, bad).toEqual({ field: '_since' });
      expect((error as Error).message, bad).toMatch(/_since must be a FHIR instant/);
    }
    expect(parseExportParams({ since: '2028-02-29T23:59:59.999-05:00' }).since).toBe('2028-03-01T04:59:59.999Z');
  });
});
