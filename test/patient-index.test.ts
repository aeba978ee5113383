import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureMatchForm, loadIndexFile, LOAD_BATCH_LINES } from '../src/patient-index/index.ts';
import { countIndex } from '../src/store/index.ts';
import { fhirImmunization, fhirPatient, tempDb, writeNdjson, writeText, STORES } from './helpers.ts';

const PATIENTS = [
  fhirPatient({ id: 'a', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' }),
  fhirPatient({ id: 'b', given: 'Liam', family: 'Wilson', birthDate: '2016-07-02' }),
];

describe.each(STORES)('loading the patient index (%s)', (store) => {
  it('upserts by id: a second load of the same file changes nothing', async () => {
    const { db, dir } = await tempDb(store);
    const file = await writeNdjson(path.join(dir, 'Patient.ndjson'), PATIENTS);
    const first = await loadIndexFile(db, file, { now: () => new Date('2026-01-01T00:00:00Z') });
    expect(first.patients).toEqual({ inserted: 2, updated: 0, unchanged: 0 });
    const second = await loadIndexFile(db, file, { now: () => new Date('2026-02-01T00:00:00Z') });
    expect(second.patients).toEqual({ inserted: 0, updated: 0, unchanged: 2 });
    const { rows } = await db.query<{ last_updated: Date }>('SELECT last_updated FROM patient ORDER BY id');
    expect(rows.map((r) => r.last_updated.toISOString())).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z']);

    const changed = [PATIENTS[0], { ...PATIENTS[1], birthDate: '2016-07-03' }];
    const third = await loadIndexFile(db, await writeNdjson(path.join(dir, 'P2.ndjson'), changed));
    expect(third.patients).toEqual({ inserted: 0, updated: 1, unchanged: 1 });
    const { rows: keys } = await db.query<{ key: string }>(`SELECT key FROM patient_block WHERE patient_id = 'b' AND key LIKE 'df:%'`);
    expect(keys.map((k) => k.key)).toEqual(['df:2016-07-03|ALSN']);
  });

  it('keeps every character through COPY, lets the later of two lines for one id win, and ends a first load with its indexes built', async () => {
    const { db, dir } = await tempDb(store);
    // Tabs, line breaks, backslashes, quotes and braces: what COPY's text format and an array literal must escape.
    const odd = { ...fhirPatient({ id: 'odd', given: 'Zoë', family: "O'Brien", birthDate: '2014-05-06' }), identifier: [{ system: 'urn:mrn', value: 'M"1\\2,{3}' }], note: 'tab\there\nline\\end' };
    const first = { ...PATIENTS[0], birthDate: '2015-03-15' };
    const file = await writeNdjson(path.join(dir, 'P.ndjson'), [first, odd, PATIENTS[1], PATIENTS[0]]);
    const r = await loadIndexFile(db, file);
    expect(r.patients).toEqual({ inserted: 3, updated: 0, unchanged: 0 });
    const { rows } = await db.query<{ id: string; birth_date: string; resource: Record<string, unknown> }>('SELECT id, birth_date, resource FROM patient ORDER BY id');
    expect(rows.map((x) => [x.id, x.birth_date])).toEqual([['a', '2015-03-14'], ['b', '2016-07-02'], ['odd', '2014-05-06']]);
    const { meta: _meta, ...stored } = rows[2]!.resource;
    expect(stored).toEqual(odd);
    const { rows: keys } = await db.query<{ key: string }>(`SELECT key FROM patient_block WHERE patient_id = 'odd' AND key LIKE 'id:%'`);
    expect(keys.map((k) => k.key)).toEqual(['id:urn:mrn|M"1\\2,{3}']);
    const { rows: idx } = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename IN ('patient', 'patient_block') ORDER BY indexname");
    expect(idx.map((x) => x.indexname)).toEqual(['patient_block_patient', 'patient_block_pkey', 'patient_changed_in', 'patient_pkey']);
  });

  it('merges a batch of a first load whose patient came in an earlier batch: the later line wins', async () => {
    const { db, dir } = await tempDb(store);
    const many = Array.from({ length: LOAD_BATCH_LINES }, (_, i) => fhirPatient({ id: `p${i}`, given: 'Ava', family: `Family${i}`, birthDate: '2015-03-14' }));
    const again = { ...many[5]!, birthDate: '2015-03-16' };
    const r = await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), [...many, again]));
    expect(r.patients).toEqual({ inserted: LOAD_BATCH_LINES, updated: 1, unchanged: 0 });
    const { rows } = await db.query<{ birth_date: string }>("SELECT birth_date FROM patient WHERE id = 'p5'");
    expect(rows).toEqual([{ birth_date: '2015-03-16' }]);
    const { rows: keys } = await db.query<{ key: string }>(`SELECT key FROM patient_block WHERE patient_id = 'p5' AND key LIKE 'df:%'`);
    expect(keys.map((k) => k.key)).toEqual(['df:2015-03-16|FML']);
    expect((await countIndex(db)).patients).toBe(LOAD_BATCH_LINES);
  });

  it('skips unchanged lines of a reload without losing a change the batch before it is still writing', async () => {
    const { db, dir } = await tempDb(store);
    const many = Array.from({ length: LOAD_BATCH_LINES }, (_, i) => fhirPatient({ id: `p${i}`, given: 'Ava', family: `Family${i}`, birthDate: '2015-03-14' }));
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), many));
    // Every patient changes in the first batch (a long merge); p5 comes back as it was in the second,
    // read and checked while the first is still being written: the later line wins.
    const file = await writeNdjson(path.join(dir, 'P2.ndjson'), [...many.map((p) => ({ ...p, birthDate: '2015-03-16' })), many[5]!]);
    const r = await loadIndexFile(db, file);
    expect(r.patients).toEqual({ inserted: 0, updated: LOAD_BATCH_LINES + 1, unchanged: 0 });
    const { rows } = await db.query<{ id: string; birth_date: string }>("SELECT id, birth_date FROM patient WHERE id IN ('p5', 'p6') ORDER BY id");
    expect(rows).toEqual([{ id: 'p5', birth_date: '2015-03-14' }, { id: 'p6', birth_date: '2015-03-16' }]);
    expect((await loadIndexFile(db, file)).patients).toEqual({ inserted: 0, updated: 2, unchanged: LOAD_BATCH_LINES - 1 });
    const { rows: keys } = await db.query<{ key: string }>(`SELECT key FROM patient_block WHERE patient_id = 'p5' AND key LIKE 'df:%'`);
    expect(keys.map((k) => k.key)).toEqual(['df:2015-03-14|FML']);
  });

  it('builds the blocking indexes again when a first load died without them', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), PATIENTS));
    await db.exec('ALTER TABLE patient_block DROP CONSTRAINT patient_block_pkey; DROP INDEX patient_block_patient; DROP INDEX patient_changed_in');
    await ensureMatchForm(db);
    const { rows: idx } = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename IN ('patient', 'patient_block') ORDER BY indexname");
    expect(idx.map((x) => x.indexname)).toEqual(['patient_block_patient', 'patient_block_pkey', 'patient_changed_in', 'patient_pkey']);
    // A delta keeps them, and replaces the keys of the patient it changes.
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P2.ndjson'), [{ ...PATIENTS[1], birthDate: '2016-07-03' }]));
    const { rows: keys } = await db.query<{ key: string }>(`SELECT key FROM patient_block WHERE patient_id = 'b' AND key LIKE 'df:%'`);
    expect(keys.map((k) => k.key)).toEqual(['df:2016-07-03|ALSN']);
  });

  it('rejects bad lines with their line number and reason, and loads the rest', async () => {
    const { db, dir } = await tempDb(store);
    const file = await writeText(
      path.join(dir, 'mixed.ndjson'),
      [
        JSON.stringify(PATIENTS[0]),
        '{"resourceType":"Patient", "id": ',
        JSON.stringify({ resourceType: 'Observation', id: 'o1' }),
        '',
        JSON.stringify({ ...PATIENTS[1], id: 'bad id!' }),
        JSON.stringify(PATIENTS[1]),
        JSON.stringify(fhirImmunization('i1', 'a')),
        JSON.stringify(fhirImmunization('i2', 'nobody')),
        JSON.stringify({ resourceType: 'Immunization', id: 'i3', patient: { reference: 'Group/x' } }),
      ].join('\n'),
    );
    const r = await loadIndexFile(db, file);
    expect(r.patients.inserted).toBe(2);
    expect(r.immunizations.inserted).toBe(1);
    expect(r.rejected).toBe(5);
    expect(r.rejections.map((x) => [x.line, x.reason])).toEqual([
      [2, 'not valid JSON'],
      [3, 'resourceType must be Patient or Immunization'],
      [5, 'Patient.id is missing or not a valid FHIR id'],
      [8, 'Immunization.patient references a Patient not in the index'],
      [9, 'Immunization.patient.reference is missing or not "Patient/<id>"'],
    ]);
    expect(r.rejections.every((x) => x.file === file)).toBe(true);
    expect(await countIndex(db)).toEqual({ patients: 2, immunizations: 1 });
  });

  it('loads the documented CSV form of patients and immunizations', async () => {
    const { db, dir } = await tempDb(store);
    const patients = await writeText(
      path.join(dir, 'patients.csv'),
      'id,family,given,middle,suffix,birth_date,sex,street,city,state,zip,phone,identifier_system,identifier_value\n' +
        'c1,Núñez,José,Luis,Jr,2013-02-03,male,12 Oak Street,Springfield,IL,62701,217-555-0234,urn:mrn,M-001\n',
    );
    const imms = await writeText(path.join(dir, 'imms.csv'), 'id,patient_id,cvx,occurrence_date\nci1,c1,08,2013-02-04\n');
    expect((await loadIndexFile(db, patients)).patients.inserted).toBe(1);
    expect((await loadIndexFile(db, imms)).immunizations.inserted).toBe(1);
    const { rows } = await db.query<Record<string, unknown>>('SELECT given, middle, family, suffix, birth_date, sex, street, zip, phone, identifiers FROM patient');
    expect(rows[0]).toEqual({
      given: 'JOSE',
      middle: 'LUIS',
      family: 'NUNEZ',
      suffix: 'JR',
      birth_date: '2013-02-03',
      sex: 'male',
      street: '12 OAK ST',
      zip: '62701',
      phone: '2175550234',
      identifiers: [{ system: 'urn:mrn', value: 'M001' }],
    });
  });

  it('refuses a CSV whose header is neither form', async () => {
    const { db, dir } = await tempDb(store);
    const f = await writeText(path.join(dir, 'x.csv'), 'name,dob\nx,y\n');
    await expect(loadIndexFile(db, f)).rejects.toThrow(/INDEX_LINE_INVALID: header matches neither.*x\.csv, line 1/);
  });

  it('stops matching a patient merged away by a replaced-by link', async () => {
    const { db, dir } = await tempDb(store);
    const merged = { ...PATIENTS[0], link: [{ type: 'replaced-by', other: { reference: 'Patient/b' } }] };
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), [merged, PATIENTS[1]]));
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM patient_block WHERE patient_id = 'a'`);
    expect(rows[0]!.n).toBe(0);
  });
});
