/**
 * The patient identity feed (issue 14, IHE PIXm ITI-104) in the store: add, revise, merge,
 * unmerge and remove, with the seed's own examples (Alissa Mohr, IHERED-994; the "Maiden" record
 * IHERED-m94 merged into her), and what each does to the index, to two partners' Groups, to
 * their history, to the next export and to the next roster. Real stores, real files, real runs.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockingKeys } from '../src/match/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { runFile, candidatesFor, type CandidateMode } from '../src/run/index.ts';
import {
  feedPatient,
  groupHistory,
  groupMembers,
  getGroup,
  hasRelationship,
  listAuditEvents,
  partnerDecisions,
  patientsByBlockKeys,
  patientsByIdentifier,
  patientsByIds,
  removeFeedPatient,
  type Db,
  type FeedOutcome,
} from '../src/store/index.ts';
import { isRostermatchError } from '../src/errors/index.ts';
import { HEADER, INDEX } from './fixtures.ts';
import { exportedResources, fhirImmunization, fhirPatient, quietLog, STORES, tempDb, testPipeline, writeNdjson, writeText } from './helpers.ts';

const DOMAIN = 'urn:oid:1.3.6.1.4.1.21367.13.20.1000';
const ALISSA = { system: DOMAIN, value: 'IHERED-994' };
const MAIDEN = { system: DOMAIN, value: 'IHERED-m94' };

/** The seed's Patients (PIXm ITI-104 examples). */
const mohr = (given: string, id = ALISSA, more: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  identifier: [id],
  active: true,
  name: [{ family: 'MOHR', given: [given] }],
  gender: 'female',
  birthDate: '1958-01-30',
  ...more,
});
const mergedIntoAlice = (other: Record<string, unknown> = { identifier: ALISSA }) => mohr('MAIDEN', MAIDEN, { active: false, link: [{ other, type: 'replaced-by' }] });

/** The source's add, revise, merge or unmerge of Mohr `given`, holding `value` of the domain. */
const feedMohr = (db: Db, given: string, value: string, more: Record<string, unknown> = {}) =>
  feedPatient(db, { identifier: { system: DOMAIN, value }, resource: mohr(given, { system: DOMAIN, value }, more), actor: 'client/iis-adt' });
/** What merges a Patient into the one holding `value` of the domain. */
const into = (value: string) => ({ active: false, link: [{ other: { identifier: { system: DOMAIN, value } }, type: 'replaced-by' }] });

const CLINIC_A = { partner: 'clinic-a', group: { id: 'clinic-a-panel', name: 'Clinic A panel', mode: 'append' } };
const CLINIC_B = { partner: 'clinic-b', group: { id: 'clinic-b-panel', name: 'Clinic B panel', mode: 'append' } };
const ALICE_ROW = 'a1,Alice,Mohr,,1958-01-30,F,,,';
const MAIDEN_ROW = 'm1,Maiden,Mohr,,1958-01-30,F,,,';

async function setup(store: (typeof STORES)[number]) {
  const { db, dir } = await tempDb(store);
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'index.ndjson'), INDEX));
  let n = 0;
  const roster = async (clinic: typeof CLINIC_A, rows: string[], candidates: CandidateMode = 'database') => {
    const file = await writeText(path.join(dir, `roster-${++n}.csv`), [HEADER, ...rows].join('\n'));
    const out = await runFile(db, quietLog, { file, pipeline: testPipeline(clinic), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex'), candidates });
    if (out.kind !== 'completed') throw new Error(`expected a completed run, got ${out.kind}`);
    const { rows: results } = await db.query<{ record_id: string; outcome: string; patient_id: string | null }>(
      'SELECT record_id, outcome, patient_id FROM run_row WHERE run_id = $1 ORDER BY row_index',
      [out.run.id],
    );
    return results;
  };
  return { db, dir, roster };
}

const members = async (db: Db, groupId: string) => (await groupMembers(db, groupId)).map((m) => m.patientId);

/** The ids in the next export of the Group: Patients, and the patients of its Immunizations. */
async function exported(db: Db, dir: string, groupId: string): Promise<{ patients: string[]; immunizations: string[] }> {
  const ex = await exportedResources(db, dir, groupId);
  return {
    patients: ex.Patient.map((p) => p.id as string),
    immunizations: ex.Immunization.map((i) => (i.patient as { reference: string }).reference.replace('Patient/', '')),
  };
}

/** Whether the in-memory candidate copy (kept warm across calls) or the blocking table offers `id` for a person, as itself. */
async function offered(db: Db, mode: CandidateMode, id: string, given: string): Promise<boolean> {
  return (await offeredAs(db, mode, id, given)) === id;
}

/** Whom the candidate `id` stands for when offered for a person (itself, or its survivor); undefined when it is not offered. */
async function offeredAs(db: Db, mode: CandidateMode, id: string, given: string): Promise<string | undefined> {
  const person = { given, middle: '', family: 'MOHR', suffix: '', birthDate: '1958-01-30', sex: 'female' as const, street: '', city: '', state: '', zip: '', phone: '' };
  const keys = blockingKeys(person, []);
  const found = mode === 'database' ? await patientsByBlockKeys(db, keys) : await (await candidatesFor(db, mode)).source.byKeys(keys);
  const p = [...found.values()].flat().find((c) => c.id === id && c.person.given === given);
  return p && (p.survivor ?? p.id);
}

function expectKind<K extends FeedOutcome['kind']>(o: FeedOutcome, kind: K): Extract<FeedOutcome, { kind: K }> {
  expect(o.kind).toBe(kind);
  return o as Extract<FeedOutcome, { kind: K }>;
}

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isRostermatchError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe.each(STORES)('the identity feed (%s)', (store) => {
  it('adds, revises, merges, unmerges and removes: the index, every Group, its history, the next export and the next roster follow', async () => {
    const { db, dir, roster } = await setup(store);
    // Warm the in-memory copy first, so it must follow the feed's changes rather than be built after them.
    await candidatesFor(db, 'memory');

    // Add Alissa Mohr (IHERED-994), then revise her to Alice.
    const alice = expectKind(await feedPatient(db, { identifier: ALISSA, resource: mohr('ALISSA'), actor: 'client/iis-adt' }), 'created').patientId;
    expect(alice).toMatch(/^[0-9a-f-]{36}$/);
    expect(await offered(db, 'memory', alice, 'ALISSA')).toBe(true);
    expect(expectKind(await feedPatient(db, { identifier: ALISSA, resource: mohr('ALICE'), actor: 'client/iis-adt' }), 'updated').patientId).toBe(alice);
    expect((await patientsByIds(db, [alice])).get(alice)!.person.given).toBe('ALICE');
    for (const mode of ['database', 'memory'] as const) {
      expect(await offered(db, mode, alice, 'ALICE')).toBe(true);
      expect(await offered(db, mode, alice, 'ALISSA')).toBe(false);
    }
    expect((await roster(CLINIC_A, [ALICE_ROW], 'memory'))[0]).toMatchObject({ outcome: 'matched', patient_id: alice });
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'shots.ndjson'), [fhirImmunization('i-alice', alice, '141', '2024-10-01')]));

    // The duplicate record, in both partners' Groups: clinic A holds both, clinic B only the duplicate.
    const maiden = expectKind(await feedPatient(db, { identifier: MAIDEN, resource: mohr('MAIDEN', MAIDEN), actor: 'client/iis-adt' }), 'created').patientId;
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'shots2.ndjson'), [fhirImmunization('i-maiden', maiden, '08', '1958-02-01')]));
    expect((await roster(CLINIC_A, [MAIDEN_ROW]))[0]).toMatchObject({ outcome: 'matched', patient_id: maiden });
    expect((await roster(CLINIC_B, [MAIDEN_ROW], 'memory'))[0]).toMatchObject({ outcome: 'matched', patient_id: maiden });
    expect(await members(db, 'clinic-a-panel')).toEqual([alice, maiden].sort());
    expect(await members(db, 'clinic-b-panel')).toEqual([maiden]);
    const before = { a: (await getGroup(db, 'clinic-a-panel'))!, b: (await getGroup(db, 'clinic-b-panel'))! };

    // Merge: the duplicate is replaced by Alice, named by her identifier as the PIXm example does.
    const merged = expectKind(await feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice(), actor: 'client/iis-adt' }), 'merged');
    expect(merged).toEqual({ kind: 'merged', patientId: maiden, survivorId: alice, groups: ['clinic-a-panel', 'clinic-b-panel'] });
    expect(await members(db, 'clinic-a-panel')).toEqual([alice]);
    expect(await members(db, 'clinic-b-panel')).toEqual([alice]);
    const a = (await getGroup(db, 'clinic-a-panel'))!;
    const b = (await getGroup(db, 'clinic-b-panel'))!;
    expect([a.size, a.version, a.events]).toEqual([1, before.a.version + 1, before.a.events + 1]);
    expect([b.size, b.version, b.events]).toEqual([1, before.b.version + 1, before.b.events + 2]);
    const [aLast] = await groupHistory(db, 'clinic-a-panel');
    expect(aLast).toMatchObject({ action: 'merged', patientId: maiden, otherPatientId: alice, actor: 'client/iis-adt', runId: null });
    expect((await groupHistory(db, 'clinic-b-panel')).slice(0, 2).map((e) => [e.action, e.patientId, e.otherPatientId, e.reason ?? null]).sort()).toEqual(
      [
        ['added', alice, maiden, 'merged'],
        ['merged', maiden, alice, null],
      ].sort(),
    );
    for (const g of ['clinic-a-panel', 'clinic-b-panel']) {
      const ex = await exported(db, dir, g);
      expect(ex.patients).toEqual([alice]);
      expect(ex.immunizations).toEqual([alice]);
    }
    // The subsumed record is never a candidate of its own again, by either source: it stands for
    // Alice, so the next roster naming her by her old demographics finds Alice.
    for (const mode of ['database', 'memory'] as const) expect(await offeredAs(db, mode, maiden, 'MAIDEN')).toBe(alice);
    for (const mode of ['database', 'memory'] as const) {
      const [row] = await roster(CLINIC_B, [MAIDEN_ROW.replace('m1', `m-${mode}`)], mode);
      expect(row).toMatchObject({ outcome: 'matched', patient_id: alice });
    }
    expect(await members(db, 'clinic-b-panel')).toEqual([alice]);
    const audits = await listAuditEvents(db, { action: 'feed.merge' });
    expect(audits[0]).toMatchObject({ actor: 'client/iis-adt', entity: `Patient/${maiden}`, detail: { identifier: MAIDEN, outcome: 'merged', survivorId: alice, groups: ['clinic-a-panel', 'clinic-b-panel'] } });
    // The same merge again moves nothing.
    expect(await feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice(), actor: 'client/iis-adt' })).toEqual({ ...merged, groups: [] });

    // Unmerge (the link gone, active again): each Group is as it was before the merge.
    const unmerged = expectKind(await feedPatient(db, { identifier: MAIDEN, resource: mohr('MAIDEN', MAIDEN), actor: 'client/iis-adt' }), 'unmerged');
    expect(unmerged).toEqual({ kind: 'unmerged', patientId: maiden, survivorId: alice, groups: ['clinic-a-panel', 'clinic-b-panel'] });
    expect(await members(db, 'clinic-a-panel')).toEqual([alice, maiden].sort());
    expect(await members(db, 'clinic-b-panel')).toEqual([maiden]);
    expect((await groupHistory(db, 'clinic-b-panel')).slice(0, 2).map((e) => [e.action, e.patientId, e.reason]).sort()).toEqual(
      [
        ['added', maiden, 'unmerged'],
        ['removed', alice, 'unmerged'],
      ].sort(),
    );
    expect(await offered(db, 'memory', maiden, 'MAIDEN')).toBe(true);

    // Remove Alice: out of every Group with the reason, out of exports and out of matching.
    const removed = await removeFeedPatient(db, { identifier: ALISSA, actor: 'client/iis-adt', reason: 'record withdrawn by the IIS' });
    expect(removed).toEqual({ kind: 'removed', patientId: alice, groups: ['clinic-a-panel'] });
    expect(await members(db, 'clinic-a-panel')).toEqual([maiden]);
    expect((await groupHistory(db, 'clinic-a-panel'))[0]).toMatchObject({ action: 'removed', patientId: alice, reason: 'record withdrawn by the IIS' });
    const ex = await exported(db, dir, 'clinic-a-panel');
    expect(ex.patients).toEqual([maiden]);
    expect(ex.immunizations).not.toContain(alice);
    for (const mode of ['database', 'memory'] as const) {
      expect(await offered(db, mode, alice, 'ALICE')).toBe(false);
      const [row] = await roster(CLINIC_A, [ALICE_ROW.replace('a1', `a-${mode}`)], mode);
      expect(row!.patient_id).not.toBe(alice);
    }
    expect(await members(db, 'clinic-a-panel')).toEqual([maiden]);
    expect(await patientsByIdentifier(db, ALISSA.system, ALISSA.value)).toEqual([]);
    expect(await hasRelationship(db, 'clinic-a', alice)).toBe(false);
    expect((await listAuditEvents(db, { action: 'feed.remove' }))[0]).toMatchObject({ entity: `Patient/${alice}`, detail: { outcome: 'removed', groups: ['clinic-a-panel'] } });
    // Gone: a second delete matches nobody, and a merge into her is refused.
    expect(await removeFeedPatient(db, { identifier: ALISSA, actor: 'client/iis-adt' })).toEqual({ kind: 'absent' });
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice(), actor: 'client/iis-adt' }))).toBe('FEED_SURVIVOR_UNKNOWN');
  });

  it('a row with a merged-away record\'s old demographics finds its survivor along a chain of merges, and nobody once the survivor is removed', async () => {
    const { db, roster } = await setup(store);
    await candidatesFor(db, 'memory');
    const feed = (given: string, value: string, more: Record<string, unknown> = {}) => feedMohr(db, given, value, more);
    const b = expectKind(await feed('BEATRIX', 'B-1'), 'created').patientId;
    const c = expectKind(await feed('CORDELIA', 'C-1'), 'created').patientId;
    const d = expectKind(await feed('DAPHNE', 'D-1'), 'created').patientId;
    const BEATRIX_ROW = 'b1,Beatrix,Mohr,,1958-01-30,F,,,';
    expect((await roster(CLINIC_A, [BEATRIX_ROW]))[0]).toMatchObject({ outcome: 'matched', patient_id: b });

    // Beatrix into Cordelia, then Cordelia into Daphne: Beatrix's old demographics find Daphne, as one candidate.
    expectKind(await feed('BEATRIX', 'B-1', into('C-1')), 'merged');
    expectKind(await feed('CORDELIA', 'C-1', into('D-1')), 'merged');
    for (const mode of ['database', 'memory'] as const) {
      expect(await offeredAs(db, mode, b, 'BEATRIX')).toBe(d);
      expect(await offeredAs(db, mode, c, 'CORDELIA')).toBe(d);
      const [row] = await roster(CLINIC_A, [BEATRIX_ROW.replace('b1', `b-${mode}`)], mode);
      expect(row).toMatchObject({ outcome: 'matched', patient_id: d });
    }
    // Unmerging Cordelia: Beatrix stands for Cordelia again.
    expectKind(await feed('CORDELIA', 'C-1'), 'unmerged');
    for (const mode of ['database', 'memory'] as const) expect(await offeredAs(db, mode, b, 'BEATRIX')).toBe(c);
    // Cordelia removed: Beatrix, merged into her, stands for nobody and finds nobody.
    expectKind(await removeFeedPatient(db, { identifier: { system: DOMAIN, value: 'C-1' }, actor: 'client/iis-adt' }), 'removed');
    for (const mode of ['database', 'memory'] as const) {
      expect(await offeredAs(db, mode, b, 'BEATRIX')).toBeUndefined();
      const [row] = await roster(CLINIC_A, [BEATRIX_ROW.replace('b1', `b2-${mode}`)], mode);
      expect([b, c]).not.toContain(row!.patient_id);
    }
  });

  it('a record merged into a removed patient gets its keys back when an unmerge makes it stand for somebody again, in both sources', async () => {
    const { db } = await setup(store);
    await candidatesFor(db, 'memory');
    const feed = (given: string, value: string, more: Record<string, unknown> = {}) => feedMohr(db, given, value, more);
    const b = expectKind(await feed('BEATRIX', 'B-1'), 'created').patientId;
    const c = expectKind(await feed('CORDELIA', 'C-1'), 'created').patientId;
    expectKind(await feed('DAPHNE', 'D-1'), 'created');
    expectKind(await feed('BEATRIX', 'B-1', into('C-1')), 'merged');
    expectKind(await feed('CORDELIA', 'C-1', into('D-1')), 'merged');
    expectKind(await removeFeedPatient(db, { identifier: { system: DOMAIN, value: 'D-1' }, actor: 'client/iis-adt' }), 'removed');
    for (const mode of ['database', 'memory'] as const) expect(await offeredAs(db, mode, b, 'BEATRIX')).toBeUndefined();
    // Cordelia taken back out of the removed Daphne: Beatrix, merged into her, stands for her again.
    expectKind(await feed('CORDELIA', 'C-1'), 'unmerged');
    for (const mode of ['database', 'memory'] as const) {
      expect(await offeredAs(db, mode, c, 'CORDELIA')).toBe(c);
      expect(await offeredAs(db, mode, b, 'BEATRIX')).toBe(c);
    }
  });

  it('a partner\'s standing decisions follow a merge: an accepted or rejected patient merged away since is its survivor', async () => {
    const { db } = await setup(store);
    const feed = (given: string, value: string, more: Record<string, unknown> = {}) => feedMohr(db, given, value, more);
    const b = expectKind(await feed('BEATRIX', 'B-1'), 'created').patientId;
    const c = expectKind(await feed('CORDELIA', 'C-1'), 'created').patientId;
    const at = new Date().toISOString();
    await db.query(
      `INSERT INTO match_decision (partner, record_id, decision, patient_id, rejected_ids, decided_by, decided_at)
       VALUES ('clinic-a', 'r-accepted', 'accepted', $1, '{}', 'op', $3), ('clinic-a', 'r-rejected', 'rejected', NULL, ARRAY[$1, $2], 'op', $3)`,
      [b, 'someone-else', at],
    );
    expect((await partnerDecisions(db, 'clinic-a', ['r-accepted'])).get('r-accepted')!.patientId).toBe(b);
    expectKind(await feed('BEATRIX', 'B-1', { active: false, link: [{ other: { reference: `Patient/${c}` }, type: 'replaced-by' }] }), 'merged');
    const after = await partnerDecisions(db, 'clinic-a', ['r-accepted', 'r-rejected']);
    expect(after.get('r-accepted')!.patientId).toBe(c);
    expect([...after.get('r-rejected')!.rejectedIds].sort()).toEqual([b, c, 'someone-else'].sort());
  });

  it('refuses what it cannot do, changing nothing: two Patients with the identifier (412), an unknown survivor, a link to itself, a Patient without the identifier', async () => {
    const { db, dir, roster } = await setup(store);
    const twins = [1, 2].map((n) => ({ ...fhirPatient({ id: `p-twin-${n}`, given: 'Tess', family: 'Twin', birthDate: '2001-01-01' }), identifier: [{ system: DOMAIN, value: 'IHERED-777' }] }));
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'twins.ndjson'), twins));
    const shared = { system: DOMAIN, value: 'IHERED-777' };
    expect(await refused(feedPatient(db, { identifier: shared, resource: mohr('TESS', shared), actor: 'feed' }))).toBe('FEED_MULTIPLE_MATCHES');
    expect(await refused(removeFeedPatient(db, { identifier: shared, actor: 'feed' }))).toBe('FEED_MULTIPLE_MATCHES');

    const maiden = expectKind(await feedPatient(db, { identifier: MAIDEN, resource: mohr('MAIDEN', MAIDEN), actor: 'feed' }), 'created').patientId;
    await roster(CLINIC_B, [MAIDEN_ROW]);
    const group = await getGroup(db, 'clinic-b-panel');
    const audits = (await listAuditEvents(db)).length;
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice({ reference: 'Patient/nobody' }), actor: 'feed' }))).toBe('FEED_SURVIVOR_UNKNOWN');
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice(), actor: 'feed' }))).toBe('FEED_SURVIVOR_UNKNOWN');
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice({ reference: `Patient/${maiden}` }), actor: 'feed' }))).toBe('FEED_INVALID');
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: mergedIntoAlice({ identifier: MAIDEN }), actor: 'feed' }))).toBe('FEED_INVALID');
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: mohr('MAIDEN'), actor: 'feed' }))).toBe('FEED_INVALID');
    expect(await refused(feedPatient(db, { identifier: MAIDEN, resource: { ...mohr('MAIDEN', MAIDEN), birthDate: '1958-13-45' }, actor: 'feed' }))).toBe('FEED_INVALID');
    expect(await getGroup(db, 'clinic-b-panel')).toEqual(group);
    expect(await members(db, 'clinic-b-panel')).toEqual([maiden]);
    expect(await offered(db, 'database', maiden, 'MAIDEN')).toBe(true);
    expect((await listAuditEvents(db)).length).toBe(audits);
  });
});
