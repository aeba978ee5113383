import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
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
