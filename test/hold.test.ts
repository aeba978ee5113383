/**
 * The safety valve of replace files: a file that would remove more than the pipeline's share of
 * the Group is held, with the numbers, until an operator confirms or discards it. Real stores,
 * real files, the real CLI and the real serve.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { parsePipeline } from '../src/pipeline/index.ts';
import { confirmHeldRun, discardHeldRun, runFile } from '../src/run/index.ts';
import { startServe } from '../src/service/index.ts';
import { acceptReviewItem, getGroup, getRun, groupHistory, groupMembers, listAuditEvents, listReviewItems, openStore, type Db } from '../src/store/index.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { quietLog, runCli, seedDataDir, STORES, tempDb, tempDir, tempPgDatabase, testPipeline, writeNdjson, writeText } from './helpers.ts';
import { onCleanup, pipelinesDir, REDIS_URL, runState, testPrefix, waitFor } from './daemon-helpers.ts';

/** One class of the school: Ava matched, Avery for review; the other five children are missing. */
const PARTIAL = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,12 Oak St,62701,', 'r11,Avery,Martinez,,2015-03-14,F,,,'].join('\n');
const FULL_GROUP = ['p-ava', 'p-jjr', 'p-jose', 'p-liam', 'p-mia', 'p-noah'];
const GID = 'test-school-students';

async function setup(store: (typeof STORES)[number]) {
  const { db, dir } = await tempDb(store);
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
  const run = (name: string, text: string, pipeline = testPipeline()) =>
    writeText(path.join(dir, name), text).then((file) => runFile(db, quietLog, { file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') }));
  const first = await run('fall.csv', ROSTER);
  if (first.kind !== 'completed') throw new Error('expected a completed run');
  return { db, dir, run, first, out: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') };
}

const snapshot = async (db: Db) => ({
  members: (await groupMembers(db, GID)).map((m) => m.patientId),
  version: (await getGroup(db, GID))!.version,
  history: (await groupHistory(db, GID)).length,
});
const readJson = async (f: string) => JSON.parse(await fs.readFile(f, 'utf8'));
const exists = (f: string) => fs.access(f).then(() => true, () => false);

describe.each(STORES)('a replace file that would empty its Group (%s)', (store) => {
  it('is held with the numbers: result file written, summary and note say it waits, the Group untouched', async () => {
    const s = await setup(store);
    const before = await snapshot(s.db);
    const held = await s.run('class-3b.csv', PARTIAL);
    if (held.kind !== 'held') throw new Error(`expected a held run, got ${held.kind}`);
    expect(held.hold).toMatchObject({ groupId: GID, before: 6, wouldAdd: 0, wouldRemove: 5, maxRemoveShare: 0.2 });
    expect(held.hold.share).toBeCloseTo(5 / 6);
    expect(await snapshot(s.db)).toEqual(before);
    expect(before.members).toEqual(FULL_GROUP);

    const run = (await getRun(s.db, held.run.id))!;
    expect(run).toMatchObject({ state: 'held', finishedAt: null, groupId: GID, counts: { matched: 1, possible: 1 } });
    expect(await exists(held.resultPath)).toBe(true);
    const summary = await readJson(held.summaryPath);
    expect(summary.group).toMatchObject({ id: GID, sizeBefore: 6, sizeAfter: 6, added: 0, removed: 0, held: { wouldAdd: 0, wouldRemove: 5, maxRemoveShare: 0.2 } });
    expect(summary.group.held.status).toMatch(/waiting for the IIS's confirmation/);
    expect(summary.export).toBeNull();
    const note = await fs.readFile(path.join(s.out, 'class-3b.csv.held.txt'), 'utf8');
    expect(note).toMatch(/would remove 5 of the 6 people in Group test-school-students \(83\.3 %\) and add 0/);
    expect(note).toMatch(/Group is unchanged until the IIS confirms/);
    // Its possible row is not queued: no review decision can bring the change in piecemeal, and
    // the open item of the earlier file stays open.
    const items = await listReviewItems(s.db, {});
    expect(items.filter((i) => i.runId === held.run.id)).toEqual([]);
    expect(items.filter((i) => i.recordId === 'r11').map((i) => i.state)).toEqual(['open']);
  });

  it('a confirmation applies exactly that change, with history naming the operator, then exports', async () => {
    const s = await setup(store);
    const held = await s.run('class-3b.csv', PARTIAL);
    if (held.kind !== 'held') throw new Error('expected a held run');
    const r = await confirmHeldRun(s.db, { runId: held.run.id.slice(0, 8), by: 'alice', exportsDir: s.exportsDir });
    if (r.kind !== 'applied') throw new Error('expected the change applied');
    expect(r.change).toEqual({ before: 6, after: 1, added: 0, removed: 5 });
    expect((await groupMembers(s.db, GID)).map((m) => m.patientId)).toEqual(['p-ava']);
    const removed = (await groupHistory(s.db, GID)).filter((e) => e.action === 'removed');
    expect(removed.map((e) => [e.patientId, e.actor, e.runId]).sort()).toEqual(
      ['p-jjr', 'p-jose', 'p-liam', 'p-mia', 'p-noah'].map((p) => [p, 'confirm:alice', held.run.id]),
    );
    const run = (await getRun(s.db, held.run.id))!;
    expect(run.state).toBe('completed');
    expect(run.hold?.decision).toMatchObject({ action: 'confirmed', by: 'alice' });
    expect(run.timeline.map((t) => t.state)).toEqual(['running', 'held', 'completed']);
    expect((await listAuditEvents(s.db, { action: 'run.confirm' })).map((e) => [e.actor, e.entity, e.detail])).toEqual([
      ['alice', `run/${held.run.id}`, { groupId: GID, before: 6, after: 1, added: 0, removed: 5 }],
    ]);
    // Now the run's review items are queued (superseding the earlier file's r11), and the outputs say it was applied.
    expect((await listReviewItems(s.db, { state: 'open' })).map((i) => [i.runId, i.recordId])).toEqual([
      [s.first.run.id, 'r6'],
      [s.first.run.id, 'r10'],
      [held.run.id, 'r11'],
    ]);
    const summary = await readJson(held.summaryPath);
    expect(summary.group).toMatchObject({ sizeBefore: 6, sizeAfter: 1, removed: 5, held: { status: expect.stringMatching(/^confirmed by the IIS/) } });
    expect(await exists(path.join(summary.export.dir, 'manifest.json'))).toBe(true);
    expect(await exists(path.join(s.out, 'class-3b.csv.held.txt'))).toBe(false);
    expect(await fs.readFile(path.join(s.out, 'class-3b.csv.confirmed.txt'), 'utf8')).toMatch(/removed 5/);
    // Once decided, it cannot be decided again.
    await expect(confirmHeldRun(s.db, { runId: held.run.id, by: 'bob', exportsDir: s.exportsDir })).rejects.toThrow(/RUN_NOT_HELD: run .* is completed \(confirmed by alice/);
  });

  it('a discard closes the run and leaves the Group as it was', async () => {
    const s = await setup(store);
    const held = await s.run('class-3b.csv', PARTIAL);
    if (held.kind !== 'held') throw new Error('expected a held run');
    const before = await snapshot(s.db);
    await expect(discardHeldRun(s.db, { runId: held.run.id, by: 'alice', reason: ' ' })).rejects.toThrow(/USAGE: say why/);
    await discardHeldRun(s.db, { runId: held.run.id, by: 'alice', reason: 'partial file; asked for the whole roster' });
    expect(await snapshot(s.db)).toEqual(before);
    const run = (await getRun(s.db, held.run.id))!;
    expect(run.state).toBe('discarded');
    expect(run.finishedAt).not.toBeNull();
    expect((await listAuditEvents(s.db, { action: 'run.discard' })).map((e) => [e.actor, e.detail?.reason])).toEqual([['alice', 'partial file; asked for the whole roster']]);
    expect((await readJson(held.summaryPath)).group.held.status).toMatch(/^discarded by the IIS/);
    const note = await fs.readFile(path.join(s.out, 'class-3b.csv.discarded.txt'), 'utf8');
    expect(note).toMatch(/did not apply/);
    expect(note).not.toContain('alice');
    await expect(confirmHeldRun(s.db, { runId: held.run.id, by: 'bob', exportsDir: s.exportsDir })).rejects.toThrow(/RUN_NOT_HELD: .*discarded/);
    // The same bytes again are the same (discarded) run, not a second chance to slip through.
    expect((await s.run('class-3b.csv', PARTIAL)).kind).toBe('duplicate');
  });

  it('a confirmation after the Group changed applies nothing and holds the run again with the new numbers', async () => {
    const s = await setup(store);
    const held = await s.run('class-3b.csv', PARTIAL);
    if (held.kind !== 'held') throw new Error('expected a held run');
    // Meanwhile a review decision on the earlier file adds Emma: 7 members.
    const emma = (await listReviewItems(s.db, { state: 'open' })).find((i) => i.recordId === 'r6')!;
    expect(await s.db.transaction((tx) => acceptReviewItem(tx, emma.id, 'p-dup1', 'bob', new Date().toISOString()))).toMatchObject({ ok: true });
    const changed = await snapshot(s.db);
    const again = await confirmHeldRun(s.db, { runId: held.run.id, by: 'alice', exportsDir: s.exportsDir });
    if (again.kind !== 'held-again') throw new Error('expected the run held again');
    expect(again.hold).toMatchObject({ before: 7, wouldAdd: 0, wouldRemove: 6, groupVersion: changed.version });
    expect(await snapshot(s.db)).toEqual(changed);
    expect((await getRun(s.db, held.run.id))!.state).toBe('held');
    expect(await fs.readFile(path.join(s.out, 'class-3b.csv.held.txt'), 'utf8')).toMatch(/would remove 6 of the 7 people/);
    // The numbers shown now are the ones applied.
    const r = await confirmHeldRun(s.db, { runId: held.run.id, by: 'alice', exportsDir: s.exportsDir });
    expect(r.kind === 'applied' && r.change).toEqual({ before: 7, after: 1, added: 0, removed: 6 });
  });

  it('applies as before a replace file below the share, or below the floor of 5 removals', async () => {
    const s = await setup(store);
    const lenient = testPipeline({ group: { id: GID, name: 'Test School students', mode: 'replace', maxRemoveShare: 0.9 } });
    const below = await s.run('class-3b.csv', PARTIAL, lenient); // 5 of 6 = 83 % ≤ 90 %
    expect(below.kind).toBe('completed');
    expect((await groupMembers(s.db, GID)).map((m) => m.patientId)).toEqual(['p-ava']);
    // Back to six; then a file without four of them: 67 % of the Group, but fewer than 5 removals.
    expect((await s.run('all.csv', ROSTER.replace('r1,', 'r1x,'))).kind).toBe('completed');
    const few = await s.run('four-left.csv', [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,Liam,Wilson,,2016-07-02,M,,,'].join('\n'));
    if (few.kind !== 'completed') throw new Error('expected a completed run');
    expect(few.summary.group).toMatchObject({ sizeBefore: 6, sizeAfter: 2, removed: 4 });
  });
});

describe('group.maxRemoveShare', () => {
  it('is a share between 0 and 1, defaulting to 0.2', () => {
    expect(testPipeline().group.maxRemoveShare).toBe(0.2);
    const text = (v: unknown) => JSON.stringify({ ...JSON.parse(JSON.stringify(testPipeline())), group: { id: GID, name: 'x', mode: 'replace', maxRemoveShare: v } });
    expect(() => parsePipeline(text(1.5), 'p.yaml')).toThrow(/PIPELINE_INVALID: group\.maxRemoveShare: .*\(p\.yaml, field "group\.maxRemoveShare"\)/);
    expect(() => parsePipeline(text(-0.1), 'p.yaml')).toThrow(/group\.maxRemoveShare/);
    expect(parsePipeline(text(1), 'p.yaml').group.maxRemoveShare).toBe(1);
  });
});

describe('held runs from the command line', () => {
  it('match says HELD with the numbers; run confirm by the id prefix applies it; status lists it held', async () => {
    const dir = await tempDir();
    const data = path.join(dir, 'data');
    const pipeline = path.join(dir, 'test-school.yaml');
    await writeText(pipeline, JSON.stringify(testPipeline()));
    const fall = await writeText(path.join(dir, 'fall.csv'), ROSTER);
    const partial = await writeText(path.join(dir, 'class-3b.csv'), PARTIAL);
    const cli = (...args: string[]) => runCli(['--data-dir', data, ...args]);
    expect((await cli('index', 'load', await writeNdjson(path.join(dir, 'P.ndjson'), INDEX))).code).toBe(0);
    expect((await cli('match', fall, '--partner', 'test-school', '--pipeline', pipeline, '--no-progress')).code).toBe(0);
    const held = await cli('match', partial, '--partner', 'test-school', '--pipeline', pipeline, '--no-progress');
    expect(held.code).toBe(0);
    expect(held.stdout).toMatch(/group test-school-students \(replace\): HELD, unchanged — 6 members now; would add 0, remove 5 \(83\.3 % of the Group; at most 20\.0 % without a confirmation\)/);
    const runId = /^run ([0-9a-f-]{36}):/m.exec(held.stdout)![1]!;
    const status = await cli('status', '--limit', '1');
    expect(status.stdout).toMatch(/held\s.*held: 6 members, \+0 −5 \(83\.3 %\)/);
    expect(status.stdout).toContain(`rostermatch run confirm ${runId.slice(0, 8)} --by NAME`);
    const confirmed = await cli('run', 'confirm', runId.slice(0, 8), '--by', 'alice');
    expect(confirmed.stderr).toBe('');
    expect(confirmed.stdout).toMatch(new RegExp(`run ${runId}: confirmed; Group test-school-students: 6 → 1 members \\(\\+0 −5\\)`));
    const again = await cli('run', 'discard', runId, '--by', 'alice', '--reason', 'too late');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/RUN_NOT_HELD: run .* is completed \(confirmed by alice/);
    const history = JSON.parse((await cli('group', 'show', 'test-school-students', '--history')).stdout) as { actor: string; action: string }[];
    expect(history.filter((e) => e.action === 'removed').every((e) => e.actor === 'confirm:alice')).toBe(true);
    // Eight CLI processes, each booting the embedded store: slow on a shared 2-core machine.
  }, 180_000);
});

describe.each(STORES)('held runs in serve (%s)', (store) => {
  it('a queued replace run that would empty its Group ends held, archived, Group untouched; confirm applies it', async () => {
    const dir = await tempDir();
    const drop = path.join(dir, 'drop');
    const data = path.join(dir, 'data');
    const databaseUrl = store === 'postgres' ? await tempPgDatabase() : undefined;
    if (!databaseUrl) await seedDataDir(data); // a copy of the run's migrated template store
    const seed = await openStore({ databaseUrl, embeddedDir: path.join(data, 'db') });
    await loadIndexFile(seed, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
    await seed.close();
    const service = await startServe({ dropRoot: drop, dataDir: data, pipelinesDir: await pipelinesDir(dir), redisUrl: REDIS_URL, queuePrefix: testPrefix(), databaseUrl, port: 0, quietMs: 300, scanIntervalMs: 150, reconcileIntervalMs: 1000, log: quietLog });
    onCleanup(async () => void (await service.close()));
    const inbound = path.join(drop, 'test-school', 'inbound');
    const outbound = path.join(drop, 'test-school', 'outbound');
    await fs.mkdir(inbound, { recursive: true });
    await fs.writeFile(path.join(inbound, 'fall.csv'), ROSTER);
    await waitFor('fall.csv completed', async () => (await runState(service.db, 'fall.csv'))?.state === 'completed' && exists(path.join(outbound, 'fall.results.csv')));
    const before = await snapshot(service.db);
    await fs.writeFile(path.join(inbound, 'class-3b.csv'), PARTIAL);
    const held = await waitFor('class-3b.csv held', async () => {
      const r = await runState(service.db, 'class-3b.csv');
      return r?.state === 'held' && (await exists(path.join(outbound, 'class-3b.csv.held.txt'))) && r;
    });
    expect(await exists(path.join(outbound, 'class-3b.results.csv'))).toBe(true);
    expect((await getRun(service.db, held.id))!.hold).toMatchObject({ before: 6, wouldAdd: 0, wouldRemove: 5 });
    expect(await snapshot(service.db)).toEqual(before);
    await waitFor('the original archived', async () => (await fs.readdir(path.join(data, 'archive', 'test-school')).catch(() => [])).length === 2);
    const r = await confirmHeldRun(service.db, { runId: held.id, by: 'alice', exportsDir: path.join(data, 'exports') });
    expect(r.kind === 'applied' && r.change).toEqual({ before: 6, after: 1, added: 0, removed: 5 });
    expect((await groupMembers(service.db, GID)).map((m) => m.patientId)).toEqual(['p-ava']);
  });
});
