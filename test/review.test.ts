import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { runFile } from '../src/run/index.ts';
import { acceptReviewItem, groupHistory, groupMembers, listReviewItems, rejectReviewItem, type Db } from '../src/store/index.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { quietLog, STORES, tempDb, testPipeline, writeNdjson, writeText } from './helpers.ts';

// These files are deliberately partial replace files: the safety valve (test/hold.test.ts) is off.
const pipeline = testPipeline({ group: { id: 'test-school-students', name: 'Test School students', mode: 'replace', maxRemoveShare: 1 } });

async function run(db: Db, dir: string, name: string, text: string) {
  const out = await runFile(db, quietLog, { file: await writeText(path.join(dir, name), text), pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') });
  if (out.kind !== 'completed') throw new Error('expected a completed run');
  return out;
}

const at = '2026-11-20T10:00:00.000Z';

describe.each(STORES)('the review queue (%s)', (store) => {
  it('queues possible and ambiguous rows; an accept joins the Group and later files match the record', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
    const first = await run(db, dir, 'fall.csv', ROSTER);
    const open = await listReviewItems(db, { partner: 'test-school', state: 'open' });
    // r10 has no family name: missing evidence, so a person decides.
    expect(open.map((i) => [i.recordId, i.outcome, i.line])).toEqual([
      ['r6', 'ambiguous', 7],
      ['r10', 'possible', 11],
      ['r11', 'possible', 12],
    ]);
    expect(open[0]!.scores.map((s) => s.patientId).sort()).toEqual(['p-dup1', 'p-dup2']);
    const [emma, , avery] = open as [(typeof open)[0], (typeof open)[0], (typeof open)[0]];

    const bad = await db.transaction((tx) => acceptReviewItem(tx, emma.id, 'p-ava', 'alice', at));
    expect(bad).toEqual({ ok: false, reason: expect.stringMatching(/p-ava is not a candidate/) });
    expect(await db.transaction((tx) => acceptReviewItem(tx, emma.id, 'p-dup1', 'alice', at))).toMatchObject({ ok: true });
    expect(await db.transaction((tx) => acceptReviewItem(tx, emma.id, 'p-dup2', 'alice', at))).toEqual({ ok: false, reason: expect.stringMatching(/already accepted/) });
    expect(await db.transaction((tx) => rejectReviewItem(tx, avery.id, 'bob', at))).toMatchObject({ ok: true });

    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toContain('p-dup1');
    const joined = (await groupHistory(db, 'test-school-students')).find((e) => e.patientId === 'p-dup1');
    expect(joined).toMatchObject({ action: 'added', actor: 'review:alice', runId: first.summary.runId, at });
    const audit = await db.query<{ actor: string; action: string }>('SELECT actor, action FROM audit_event ORDER BY id');
    expect(audit.rows).toEqual([
      { actor: 'alice', action: 'review.accept' },
      { actor: 'bob', action: 'review.reject' },
    ]);

    // The partner's next file: the accepted record is matched, the rejected candidate is not offered again.
    const next = await run(db, dir, 'spring.csv', [HEADER, 'r6,Emma,Johnson,,2016-01-01,F,,,', 'r11,Avery,Martinez,,2015-03-14,F,,,'].join('\n'));
    const rows = parse(await fs.readFile(next.resultPath), { columns: true }) as Record<string, string>[];
    expect(rows[0]).toMatchObject({ record_id: 'r6', outcome: 'matched', patient_id: 'p-dup1' });
    expect(rows[0]!.reasons).toMatch(/^reviewed: accepted by alice on 2026-11-20; given:exact/);
    expect(rows[1]).toMatchObject({ record_id: 'r11', outcome: 'no_match' });
    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toEqual(['p-dup1']);
    expect((await listReviewItems(db, { state: 'open' })).map((i) => i.recordId)).toEqual(['r10']);
  });

  it('supersedes an open item when a newer file brings the same record', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
    await run(db, dir, 'a.csv', [HEADER, 'r11,Avery,Martinez,,2015-03-14,F,,,'].join('\n'));
    await run(db, dir, 'b.csv', [HEADER, 'r11,Avery,Martinez,,2015-03-14,F,12 Oak St,,'].join('\n'));
    const all = await listReviewItems(db, {});
    expect(all.map((i) => i.state)).toEqual(['superseded', 'open']);
  });
});
