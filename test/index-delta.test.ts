/**
 * The identity feed's batch form (issue 14): a nightly NDJSON delta through `index load` merges
 * (a replaced-by link, the survivor by identifier), unmerges (the link dropped) and removes (the
 * removal mark) as the live feed does — Group moves, history, matching — while ordinary lines take
 * the bulk path; a bad delta line is reported and the rest applies.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockingKeys } from '../src/match/index.ts';
import { LOAD_BATCH_LINES, loadIndexFile, LOAD_REMOVE_REASON, REMOVED_TAG } from '../src/patient-index/index.ts';
import { candidatesFor, runFile, type CandidateMode } from '../src/run/index.ts';
import { getGroup, groupHistory, groupMembers, listAuditEvents, patientsByBlockKeys, patientsByIds, type Db } from '../src/store/index.ts';
import { HEADER, IMMUNIZATIONS, INDEX } from './fixtures.ts';
import { exportedResources, fhirImmunization, fhirPatient, quietLog, STORES, tempDb, testPipeline, writeNdjson, writeText } from './helpers.ts';

const IIS = 'urn:oid:2.16.840.1.113883.3.9999.1';
const CLINIC = { partner: 'clinic-a', group: { id: 'clinic-a-panel', name: 'Clinic A panel', mode: 'append' } };
const ROWS = ['r1,Ava,Martinez,,2015-03-14,F,12 Oak St,62701,', 'r4,Mia,OBRIEN,,2014-11-30,F,,,', 'r5,Jose,Nunez,,2013-02-03,M,,,'];
const byId = (id: string) => INDEX.find((p) => p.id === id)!;
const removal = (id: string) => ({ resourceType: 'Patient', id, active: false, meta: { tag: [REMOVED_TAG] } });
const mergedInto = (id: string, survivorValue: string) => ({
  ...byId(id),
  active: false,
  link: [{ other: { identifier: { system: IIS, value: survivorValue } }, type: 'replaced-by' }],
});

/** Zoe: a Patient the index does not have, who arrives in a delta already merged into Ava (by reference). */
const ZOE = fhirPatient({ id: 'p-zoe', given: 'Zoe', family: 'Adams', birthDate: '2017-04-04' });
const ZOE_ROW = 'z1,Zoe,Adams,,2017-04-04,F,12 Oak St,62701,';
const zoeMergedIntoAva = { ...ZOE, active: false, link: [{ other: { reference: 'Patient/p-ava' }, type: 'replaced-by' }] };
const ORPHAN_REASON = 'Immunization.patient references a Patient not in the index';

/** Each stored Immunization of these ids with its Patient and stamp: what a load wrote. */
async function storedImmunizations(db: Db, ids: string[]): Promise<{ id: string; patient_id: string; last_updated: string }[]> {
  const { rows } = await db.query<{ id: string; patient_id: string; last_updated: Date | string }>(
    'SELECT id, patient_id, last_updated FROM immunization WHERE id = ANY ($1::text[]) ORDER BY id',
    [ids],
  );
  return rows.map((r) => ({ id: r.id, patient_id: r.patient_id, last_updated: new Date(r.last_updated).toISOString() }));
}

/** Each stored Immunization of these ids with its Patient and date: which line of a load it holds. */
async function immunizationDates(db: Db, ids: string[]): Promise<[string, string, string][]> {
  const { rows } = await db.query<{ id: string; patient_id: string; date: string }>(
    "SELECT id, patient_id, resource->>'occurrenceDateTime' AS date FROM immunization WHERE id = ANY ($1::text[]) ORDER BY id",
    [ids],
  );
  return rows.map((r) => [r.id, r.patient_id, r.date]);
}

/** `n` distinct Patients nobody else names: they fill a batch, so what follows lands in the next one. */
const fillers = (n: number) =>
  Array.from({ length: n }, (_, i) => fhirPatient({ id: `p-fill-${i}`, given: `Fill${i}`, family: 'Filler', birthDate: '2010-01-01' }));

/** The ids in the next export of the Group: its Patients, and its Immunizations with their Patient. */
async function exported(db: Db, dir: string, groupId: string): Promise<{ patients: string[]; immunizations: string[] }> {
  const ex = await exportedResources(db, dir, groupId);
  return {
    patients: ex.Patient.map((p) => p.id as string),
    immunizations: ex.Immunization.map((i) => `${i.id as string}:${(i.patient as { reference: string }).reference}`),
  };
}

/**
 * Whether the blocking table or the warm in-memory copy offers `id` as itself for the person of
 * index Patient `id` (a merged-away record is offered only as standing for its survivor).
 */
async function offered(db: Db, mode: CandidateMode, id: string): Promise<boolean> {
  const p = (await patientsByIds(db, [id])).get(id)!;
  const keys = blockingKeys(p.person, []);
  const found = mode === 'database' ? await patientsByBlockKeys(db, keys) : await (await candidatesFor(db, mode)).source.byKeys(keys);
  return [...found.values()].some((list) => list.some((x) => x.id === id && x.survivor === undefined));
}

describe.each(STORES)('an index load delta (%s)', (store) => {
  it('revises, merges by identifier, removes and unmerges: the Group, its history, matching and the report follow', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), INDEX));
    await candidatesFor(db, 'memory');
    let n = 0;
    const roster = async (rows: string[], mode: CandidateMode = 'database') => {
      const file = await writeText(path.join(dir, `roster-${++n}.csv`), [HEADER, ...rows].join('\n'));
      const out = await runFile(db, quietLog, { file, pipeline: testPipeline(CLINIC), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex'), candidates: mode });
      if (out.kind !== 'completed') throw new Error(`expected a completed run, got ${out.kind}`);
      return (await db.query<{ outcome: string; patient_id: string | null }>('SELECT outcome, patient_id FROM run_row WHERE run_id = $1 ORDER BY row_index', [out.run.id])).rows;
    };
    const members = async () => (await groupMembers(db, 'clinic-a-panel')).map((m) => m.patientId);
    expect((await roster(ROWS)).map((r) => [r.outcome, r.patient_id])).toEqual([
      ['matched', 'p-ava'],
      ['matched', 'p-mia'],
      ['matched', 'p-jose'],
    ]);

    // The nightly delta: Ava revised (bulk), Mia merged into Liam by his identifier, José removed.
    const delta = await writeNdjson(path.join(dir, 'delta.ndjson'), [
      { ...byId('p-ava'), telecom: [{ system: 'phone', value: '217-555-0111' }] },
      mergedInto('p-mia', 'IIS-p-liam'),
      removal('p-jose'),
    ]);
    const report = await loadIndexFile(db, delta);
    expect(report).toMatchObject({ lines: 3, merged: 1, unmerged: 0, removed: 1, rejected: 0, patients: { updated: 1 } });
    expect(await members()).toEqual(['p-ava', 'p-liam']);
    const history = await groupHistory(db, 'clinic-a-panel');
    const actor = 'index-load:delta.ndjson';
    expect(history.slice(0, 3).map((e) => [e.action, e.patientId, e.otherPatientId ?? null, e.reason ?? null, e.actor]).sort()).toEqual(
      [
        ['merged', 'p-mia', 'p-liam', null, actor],
        ['added', 'p-liam', 'p-mia', 'merged', actor],
        ['removed', 'p-jose', null, LOAD_REMOVE_REASON, actor],
      ].sort(),
    );
    expect((await listAuditEvents(db, { action: 'feed.merge' }))[0]).toMatchObject({ actor, entity: 'Patient/p-mia', detail: { id: 'p-mia', outcome: 'merged', survivorId: 'p-liam' } });
    expect((await listAuditEvents(db, { action: 'feed.remove' }))[0]).toMatchObject({ actor, entity: 'Patient/p-jose', detail: { outcome: 'removed', reason: LOAD_REMOVE_REASON } });
    for (const mode of ['database', 'memory'] as const) {
      expect(await offered(db, mode, 'p-mia')).toBe(false);
      expect(await offered(db, mode, 'p-jose')).toBe(false);
      expect(await offered(db, mode, 'p-ava')).toBe(true);
    }
    // Mia's row finds Liam, whom her record stands for now; José's finds nobody.
    const [mia, jose] = await roster([ROWS[1]!.replace('r4', 'r4b'), ROWS[2]!.replace('r5', 'r5b')], 'memory');
    expect(mia).toMatchObject({ outcome: 'matched', patient_id: 'p-liam' });
    expect(jose!.patient_id).toBeNull();

    // The same delta again changes nothing more, and refuses nothing: its removal is done already.
    const again = await loadIndexFile(db, delta);
    expect(again).toMatchObject({ merged: 0, removed: 0, rejected: 0, patients: { unchanged: 3 } });

    // The next night: Mia's line without the link — an unmerge; the Group is as it was before the merge.
    const undo = await loadIndexFile(db, await writeNdjson(path.join(dir, 'delta-2.ndjson'), [byId('p-mia')]));
    expect(undo).toMatchObject({ merged: 0, unmerged: 1, removed: 0, rejected: 0 });
    expect(await members()).toEqual(['p-ava', 'p-mia']);
    expect(await offered(db, 'memory', 'p-mia')).toBe(true);
  });

  it('applies only the last of several lines for one Patient (a merge, then its link dropped): nothing moves, and loading it again adds no event', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), INDEX));
    const file = await writeText(path.join(dir, 'roster.csv'), [HEADER, ...ROWS].join('\n'));
    await runFile(db, quietLog, { file, pipeline: testPipeline(CLINIC), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') });
    const events = (await getGroup(db, 'clinic-a-panel'))!.events;
    const delta = await writeNdjson(path.join(dir, 'delta.ndjson'), [mergedInto('p-mia', 'IIS-p-liam'), { ...byId('p-mia'), telecom: [{ system: 'phone', value: '217-555-0113' }] }]);
    for (const pass of [1, 2]) {
      const report = await loadIndexFile(db, delta);
      expect(report, `pass ${pass}`).toMatchObject({ lines: 2, merged: 0, unmerged: 0, rejected: 0 });
      expect((await getGroup(db, 'clinic-a-panel'))!.events, `pass ${pass}`).toBe(events);
      expect((await groupMembers(db, 'clinic-a-panel')).map((m) => m.patientId), `pass ${pass}`).toEqual(['p-ava', 'p-jose', 'p-mia']);
    }
    const { rows } = await db.query<{ phone: string; replaced_by: string | null }>("SELECT resource->'telecom'->0->>'value' AS phone, replaced_by FROM patient WHERE id = 'p-mia'");
    expect(rows[0]).toEqual({ phone: '217-555-0113', replaced_by: null });
  });

  it('applies an earlier revision of an id that another line between depends on (W merged into X while X stands alone, then X into Z): only adjacent revisions collapse', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), INDEX));
    const person = (id: string, given: string) => fhirPatient({ id, given, family: 'Quill', birthDate: '2011-01-0' + given.length });
    const into = (p: Record<string, unknown>, survivor: string) => ({ ...p, active: false, link: [{ other: { reference: `Patient/${survivor}` }, type: 'replaced-by' }] });
    const [w, x, y, z] = [person('p-w', 'Wren'), person('p-x', 'Xena'), person('p-y', 'Yara'), person('p-z', 'Zelda')];
    const delta = await writeNdjson(path.join(dir, 'delta.ndjson'), [y, z, into(x, 'p-y'), x, into(w, 'p-x'), into(x, 'p-z')]);
    const report = await loadIndexFile(db, delta);
    expect(report.rejections).toEqual([]);
    // Y and Z (bulk), X alone (its merge into Y collapsed into the next line), W created merged into X; then X merged into Z.
    expect(report).toMatchObject({ lines: 6, merged: 1, unmerged: 0, rejected: 0, patients: { inserted: 4, updated: 0 } });
    const { rows } = await db.query<{ id: string; replaced_by: string | null }>("SELECT id, replaced_by FROM patient WHERE id IN ('p-w', 'p-x', 'p-y', 'p-z') ORDER BY id");
    expect(rows).toEqual([
      { id: 'p-w', replaced_by: 'p-x' },
      { id: 'p-x', replaced_by: 'p-z' },
      { id: 'p-y', replaced_by: null },
      { id: 'p-z', replaced_by: null },
    ]);
    // W stands for Z now, through X: neither is offered as itself.
    expect(await offered(db, 'database', 'p-w')).toBe(false);
    expect(await offered(db, 'database', 'p-x')).toBe(false);
  });

  it('reports a bad delta line with its file, line and reason, and applies the rest', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), INDEX));
    const file = await writeNdjson(path.join(dir, 'bad.ndjson'), [
      { ...byId('p-noah'), telecom: [{ system: 'phone', value: '217-555-0112' }] },
      mergedInto('p-ava', 'IIS-nobody'),
      removal('p-nobody'),
      mergedInto('p-dup2', 'IIS-p-dup1'),
      { ...removal('p-mia'), active: true },
      removal('p-jsr'),
    ]);
    const report = await loadIndexFile(db, file);
    expect(report).toMatchObject({ lines: 6, merged: 1, removed: 1, rejected: 3, patients: { updated: 1 } });
    expect(report.rejections.map((r) => [r.file, r.line])).toEqual([
      [file, 2],
      [file, 3],
      [file, 5],
    ]);
    expect(report.rejections[0]!.reason).toMatch(/FEED_SURVIVOR_UNKNOWN/);
    expect(report.rejections[1]!.reason).toMatch(/no Patient of the index/);
    expect(report.rejections[2]!.reason).toMatch(/active/);
    const { rows } = await db.query<{ id: string; replaced_by: string | null }>("SELECT id, replaced_by FROM patient WHERE id IN ('p-ava', 'p-dup2') ORDER BY id");
    expect(rows).toEqual([
      { id: 'p-ava', replaced_by: null },
      { id: 'p-dup2', replaced_by: 'p-dup1' },
    ]);
    expect(await offered(db, 'database', 'p-jsr')).toBe(false);
    expect(await offered(db, 'database', 'p-ava')).toBe(true);
  });

  it("stores the Immunizations of a new Patient that arrives already merged, before and after its line, and of a Patient the delta removes; the survivor's Group export carries only its members' own Immunizations, not those of the Patients merged into them or removed; the same delta again changes nothing", async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), [...INDEX, ...IMMUNIZATIONS]));
    const file = await writeText(path.join(dir, `roster.csv`), [HEADER, ...ROWS].join('\n'));
    const run = await runFile(db, quietLog, { file, pipeline: testPipeline(CLINIC), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') });
    expect(run.kind).toBe('completed');
    expect((await groupMembers(db, 'clinic-a-panel')).map((m) => m.patientId)).toEqual(['p-ava', 'p-jose', 'p-mia']);

    const kai = fhirPatient({ id: 'p-kai', given: 'Kai', family: 'Lee', birthDate: '2012-08-08' });
    const delta = await writeNdjson(path.join(dir, 'delta.ndjson'), [
      fhirImmunization('i-zoe-1', 'p-zoe', '08', '2017-04-05'),
      zoeMergedIntoAva,
      fhirImmunization('i-zoe-2', 'p-zoe', '20', '2017-06-05'),
      fhirImmunization('i-jose-9', 'p-jose', '03', '2014-02-03'),
      removal('p-jose'),
      { ...kai, active: false, link: [{ other: { reference: 'Patient/p-ava' }, type: 'replaced-by' }] },
      fhirImmunization('i-kai-1', 'p-kai', '08', '2012-08-09'),
      removal('p-kai'),
    ]);
    const report = await loadIndexFile(db, delta);
    expect(report.rejections).toEqual([]);
    expect(report).toMatchObject({ lines: 8, merged: 0, removed: 2, rejected: 0, patients: { inserted: 2 }, immunizations: { inserted: 4, updated: 0, unchanged: 0 } });
    const ids = ['i-jose-9', 'i-kai-1', 'i-zoe-1', 'i-zoe-2'];
    const stored = await storedImmunizations(db, ids);
    expect(stored.map((r) => [r.id, r.patient_id])).toEqual([
      ['i-jose-9', 'p-jose'],
      ['i-kai-1', 'p-kai'],
      ['i-zoe-1', 'p-zoe'],
      ['i-zoe-2', 'p-zoe'],
    ]);
    const { rows: patients } = await db.query<{ id: string; replaced_by: string | null; removed: boolean }>(
      "SELECT id, replaced_by, removed_at IS NOT NULL AS removed FROM patient WHERE id IN ('p-jose', 'p-kai', 'p-zoe') ORDER BY id",
    );
    expect(patients).toEqual([
      { id: 'p-jose', replaced_by: null, removed: true },
      { id: 'p-kai', replaced_by: 'p-ava', removed: true },
      { id: 'p-zoe', replaced_by: 'p-ava', removed: false },
    ]);
    // Ava holds her place; Zoe, merged away, and José and Kai, removed, are no members: the export walks members.
    expect(await exported(db, dir, 'clinic-a-panel')).toEqual({
      patients: ['p-ava', 'p-mia'],
      immunizations: ['i-ava-1:Patient/p-ava', 'i-ava-2:Patient/p-ava'],
    });

    const group = await getGroup(db, 'clinic-a-panel');
    const again = await loadIndexFile(db, delta);
    expect(again).toMatchObject({ merged: 0, unmerged: 0, removed: 0, rejected: 0, patients: { inserted: 0, updated: 0, unchanged: 4 }, immunizations: { inserted: 0, updated: 0, unchanged: 4 } });
    expect(await storedImmunizations(db, ids)).toEqual(stored);
    expect(await getGroup(db, 'clinic-a-panel')).toEqual(group);
  });

  it('stores the Immunizations of a Patient only the feed pass creates, and exports them with her once she is live and in a Group', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), [...INDEX, ...IMMUNIZATIONS]));
    const first = await loadIndexFile(
      db,
      await writeNdjson(path.join(dir, 'delta.ndjson'), [fhirImmunization('i-zoe-1', 'p-zoe', '08', '2017-04-05'), zoeMergedIntoAva, fhirImmunization('i-zoe-2', 'p-zoe', '20', '2017-06-05')]),
    );
    expect(first).toMatchObject({ rejected: 0, patients: { inserted: 1 }, immunizations: { inserted: 2 } });
    // The next night the IIS takes the merge back; a roster names her, and she joins the Group.
    expect(await loadIndexFile(db, await writeNdjson(path.join(dir, 'delta-2.ndjson'), [ZOE]))).toMatchObject({ unmerged: 1, rejected: 0 });
    const file = await writeText(path.join(dir, `roster.csv`), [HEADER, ROWS[0]!, ZOE_ROW].join('\n'));
    const run = await runFile(db, quietLog, { file, pipeline: testPipeline(CLINIC), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') });
    expect(run.kind).toBe('completed');
    expect((await groupMembers(db, 'clinic-a-panel')).map((m) => m.patientId)).toEqual(['p-ava', 'p-zoe']);
    expect(await exported(db, dir, 'clinic-a-panel')).toEqual({
      patients: ['p-ava', 'p-zoe'],
      immunizations: ['i-ava-1:Patient/p-ava', 'i-ava-2:Patient/p-ava', 'i-zoe-1:Patient/p-zoe', 'i-zoe-2:Patient/p-zoe'],
    });
  });

  it('still rejects an Immunization whose Patient is in neither the index nor the file, with its line and field, and loads the rest; the same delta again changes nothing', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), [...INDEX, ...IMMUNIZATIONS]));
    const delta = await writeNdjson(path.join(dir, 'delta.ndjson'), [
      fhirImmunization('i-zoe-1', 'p-zoe', '08', '2017-04-05'),
      fhirImmunization('i-ghost', 'p-ghost', '08', '2017-04-05'),
      zoeMergedIntoAva,
      fhirImmunization('i-ava-9', 'p-ava', '03', '2016-03-14'),
      fhirImmunization('i-ghost-2', 'p-ghost', '20', '2017-06-05'),
    ]);
    const report = await loadIndexFile(db, delta);
    expect(report.rejections).toEqual([
      { file: delta, line: 2, reason: ORPHAN_REASON },
      { file: delta, line: 5, reason: ORPHAN_REASON },
    ]);
    expect(report).toMatchObject({ lines: 5, rejected: 2, patients: { inserted: 1 }, immunizations: { inserted: 2, updated: 0, unchanged: 0 } });
    const ids = ['i-ava-9', 'i-ghost', 'i-ghost-2', 'i-zoe-1'];
    const stored = await storedImmunizations(db, ids);
    expect(stored.map((r) => [r.id, r.patient_id])).toEqual([
      ['i-ava-9', 'p-ava'],
      ['i-zoe-1', 'p-zoe'],
    ]);

    const again = await loadIndexFile(db, delta);
    expect(again).toMatchObject({ rejected: 2, merged: 0, patients: { inserted: 0, updated: 0, unchanged: 1 }, immunizations: { inserted: 0, updated: 0, unchanged: 2 } });
    expect(again.rejections.map((r) => [r.line, r.reason])).toEqual([
      [2, ORPHAN_REASON],
      [5, ORPHAN_REASON],
    ]);
    expect(await storedImmunizations(db, ids)).toEqual(stored);
  });

  it('lets the last line of an Immunization id in the file win over one held back for its Patient: a later line written meanwhile, held too, or unchanged; the file again changes nothing', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), [...INDEX, ...IMMUNIZATIONS]));
    const pete = fhirPatient({ id: 'p-pete', given: 'Pete', family: 'Hale', birthDate: '2012-02-02' });
    const quinn = fhirPatient({ id: 'p-quinn', given: 'Quinn', family: 'Hale', birthDate: '2013-03-03' });
    // Batch 1: three lines held back, their Patients not in the index yet. Batch 2: Pete arrives;
    // i-pete's later line is written, i-quinn's is held again (Quinn is created by the delta line),
    // i-ava-1's later line is as stored. The held lines must not overwrite any of them.
    const heads = [
      fhirImmunization('i-pete', 'p-pete', '08', '2010-01-01'),
      fhirImmunization('i-quinn', 'p-quinn', '08', '2010-01-01'),
      fhirImmunization('i-ava-1', 'p-pete', '08', '2010-01-01'),
    ];
    const file = await writeNdjson(path.join(dir, 'late.ndjson'), [
      ...heads,
      ...fillers(LOAD_BATCH_LINES - heads.length),
      pete,
      fhirImmunization('i-pete', 'p-pete', '20', '2020-02-02'),
      fhirImmunization('i-quinn', 'p-quinn', '20', '2020-02-02'),
      IMMUNIZATIONS[0],
      { ...quinn, active: false, link: [{ other: { reference: 'Patient/p-ava' }, type: 'replaced-by' }] },
    ]);
    const ids = ['i-ava-1', 'i-pete', 'i-quinn'];
    const expected = [
      ['i-ava-1', 'p-ava', '2015-03-15'],
      ['i-pete', 'p-pete', '2020-02-02'],
      ['i-quinn', 'p-quinn', '2020-02-02'],
    ];
    const report = await loadIndexFile(db, file);
    expect(report.rejections).toEqual([]);
    expect(report.immunizations).toEqual({ inserted: 2, updated: 0, unchanged: 1 });
    expect(await immunizationDates(db, ids)).toEqual(expected);

    const again = await loadIndexFile(db, file);
    expect(again.rejections).toEqual([]);
    expect(await immunizationDates(db, ids)).toEqual(expected);
  }, 60_000);

  it("removes the held lines' temporary file however the load ends, and reports a temporary file it cannot write as that, not as the input file unreadable", async () => {
    const { db, dir } = await tempDb(store);
    // Fresh loads (the first stores nothing): the orphan is held, and the key indexes are built again after the bulk part.
    const orphan = await writeNdjson(path.join(dir, 'orphan.ndjson'), [fhirImmunization('i-ghost', 'p-ghost')]);
    const file = await writeNdjson(path.join(dir, 'index.ndjson'), [fhirImmunization('i-ghost', 'p-ghost'), ...INDEX]);
    const tmp = path.join(dir, 'tmp');
    await fs.mkdir(tmp);
    const before = process.env.TMPDIR;
    try {
      // Temporary files go under a regular file: the held line cannot be written.
      process.env.TMPDIR = await writeText(path.join(dir, 'not-a-dir'), '');
      const unwritable = await loadIndexFile(db, orphan).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(unwritable?.name).toBe('HeldLinesError');
      expect(unwritable?.message).not.toMatch(/FILE_UNREADABLE/);

      // Building the key indexes again fails after the bulk part read the file and held its line.
      process.env.TMPDIR = tmp;
      const failing = new Proxy(db, {
        get(target, key) {
          if (key === 'exec') {
            return async (sql: string) => {
              if (sql.includes('ADD CONSTRAINT patient_block_pkey')) throw new Error('injected: the indexes cannot be built');
              return target.exec(sql);
            };
          }
          const v = Reflect.get(target, key, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      await expect(loadIndexFile(failing, file)).rejects.toThrow(/injected/);
      expect(await fs.readdir(tmp)).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });
});
