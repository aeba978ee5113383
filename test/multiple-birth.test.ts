/**
 * Twins share birth date, surname, address, phone and mother: without more, a row for one looks
 * like the other with a given-name difference. The mother's maiden name (PID-6, FHIR
 * patient-mothersMaidenName) and the birth order (PID-25, multipleBirthInteger) are comparison
 * fields: read from roster columns and from the index's FHIR Patients, stored, carried into the
 * in-memory copy and its snapshot, weighed — and a birth order that disagrees bars an automatic
 * match. Where either side lacks them they weigh nothing and say nothing.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockingKeys, CandidateIndex, comparePair, guardFailure } from '../src/match/index.ts';
import { compareBirthOrder, compareMothersMaiden } from '../src/match/compare.ts';
import { DEFAULT_LEVELS, weight } from '../src/match/model.ts';
import type { IndexPatient, NormalisedRow, PersonFields } from '../src/model/index.ts';
import { birthOrderFromFhir, MOTHERS_MAIDEN_NAME_URL, normaliseBirthOrder, normaliseMothersMaiden } from '../src/normalise/index.ts';
import { readRoster } from '../src/parse/index.ts';
import { readIndex } from '../src/evaluate/datasets.ts';
import { ensureMatchForm, loadIndexFile, patientFromFhir } from '../src/patient-index/index.ts';
import { csvToResource } from '../src/patient-index/csv-form.ts';
import type { FhirPatient } from '../src/patient-index/fhir.ts';
import { candidatesFor, matchAll } from '../src/run/index.ts';
import { readSnapshot, writeSnapshot } from '../src/run/index-snapshot.ts';
import { matchablePatients, patientsByIds, storedMatchForm } from '../src/store/index.ts';
import { fhirPatient, STORES, tempDb, tempDir, testPipeline, writeNdjson, writeText, type PatientSpec } from './helpers.ts';

const HOME: Omit<PatientSpec, 'id' | 'given'> = { family: 'Martinez', birthDate: '2015-03-14', street: '12 Oak Street', zip: '62701', phone: '217-555-2368' };

/** An index Patient with the mother's maiden name extension and a birth order (or multipleBirthBoolean). */
function twin(id: string, given: string, order: number | boolean | null, maiden: string | null = 'Garcia'): FhirPatient {
  const r: Record<string, unknown> = fhirPatient({ id, given, ...HOME });
  if (maiden !== null) r.extension = [{ url: MOTHERS_MAIDEN_NAME_URL, valueString: maiden }];
  if (typeof order === 'number') r.multipleBirthInteger = order;
  if (typeof order === 'boolean') r.multipleBirthBoolean = order;
  return r as unknown as FhirPatient;
}

/** ISABEL and ISABELLA: one typo apart, as many twins' names are. */
const TWINS = [twin('t1', 'Isabel', 1), twin('t2', 'Isabella', 2)];

const COLUMNS = {
  recordId: ['id'],
  given: ['first'],
  family: ['last'],
  birthDate: ['dob'],
  sex: ['sex'],
  street: ['street'],
  zip: ['zip'],
  phone: ['phone'],
  mothersMaidenName: ['mother_maiden'],
  birthOrder: ['birth_order'],
};
const WITH_FIELDS = testPipeline({ columns: COLUMNS });
const WITHOUT_FIELDS = testPipeline({ columns: { ...COLUMNS, mothersMaidenName: undefined, birthOrder: undefined } });

const HEADER = 'id,first,last,dob,sex,street,zip,phone,mother_maiden,birth_order';
const line = (id: string, given: string, maiden: string, order: string) => `${id},${given},Martinez,2015-03-14,F,12 Oak Street,62701,217-555-2368,${maiden},${order}`;

async function rowsOf(dir: string, lines: string[], pipeline = WITH_FIELDS): Promise<NormalisedRow[]> {
  const file = await writeText(path.join(dir, `roster-${Math.random().toString(36).slice(2)}.csv`), `${[HEADER, ...lines].join('\n')}\n`);
  return (await readRoster(file, pipeline, '2026-11-01')).rows;
}

const person = (p: Partial<PersonFields>): PersonFields => ({
  given: 'ISABELLA', middle: '', family: 'MARTINEZ', suffix: '', birthDate: '2015-03-14', sex: 'female', street: '12 OAK ST', city: '', state: '', zip: '62701', phone: '', ...p,
});
const ctx = { freq: { total: 0, given: new Map<string, number>(), family: new Map<string, number>() } };
const pair = (row: Partial<PersonFields>, cand: Partial<PersonFields>) => comparePair({ person: person(row), identifiers: [] }, { id: 'c', person: person(cand), identifiers: [] }, ctx);
const round2 = (x: number) => Math.round(x * 100) / 100;

describe('reading the two fields', () => {
  it('folds a mother maiden name as a family name, and a placeholder one to nothing', () => {
    expect(normaliseMothersMaiden("García-O'Neil")).toBe('GARCIA ONEIL');
    expect(normaliseMothersMaiden('unknown')).toBe('');
    expect(normaliseMothersMaiden('')).toBe('');
  });

  it('takes a birth order 1 to 9 and nothing else', () => {
    expect(['2', ' 02 ', '9', ''].map(normaliseBirthOrder)).toEqual(['2', '2', '9', '']);
    expect(['0', '10', 'B', '2nd', '-1', '1.5'].map(normaliseBirthOrder)).toEqual([null, null, null, null, null, null]);
  });

  it('reads FHIR multipleBirthInteger as the order, and multipleBirthBoolean (true or false) as none', () => {
    expect(patientFromFhir(twin('x', 'Ava', 2)).person).toMatchObject({ mothersMaiden: 'GARCIA', birthOrder: '2' });
    expect(patientFromFhir(twin('x', 'Ava', true)).person.birthOrder).toBeUndefined();
    expect(patientFromFhir(twin('x', 'Ava', false)).person.birthOrder).toBeUndefined();
    expect(birthOrderFromFhir(12)).toBe('');
    // Absent: no property at all, so a Patient without them reads as it did before.
    const plain = patientFromFhir(twin('x', 'Ava', null, null));
    expect(Object.keys(plain.person)).not.toContain('mothersMaiden');
    expect(Object.keys(plain.person)).not.toContain('birthOrder');
  });

  it('reads the index CSV form optional columns as the extension and multipleBirthInteger', () => {
    const row = { id: 'c1', family: 'Martinez', given: 'Isabella', middle: '', suffix: '', birth_date: '2015-03-14', sex: 'F', street: '', city: '', state: '', zip: '', phone: '' };
    expect(patientFromFhir(csvToResource('Patient', { ...row, mothers_maiden_name: 'Garcia', birth_order: '2' }) as unknown as FhirPatient).person).toMatchObject({ mothersMaiden: 'GARCIA', birthOrder: '2' });
    expect(csvToResource('Patient', row)).not.toHaveProperty('extension');
    expect(() => csvToResource('Patient', { ...row, birth_order: 'B' })).toThrow('column birth_order is not a birth order from 1 to 9 (or empty)');
  });

  it('reads the mapped roster columns; a birth order not 1 to 9 is a warning and left out; unmapped columns are not read', async () => {
    const dir = await tempDir();
    const [good, bad] = await rowsOf(dir, [line('r1', 'Isabella', 'Garcia', '2'), line('r2', 'Isabella', 'Unknown', 'B')]);
    expect(good).toMatchObject({ kind: 'valid', person: { mothersMaiden: 'GARCIA', birthOrder: '2' }, warnings: [] });
    expect(bad!.kind).toBe('valid');
    if (bad!.kind !== 'valid') return;
    expect(bad!.person.birthOrder).toBeUndefined();
    expect(bad!.person.mothersMaiden).toBeUndefined();
    expect(bad!.warnings).toEqual([{ field: 'birthOrder', code: 'malformed', message: 'birth order is not a number from 1 to 9; ignored' }]);
    const [unmapped] = await rowsOf(dir, [line('r1', 'Isabella', 'Garcia', '2')], WITHOUT_FIELDS);
    expect(unmapped!.kind === 'valid' && Object.keys(unmapped!.person)).toEqual(['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone']);
  });
});

describe('comparing them', () => {
  it('has the levels of a family name for the maiden name, and agree or different for the birth order', () => {
    expect(compareMothersMaiden('GARCIA', 'GARCIA')).toBe('exact');
    expect(compareMothersMaiden('DE LA CRUZ', 'DELACRUZ')).toBe('exact');
    expect(compareMothersMaiden('GARCIA', 'GRACIA')).toBe('typo');
    expect(compareMothersMaiden('GARCIA', 'NGUYEN')).toBe('different');
    expect(compareMothersMaiden('', 'GARCIA')).toBe('missing');
    expect([compareBirthOrder('2', '2'), compareBirthOrder('1', '2'), compareBirthOrder('', '2')]).toEqual(['agree', 'different', 'missing']);
  });

  it('a maiden name that agrees raises the score, one that disagrees lowers it, by its level weight', () => {
    const base = pair({}, {});
    const agree = pair({ mothersMaiden: 'GARCIA' }, { mothersMaiden: 'GARCIA' });
    const typo = pair({ mothersMaiden: 'GARCIA' }, { mothersMaiden: 'GRACIA' });
    const differ = pair({ mothersMaiden: 'GARCIA' }, { mothersMaiden: 'NGUYEN' });
    expect(agree.score).toBe(round2(base.score + round2(weight(DEFAULT_LEVELS.mothersMaiden.exact))));
    expect(typo.score).toBe(round2(base.score + round2(weight(DEFAULT_LEVELS.mothersMaiden.typo))));
    expect(differ.score).toBe(round2(base.score + round2(weight(DEFAULT_LEVELS.mothersMaiden.different))));
    expect(agree.score).toBeGreaterThan(base.score + 5);
    expect(differ.score).toBeLessThan(base.score - 2);
    expect(agree.comparisons.at(-1)).toEqual({ field: 'mothersMaiden', level: 'exact', weight: round2(weight(DEFAULT_LEVELS.mothersMaiden.exact)) });
    // A maiden name is no reason to refuse a match: keyed differently, it only weighs.
    expect(guardFailure(differ)).toBeNull();
  });

  it('a birth order that agrees weighs a little for, one that disagrees much against and bars an automatic match', () => {
    const base = pair({}, {});
    const agree = pair({ birthOrder: '2' }, { birthOrder: '2' });
    const differ = pair({ birthOrder: '2' }, { birthOrder: '1' });
    expect(agree.score - base.score).toBeGreaterThan(0);
    expect(agree.score - base.score).toBeLessThan(2);
    expect(differ.score - base.score).toBeLessThan(-5);
    expect(guardFailure(agree)).toBeNull();
    expect(guardFailure(differ)).toBe('birth_order');
  });

  it('missing on either side weighs exactly 0 and adds no comparison', () => {
    const base = pair({}, {});
    for (const [row, cand] of [
      [{ mothersMaiden: 'GARCIA', birthOrder: '2' }, {}],
      [{}, { mothersMaiden: 'GARCIA', birthOrder: '1' }],
      [{ mothersMaiden: 'GARCIA' }, { birthOrder: '1' }],
    ] as [Partial<PersonFields>, Partial<PersonFields>][]) {
      const p = pair(row, cand);
      expect(p.score).toBe(base.score);
      expect(p.comparisons).toEqual(base.comparisons);
      expect([p.mothersMaiden, p.birthOrder]).toEqual(['missing', 'missing']);
      expect(guardFailure(p)).toBe(guardFailure(base));
    }
  });
});

describe.each(STORES)('twins in the index (%s)', (store) => {
  async function loaded() {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), TWINS));
    return { db, dir };
  }

  it('a row for twin 2 with birth order 2 matches twin 2, and twin 1 fails the birth-order guard', async () => {
    const { db, dir } = await loaded();
    const rows = await rowsOf(dir, [line('r1', 'Isabella', 'Garcia', '2')]);
    for (const mode of ['database', 'memory'] as const) {
      const [r] = await matchAll(db, rows, WITH_FIELDS, mode);
      expect(r).toMatchObject({ outcome: 'matched', patientId: 't2' });
      expect(r!.candidates[0]!.comparisons.filter((c) => c.field === 'mothersMaiden' || c.field === 'birthOrder').map((c) => `${c.field}:${c.level}`)).toEqual(['mothersMaiden:exact', 'birthOrder:agree']);
    }
    const twin1 = patientFromFhir(TWINS[0]!);
    const row = rows[0]!;
    if (row.kind !== 'valid') throw new Error('row is invalid');
    expect(guardFailure(comparePair(row, twin1, ctx))).toBe('birth_order');
  });

  it('a row with a typo in twin 2 given name that spells twin 1 exactly, with birth order 2, does not match twin 1', async () => {
    const { db, dir } = await loaded();
    // ISABELLA keyed as ISABEL: without the birth order, the twin spelled exactly wins.
    const [withOrder] = await rowsOf(dir, [line('r1', 'Isabel', 'Garcia', '2')]);
    const [withoutOrder] = await rowsOf(dir, [line('r1', 'Isabel', 'Garcia', '')]);
    for (const mode of ['database', 'memory'] as const) {
      const [before] = await matchAll(db, [withoutOrder!], WITH_FIELDS, mode);
      expect(before).toMatchObject({ outcome: 'matched', patientId: 't1' });
      const [r] = await matchAll(db, [withOrder!], WITH_FIELDS, mode);
      expect(r!.patientId).not.toBe('t1');
      expect(r).toMatchObject({ outcome: 'matched', patientId: 't2' });
    }
  });

  it('a row for a twin whose birth order the IIS does not hold is matched as before: the fields weigh nothing there', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), [twin('t1', 'Isabel', null, null), twin('t2', 'Isabella', null, null)]));
    const withFields = await rowsOf(dir, [line('r1', 'Isabella', 'Garcia', '2'), line('r2', 'Isabel', 'Garcia', '1')]);
    const without = await rowsOf(dir, [line('r1', 'Isabella', 'Garcia', '2'), line('r2', 'Isabel', 'Garcia', '1')], WITHOUT_FIELDS);
    const a = await matchAll(db, withFields, WITH_FIELDS, 'database');
    const b = await matchAll(db, without, WITHOUT_FIELDS, 'database');
    // The submitted person differs (the row carries the fields); outcomes, scores and reasons do not.
    expect(a.map((r) => [r.outcome, r.patientId, r.score, r.candidates])).toEqual(b.map((r) => [r.outcome, r.patientId, r.score, r.candidates]));
    expect(a.map((r) => r.patientId)).toEqual(['t2', 't1']);
  });

  it('round-trips from FHIR into the store, the database candidates, the in-memory copy and its snapshot alike', async () => {
    const { db, dir } = await tempDb(store);
    const resources = [...TWINS, twin('t3', 'Mateo', true, 'unknown'), twin('p4', 'Ava', null, null)];
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), resources));
    const expected = resources.map((r) => patientFromFhir(r));
    expect(expected.map((p) => [p.person.mothersMaiden, p.person.birthOrder])).toEqual([['GARCIA', '1'], ['GARCIA', '2'], [undefined, undefined], [undefined, undefined]]);
    const { rows } = await db.query<{ id: string; mothers_maiden: string; birth_order: string }>('SELECT id, mothers_maiden, birth_order FROM patient ORDER BY id');
    expect(rows).toEqual([
      { id: 'p4', mothers_maiden: '', birth_order: '' },
      { id: 't1', mothers_maiden: 'GARCIA', birth_order: '1' },
      { id: 't2', mothers_maiden: 'GARCIA', birth_order: '2' },
      { id: 't3', mothers_maiden: '', birth_order: '' },
    ]);
    const byId = (list: IndexPatient[]) => new Map(list.map((p) => [p.id, p]));
    const want = byId(expected);
    expect(await patientsByIds(db, [...want.keys()])).toEqual(want);
    const scanned: IndexPatient[] = [];
    for await (const page of matchablePatients(db)) scanned.push(...page);
    expect(byId(scanned)).toEqual(want);

    // The in-memory copy hands out what the database does, key by key; so does its snapshot, and readIndex's copy of the file.
    const memory = (await candidatesFor(db, 'memory')).source as CandidateIndex;
    const keys = [...new Set(expected.flatMap((p) => blockingKeys(p.person, p.identifiers)))];
    // Per key, by id: a block's order is the order patients were written in memory, the key index's in the database.
    const sorted = (m: Map<string, IndexPatient[]>) => new Map([...m].map(([k, list]) => [k, [...list].sort((x, y) => x.id.localeCompare(y.id))]));
    const database = sorted(await (await candidatesFor(db, 'database')).source.byKeys(keys));
    expect(sorted(memory.byKeys(keys))).toEqual(database);
    expect(new Set([...database.values()].flat().map((p) => p.id))).toEqual(new Set(['p4', 't1', 't2', 't3']));
    const snapshots = await tempDir();
    await writeSnapshot(snapshots, 'store-x', 1, 1, memory);
    const back = await readSnapshot(snapshots, 'store-x', 1);
    expect(sorted(back!.index.byKeys(keys))).toEqual(database);
    const fromFile = await readIndex(path.join(dir, 'Patient.ndjson'));
    expect(sorted(fromFile.candidates.byKeys(keys))).toEqual(database);
  });

  it('fills the new columns of a store written before them when it is next matched against', async () => {
    const { db } = await loaded();
    await db.query("UPDATE patient SET mothers_maiden = '', birth_order = ''");
    await db.query('UPDATE index_state SET match_form = 2');
    expect(await ensureMatchForm(db)).toBe(2);
    expect(await storedMatchForm(db)).toBeGreaterThanOrEqual(3);
    const { rows } = await db.query<{ id: string; mothers_maiden: string; birth_order: string }>('SELECT id, mothers_maiden, birth_order FROM patient ORDER BY id');
    expect(rows).toEqual([
      { id: 't1', mothers_maiden: 'GARCIA', birth_order: '1' },
      { id: 't2', mothers_maiden: 'GARCIA', birth_order: '2' },
    ]);
  });
});

describe('a CandidateIndex row', () => {
  it('carries the two fields, and leaves them out of a patient that has neither', () => {
    const idx = new CandidateIndex();
    const a = patientFromFhir(TWINS[1]!);
    const b = patientFromFhir(twin('p4', 'Ava', null, null));
    idx.add(a);
    idx.add(b);
    const key = blockingKeys(a.person, []).find((k) => k.startsWith('df:'))!;
    const found = idx.byKeys([key]).get(key)!;
    expect(found).toEqual([a, b]);
    expect(Object.keys(found[1]!.person)).not.toContain('birthOrder');
  });
});
