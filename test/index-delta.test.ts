/**
 * The identity feed's batch form (issue 14): a nightly NDJSON delta through `index load` merges
 * (a replaced-by link, the survivor by identifier), unmerges (the link dropped) and removes (the
 * removal mark) as the live feed does — Group moves, history, matching — while ordinary lines take
 * the bulk path; a bad delta line is reported and the rest applies.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockingKeys } from '../src/match/index.ts';
import { loadIndexFile, LOAD_REMOVE_REASON, REMOVED_TAG } from '../src/patient-index/index.ts';
import { candidatesFor, runFile, type CandidateMode } from '../src/run/index.ts';
import { groupHistory, groupMembers, listAuditEvents, patientsByBlockKeys, patientsByIds, type Db } from '../src/store/index.ts';
import { HEADER, INDEX } from './fixtures.ts';
import { quietLog, STORES, tempDb, testPipeline, writeNdjson, writeText } from './helpers.ts';

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

/** Whether the blocking table or the warm in-memory copy offers `id` for the person of index Patient `id`. */
async function offered(db: Db, mode: CandidateMode, id: string): Promise<boolean> {
  const p = (await patientsByIds(db, [id])).get(id)!;
  const keys = blockingKeys(p.person, []);
  const found = mode === 'database' ? await patientsByBlockKeys(db, keys) : await (await candidatesFor(db, mode)).source.byKeys(keys);
  return [...found.values()].some((list) => list.some((x) => x.id === id));
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
    const [mia, jose] = await roster([ROWS[1]!.replace('r4', 'r4b'), ROWS[2]!.replace('r5', 'r5b')], 'memory');
    expect(mia!.patient_id).not.toBe('p-mia');
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
});
