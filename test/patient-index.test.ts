import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureMatchForm, loadIndexFile, LOAD_BATCH_LINES, REMOVED_TAG } from '../src/patient-index/index.ts';
import { blockingKeys } from '../src/match/index.ts';
import { countIndex, openPostgres, patientsByBlockKeys } from '../src/store/index.ts';
import { MIGRATIONS } from '../src/store/migrations.ts';
import { fhirImmunization, fhirPatient, filePgDatabase, runCli, tempDb, tempDir, writeNdjson, writeText, STORES } from './helpers.ts';

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

  it('stamps meta.lastUpdated and last_updated alike, to the millisecond, from the store clock in the writing transaction', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), [PATIENTS[0]]), { now: () => new Date('2026-01-01T10:20:30.456Z') });
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'I.ndjson'), [fhirImmunization('ia', 'a')]), { now: () => new Date('2026-01-01T10:20:30.789Z') });
    const stored = async () =>
      (
        await db.query<{ id: string; last_updated: Date; meta: { lastUpdated: string } }>(
          "SELECT id, last_updated, resource->'meta' AS meta FROM patient UNION ALL SELECT id, last_updated, resource->'meta' FROM immunization ORDER BY id",
        )
      ).rows.map((r) => [r.id, r.last_updated.toISOString(), r.meta.lastUpdated]);
    // Not truncated to the second: a change in the same second as an export must still sort after it.
    expect(await stored()).toEqual([
      ['a', '2026-01-01T10:20:30.456Z', '2026-01-01T10:20:30.456Z'],
      ['ia', '2026-01-01T10:20:30.789Z', '2026-01-01T10:20:30.789Z'],
    ]);
    // No clock given: the store's, read inside the load's own transaction.
    const { rows: before } = await db.query<{ t: Date }>('SELECT clock_timestamp() AS t');
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P2.ndjson'), [PATIENTS[1]]));
    const { rows: after } = await db.query<{ t: Date }>('SELECT clock_timestamp() AS t');
    const b = (await stored()).find((r) => r[0] === 'b')!;
    expect(b[1]).toBe(b[2]);
    // (a millisecond of slack either side: the driver may round the server's microseconds)
    expect(b[1]! >= new Date(before[0]!.t.getTime() - 1).toISOString() && b[1]! <= new Date(after[0]!.t.getTime() + 1).toISOString()).toBe(true);
  });

  it('keeps every character through COPY, lets the later of two lines for one id win, and ends a first load with its indexes built', async () => {
    const { db, dir } = await tempDb(store);
    // Tabs, line breaks, backslashes, quotes and braces: what COPY's text format and an array literal must escape.
    const odd = {
      ...fhirPatient({ id: 'odd', given: 'Zoë', family: "O'Brien", birthDate: '2014-05-06' }),
      identifier: [{ system: 'urn:mrn', value: 'M"1\\2,{3}' }],
      extension: [{ url: 'urn:test:note', valueString: 'tab\there\nline\\end' }],
    };
    const first = { ...PATIENTS[0], birthDate: '2015-03-15' };
    const file = await writeNdjson(path.join(dir, 'P.ndjson'), [first, odd, PATIENTS[1], PATIENTS[0]]);
    const r = await loadIndexFile(db, file);
    expect(r.patients).toEqual({ inserted: 3, updated: 0, unchanged: 0 });
    const { rows } = await db.query<{ id: string; birth_date: string; resource: Record<string, unknown> }>('SELECT id, birth_date, resource FROM patient ORDER BY id');
    expect(rows.map((x) => [x.id, x.birth_date])).toEqual([['a', '2015-03-14'], ['b', '2016-07-02'], ['odd', '2014-05-06']]);
    const { meta: _meta, ...stored } = rows[2]!.resource;
    // All but its empty telecom array, which FHIR JSON does not allow and the loader leaves out.
    const { telecom, ...sent } = odd as Record<string, unknown>;
    expect(telecom).toEqual([]);
    expect(stored).toEqual(sent);
    const { rows: keys } = await db.query<{ key: string }>(`SELECT key FROM patient_block WHERE patient_id = 'odd' AND key LIKE 'id:%'`);
    expect(keys.map((k) => k.key)).toEqual(['id:urn:mrn|M"1\\2,{3}']);
    const { rows: idx } = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename IN ('patient', 'patient_block') ORDER BY indexname");
    expect(idx.map((x) => x.indexname)).toEqual(['patient_block_pkey', 'patient_changed_in', 'patient_pkey', 'patient_replaced_by', 'patient_unmatchable_identifiers']);
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
    await db.exec('ALTER TABLE patient_block DROP CONSTRAINT patient_block_pkey; DROP INDEX patient_changed_in');
    await ensureMatchForm(db);
    const { rows: idx } = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename IN ('patient', 'patient_block') ORDER BY indexname");
    expect(idx.map((x) => x.indexname)).toEqual(['patient_block_pkey', 'patient_changed_in', 'patient_pkey', 'patient_replaced_by', 'patient_unmatchable_identifiers']);
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

  it('never offers a patient merged away by a replaced-by link as itself: found by its own demographics, it stands for its survivor', async () => {
    const { db, dir } = await tempDb(store);
    const merged = { ...PATIENTS[0], link: [{ type: 'replaced-by', other: { reference: 'Patient/b' } }] };
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), [merged, PATIENTS[1]]));
    const ava = { given: 'AVA', middle: '', family: 'MARTINEZ', suffix: '', birthDate: '2015-03-14', sex: 'female' as const, street: '', city: '', state: '', zip: '', phone: '' };
    const offered = [...(await patientsByBlockKeys(db, blockingKeys(ava, []))).values()].flat().filter((p) => p.id === 'a');
    expect(offered.length).toBeGreaterThan(0);
    expect(offered.every((p) => p.survivor === 'b')).toBe(true);
  });
});

/** Lines of one file, each with the reason the loader must give for it (undefined: it loads). */
const P = (over: Record<string, unknown>, id: string) => ({ ...fhirPatient({ id, given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' }), ...over });
const I = (over: Record<string, unknown>, id: string, drop: string[] = []) => {
  const r: Record<string, unknown> = { ...fhirImmunization(id, 'ok'), ...over };
  for (const k of drop) delete r[k];
  return r;
};
const PATIENT_CASES: [Record<string, unknown>, string | undefined][] = [
  [P({}, 'ok'), undefined],
  [P({ gender: 'X' }, 'g1'), 'Patient.gender must be male, female, other or unknown'],
  [P({ gender: 'F' }, 'g2'), 'Patient.gender must be male, female, other or unknown'],
  [P({ birthDate: '1990-13-45' }, 'd1'), 'Patient.birthDate is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date)'],
  [P({ birthDate: '2015-02-30' }, 'd2'), 'Patient.birthDate is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date)'],
  [P({ birthDate: '05/06/2011' }, 'd3'), 'Patient.birthDate is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date)'],
  [P({ birthDate: '' }, 'd4'), 'Patient.birthDate is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date)'],
  [P({ birthDate: null }, 'd5'), 'Patient.birthDate is null (FHIR JSON leaves an absent element out)'],
  [P({ birthDate: '2012-02' }, 'partial'), undefined],
  [P({ birthDate: '2012-02-29' }, 'leap'), undefined],
  [P({ name: [{ family: '', given: ['Ava'] }] }, 'n1'), 'Patient.name[0].family is not a non-empty string'],
  [P({ name: [{ family: 'Martinez', given: 'Ava' }] }, 'n2'), 'Patient.name[0].given is not a non-empty JSON array'],
  [P({ name: [{ use: 'official', family: 'Martinez', given: ['Ava'], nick: 'A' }] }, 'n3'), 'Patient.name[0].nick is not an element of an R4 HumanName'],
  [P({ identifier: [{ system: 'urn:x', value: 7 }] }, 'id1'), 'Patient.identifier[0].value is not a non-empty string'],
  [P({ telecom: [{ value: '217-555-0100' }] }, 't1'), 'Patient.telecom[0].system is missing: R4 requires it when there is a value (cpt-2)'],
  [P({ telecom: [{ system: 'phone', value: '217-555-0100', use: 'cell' }] }, 't2'), 'Patient.telecom[0].use must be home, work, temp, old or mobile'],
  [P({ address: [{ line: '12 Oak Street', city: 'Springfield' }] }, 'a1'), 'Patient.address[0].line is not a non-empty JSON array'],
  [P({ address: {} }, 'a2'), 'Patient.address is not a non-empty JSON array'],
  [P({ note: 'x' }, 'u1'), 'Patient.note is not an element of an R4 Patient'],
  [P({ link: [{ other: { reference: 'Patient/ok' } }] }, 'l1'), 'Patient.link[0].type is missing'],
];
const IMMUNIZATION_CASES: [Record<string, unknown>, string | undefined][] = [
  [I({}, 'i-ok'), undefined],
  [I({ status: 'done' }, 'i1'), 'Immunization.status must be completed, entered-in-error or not-done'],
  [I({}, 'i2', ['status']), 'Immunization.status is missing (completed, entered-in-error or not-done)'],
  [I({}, 'i3', ['vaccineCode']), 'Immunization.vaccineCode is missing'],
  [I({ vaccineCode: { coding: [] } }, 'i4'), 'Immunization.vaccineCode.coding is not a non-empty JSON array'],
  [I({ vaccineCode: { id: 'v' } }, 'i5'), 'Immunization.vaccineCode has neither a coding nor a text'],
  [I({ vaccineCode: { text: 'MMR' } }, 'i-text'), undefined],
  [I({}, 'i6', ['occurrenceDateTime']), 'Immunization.occurrence[x] is missing (occurrenceDateTime or occurrenceString)'],
  [I({ occurrenceString: 'spring 2015' }, 'i7'), 'Immunization.occurrence[x] is given twice (occurrenceDateTime and occurrenceString)'],
  [I({ occurrenceString: 'spring 2015' }, 'i-said', ['occurrenceDateTime']), undefined],
  [I({ occurrenceDateTime: '2015-06-01T10:00:00' }, 'i8'), 'Immunization.occurrenceDateTime is not a FHIR dateTime (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date, or that with a time and its offset)'],
  [I({ occurrenceDateTime: '2015-06-01T10:00:00-05:00' }, 'i-time'), undefined],
  [I({ primarySource: 'yes' }, 'i9'), 'Immunization.primarySource is not true or false'],
];

describe.each(STORES)('holding the loaded index to FHIR R4 (%s)', (store) => {
  it('rejects each invalid element with its file, line and the element named, loads the good lines of the same file, and stores nothing invalid', async () => {
    const { db, dir } = await tempDb(store);
    const cases = [...PATIENT_CASES, ...IMMUNIZATION_CASES];
    const file = await writeNdjson(path.join(dir, 'mixed.ndjson'), cases.map(([r]) => r));
    const r = await loadIndexFile(db, file);
    const expected = cases.flatMap(([, reason], i) => (reason === undefined ? [] : [{ file, line: i + 1, reason }]));
    expect(r.rejections).toEqual(expected);
    expect(r.rejected).toBe(expected.length);
    const good = (list: typeof cases) => list.filter(([, reason]) => reason === undefined).map(([x]) => x.id as string).sort();
    const { rows: patients } = await db.query<{ id: string; resource: Record<string, unknown> }>('SELECT id, resource FROM patient ORDER BY id');
    const { rows: imms } = await db.query<{ id: string; resource: Record<string, unknown> }>('SELECT id, resource FROM immunization ORDER BY id');
    expect(patients.map((x) => x.id)).toEqual(good(PATIENT_CASES));
    expect(imms.map((x) => x.id)).toEqual(good(IMMUNIZATION_CASES));
    // What is stored is what was sent, less the empty telecom array R4 does not allow, plus our meta.
    for (const { resource } of patients) {
      expect(resource).not.toHaveProperty('telecom');
      expect(['male', 'female', 'other', 'unknown']).toContain(resource.gender);
      expect(resource.birthDate).toMatch(/^\d{4}-\d{2}(-\d{2})?$/);
    }
    for (const { resource } of imms) expect(resource.status).toBe('completed');
  });

  it('maps the CSV form to R4: sex codes to genders, YYYYMMDD to a FHIR date, and refuses a cell it cannot map, naming its column', async () => {
    const { db, dir } = await tempDb(store);
    const patients = await writeText(
      path.join(dir, 'patients.csv'),
      [
        'id,family,given,middle,suffix,birth_date,sex,street,city,state,zip,phone',
        'c1,Martinez,Ava,,,2015-03-14,F,,,,,',
        'c2,Wilson,Liam,,,20160702,M,,,,,',
        'c3,Carter,Sam,,,2014-01-01,U,,,,,',
        'c4,Lee,Kim,,,2013-05-05,x,,,,,',
        'c5,Nunez,Jose,,,2013-02-03,,,,,,',
        'c6,Brown,Mia,,,05/06/2011,F,,,,,',
        'c7,Brown,Zoe,,,2011-02-30,F,,,,,',
        'c8,Green,Eli,,,2012-01-01,Q,,,,,',
      ].join('\n'),
    );
    const r = await loadIndexFile(db, patients);
    const dateRule = 'column birth_date is not a date in the form YYYY-MM-DD (or YYYYMMDD), a real calendar date';
    expect(r.rejections).toEqual([
      { file: patients, line: 7, reason: dateRule },
      { file: patients, line: 8, reason: dateRule },
      { file: patients, line: 9, reason: 'column sex is not a sex code (F, M, O, U, X, female, male, other, unknown, 1, 2, 0 or 9)' },
    ]);
    const { rows } = await db.query<{ id: string; sex: string; birth_date: string; resource: Record<string, unknown> }>('SELECT id, sex, birth_date, resource FROM patient ORDER BY id');
    expect(rows.map((x) => [x.id, x.resource.gender, x.resource.birthDate, x.sex, x.birth_date])).toEqual([
      ['c1', 'female', '2015-03-14', 'female', '2015-03-14'],
      ['c2', 'male', '2016-07-02', 'male', '2016-07-02'],
      ['c3', 'unknown', '2014-01-01', 'unknown', '2014-01-01'],
      ['c4', 'other', '2013-05-05', 'other', '2013-05-05'],
      ['c5', undefined, '2013-02-03', '', '2013-02-03'],
    ]);

    const imms = await writeText(
      path.join(dir, 'imms.csv'),
      [
        'id,patient_id,cvx,occurrence_date,display,status',
        'ci1,c1,08,20150315,,',
        'ci2,c1,20,2015-05-15,DTaP,completed',
        'ci3,c1,20,15/05/2015,,',
        'ci4,c1,,2015-05-15,,',
        'ci5,c1,20,2015-05-15,,done',
        'ci6,c1,20,,,',
      ].join('\n'),
    );
    const ri = await loadIndexFile(db, imms);
    expect(ri.rejections.map((x) => [x.line, x.reason])).toEqual([
      [4, 'column occurrence_date is not a date in the form YYYY-MM-DD (or YYYYMMDD), a real calendar date'],
      [5, 'column cvx is empty: an immunization needs its vaccine code'],
      [6, 'column status must be completed, entered-in-error, not-done (or empty: completed)'],
      [7, 'column occurrence_date is empty'],
    ]);
    const { rows: stored } = await db.query<{ resource: Record<string, unknown> }>('SELECT resource FROM immunization ORDER BY id');
    expect(stored.map((x) => [x.resource.occurrenceDateTime, x.resource.status])).toEqual([
      ['2015-03-15', 'completed'],
      ['2015-05-15', 'completed'],
    ]);
  });
});

describe('rostermatch index load', () => {
  it('exits 1 when it rejected lines, having loaded the rest and printed each rejection', async () => {
    const dir = await tempDir();
    const env = { ROSTERMATCH_DATA: path.join(dir, 'data') };
    const file = await writeNdjson(path.join(dir, 'Patient.ndjson'), [P({}, 'ok'), P({ gender: 'X' }, 'bad'), P({}, 'ok2')]);
    const r = await runCli(['index', 'load', file], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/patients 2 new.*; 1 rejected/);
    expect(r.stdout).toContain(`rejected ${file}:2: Patient.gender must be male, female, other or unknown`);
    expect(r.stderr.trim()).toBe(`rostermatch: INDEX_LINE_INVALID: 1 line rejected, the other lines loaded (${file}: 1)`);
    const json = await runCli(['index', 'load', '--json', file], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ rejected: 1, patients: { unchanged: 2 } });
    const clean = await runCli(['index', 'load', await writeNdjson(path.join(dir, 'P2.ndjson'), [P({}, 'ok3')])], env);
    expect([clean.code, clean.stderr]).toEqual([0, '']);
  });
});

describe('preparing index lines on a worker thread', () => {
  // The worker does not depend on the store: one suffices.
  const store = 'postgres' as const;
  const GIVEN = ['Ava', 'Liam', 'Noah', 'Emma', 'Mia', 'Zoe', 'Omar', 'Ines'];
  const FAMILY = ['Martinez', 'Wilson', 'Nguyen', 'Okafor', 'Schmidt', 'Haddad'];
  const person = (i: number, birthDate = `20${10 + (i % 9)}-0${1 + (i % 9)}-1${i % 10}`) =>
    fhirPatient({ id: `p${i}`, given: GIVEN[i % GIVEN.length]!, family: `${FAMILY[i % FAMILY.length]}${i % 97}`, birthDate, street: `${i} Elm Street` });
  /** More lines than the worker is sent at once, times the chunks in flight; each kind of line and of refusal among them. */
  const first = (): string[] => [
    ...Array.from({ length: 9000 }, (_, i) => JSON.stringify(i % 3 === 0 ? fhirImmunization(`i${i}`, `p${i + 1}`) : person(i))),
    '{"resourceType":"Patient",',
    JSON.stringify({ ...person(9001), birthDate: '2015-02-30' }),
    '',
    JSON.stringify({ resourceType: 'Patient', id: 'p1', active: false, meta: { tag: [REMOVED_TAG] } }),
    JSON.stringify({ ...person(9002), active: false, link: [{ other: { reference: 'Patient/p2' }, type: 'replaced-by' }] }),
    JSON.stringify(fhirImmunization('i-orphan', 'nobody')),
  ];
  /** A delta: some changed, most unchanged, a new one, bad lines again. */
  const second = (): string[] => [
    ...Array.from({ length: 6000 }, (_, i) => JSON.stringify(i % 3 === 0 ? fhirImmunization(`i${i}`, `p${i + 1}`, '20') : i % 5 === 0 ? person(i, '2019-12-31') : person(i))),
    JSON.stringify(person(9999)),
    'not json',
  ];
  /** What the index holds, in full. */
  const stored = async (db: Awaited<ReturnType<typeof tempDb>>['db']) => ({
    patients: (await db.query("SELECT id, given, family, birth_date, street, identifiers, replaced_by, removed_at IS NULL AS live, resource - 'meta' AS resource, content_hash, block_keys FROM patient ORDER BY id")).rows,
    keys: (await db.query('SELECT key, patient_id FROM patient_block ORDER BY key, patient_id')).rows,
    immunizations: (await db.query("SELECT id, patient_id, resource - 'meta' AS resource, content_hash FROM immunization ORDER BY id")).rows,
  });

  it('loads a first load and a delta as this thread does: the same reports, the same index', async () => {
    const here = await tempDb(store);
    const there = await tempDb(store);
    const files = [await writeText(path.join(here.dir, 'first.ndjson'), first().join('\n')), await writeText(path.join(here.dir, 'second.ndjson'), second().join('\n'))];
    for (const file of files) {
      const inThread = await loadIndexFile(here.db, file, { worker: false });
      const onWorker = await loadIndexFile(there.db, file, { worker: true });
      expect(onWorker).toEqual(inThread);
      expect(inThread.rejected).toBeGreaterThan(0);
    }
    const [a, b] = [await stored(here.db), await stored(there.db)];
    expect(a.patients.length).toBeGreaterThan(6000);
    expect(b).toEqual(a);
  });

  it('writes a first load (its columns rendered as COPY text up front) as it writes the same lines into a loaded index (from the patients\' objects)', async () => {
    const fresh = await tempDb(store);
    const loaded = await tempDb(store);
    const seed = person(123_456);
    await loadIndexFile(loaded.db, await writeNdjson(path.join(loaded.dir, 'seed.ndjson'), [seed]));
    const file = await writeText(path.join(fresh.dir, 'first.ndjson'), first().join('\n'));
    for (const db of [fresh.db, loaded.db]) await loadIndexFile(db, file, { worker: true });
    const without = (x: Awaited<ReturnType<typeof stored>>) => ({
      patients: x.patients.filter((r) => (r as { id: string }).id !== seed.id),
      keys: x.keys.filter((r) => (r as { patient_id: string }).patient_id !== seed.id),
      immunizations: x.immunizations,
    });
    const [a, b] = [await stored(fresh.db), without(await stored(loaded.db))];
    expect(a.keys.length).toBeGreaterThan(50_000);
    expect(b).toEqual(a);
  });
});

describe('a store written before patient rows listed their blocking keys (PostgreSQL)', () => {
  it('is given them by its migration, and a delta then replaces a patient\'s keys through them', async () => {
    const { url, drop } = await filePgDatabase();
    const dir = await tempDir();
    let db = await openPostgres(url);
    try {
      await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), PATIENTS));
      const keysOf = async (id: string) => (await db.query<{ key: string }>('SELECT key FROM patient_block WHERE patient_id = $1 ORDER BY key', [id])).rows.map((r) => r.key);
      const held = await keysOf('b');
      // Back to the schema before the last migration: no block_keys, keys found by their patient.
      await db.exec(`ALTER TABLE patient DROP COLUMN block_keys; CREATE INDEX patient_block_patient ON patient_block (patient_id);
        DELETE FROM schema_migration WHERE version = ${MIGRATIONS.length}`);
      await db.close();
      db = await openPostgres(url);
      const { rows } = await db.query<{ id: string; block_keys: string[] }>('SELECT id, block_keys FROM patient ORDER BY id');
      expect(rows.find((r) => r.id === 'b')?.block_keys).toEqual(held);
      expect(rows.every((r) => r.block_keys.length > 0)).toBe(true);
      expect((await db.query('SELECT 1 FROM pg_indexes WHERE indexname = $1', ['patient_block_patient'])).rows).toEqual([]);

      await loadIndexFile(db, await writeNdjson(path.join(dir, 'P2.ndjson'), [{ ...PATIENTS[1], birthDate: '2016-07-03' }]));
      const now = await keysOf('b');
      expect(now.filter((k) => k.startsWith('df:'))).toEqual(['df:2016-07-03|ALSN']);
      expect(now.some((k) => k.includes('2016-07-02'))).toBe(false);
      expect((await db.query<{ block_keys: string[] }>("SELECT block_keys FROM patient WHERE id = 'b'")).rows[0]?.block_keys.slice().sort()).toEqual(now);
    } finally {
      await db.close();
      await drop();
    }
  });
});
