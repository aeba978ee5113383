import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockingKeys } from '../src/match/index.ts';
import { loadIndexFile, MATCH_FORM } from '../src/patient-index/index.ts';
import { storedMatchForm } from '../src/store/index.ts';
import { readRoster } from '../src/parse/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { matchAll } from '../src/run/index.ts';
import { candidatesFor } from '../src/run/index.ts';
import { fhirPatient, tempDb, writeNdjson } from './helpers.ts';

describe('candidates from memory and from the database', () => {
  it('give exactly the same results on the sample roster', async () => {
    const { db } = await tempDb();
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
    const { rows } = await readRoster('samples/rosters/district7-fall.csv', pipeline, '2026-11-01');
    const fromDb = await matchAll(db, rows, pipeline, 'database');
    const fromMemory = await matchAll(db, rows, pipeline, 'memory');
    expect(fromMemory).toEqual(fromDb);
    expect(fromMemory.filter((r) => r.outcome === 'matched').length).toBeGreaterThan(1000);
  });

  it('reloads the in-memory copy when the index changes', async () => {
    const { db, dir } = await tempDb();
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'a.ndjson'), [fhirPatient({ id: 'a', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' })]));
    const first = await candidatesFor(db, 'memory');
    expect(first.freq.total).toBe(1);
    expect(await candidatesFor(db, 'memory')).toMatchObject({ freq: { total: 1 } });
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'b.ndjson'), [fhirPatient({ id: 'b', given: 'Liam', family: 'Wilson', birthDate: '2016-07-02' })]));
    const second = await candidatesFor(db, 'memory');
    expect(second.freq.total).toBe(2);
    const hits = await second.source.byKeys(['df:2016-07-02|ALSN']);
    expect(hits.get('df:2016-07-02|ALSN')?.map((p) => p.id)).toEqual(['b']);
  });
});

describe('a store written by an older version of normalisation and blocking', () => {
  it('is rewritten from its stored resources before it is matched against, so both candidate sources agree', async () => {
    const { db } = await tempDb();
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
    const { rows } = await readRoster('samples/rosters/district7-fall.csv', pipeline, '2026-11-01');
    const current = await matchAll(db, rows, pipeline, 'database');
    // What a store from before looked like: first-round keys only, an older form recorded.
    await db.query("DELETE FROM patient_block WHERE left(key, 3) NOT IN ('df:', 'dg:', 'ny:', 'nm:', 'id:')");
    await db.query("UPDATE patient SET street = upper(street) || ' OLD'");
    await db.query('UPDATE index_state SET match_form = 1');
    expect(await matchAll(db, rows, pipeline, 'database')).toEqual(current);
    expect(await storedMatchForm(db)).toBe(MATCH_FORM);
    expect(await matchAll(db, rows, pipeline, 'memory')).toEqual(current);
  });

  it('drops a broad block too big to say anything in the database as in memory', async () => {
    const { db, dir } = await tempDb();
    const smiths = Array.from({ length: 8 }, (_, i) => fhirPatient({ id: `s${i}`, given: 'John', family: 'Smith', birthDate: `19${50 + i}-01-01` }));
    await loadIndexFile(db, await writeNdjson(path.join(dir, 's.ndjson'), smiths));
    const key = blockingKeys({ given: 'JOHN', middle: '', family: 'SMITH', suffix: '', birthDate: '', sex: '', street: '', city: '', state: '', zip: '', phone: '' }, []).find((k) => k.startsWith('nn:'))!;
    const fromDb = await candidatesFor(db, 'database');
    const fromMemory = await candidatesFor(db, 'memory');
    expect((await db.query('SELECT count(*)::int AS n FROM patient_block WHERE key = $1', [key])).rows).toEqual([{ n: 8 }]);
    expect((await fromDb.source.byKeys([key])).size).toBe(0);
    expect((await fromMemory.source.byKeys([key])).size).toBe(0);
  });
});
