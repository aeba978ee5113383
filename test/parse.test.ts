import path from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { readRoster } from '../src/parse/index.ts';
import { tempDir, testPipeline, writeText } from './helpers.ts';

const TODAY = '2026-11-01';
const HEADER = 'id,first,last,middle,dob,sex,street,zip,phone';

async function parseText(content: string | Buffer, pipeline = testPipeline()) {
  const dir = await tempDir();
  const file = await writeText(path.join(dir, 'roster.csv'), content);
  return { file, parsed: await readRoster(file, pipeline, TODAY) };
}

describe('reading partner files', () => {
  it('reads UTF-8 with a BOM and CRLF line ends, folding diacritics', async () => {
    const { parsed } = await parseText(`\uFEFF${HEADER}\r\nr1,Zoë,Muñoz-García,,2015-03-14,F,12 North Oak Street Apt 4,62701-1234,+1 (217) 555-0134\r\n`);
    expect(parsed.header[0]).toBe('id');
    expect(parsed.rows).toHaveLength(1);
    const row = parsed.rows[0]!;
    if (row.kind !== 'valid') throw new Error('expected a valid row');
    expect(row).toMatchObject({ line: 2, recordId: 'r1' });
    expect(row.person).toMatchObject({ given: 'ZOE', family: 'MUNOZ GARCIA', birthDate: '2015-03-14', sex: 'female', zip: '62701', phone: '2175550134' });
    expect(row.person.street).toBe('12 N OAK ST APT 4');
  });

  it('reads Windows-1252 when the pipeline says so', async () => {
    const pipeline = testPipeline({ file: { encoding: 'windows-1252', delimiter: '|' } });
    const bytes = iconv.encode(`${HEADER.replaceAll(',', '|')}\r\nM1|BÉATRICE|JOSÉ-NÚÑEZ||2015-03-14|F|||\r\n`, 'win1252');
    expect(bytes.includes(0xc9)).toBe(true); // É as one byte: this really is a 1252 file
    const { parsed } = await parseText(bytes, pipeline);
    const row = parsed.rows[0]!;
    if (row.kind !== 'valid') throw new Error('expected a valid row');
    expect(row.person).toMatchObject({ given: 'BEATRICE', family: 'JOSE NUNEZ' });
  });

  it('refuses a file declared UTF-8 that holds Windows-1252 bytes, naming the line', async () => {
    const bytes = Buffer.concat([Buffer.from(`${HEADER}\nr1,Ava,Martinez,,2015-03-14,F,,,\n`), iconv.encode('r2,Béatrice,Núñez,,2015-03-14,F,,,\n', 'win1252')]);
    await expect(parseText(bytes)).rejects.toThrow(/FILE_ENCODING: .*roster\.csv, line 3/);
  });

  it('reports the line a row starts on when a quoted cell spans lines', async () => {
    const { parsed } = await parseText(`${HEADER}\nr1,Ava,Martinez,,2015-03-14,F,"12 Oak St\nRear",,\nr2,Mia,Obrien,,2014-11-30,F,,,\n`);
    expect(parsed.rows.map((r) => r.line)).toEqual([2, 4]);
  });

  it('skips blank lines without losing count of line numbers', async () => {
    const { parsed } = await parseText(`${HEADER}\n\nr1,Ava,Martinez,,2015-03-14,F,,,\n,,,,,,,,\nr2,Mia,Obrien,,2014-11-30,F,,,\n`);
    expect(parsed.rows.map((r) => [r.recordId, r.line])).toEqual([
      ['r1', 3],
      ['r2', 5],
    ]);
  });

  it('marks rows invalid with every reason, and loads the rest', async () => {
    const { parsed } = await parseText(
      [HEADER, 'r1,,Martinez,,13/45/2015,F,,,', 'r2,Ava,Martinez,,1850-01-01,F,,,', 'r2,Mia,Obrien,,2014-11-30,F,,,', ',Zoe,Ng,,2014-11-30,F,,,', 'r5,Eli,Ng,,2014-11-30,Q,,1234567,555-0134'].join('\n'),
    );
    const [r1, r2, r3, r4, r5] = parsed.rows;
    expect(r1).toMatchObject({ kind: 'invalid', problems: [{ field: 'given', code: 'missing' }, { field: 'birthDate' }] });
    expect(r2).toMatchObject({ kind: 'invalid', problems: [{ field: 'birthDate', code: 'too_old' }] });
    expect(r3).toMatchObject({ kind: 'invalid', problems: [{ field: 'recordId', code: 'duplicate', message: 'record id already used on line 3' }] });
    expect(r4).toMatchObject({ kind: 'invalid', problems: [{ field: 'recordId', code: 'missing' }] });
    expect(r5).toMatchObject({ kind: 'valid', person: { sex: '', zip: '', phone: '' } });
    if (r5?.kind !== 'valid') throw new Error('expected valid');
    expect(r5.warnings.map((w) => w.field)).toEqual(['sex', 'zip', 'phone']);
  });

  it('never puts a cell value into a problem message', async () => {
    const { parsed } = await parseText([HEADER, 'r1,Ava,Martinez,,31/12/2099,F,,,', 'r2,Ava,Martinez,,2099-12-31,F,,,'].join('\n'));
    const messages = parsed.rows.flatMap((r) => (r.kind === 'invalid' ? r.problems.map((p) => p.message) : []));
    expect(messages).toHaveLength(2);
    for (const m of messages) expect(m).not.toMatch(/2099|31|Ava|Martinez/i);
  });

  it('maps headers by alias regardless of case, spacing and punctuation', async () => {
    const pipeline = testPipeline({ columns: { recordId: ['Student ID'], given: ['First Name'], family: ['Last Name'], birthDate: ['Birth Date', 'DOB'] } });
    const { parsed } = await parseText('STUDENT_ID,first name,LAST-NAME,dob\n7,Ava,Martinez,2015-03-14\n', pipeline);
    expect(parsed.rows[0]).toMatchObject({ kind: 'valid', recordId: '7', person: { given: 'AVA', family: 'MARTINEZ' } });
  });

  it('rejects a file with only a header, or nothing', async () => {
    await expect(parseText(`${HEADER}\n`)).rejects.toThrow(/FILE_NO_ROWS/);
    await expect(parseText('')).rejects.toThrow(/FILE_EMPTY/);
  });
});
