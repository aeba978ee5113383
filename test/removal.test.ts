/**
 * Removal by file (issue 12): a `remove` pipeline takes its matched people out of the Group, and
 * an append pipeline's action column says per row add or remove. Only matched rows change the
 * Group; a review decision follows the row's action; every removal is in the Group's history with
 * the run; the same file again changes nothing. Real stores, real files, the real serve.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { parsePipeline, type Pipeline } from '../src/pipeline/index.ts';
import { confirmHeldRun, discardHeldRun, runFile, type RunOutput } from '../src/run/index.ts';
import { startServe } from '../src/service/index.ts';
import { acceptReviewItem, getGroup, groupHistory, groupMembers, listAuditEvents, listReviewItems, openStore, type Db } from '../src/store/index.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { quietLog, seedDataDir, STORES, tempDb, tempDir, tempPgDatabase, testPipeline, writeNdjson, writeText } from './helpers.ts';
import { onCleanup, pipelinesDir, REDIS_URL, runState, testPrefix, waitFor } from './daemon-helpers.ts';

const GID = 'test-school-students';
const FULL_GROUP = ['p-ava', 'p-jjr', 'p-jose', 'p-liam', 'p-mia', 'p-noah'];
const COLUMNS = { recordId: ['id'], given: ['first'], family: ['last'], middle: ['middle'], birthDate: ['dob'], sex: ['sex'], street: ['street'], zip: ['zip'], phone: ['phone'] };

const removePipeline = (group: Record<string, unknown> = {}) => testPipeline({ group: { id: GID, name: 'Test School students', mode: 'remove', ...group } });
const actionPipeline = (group: Record<string, unknown> = {}) =>
  testPipeline({ columns: { ...COLUMNS, action: ['action', 'Change'] }, group: { id: GID, name: 'Test School students', mode: 'append', ...group } });

const ACTION_HEADER = `${HEADER},action`;
// Rows of the fixtures' people: each matches its patient (r11 is only `possible` for p-ava).
const ROW = {
  ava: 'r1,Ava,Martinez,,2015-03-14,F,12 Oak St,62701,',
  liam: 'r2,Liam,Wilson,,07/02/2016,M,40 Elm Ave,62702,(217) 555-0200',
  jjr: 'r3,James,Carter Jr.,,2010-05-05,M,9 Pine Road,,',
  mia: 'r4,Mia,OBRIEN,,2014-11-30,F,,,',
  jose: 'r5,Jose,Nunez,,2013-02-03,M,,,',
  zoe: 'r7,Zoe,Quintanilla-Ashworth,,2015-01-01,F,,,',
  avery: 'r11,Avery,Martinez,,2015-03-14,F,,,',
  noah: 'r12,Noah,Wilson,,2016-07-02,M,40 Elm Ave,62702,',
  jsr: 'r20,James,Carter,,1980-01-20,M,9 Pine Rd,,2175550299',
};

async function setup(store: (typeof STORES)[number]) {
  const { db, dir } = await tempDb(store);
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
  const out = path.join(dir, 'out');
  const run = (name: string, text: string, pipeline: Pipeline, force = false) =>
    writeText(path.join(dir, name), text).then((file) => runFile(db, quietLog, { file, pipeline, outDir: out, exportsDir: path.join(dir, 'ex'), force }));
  // The Group as the school's whole roster made it: six members.
  const first = await run('fall.csv', ROSTER, testPipeline());
  if (first.kind !== 'completed') throw new Error('expected a completed run');
  expect(await members(db)).toEqual(FULL_GROUP);
  return { db, dir, out, run, exportsDir: path.join(dir, 'ex') };
}

const members = async (db: Db) => (await groupMembers(db, GID)).map((m) => m.patientId);
const runEvents = async (db: Db, runId: string) =>
  (await groupHistory(db, GID))
    .filter((e) => e.runId === runId)
    .map((e) => [e.action, e.patientId, e.actor])
    .sort();
const readResults = async (file: string) => parse(await fs.readFile(file), { columns: true }) as Record<string, string>[];
const byRecord = (rows: Record<string, string>[]) => Object.fromEntries(rows.map((r) => [r.record_id, r]));
const readJson = async (f: string) => JSON.parse(await fs.readFile(f, 'utf8'));

function completed(out: RunOutput): Extract<RunOutput, { kind: 'completed' }> {
  if (out.kind !== 'completed') throw new Error(`expected a completed run, got ${out.kind}`);
  return out;
}

describe.each(STORES)('a remove file (%s)', (store) => {
  it('takes its matched people out of the Group, each removal in the history with the run; nobody is added', async () => {
    const s = await setup(store);
    const out = completed(await s.run('leavers.csv', [HEADER, ROW.ava, ROW.jose, ROW.zoe, ROW.jsr].join('\n'), removePipeline()));
    expect(await members(s.db)).toEqual(['p-jjr', 'p-liam', 'p-mia', 'p-noah']);
    expect(await runEvents(s.db, out.run.id)).toEqual([
      ['removed', 'p-ava', 'cli'],
      ['removed', 'p-jose', 'cli'],
    ]);
    expect((await getGroup(s.db, GID))!.mode).toBe('remove');
    expect(out.summary.counts).toMatchObject({ matched: 3, no_match: 1 });
    expect(out.summary.group).toMatchObject({
      mode: 'remove',
      sizeBefore: 6,
      sizeAfter: 4,
      added: 0,
      removed: 2,
      actions: { add: 0, remove: 4 },
      rows: { removed: 2, not_member: 1, added: 0, already_member: 0, conflict: 0, review: 0 },
    });
    expect(await readJson(out.summaryPath)).toMatchObject({ group: { removed: 2, rows: { removed: 2, not_member: 1 } } });
    // The result file says per row what the row asked and what it did.
    const rows = await readResults(out.resultPath);
    expect(Object.keys(rows[0]!)).toEqual(['line', 'record_id', 'outcome', 'patient_id', 'score', 'reasons', 'candidates', 'action', 'group_change']);
    expect(rows.map((r) => [r.line, r.record_id, r.outcome, r.patient_id, r.action, r.group_change])).toEqual([
      ['2', 'r1', 'matched', 'p-ava', 'remove', 'removed'],
      ['3', 'r5', 'matched', 'p-jose', 'remove', 'removed'],
      ['4', 'r7', 'no_match', '', 'remove', ''],
      ['5', 'r20', 'matched', 'p-jsr', 'remove', 'not_member'],
    ]);
    // The export follows the Group.
    const manifest = await readJson(path.join(out.export!.dir, 'manifest.json'));
    expect(manifest.output.length).toBeGreaterThan(0);
  });

  it('the same file again records no new events and keeps the version', async () => {
    const s = await setup(store);
    const text = [HEADER, ROW.ava, ROW.mia].join('\n');
    const first = completed(await s.run('leavers.csv', text, removePipeline()));
    expect(first.summary.group).toMatchObject({ removed: 2 });
    const history = (await groupHistory(s.db, GID)).length;
    const version = (await getGroup(s.db, GID))!.version;
    // The same bytes are the same run ...
    expect((await s.run('leavers.csv', text, removePipeline())).kind).toBe('duplicate');
    // ... and processed again on purpose they change nothing: they are no longer members.
    const again = completed(await s.run('leavers.csv', text, removePipeline(), true));
    expect(again.run.id).not.toBe(first.run.id);
    expect(again.summary.group).toMatchObject({ sizeBefore: 4, sizeAfter: 4, added: 0, removed: 0, rows: { not_member: 2, removed: 0 } });
    expect((await groupHistory(s.db, GID)).length).toBe(history);
    expect((await getGroup(s.db, GID))!.version).toBe(version);
    expect((await readResults(again.resultPath)).map((r) => r.group_change)).toEqual(['not_member', 'not_member']);
  });

  it('a remove row that is only possible changes nothing until a reviewer accepts it; then that patient leaves', async () => {
    const s = await setup(store);
    const out = completed(await s.run('leaver.csv', [HEADER, ROW.avery].join('\n'), removePipeline()));
    expect(out.summary.counts).toMatchObject({ possible: 1, matched: 0 });
    expect(out.summary.group).toMatchObject({ added: 0, removed: 0, rows: { review: 1 } });
    expect(await members(s.db)).toEqual(FULL_GROUP);
    expect(await runEvents(s.db, out.run.id)).toEqual([]);
    const [row] = await readResults(out.resultPath);
    expect(row).toMatchObject({ outcome: 'possible', action: 'remove', group_change: 'review' });
    const item = (await listReviewItems(s.db, { state: 'open' })).find((i) => i.runId === out.run.id)!;
    expect(item).toMatchObject({ recordId: 'r11', action: 'remove' });
    expect(item.candidates).toContain('p-ava');
    const at = new Date().toISOString();
    expect(await s.db.transaction((tx) => acceptReviewItem(tx, item.id, 'p-ava', 'alice', at))).toMatchObject({ ok: true });
    expect(await members(s.db)).toEqual(FULL_GROUP.filter((p) => p !== 'p-ava'));
    expect(await runEvents(s.db, out.run.id)).toEqual([['removed', 'p-ava', 'review:alice']]);
    expect((await listAuditEvents(s.db, { action: 'review.accept' })).map((e) => e.detail)).toEqual([{ patientId: 'p-ava', runId: out.run.id, action: 'remove' }]);
    // The decision stands for the record: the same record in a later remove file is matched to
    // her straight away, and she is not a member any more.
    const later = completed(await s.run('leaver-again.csv', [HEADER, ROW.avery, ''].join('\n'), removePipeline()));
    expect(later.summary.counts).toMatchObject({ matched: 1 });
    expect((await readResults(later.resultPath))[0]).toMatchObject({ patient_id: 'p-ava', group_change: 'not_member' });
  });

  it('accepting an add row of an action file adds, as before; accepting a remove row of someone not a member changes nothing', async () => {
    const s = await setup(store);
    const out = completed(await s.run('changes.csv', [ACTION_HEADER, `${ROW.avery},add`].join('\n'), actionPipeline()));
    const item = (await listReviewItems(s.db, { state: 'open' })).find((i) => i.runId === out.run.id)!;
    expect(item.action).toBe('add');
    // p-ava is a member already: accepting adds nothing new.
    expect(await s.db.transaction((tx) => acceptReviewItem(tx, item.id, 'p-ava', 'alice', new Date().toISOString()))).toMatchObject({ ok: true });
    expect(await members(s.db)).toEqual(FULL_GROUP);
    const gone = completed(await s.run('gone.csv', [HEADER, ROW.ava].join('\n'), removePipeline()));
    expect(await runEvents(s.db, gone.run.id)).toEqual([['removed', 'p-ava', 'cli']]);
    // A remove row for Avery (not p-ava's record any more: a new record id) goes to review; accepting it removes no one.
    const again = completed(await s.run('again.csv', [HEADER, ROW.avery.replace('r11', 'r30')].join('\n'), removePipeline()));
    const second = (await listReviewItems(s.db, { state: 'open' })).find((i) => i.runId === again.run.id)!;
    const version = (await getGroup(s.db, GID))!.version;
    expect(await s.db.transaction((tx) => acceptReviewItem(tx, second.id, 'p-ava', 'bob', new Date().toISOString()))).toMatchObject({ ok: true });
    expect((await getGroup(s.db, GID))!.version).toBe(version);
    expect(await runEvents(s.db, again.run.id)).toEqual([]);
  });

  it('one that would remove most of the Group is held like a partial replace file; confirm applies it, discard applies nothing', async () => {
    const s = await setup(store);
    const text = [HEADER, ROW.ava, ROW.liam, ROW.jjr, ROW.mia, ROW.jose].join('\n');
    const held = await s.run('everyone.csv', text, removePipeline());
    if (held.kind !== 'held') throw new Error(`expected a held run, got ${held.kind}`);
    expect(held.hold).toMatchObject({ before: 6, wouldAdd: 0, wouldRemove: 5 });
    expect(await members(s.db)).toEqual(FULL_GROUP);
    expect((await readResults(held.resultPath)).map((r) => r.group_change)).toEqual(['held', 'held', 'held', 'held', 'held']);
    const note = await fs.readFile(path.join(s.out, 'everyone.csv.held.txt'), 'utf8');
    expect(note).toMatch(/would remove 5 of the 6 people/);
    expect(note).toMatch(/If not all of these people are leaving, send a file with only those who are/);
    const r = await confirmHeldRun(s.db, { runId: held.run.id, by: 'alice', exportsDir: s.exportsDir });
    expect(r.kind === 'applied' && r.change).toEqual({ before: 6, after: 1, added: 0, removed: 5 });
    expect(await members(s.db)).toEqual(['p-noah']);
    expect((await runEvents(s.db, held.run.id)).every(([action, , actor]) => action === 'removed' && actor === 'confirm:alice')).toBe(true);
    expect((await readResults(held.resultPath)).map((r) => r.group_change)).toEqual(['removed', 'removed', 'removed', 'removed', 'removed']);
    expect(await fs.readFile(path.join(s.out, 'everyone.csv.confirmed.txt'), 'utf8')).toMatch(/changed as this file asked \(added 0, removed 5\)/);

    // Discarded: the Group stays, and the rows say the change was not applied.
    const s2 = await setup(store);
    const held2 = await s2.run('everyone.csv', text, removePipeline());
    if (held2.kind !== 'held') throw new Error('expected a held run');
    await discardHeldRun(s2.db, { runId: held2.run.id, by: 'alice', reason: 'whole roster sent to the removal pipeline' });
    expect(await members(s2.db)).toEqual(FULL_GROUP);
    expect((await readResults(held2.resultPath)).map((r) => r.group_change)).toEqual(['not_applied', 'not_applied', 'not_applied', 'not_applied', 'not_applied']);
    expect((await readJson(held2.summaryPath)).group.rows).toMatchObject({ not_applied: 5 });
    // A lenient pipeline applies it at once.
    const s3 = await setup(store);
    expect((await s3.run('everyone.csv', text, removePipeline({ maxRemoveShare: 1 }))).kind).toBe('completed');
    expect(await members(s3.db)).toEqual(['p-noah']);
  });
});

describe.each(STORES)('an action column (%s)', (store) => {
  it('adds rows marked add and removes rows marked remove in one file; an unknown or blank action is an invalid row naming line and field', async () => {
    const s = await setup(store);
    const text = [
      ACTION_HEADER,
      `${ROW.ava},remove`,
      `${ROW.liam},A`, // already a member
      `${ROW.jsr}, add `, // joins
      `${ROW.mia},D`,
      `${ROW.jose},Delete`,
      `${ROW.jjr},update`, // not an action we take: invalid, p-jjr stays
      `${ROW.noah},`, // blank: invalid, p-noah stays
      `${ROW.zoe},remove`,
    ].join('\r\n');
    const out = completed(await s.run('changes.csv', text, actionPipeline()));
    expect(await members(s.db)).toEqual(['p-jjr', 'p-jsr', 'p-liam', 'p-noah']);
    expect(await runEvents(s.db, out.run.id)).toEqual([
      ['added', 'p-jsr', 'cli'],
      ['removed', 'p-ava', 'cli'],
      ['removed', 'p-jose', 'cli'],
      ['removed', 'p-mia', 'cli'],
    ]);
    expect(out.summary.counts).toMatchObject({ matched: 5, invalid: 2, no_match: 1 });
    expect(out.summary.group).toMatchObject({
      mode: 'append',
      sizeBefore: 6,
      sizeAfter: 4,
      added: 1,
      removed: 3,
      actions: { add: 2, remove: 4 },
      rows: { added: 1, removed: 3, already_member: 1, not_member: 0 },
    });
    const rows = byRecord(await readResults(out.resultPath));
    expect(rows.r1).toMatchObject({ line: '2', outcome: 'matched', action: 'remove', group_change: 'removed' });
    expect(rows.r2).toMatchObject({ action: 'add', group_change: 'already_member' });
    expect(rows.r20).toMatchObject({ action: 'add', group_change: 'added' });
    expect(rows.r4).toMatchObject({ action: 'remove', group_change: 'removed' });
    expect(rows.r5).toMatchObject({ action: 'remove', group_change: 'removed' });
    expect(rows.r3).toMatchObject({ line: '7', outcome: 'invalid', patient_id: '', action: '', group_change: '' });
    expect(rows.r3!.reasons).toBe('action: not add, A, remove, delete or D; the row changes nothing');
    expect(rows.r12).toMatchObject({ line: '8', outcome: 'invalid', action: '', group_change: '' });
    expect(rows.r12!.reasons).toMatch(/^action: blank; say add \(or A\)/);
    expect(rows.r7).toMatchObject({ outcome: 'no_match', action: 'remove', group_change: '' });
    // The cell itself is never echoed in a reason.
    expect(rows.r3!.reasons).not.toMatch(/update/i);
  });

  it('a patient one row adds and another removes is left as is, and both rows say conflict', async () => {
    const s = await setup(store);
    const text = [ACTION_HEADER, `${ROW.ava},add`, `${ROW.ava.replace('r1,', 'r1b,')},remove`, `${ROW.jsr},add`, `${ROW.jsr.replace('r20,', 'r21,')},remove`].join('\n');
    const out = completed(await s.run('both.csv', text, actionPipeline()));
    expect(await members(s.db)).toEqual(FULL_GROUP);
    expect(await runEvents(s.db, out.run.id)).toEqual([]);
    expect((await readResults(out.resultPath)).map((r) => [r.record_id, r.group_change])).toEqual([
      ['r1', 'conflict'],
      ['r1b', 'conflict'],
      ['r20', 'conflict'],
      ['r21', 'conflict'],
    ]);
    expect(out.summary.group).toMatchObject({ added: 0, removed: 0, rows: { conflict: 4 } });
  });

  it('a file without the action column its pipeline names is refused whole, and the Group is untouched', async () => {
    const s = await setup(store);
    await expect(s.run('no-action.csv', [HEADER, ROW.ava].join('\n'), actionPipeline())).rejects.toThrow(
      /FILE_MISSING_COLUMN: no column for "action" \(expected a header "action" or "Change"\)/,
    );
    expect(await members(s.db)).toEqual(FULL_GROUP);
  });

  it('a plain append file (no action column) still only adds, and its result file is as before', async () => {
    const s = await setup(store);
    const out = completed(await s.run('more.csv', [HEADER, ROW.jsr].join('\n'), testPipeline({ group: { id: GID, name: 'Test School students', mode: 'append' } })));
    expect(await members(s.db)).toEqual([...FULL_GROUP, 'p-jsr'].sort());
    const rows = await readResults(out.resultPath);
    expect(Object.keys(rows[0]!)).toEqual(['line', 'record_id', 'outcome', 'patient_id', 'score', 'reasons', 'candidates']);
    expect(out.summary.group).not.toHaveProperty('rows');
    expect(out.summary.group).not.toHaveProperty('actions');
  });
});

describe('pipeline keys for removal', () => {
  const text = (columns: Record<string, unknown>, group: Record<string, unknown>) =>
    JSON.stringify({ ...JSON.parse(JSON.stringify(testPipeline())), columns: { ...COLUMNS, ...columns }, group: { id: GID, name: 'x', ...group } });

  it('takes group.mode remove, and an action column with append', () => {
    expect(parsePipeline(text({}, { mode: 'remove' }), 'p.yaml').group.mode).toBe('remove');
    expect(parsePipeline(text({ action: 'Action' }, { mode: 'append' }), 'p.yaml').columns.action).toEqual(['Action']);
    expect(parsePipeline(text({ action: { column: 10 } }, { mode: 'append' }), 'p.yaml').columns.action).toEqual({ column: 10 });
  });

  it('refuses an action column with replace or remove, and modes it does not know, naming the key', () => {
    expect(() => parsePipeline(text({ action: 'Action' }, { mode: 'replace' }), 'p.yaml')).toThrow(
      /PIPELINE_INVALID: columns\.action: an action column needs group\.mode: append \(a replace file is the whole Group.*\(p\.yaml, field "columns\.action"\)/,
    );
    expect(() => parsePipeline(text({ action: 'Action' }, { mode: 'remove' }), 'p.yaml')).toThrow(/PIPELINE_INVALID: columns\.action: .*in a remove file every row is a removal/);
    expect(() => parsePipeline(text({}, { mode: 'delete' }), 'p.yaml')).toThrow(/PIPELINE_INVALID: group\.mode: /);
  });
});

describe.each(STORES)('removal by file in serve (%s)', (store) => {
  it('a queued action file adds and removes through the same record step, with the run in the history', async () => {
    const dir = await tempDir();
    const drop = path.join(dir, 'drop');
    const data = path.join(dir, 'data');
    const databaseUrl = store === 'postgres' ? await tempPgDatabase() : undefined;
    if (!databaseUrl) await seedDataDir(data); // a copy of the run's migrated template store
    const seed = await openStore({ databaseUrl, embeddedDir: path.join(data, 'db') });
    await loadIndexFile(seed, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
    // The Group as the whole roster made it, inline; the partner's drops then carry an action column.
    const fall = await writeText(path.join(dir, 'fall.csv'), ROSTER);
    completed(await runFile(seed, quietLog, { file: fall, pipeline: testPipeline(), outDir: path.join(dir, 'out'), exportsDir: path.join(data, 'exports') }));
    await seed.close();
    const pipelines = await pipelinesDir(dir);
    await fs.writeFile(path.join(pipelines, 'test-school.yaml'), stringify(actionPipeline()));
    const service = await startServe({ dropRoot: drop, dataDir: data, pipelinesDir: pipelines, redisUrl: REDIS_URL, queuePrefix: testPrefix(), databaseUrl, port: 0, quietMs: 300, scanIntervalMs: 150, reconcileIntervalMs: 1000, log: quietLog });
    onCleanup(async () => void (await service.close()));
    const inbound = path.join(drop, 'test-school', 'inbound');
    const outbound = path.join(drop, 'test-school', 'outbound');
    await fs.mkdir(inbound, { recursive: true });
    await fs.writeFile(path.join(inbound, 'changes.csv'), [ACTION_HEADER, `${ROW.ava},D`, `${ROW.jsr},A`, `${ROW.mia},remove`, `${ROW.liam},x`].join('\n'));
    const run = await waitFor('changes.csv completed', async () => {
      const r = await runState(service.db, 'changes.csv');
      return r?.state === 'completed' && (await fs.access(path.join(outbound, 'changes.summary.json')).then(() => true, () => false)) && r;
    });
    expect(await members(service.db)).toEqual(['p-jjr', 'p-jose', 'p-jsr', 'p-liam', 'p-noah']);
    expect(await runEvents(service.db, run.id)).toEqual([
      ['added', 'p-jsr', 'serve'],
      ['removed', 'p-ava', 'serve'],
      ['removed', 'p-mia', 'serve'],
    ]);
    const rows = await readResults(path.join(outbound, 'changes.results.csv'));
    expect(rows.map((r) => [r.record_id, r.outcome, r.action, r.group_change])).toEqual([
      ['r1', 'matched', 'remove', 'removed'],
      ['r20', 'matched', 'add', 'added'],
      ['r4', 'matched', 'remove', 'removed'],
      ['r2', 'invalid', '', ''],
    ]);
    expect(rows[3]!.reasons).toMatch(/^action: not add/);
    expect((await readJson(path.join(outbound, 'changes.summary.json'))).group).toMatchObject({ added: 1, removed: 2, actions: { add: 1, remove: 2 } });
  });
});
