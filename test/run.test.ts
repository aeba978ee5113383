import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { runFile } from '../src/run/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { getGroup, groupHistory, groupMembers } from '../src/store/index.ts';
import type { Db } from '../src/store/index.ts';
import { quietLog, tempDb, testPipeline, writeNdjson, writeText, STORES } from './helpers.ts';
import { HEADER, IMMUNIZATIONS, INDEX, ROSTER } from './fixtures.ts';

async function loadIndex(db: Db, dir: string) {
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Immunization.ndjson'), IMMUNIZATIONS));
}

async function run(db: Db, dir: string, name: string, text: string, pipeline = testPipeline(), force = false) {
  const file = await writeText(path.join(dir, name), text);
  return runFile(db, quietLog, { file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'exports'), force });
}

function readResults(file: string): Promise<Record<string, string>[]> {
  return fs.readFile(file).then((b) => parse(b, { columns: true }) as Record<string, string>[]);
}

describe.each(STORES)('one file, end to end on the embedded store (%s)', (store) => {
  it('gives every row exactly one outcome, in input order, with the partner record id echoed', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    const out = await run(db, dir, 'fall.csv', ROSTER);
    if (out.kind !== 'completed') throw new Error('expected a completed run');
    const rows = await readResults(out.resultPath);
    expect(path.basename(out.resultPath)).toBe('fall.results.csv');
    expect(rows.map((r) => r.record_id)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9', 'r10', 'r11', `'=HYPERLINK("http://x")`]);
    const by = Object.fromEntries(rows.map((r) => [r.record_id, r]));
    expect(by.r1).toMatchObject({ outcome: 'matched', patient_id: 'p-ava', line: '2' });
    expect(by.r2).toMatchObject({ outcome: 'matched', patient_id: 'p-liam' });
    expect(by.r3).toMatchObject({ outcome: 'matched', patient_id: 'p-jjr' });
    expect(by.r4).toMatchObject({ outcome: 'matched', patient_id: 'p-mia' });
    expect(by.r5).toMatchObject({ outcome: 'matched', patient_id: 'p-jose' });
    expect(by.r6!.outcome).toBe('ambiguous');
    expect(by.r6!.candidates).toMatch(/p-dup1.*p-dup2|p-dup2.*p-dup1/);
    expect(by.r7).toMatchObject({ outcome: 'no_match', patient_id: '' });
    expect(by.r8).toMatchObject({ outcome: 'invalid' });
    expect(by.r8!.reasons).toMatch(/^birthDate: .*not a real calendar date/);
    expect(by.r9!.reasons).toMatch(/^birthDate: .*future/);
    // A blank family name is missing evidence: offered for review, never auto-matched on given name and birth date alone.
    expect(by.r10).toMatchObject({ outcome: 'possible', patient_id: '' });
    expect(by.r10!.candidates).toContain('p-ava');
    expect(by.r10!.reasons).toMatch(/family:missing\+0/);
    expect(by.r11!.outcome).toBe('possible');
    expect(by.r11!.candidates).toContain('p-ava');
    expect(by.r1!.reasons).toMatch(/given:exact\+[\d.]+ family:exact\+[\d.]+ birthDate:exact\+/);
    expect(out.summary.counts).toEqual({ matched: 6, ambiguous: 1, possible: 2, no_match: 1, invalid: 2 });
  });

  it('keeps twins and a Jr/Sr pair apart', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    const out = await run(db, dir, 'f.csv', [HEADER, 'a,Noah,Wilson,,2016-07-02,M,40 Elm Ave,62702,2175550200', 'b,James,Carter,,1980-01-20,M,9 Pine Rd,,2175550299', 'c,Liam,Wilson,,2016-07-02,M,,,'].join('\n'));
    if (out.kind !== 'completed') throw new Error('expected a completed run');
    const rows = await readResults(out.resultPath);
    expect(rows.map((r) => [r.outcome, r.patient_id])).toEqual([
      ['matched', 'p-noah'],
      ['matched', 'p-jsr'],
      ['matched', 'p-liam'],
    ]);
  });

  it('creates the Group from the matched rows and records who joined by which run', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    const out = await run(db, dir, 'fall.csv', ROSTER);
    if (out.kind !== 'completed') throw new Error('expected a completed run');
    const members = (await groupMembers(db, 'test-school-students')).map((m) => m.patientId);
    expect(members).toEqual(['p-ava', 'p-jjr', 'p-jose', 'p-liam', 'p-mia', 'p-noah']);
    expect(out.summary.group).toMatchObject({ id: 'test-school-students', sizeBefore: 0, sizeAfter: 6, added: 6, removed: 0 });
    const history = await groupHistory(db, 'test-school-students');
    expect(history).toHaveLength(6);
    expect(history.every((e) => e.action === 'added' && e.runId === out.summary.runId)).toBe(true);
  });

  it('replace makes the Group exactly the new file; append only adds', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    await run(db, dir, 'fall.csv', ROSTER);
    const spring = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,Liam,Wilson,,2016-07-02,M,,,'].join('\n');
    const replaced = await run(db, dir, 'spring.csv', spring);
    if (replaced.kind !== 'completed') throw new Error('expected a completed run');
    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toEqual(['p-ava', 'p-liam']);
    expect(replaced.summary.group).toMatchObject({ sizeBefore: 6, sizeAfter: 2, added: 0, removed: 4 });
    const removed = (await groupHistory(db, 'test-school-students')).filter((e) => e.action === 'removed');
    expect(removed.map((e) => e.patientId).sort()).toEqual(['p-jjr', 'p-jose', 'p-mia', 'p-noah']);

    const append = testPipeline({ group: { id: 'test-school-students', name: 'Test School students', mode: 'append' } });
    const more = await run(db, dir, 'extra.csv', [HEADER, 'x,Mia,OBrien,,2014-11-30,F,,,'].join('\n'), append);
    if (more.kind !== 'completed') throw new Error('expected a completed run');
    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toEqual(['p-ava', 'p-liam', 'p-mia']);
    // The size and history length kept on the Group agree with its rows: 6 joined, 4 left, 1 joined.
    expect(await getGroup(db, 'test-school-students')).toMatchObject({ size: 3, events: 11 });
  });

  it('treats the same bytes dropped twice as one run, and a forced re-run leaves the Group unchanged', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    const first = await run(db, dir, 'fall.csv', ROSTER);
    if (first.kind !== 'completed') throw new Error('expected a completed run');
    const before = await getGroup(db, 'test-school-students');
    const second = await run(db, dir, 'fall.csv', ROSTER);
    expect(second.kind).toBe('duplicate');
    expect(second.run.id).toBe(first.run.id);
    const forced = await run(db, dir, 'fall-again.csv', ROSTER, testPipeline(), true);
    if (forced.kind !== 'completed') throw new Error('expected a completed run');
    expect(forced.summary.group).toMatchObject({ sizeBefore: 6, sizeAfter: 6, added: 0, removed: 0 });
    expect((await getGroup(db, 'test-school-students'))!.version).toBe(before!.version);
    expect(await groupHistory(db, 'test-school-students')).toHaveLength(6);
  });

  it('rewrites a recorded run\'s result files when the same bytes arrive again and they are gone', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    const first = await run(db, dir, 'fall.csv', ROSTER);
    if (first.kind !== 'completed') throw new Error('expected a completed run');
    const original = await fs.readFile(first.resultPath);
    await fs.rm(first.resultPath);
    await fs.rm(first.summaryPath);
    expect((await run(db, dir, 'fall.csv', ROSTER)).kind).toBe('duplicate');
    expect(await fs.readFile(first.resultPath)).toEqual(original);
    expect(JSON.parse(await fs.readFile(first.summaryPath, 'utf8')).runId).toBe(first.run.id);
  });

  it('rejects a malformed file whole, naming file and line, and leaves the Group untouched', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    await run(db, dir, 'fall.csv', ROSTER);
    const broken = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,"Liam,Wilson,,2016-07-02,M,,,', 'r3,Mia,OBrien,,2014-11-30,F,,,'].join('\n');
    await expect(run(db, dir, 'broken.csv', broken)).rejects.toThrow(/FILE_MALFORMED_CSV: .*broken\.csv, line \d/);
    const ragged = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,Liam,Wilson,,2016-07-02,M,,,,extra'].join('\n');
    await expect(run(db, dir, 'ragged.csv', ragged)).rejects.toThrow(/FILE_MALFORMED_CSV: a row has a different number of cells from the header \(.*ragged\.csv, line 3\)/);
    const noDob = ['id,first,last', 'r1,Ava,Martinez'].join('\n');
    await expect(run(db, dir, 'nodob.csv', noDob)).rejects.toThrow(/FILE_MISSING_COLUMN: no column for "birthDate".*nodob\.csv, line 1, field "birthDate"/);
    expect((await groupMembers(db, 'test-school-students')).length).toBe(6);
    await expect(fs.access(path.join(dir, 'out', 'broken.results.csv'))).rejects.toThrow();
    const { rows } = await db.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM run GROUP BY state ORDER BY state');
    expect(rows).toEqual([
      { state: 'completed', n: 1 },
      { state: 'failed', n: 3 },
    ]);
  });

  it('writes a summary beside the results and an export of the members', async () => {
    const { db, dir } = await tempDb(store);
    await loadIndex(db, dir);
    const out = await run(db, dir, 'fall.csv', ROSTER);
    if (out.kind !== 'completed') throw new Error('expected a completed run');
    const summary = JSON.parse(await fs.readFile(out.summaryPath, 'utf8'));
    expect(summary).toMatchObject({ runId: out.summary.runId, rows: 12, group: { id: 'test-school-students', sizeAfter: 6 } });
    expect(summary.timingsMs.total).toBeGreaterThanOrEqual(summary.timingsMs.match);
    const manifest = JSON.parse(await fs.readFile(path.join(out.export!.dir, 'manifest.json'), 'utf8'));
    expect(manifest.output.map((o: { type: string; count: number }) => [o.type, o.count])).toEqual([
      ['Patient', 6],
      ['Immunization', 4],
    ]);
  });
});
