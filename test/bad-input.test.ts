/**
 * Bad partner files end to end: refused whole with file, line and column named, nothing recorded
 * against the Group and no rows left behind; and what rows sharing a record id do to the Group.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { runFile } from '../src/run/index.ts';
import { groupMembers, type Db } from '../src/store/index.ts';
import { HEADER, IMMUNIZATIONS, INDEX, ROSTER } from './fixtures.ts';
import { runCli, quietLog, tempDb, tempDir, testPipeline, writeNdjson, writeText } from './helpers.ts';

async function loadIndex(db: Db, dir: string) {
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Immunization.ndjson'), IMMUNIZATIONS));
}

async function run(db: Db, dir: string, name: string, content: string | Buffer, pipeline = testPipeline()) {
  const file = await writeText(path.join(dir, name), content);
  return runFile(db, quietLog, { file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'exports') });
}

async function readResults(file: string): Promise<Record<string, string>[]> {
  return parse(await fs.readFile(file), { columns: true }) as Record<string, string>[];
}

/**
 * `n` rows of people not in the index (no_match), long enough that a fault after them is beyond
 * the first reads of the file (64 KiB each) and the first chunks of rows (500).
 */
function filler(n: number): string[] {
  const street = `${'1200 Long Meadow Lane Building 7 '.repeat(3)}Apt 4`;
  return Array.from({ length: n }, (_, i) => `f${i},Quinn${String.fromCharCode(97 + (i % 26))},Zeller,,2012-01-${String((i % 28) + 1).padStart(2, '0')},F,${street},,`);
}

const before = ['p-ava', 'p-jjr', 'p-jose', 'p-liam', 'p-mia', 'p-noah'];

describe('bad files are refused whole, and leave nothing behind', () => {
  it.each([
    ['two columns with the same header', [`${HEADER},first`, ...ROSTER.split('\r\n').slice(1).map((l) => `${l},X`)].join('\n'), /FILE_DUPLICATE_COLUMN: column 2 \("first"\) and column 10 \("first"\) could each be "given".*bad\.csv, line 1/],
    ['a quote in the middle of a cell at line 702', [HEADER, ...filler(700), 'r1,Av"a,Martinez,,2015-03-14,F,,,', ...filler(50)].join('\n'), /FILE_MALFORMED_CSV: a quote .*column 2 \("first"\) \(.*bad\.csv, line 702, field "given"\)/],
    ['a NUL byte at line 702', [HEADER, ...filler(700), 'r1,Ava,Mar\0tinez,,2015-03-14,F,,,', ...filler(50)].join('\n'), /FILE_CONTROL_CHARACTER: a NUL byte in column 3 \("last"\);.*bad\.csv, line 702, field "family"\)/],
    ['a ragged row at line 702', [HEADER, ...filler(700), 'r1,Ava,Martinez,,2015-03-14,F,,', ...filler(50)].join('\n'), /FILE_MALFORMED_CSV: a row has a different number of cells .*bad\.csv, line 702\)/],
    ['UTF-16 without a byte-order mark', Buffer.from(ROSTER, 'utf16le'), /FILE_ENCODING: the file looks like UTF-16LE without a byte-order mark/],
    ['UTF-32 with a byte-order mark', Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from(ROSTER.replace(/./gs, (c) => `${c}\0\0\0`), 'latin1')]), /FILE_ENCODING: the file is UTF-32/],
  ])('%s', async (_label, content, error) => {
    const { db, dir } = await tempDb();
    await loadIndex(db, dir);
    await run(db, dir, 'fall.csv', ROSTER);
    await expect(run(db, dir, 'bad.csv', content)).rejects.toThrow(error);
    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toEqual(before);
    const { rows } = await db.query<{ state: string; n: number }>('SELECT r.state, count(rr.run_id)::int AS n FROM run r LEFT JOIN run_row rr ON rr.run_id = r.id GROUP BY r.id, r.state ORDER BY r.state');
    expect(rows).toEqual([
      { state: 'completed', n: 12 },
      { state: 'failed', n: 0 },
    ]);
    await expect(fs.access(path.join(dir, 'out', 'bad.results.csv'))).rejects.toThrow();
  });

  it('a UTF-8 file under a windows-1252 pipeline is refused, not garbled into the Group', async () => {
    const { db, dir } = await tempDb();
    await loadIndex(db, dir);
    const cp1252 = testPipeline({ file: { encoding: 'windows-1252', delimiter: ',' } });
    await run(db, dir, 'fall.csv', iconv.encode(ROSTER, 'win1252'), cp1252);
    const utf8 = [HEADER, ...filler(5), 'r5,José,Núñez,,2013-02-03,M,,,', 'r1,Ava,Martinez,,2015-03-14,F,,,'].join('\n');
    await expect(run(db, dir, 'utf8.csv', utf8, cp1252)).rejects.toThrow(/FILE_ENCODING: the file is UTF-8 .*windows-1252.*utf8\.csv, line 7\)/);
    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toEqual(before);
  });
});

describe('rows that share a record id', () => {
  it('one person twice joins once, with both rows saying so; an id given to two people joins neither', async () => {
    const { db, dir } = await tempDb();
    await loadIndex(db, dir);
    const text = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,Liam,Wilson,,2016-07-02,M,40 Elm Ave,62702,', 'r1,Ava,Martinez,,2015-03-14,F,12 Oak St,,', 'r2,Mia,OBrien,,2014-11-30,F,,,', 'r5,Jose,Nunez,,2013-02-03,M,,,'].join('\n');
    const out = await run(db, dir, 'dups.csv', text);
    if (out.kind !== 'completed') throw new Error('expected a completed run');
    const rows = await readResults(out.resultPath);
    expect(rows.map((r) => [r.line, r.record_id, r.outcome, r.patient_id])).toEqual([
      ['2', 'r1', 'matched', 'p-ava'],
      ['3', 'r2', 'invalid', ''],
      ['4', 'r1', 'matched', 'p-ava'],
      ['5', 'r2', 'invalid', ''],
      ['6', 'r5', 'matched', 'p-jose'],
    ]);
    expect(rows[0]!.reasons).toMatch(/; recordId: record id is also on line 4, for the same name and birth date$/);
    expect(rows[2]!.reasons).toMatch(/recordId: record id is also on line 2,/);
    expect(rows[1]!.reasons).toMatch(/^recordId: record id is also on line 5 for a different person/);
    expect(rows[3]!.reasons).toMatch(/^recordId: record id is also on line 3 for a different person/);
    expect((await groupMembers(db, 'test-school-students')).map((m) => m.patientId)).toEqual(['p-ava', 'p-jose']);
    const detail = await db.query<{ line: number; detail: { warnings?: { code: string }[]; problems?: { code: string }[] } }>('SELECT line, detail FROM run_row ORDER BY row_index');
    expect(detail.rows.map((r) => [r.line, r.detail.warnings?.[0]?.code ?? r.detail.problems?.[0]?.code ?? null])).toEqual([
      [2, 'duplicate'],
      [3, 'duplicate_conflict'],
      [4, 'duplicate'],
      [5, 'duplicate_conflict'],
      [6, null],
    ]);
  });
});

describe('line numbers in the result file', () => {
  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
  ])('are the physical line each row starts on, with %s and line breaks inside quoted cells', async (_label, eol) => {
    const { db, dir } = await tempDb();
    await loadIndex(db, dir);
    const text = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,"12 Oak St\r\nRear",62701,', 'r4,Mia,OBRIEN,,2014-11-30,F,"a\nb\r\nc",,', '', 'r5,Jose,Nunez,,2013-02-03,M,,,'].join(eol);
    const out = await run(db, dir, 'multi.csv', text);
    if (out.kind !== 'completed') throw new Error('expected a completed run');
    expect((await readResults(out.resultPath)).map((r) => [r.line, r.record_id, r.outcome])).toEqual([
      ['2', 'r1', 'matched'],
      ['4', 'r4', 'matched'],
      ['8', 'r5', 'matched'],
    ]);
  });
});

describe('the command line with files a partner really sends', () => {
  it("reads Excel's Unicode text (UTF-16LE, tab-separated) and says what to set when the delimiter is wrong", async () => {
    const dir = await tempDir();
    const env = { ROSTERMATCH_DATA: path.join(dir, 'data') };
    const p = await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX);
    expect((await runCli(['index', 'load', p], env)).code).toBe(0);
    const sheet = 'Student ID\tLast Name\tFirst Name\tBirth Date\r\n7\tMartinez\tAva\t03/14/2015\r\n8\tאבי\tכהן\t07/02/2016\r\n';
    const file = await writeText(path.join(dir, 'unicode.txt'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(sheet, 'utf16le')]));
    const wrong = await runCli(['match', file, '--partner', 'school-district-7', '--no-progress'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/FILE_MALFORMED_CSV: the header is separated by tabs, but the pipeline's file\.delimiter is ",".*unicode\.txt, line 1\)/);
    const yaml = (await fs.readFile('pipelines/school-district-7.yaml', 'utf8')).replace('delimiter: ","', 'delimiter: "\\t"');
    const pipeline = await writeText(path.join(dir, 'sd7-tabs.yaml'), yaml);
    const ok = await runCli(['match', file, '--partner', 'school-district-7', '--pipeline', pipeline, '--no-progress', '--out', path.join(dir, 'out')], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/outcomes: matched 1, ambiguous 0, possible 0, no_match 0, invalid 1/);
    const rows = await readResults(path.join(dir, 'out', 'unicode.results.csv'));
    expect(rows[1]).toMatchObject({ line: '3', outcome: 'invalid', reasons: expect.stringMatching(/^given: the name is in Hebrew script \(names are matched in Latin letters: send it transliterated\), and no identifier/) });
  });

  it('refuses a pipeline whose thresholds no score can reach, before any run', async () => {
    const dir = await tempDir();
    const yaml = (await fs.readFile('pipelines/school-district-7.yaml', 'utf8')).replace('match: 18', 'match: 1e308');
    const pipeline = await writeText(path.join(dir, 'sd7.yaml'), yaml);
    const roster = await writeText(path.join(dir, 'r.csv'), 'Student ID,Last Name,First Name,Birth Date\n7,Martinez,Ava,03/14/2015\n');
    const r = await runCli(['match', roster, '--partner', 'school-district-7', '--pipeline', pipeline, '--data-dir', path.join(dir, 'data')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PIPELINE_INVALID: thresholds\.match: must be between 1 and 60 \(log2 odds\) \(.*sd7\.yaml, field "thresholds\.match"\)/);
  });
});
