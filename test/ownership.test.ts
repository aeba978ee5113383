/**
 * A Group belongs to the partner that created it: another partner's pipeline naming it is refused
 * before anything changes — inline, in serve (at intake, and again at finalise), on a review
 * decision and an export — and only an operator's audited `group move` gives it to another.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { exportGroup } from '../src/export/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { recordRun, runFile } from '../src/run/index.ts';
import { startServe } from '../src/service/index.ts';
import {
  acceptReviewItem,
  createRun,
  getGroup,
  getRun,
  groupHistory,
  groupMembers,
  insertRunRows,
  listAuditEvents,
  listReviewItems,
  moveGroup,
  openStore,
  type Db,
} from '../src/store/index.ts';
import { INDEX, ROSTER } from './fixtures.ts';
import { quietLog, runCli, seedDataDir, STORES, tempDb, tempDir, tempPgDatabase, testPipeline, writeNdjson, writeText } from './helpers.ts';
import { onCleanup, pipelinesDir, REDIS_URL, runState, testPrefix, waitFor } from './daemon-helpers.ts';

const GID = 'test-school-students';
/** Another partner's pipeline that names the school's Group. */
const evil = () => testPipeline({ partner: 'evil-clinic', displayName: 'Evil Clinic', group: { id: GID, name: 'Evil Clinic panel', mode: 'replace' } });
const NOT_YOURS = /GROUP_NOT_YOURS: partner "evil-clinic" may not change Group "test-school-students": it belongs to partner "test-school"; nothing was changed/;

const snapshot = async (db: Db) => {
  const g = (await getGroup(db, GID))!;
  return { members: (await groupMembers(db, GID)).map((m) => m.patientId), version: g.version, name: g.name, mode: g.mode, owner: g.partner, history: await groupHistory(db, GID) };
};

async function setup(store: (typeof STORES)[number]) {
  const { db, dir } = await tempDb(store);
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
  const run = (name: string, text: string, pipeline = testPipeline()) =>
    writeText(path.join(dir, name), text).then((file) => runFile(db, quietLog, { file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') }));
  const first = await run('fall.csv', ROSTER);
  if (first.kind !== 'completed') throw new Error('expected a completed run');
  return { db, dir, run, first };
}

describe.each(STORES)('a Group belongs to its partner (%s)', (store) => {
  it('refuses another partner\'s inline run naming it before a row is read; the Group is unchanged', async () => {
    const s = await setup(store);
    const before = await snapshot(s.db);
    expect(before.members).toHaveLength(6);
    expect((await getGroup(s.db, GID))!.createdByRun).toBe(s.first.run.id);
    await expect(s.run('panel.csv', ROSTER.replace('r1,', 'x1,'), evil())).rejects.toThrow(NOT_YOURS);
    expect(await snapshot(s.db)).toEqual(before);
    const { rows } = await s.db.query<{ id: string; state: string; error: { code: string } }>(`SELECT id, state, error FROM run WHERE partner = 'evil-clinic'`);
    expect(rows).toEqual([{ id: expect.any(String), state: 'failed', error: expect.objectContaining({ code: 'GROUP_NOT_YOURS' }) }]);
    const rowCount = await s.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_row WHERE run_id = $1', [rows[0]!.id]);
    expect(rowCount.rows[0]!.n).toBe(0);
  });

  it('re-checks inside the Group-change transaction: a run that slipped past intake is refused at finalise', async () => {
    const s = await setup(store);
    const before = await snapshot(s.db);
    // An evil-clinic run whose rows are all matched, recorded as a finalise would (the check at
    // intake passed earlier, say, when the Group did not exist yet).
    const runId = 'evil-run';
    await createRun(s.db, { id: runId, partner: 'evil-clinic', fileName: 'p.csv', fileSha256: 'x', receivedAt: new Date().toISOString(), state: 'running', pipeline: evil() });
    await insertRunRows(s.db, runId, [{ index: 0, line: 2, recordId: 'x', outcome: 'matched', patientId: 'p-dup1', candidates: [] }]);
    await expect(recordRun(s.db, { runId, pipeline: evil(), resultPath: path.join(s.dir, 'p.results.csv'), actor: 'serve', at: new Date().toISOString() })).rejects.toThrow(NOT_YOURS);
    expect(await snapshot(s.db)).toEqual(before);
    expect((await getRun(s.db, runId))!.state).toBe('running');
  });

  it('refuses a review decision or a partner\'s export on a Group that is no longer the partner\'s', async () => {
    const s = await setup(store);
    await expect(exportGroup(s.db, { groupId: GID, outRoot: path.join(s.dir, 'ex'), partner: 'evil-clinic' })).rejects.toThrow(NOT_YOURS);
    await s.db.transaction((tx) => moveGroup(tx, { groupId: GID, to: 'test-school-2', by: 'alice', reason: 'district split', at: new Date().toISOString() }));
    const before = await snapshot(s.db);
    const emma = (await listReviewItems(s.db, { state: 'open' })).find((i) => i.recordId === 'r6')!;
    const r = await s.db.transaction((tx) => acceptReviewItem(tx, emma.id, 'p-dup1', 'bob', new Date().toISOString()));
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/GROUP_NOT_YOURS: partner "test-school" may not change Group "test-school-students": it belongs to partner "test-school-2"/) });
    expect(await snapshot(s.db)).toEqual(before);
    expect((await listReviewItems(s.db, { state: 'open' })).map((i) => i.id)).toContain(emma.id);
  });

  it('moves a Group only by an operator\'s command, audited with who, why and the owner before', async () => {
    const s = await setup(store);
    const at = new Date().toISOString();
    await expect(s.db.transaction((tx) => moveGroup(tx, { groupId: 'nope', to: 'evil-clinic', by: 'alice', reason: 'x', at }))).rejects.toThrow(/GROUP_NOT_FOUND/);
    await expect(s.db.transaction((tx) => moveGroup(tx, { groupId: GID, to: 'test-school', by: 'alice', reason: 'x', at }))).rejects.toThrow(/already belongs to partner "test-school"/);
    expect(await s.db.transaction((tx) => moveGroup(tx, { groupId: GID, to: 'evil-clinic', by: 'alice', reason: 'the school is now run by the clinic', at }))).toEqual({ from: 'test-school', to: 'evil-clinic' });
    expect((await listAuditEvents(s.db, { action: 'group.move' })).map((e) => [e.actor, e.entity, e.detail])).toEqual([
      ['alice', `group/${GID}`, { from: 'test-school', to: 'evil-clinic', reason: 'the school is now run by the clinic' }],
    ]);
    // The new owner's files are taken; the old owner's are refused.
    const panel = await s.run('panel.csv', ROSTER.replace('r1,', 'x1,'), evil());
    expect(panel.kind).toBe('completed');
    await expect(s.run('spring.csv', ROSTER.replace('r2,', 'y2,'))).rejects.toThrow(/GROUP_NOT_YOURS: partner "test-school" may not change Group "test-school-students": it belongs to partner "evil-clinic"/);
  });
});

describe('Group ownership from the command line', () => {
  it('match of a foreign pipeline exits 1 naming partner, Group and owner; group move and group show', async () => {
    const dir = await tempDir();
    const data = path.join(dir, 'data');
    const school = await writeText(path.join(dir, 'test-school.yaml'), stringify(testPipeline()));
    const clinic = await writeText(path.join(dir, 'evil-clinic.yaml'), stringify(evil()));
    const roster = await writeText(path.join(dir, 'fall.csv'), ROSTER);
    const panel = await writeText(path.join(dir, 'panel.csv'), ROSTER.replace('r1,', 'x1,'));
    const cli = (...args: string[]) => runCli(['--data-dir', data, ...args]);
    expect((await cli('index', 'load', await writeNdjson(path.join(dir, 'P.ndjson'), INDEX))).code).toBe(0);
    expect((await cli('match', roster, '--partner', 'test-school', '--pipeline', school, '--no-progress')).code).toBe(0);
    const refused = await cli('match', panel, '--partner', 'evil-clinic', '--pipeline', clinic, '--no-progress');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(NOT_YOURS);
    expect(refused.stderr).toContain('field "group.id"');
    const shown = JSON.parse((await cli('group', 'show', GID)).stdout);
    expect(shown.managingEntity).toEqual({ identifier: { system: 'urn:rostermatch:partner', value: 'test-school' }, display: 'test-school' });
    expect(shown.quantity).toBe(6);

    expect((await cli('group', 'move', GID, '--to', 'evil-clinic', '--by', 'alice')).stderr).toMatch(/required option '--reason <text>'/);
    const moved = await cli('group', 'move', GID, '--to', 'evil-clinic', '--by', 'alice', '--reason', 'the clinic took over the school');
    expect(moved.stdout).toContain(`Group ${GID}: owner test-school → evil-clinic; recorded in the audit log`);
    expect(JSON.parse((await cli('group', 'show', GID)).stdout).managingEntity.identifier.value).toBe('evil-clinic');
    expect((await cli('group', 'list')).stdout).toMatch(/^test-school-students\towner evil-clinic\treplace\t6 members/m);
    const db = await openStore({ embeddedDir: path.join(data, 'db') });
    try {
      expect((await listAuditEvents(db, { action: 'group.move' })).map((e) => [e.actor, e.detail])).toEqual([['alice', { from: 'test-school', to: 'evil-clinic', reason: 'the clinic took over the school' }]]);
    } finally {
      await db.close();
    }
    // Eight CLI processes, each booting the embedded store: slow on a shared 2-core machine.
  }, 180_000);
});

describe.each(STORES)('Group ownership in serve (%s)', (store) => {
  it('fails a foreign partner\'s drop at intake with a note, leaves the Group untouched, and warns at start-up of the colliding pipelines', async () => {
    const dir = await tempDir();
    const drop = path.join(dir, 'drop');
    const data = path.join(dir, 'data');
    const pipelines = await pipelinesDir(dir);
    await fs.writeFile(path.join(pipelines, 'evil-clinic.yaml'), stringify(evil()));
    const databaseUrl = store === 'postgres' ? await tempPgDatabase() : undefined;
    if (!databaseUrl) await seedDataDir(data); // a copy of the run's migrated template store
    const seed = await openStore({ databaseUrl, embeddedDir: path.join(data, 'db') });
    await loadIndexFile(seed, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
    await seed.close();
    let logged = '';
    const log = pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _e, cb) => ((logged += chunk.toString()), cb()) }));
    const service = await startServe({ dropRoot: drop, dataDir: data, pipelinesDir: pipelines, redisUrl: REDIS_URL, queuePrefix: testPrefix(), databaseUrl, port: 0, quietMs: 300, scanIntervalMs: 150, reconcileIntervalMs: 1000, log });
    onCleanup(async () => void (await service.close()));
    const warning = logged.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.groupId === GID);
    expect(warning).toMatchObject({ level: 40, files: ['evil-clinic.yaml', 'test-school.yaml'], partners: ['evil-clinic', 'test-school'], owner: null });
    expect(warning!.msg).toMatch(/^pipeline files evil-clinic.yaml, test-school.yaml \(partners evil-clinic, test-school\) name the same Group "test-school-students"/);

    const inbound = (p: string) => fs.mkdir(path.join(drop, p, 'inbound'), { recursive: true }).then(() => path.join(drop, p, 'inbound'));
    await fs.writeFile(path.join(await inbound('test-school'), 'fall.csv'), ROSTER);
    await waitFor('fall.csv completed', async () => (await runState(service.db, 'fall.csv'))?.state === 'completed');
    const before = await snapshot(service.db);
    await fs.writeFile(path.join(await inbound('evil-clinic'), 'panel.csv'), ROSTER.replace('r1,', 'x1,'));
    const note = path.join(drop, 'evil-clinic', 'outbound', 'panel.csv.error.txt');
    await waitFor('the error note', async () => fs.access(note).then(() => true, () => false));
    const failed = (await runState(service.db, 'panel.csv'))!;
    const run = (await getRun(service.db, failed.id))!;
    expect(run).toMatchObject({ state: 'failed', rowCount: null, error: { code: 'GROUP_NOT_YOURS' } });
    expect(run.error!.message).toMatch(NOT_YOURS);
    // The partner hears that it is not theirs, not whose it is.
    const text = await fs.readFile(note, 'utf8');
    expect(text).toMatch(/GROUP_NOT_YOURS: the Group "test-school-students" your pipeline names belongs to another partner; nothing was changed/);
    expect(text).not.toContain('partner "test-school"');
    expect(await snapshot(service.db)).toEqual(before);
    const input = await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_input WHERE run_id = $1', [failed.id]);
    expect(input.rows[0]!.n).toBe(0);
    expect(await fs.readdir(path.join(data, 'quarantine', 'evil-clinic'))).toHaveLength(1);
  });
});
