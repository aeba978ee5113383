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
    const { parsed } = await parseText(`\uFEFF${HEADER}\r\nr1,Zoë,Muñoz-García,,2015-03-14,F,12 North Oak Street Apt 4,62701-1234,+1 (217) 544-0134\r\n`);
    expect(parsed.header[0]).toBe('id');
    expect(parsed.rows).toHaveLength(1);
    const row = parsed.rows[0]!;
    if (row.kind !== 'valid') throw new Error('expected a valid row');
    expect(row).toMatchObject({ line: 2, recordId: 'r1' });
    expect(row.person).toMatchObject({ given: 'ZOE', family: 'MUNOZ GARCIA', birthDate: '2015-03-14', sex: 'female', zip: '62701', phone: '2175440134' });
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
      [HEADER, 'r1,,Martinez,,13/45/2015,F,,,', 'r2,Ava,Martinez,,1850-01-01,F,,,', 'r2,Mia,Obrien,,2014-11-30,F,,,', ',Zoe,Ng,,2014-11-30,F,,,', 'r5,Eli,Ng,,2014-11-30,Q,,1234567,555-0234'].join('\n'),
    );
    const [r1, r2, r3, r4, r5] = parsed.rows;
    // A blank given name is missing evidence; a birth date no format reads, with no identifier, leaves nothing to find the person by.
    expect(r1).toMatchObject({ kind: 'invalid', problems: [{ field: 'birthDate', code: 'impossible', message: expect.stringMatching(/no identifier, address or phone either: the row cannot identify anyone$/) }] });
    if (r1?.kind === 'invalid') expect(r1.problems).toHaveLength(1);
    // r2 twice: one row has a bad birth date, so the two cannot be told to be one person.
    expect(r2).toMatchObject({ kind: 'invalid', problems: [{ field: 'birthDate', code: 'too_old' }, { field: 'recordId', code: 'duplicate_conflict' }] });
    expect(r3).toMatchObject({ kind: 'invalid', problems: [{ field: 'recordId', code: 'duplicate_conflict', message: expect.stringMatching(/^record id is also on line 3 for a different person/) }] });
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

describe('bad files are refused whole, naming line and column', () => {
  const rows = ['r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,Mia,Obrien,,2014-11-30,F,,,'];

  it('refuses two columns with the same header, naming both, unless the pipeline picks one', async () => {
    const header = 'id,first,last,middle,dob,sex,street,zip,phone,first';
    const text = [header, 'r1,Ava,Martinez,,2015-03-14,F,,,,Zed', 'r2,Mia,Obrien,,2014-11-30,F,,,,Zoe'].join('\n');
    await expect(parseText(text)).rejects.toThrow(
      /FILE_DUPLICATE_COLUMN: column 2 \("first"\) and column 10 \("first"\) could each be "given"; .*columns\.given: \{ column: N \}.*roster\.csv, line 1, field "given"/,
    );
    // Two different aliases of one field are as ambiguous as one header twice.
    const aliases = testPipeline({ columns: { recordId: ['id'], given: ['first', 'First Name'], family: ['last'], birthDate: ['dob'] } });
    await expect(parseText('id,first,last,dob,First Name\nr1,Ava,Ng,2015-03-14,Zed\n', aliases)).rejects.toThrow(/column 2 \("first"\) and column 5 \("First Name"\) could each be "given"/);
    const picked = testPipeline({ columns: { recordId: ['id'], given: { column: 10 }, family: ['last'], birthDate: ['dob'] } });
    const { parsed } = await parseText(text, picked);
    expect(parsed.rows.map((r) => (r.kind === 'valid' ? r.person.given : r.kind))).toEqual(['ZED', 'ZOE']);
  });

  it('names the line and column of a quote in the middle of a cell', async () => {
    await expect(parseText([HEADER, rows[0], 'r2,Mi"a,Obrien,,2014-11-30,F,,,'].join('\n'))).rejects.toThrow(
      /^FILE_MALFORMED_CSV: a quote \(".*inside a cell that does not start with one.*, in column 2 \("first"\) \(.*roster\.csv, line 3, field "given"\)$/,
    );
    await expect(parseText([HEADER, rows[0], 'r2,"Mia"x,Obrien,,2014-11-30,F,,,'].join('\n'))).rejects.toThrow(/FILE_MALFORMED_CSV: text after the closing quote.*column 2 \("first"\).*line 3/);
    // An unclosed quote is found at the end of the file: the line where it opened is named.
    await expect(parseText([HEADER, rows[0], 'r2,Mia,"Obrien,,2014-11-30,F,,,', ...rows, ...rows].join('\r\n'))).rejects.toThrow(/FILE_MALFORMED_CSV: a quoted cell is never closed.*line 3\b/);
  });

  it('counts a CR LF inside a quoted cell as one line break when naming a later line', async () => {
    const text = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,"1 Oak St\r\nRear",,', 'r2,"Mia,Obrien,,2014-11-30,F,,,'].join('\r\n');
    await expect(parseText(text)).rejects.toThrow(/never closed.*line 4\b/);
    await expect(parseText([HEADER, 'r1,Ava,Martinez,,2015-03-14,F,"1 Oak St\r\nRear",,', 'r2,Mi"a,Obrien,,2014-11-30,F,,,'].join('\r\n'))).rejects.toThrow(/column 2 \("first"\).*line 4\b/);
  });

  it('refuses a NUL byte inside a cell, naming line and column', async () => {
    await expect(parseText([HEADER, rows[0], 'r2,Mi\0a,Obrien,,2014-11-30,F,,,'].join('\n'))).rejects.toThrow(
      /FILE_CONTROL_CHARACTER: a NUL byte in column 2 \("first"\).*roster\.csv, line 3, field "given"/,
    );
  });

  it('names a ragged row by its line', async () => {
    await expect(parseText([HEADER, 'r1,Ava,Martinez,,2015-03-14,F,"a\nb",,', 'r2,Mia,Obrien,,2014-11-30,F,,'].join('\n'))).rejects.toThrow(/different number of cells.*line 4\)/);
  });
});

describe('line numbers are the physical line each row starts on', () => {
  const lines = (parsed: { rows: { line: number }[] }) => parsed.rows.map((r) => r.line);
  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('with %s line ends and line breaks inside quoted cells', async (_label, eol) => {
    const text = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,"12 Oak St\r\nRear\r\nBack",,', '', 'r2,Mia,Obrien,,2014-11-30,F,"a\nb",,', 'r3,Eli,Ng,,2014-11-30,F,,,'].join(eol) + eol;
    const { parsed } = await parseText(text);
    expect(lines(parsed)).toEqual([2, 6, 8]);
  });
});

describe('encodings', () => {
  const text = `${HEADER}\r\nr1,Zoë,Muñoz,,2015-03-14,F,,,\r\nr2,Mia,Obrien,,2014-11-30,F,,,\r\n`;

  it('reads UTF-16LE and UTF-16BE by their byte-order mark, whatever the pipeline says', async () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text.replaceAll(',', '\t'), 'utf16le')]);
    const tabbed = testPipeline({ file: { encoding: 'utf-8', delimiter: '\t' } });
    const { parsed } = await parseText(le, tabbed);
    expect(parsed.rows[0]).toMatchObject({ line: 2, person: { given: 'ZOE', family: 'MUNOZ' } });
    const be = Buffer.from(le.subarray(2)).swap16();
    const { parsed: p2 } = await parseText(Buffer.concat([Buffer.from([0xfe, 0xff]), be]), testPipeline({ file: { encoding: 'windows-1252', delimiter: '\t' } }));
    expect(p2.rows.map((r) => r.recordId)).toEqual(['r1', 'r2']);
    // Without a mark, only when the pipeline says so.
    const { parsed: p3 } = await parseText(le.subarray(2), testPipeline({ file: { encoding: 'utf-16le', delimiter: '\t' } }));
    expect(p3.rows).toHaveLength(2);
    await expect(parseText(le.subarray(2), tabbed)).rejects.toThrow(/FILE_ENCODING: the file looks like UTF-16LE without a byte-order mark; set file\.encoding: utf-16le.*line 1/);
  });

  it('names UTF-32 for what it is', async () => {
    const utf32le = Buffer.alloc((text.length + 1) * 4);
    [...'\uFEFF' + text].forEach((ch, i) => utf32le.writeUInt32LE(ch.codePointAt(0)!, i * 4));
    await expect(parseText(utf32le)).rejects.toThrow(/FILE_ENCODING: the file is UTF-32 \(little-endian, by its byte-order mark\)/);
    await expect(parseText(Buffer.from(utf32le).swap32())).rejects.toThrow(/UTF-32 \(big-endian/);
  });

  it('refuses a UTF-8 file under a windows-1252 pipeline, naming the first line that differs', async () => {
    const pipeline = testPipeline({ file: { encoding: 'windows-1252', delimiter: ',' } });
    const utf8 = `${HEADER}\nr1,Ava,Martinez,,2015-03-14,F,,,\nr2,Zoë,Muñoz,,2015-03-14,F,,,\n`;
    await expect(parseText(utf8, pipeline)).rejects.toThrow(/FILE_ENCODING: the file is UTF-8 .*pipeline says windows-1252.*set file\.encoding: utf-8.*roster\.csv, line 3\)/);
    // A real 1252 file, and an ASCII one, still read.
    const { parsed } = await parseText(iconv.encode(utf8, 'win1252'), pipeline);
    expect(parsed.rows[1]).toMatchObject({ person: { given: 'ZOE' } });
    // A UTF-8 byte-order mark says what the file is.
    const { parsed: p2 } = await parseText(`\uFEFF${utf8}`, pipeline);
    expect(p2.rows[1]).toMatchObject({ person: { given: 'ZOE', family: 'MUNOZ' } });
  });
});

describe('record ids on more than one row', () => {
  it('matches rows that repeat an id for one person, each naming the others; refuses an id given to different people', async () => {
    const { parsed } = await parseText(
      [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,,,', 'r2,Mia,Obrien,,2014-11-30,F,,,', 'r1,AVA,Martínez,,2015-03-14,F,1 Oak St,,', 'r2,Zoe,Ng,,2014-11-30,F,,,', 'r3,Eli,Ng,,2014-11-30,M,,,'].join('\n'),
    );
    const [a, b, c, d, e] = parsed.rows;
    expect(a).toMatchObject({ kind: 'valid', warnings: [{ field: 'recordId', code: 'duplicate', message: 'record id is also on line 4, for the same name and birth date' }] });
    expect(c).toMatchObject({ kind: 'valid', warnings: [{ field: 'recordId', code: 'duplicate', message: expect.stringContaining('also on line 2') }] });
    expect(b).toMatchObject({ kind: 'invalid', problems: [{ field: 'recordId', code: 'duplicate_conflict', message: expect.stringMatching(/^record id is also on line 5 for a different person/) }] });
    expect(d).toMatchObject({ kind: 'invalid', problems: [{ field: 'recordId', code: 'duplicate_conflict', message: expect.stringContaining('also on line 3') }] });
    expect(e).toMatchObject({ kind: 'valid', warnings: [] });
  });
});

describe('names in scripts other than Latin', () => {
  it('says which field is in which script instead of calling it blank', async () => {
    const { parsed } = await parseText([HEADER, 'r1,אבי,כהן,,2015-03-14,F,,,', 'r2,محمد,Haddad,,2015-03-14,M,,,', 'r3,Ava,Martinez,אבי,2015-03-14,F,,,'].join('\n'));
    const [he, ar, mixed] = parsed.rows;
    // No name left in Latin letters and no identifier: nothing to find the person by.
    expect(he).toMatchObject({ kind: 'invalid', problems: [{ code: 'unsupported_script', message: expect.stringMatching(/^the name is in Hebrew script/) }] });
    // The family name still finds the person; the given name is missing evidence, and says why.
    expect(ar).toMatchObject({
      kind: 'valid',
      person: { given: '', family: 'HADDAD' },
      warnings: [{ field: 'given', code: 'unsupported_script', message: expect.stringMatching(/^given name is in Arabic script/) }],
    });
    expect(mixed).toMatchObject({ kind: 'valid', warnings: [{ field: 'middle', code: 'unsupported_script' }] });
  });
});

describe('missing, malformed and placeholder values', () => {
  const SSN = 'http://hl7.org/fhir/sid/us-ssn';
  const withSsn = () =>
    testPipeline({ identifiers: [{ columns: ['ssn', 'social'], system: SSN, kind: 'ssn' }, { columns: ['medicaid'], system: 'urn:oid:2.16.840.1.113883.3.9999.5', name: 'medicaid' }] });
  const H = `${HEADER},ssn,medicaid`;

  it('keeps a row with a blank given name, family name or birth date, as missing evidence', async () => {
    const { parsed } = await parseText([HEADER, 'r1,,Martinez,,2015-03-14,F,,,', 'r2,Ava,,,2015-03-14,F,,,', 'r3,Ava,Martinez,,,F,12 Oak St,62701,', 'r4,Ava,Martinez,,,F,,,'].join('\n'), withSsn());
    expect(parsed.rows.map((r) => r.kind)).toEqual(['valid', 'valid', 'valid', 'invalid']);
    expect(parsed.rows[0]).toMatchObject({ person: { given: '', family: 'MARTINEZ' } });
    // A name and an address, no birth date: a person can still tell who it is.
    expect(parsed.rows[2]).toMatchObject({ person: { birthDate: '', street: '12 OAK ST' } });
    // A name alone: the reason says what is missing.
    expect(parsed.rows[3]).toMatchObject({ problems: [{ field: 'birthDate', code: 'missing', message: 'birth date is blank, and there is no identifier, address or phone either: the row cannot identify anyone' }] });
  });

  it('reads an ISO 8601 date whatever formats the pipeline lists, and makes a malformed one a warning when an identifier can stand in', async () => {
    const pipeline = testPipeline({ dates: { birthDate: ['MM/DD/YYYY'] }, identifiers: [{ columns: ['ssn'], system: SSN, kind: 'ssn' }] });
    const { parsed } = await parseText([`${HEADER},ssn`, 'r1,Ava,Martinez,,2015-03-14,F,,,,', 'r2,Ava,Martinez,,14.03.2015,F,,,,123-45-6780', 'r3,Ava,Martinez,,02/30/2015,F,,,,123-45-6780'].join('\n'), pipeline);
    expect(parsed.rows[0]).toMatchObject({ kind: 'valid', person: { birthDate: '2015-03-14' } });
    expect(parsed.rows[1]).toMatchObject({ kind: 'valid', person: { birthDate: '' }, identifiers: [{ system: SSN, value: '123456780', label: 'us-ssn' }], warnings: [{ field: 'birthDate', code: 'unparseable' }] });
    expect(parsed.rows[2]).toMatchObject({ kind: 'valid', person: { birthDate: '' }, warnings: [{ field: 'birthDate', code: 'impossible', message: expect.stringMatching(/left out of matching$/) }] });
  });

  it('reads identifier columns per kind, dropping impossible and placeholder SSNs with a warning', async () => {
    const { parsed } = await parseText(
      [H, 'r1,Ava,Martinez,,2015-03-14,F,,,,123 45 6780,ab-123', 'r2,Ava,Martinez,,2015-03-15,F,,,,000-00-0000,', 'r3,Ava,Martinez,,2015-03-16,F,,,,666-12-3456,', 'r4,Ava,Martinez,,2015-03-17,F,,,,123-45-6789,UNKNOWN', 'r5,Ava,Martinez,,2015-03-18,F,,,,12345,'].join('\n'),
      withSsn(),
    );
    const [r1, r2, r3, r4, r5] = parsed.rows;
    expect(r1).toMatchObject({ identifiers: [{ value: '123456780', label: 'us-ssn' }, { value: 'AB123', label: 'medicaid' }] });
    for (const r of [r2, r3]) expect(r).toMatchObject({ kind: 'valid', identifiers: [], warnings: [{ field: 'identifier', code: 'placeholder' }] });
    expect(r4).toMatchObject({ identifiers: [], warnings: [{ code: 'placeholder', message: expect.stringMatching(/^us-ssn:/) }, { code: 'placeholder', message: expect.stringMatching(/^medicaid:/) }] });
    expect(r5).toMatchObject({ identifiers: [], warnings: [{ field: 'identifier', code: 'malformed', message: 'us-ssn: SSN is not nine digits; ignored' }] });
  });

  it('flags placeholder names, and refuses a row with no real name and no identifier', async () => {
    const { parsed } = await parseText([HEADER, 'r1,Baby Boy,Martinez,,2026-10-30,M,,,', 'r2,Unknown,Unknown,,1990-01-01,M,,,', 'r3,John,Doe,,1990-01-01,M,,,', 'r4,Twin B,Martinez,,2026-10-30,F,,,'].join('\n'));
    const [baby, unknown, doe, twin] = parsed.rows;
    expect(baby).toMatchObject({ kind: 'valid', placeholder: { given: true, family: false }, warnings: [{ field: 'given', code: 'placeholder' }] });
    expect(twin).toMatchObject({ kind: 'valid', placeholder: { given: true, family: false } });
    for (const r of [unknown, doe]) expect(r).toMatchObject({ kind: 'invalid', problems: [{ code: 'no_name', message: 'the name is a placeholder, and no identifier: the row cannot identify anyone' }] });
  });

  it('reduces a multi-line street cell to its street line', async () => {
    const { parsed } = await parseText([HEADER, 'r1,Ava,Martinez,,2015-03-14,F,"C/O Maria Lopez\n12 North Oak Street\nApt 4",,', 'r2,Mia,Ng,,2015-03-14,F,"Smith Hall, 100 College Ave",,', 'r3,Eli,Ng,,2015-03-14,M,General Delivery,,'].join('\n'));
    expect(parsed.rows.map((r) => (r.kind === 'valid' ? r.person.street : r.kind))).toEqual(['12 N OAK ST APT 4', '100 COLLEGE AVE', '']);
    expect(parsed.rows[2]).toMatchObject({ warnings: [{ field: 'street', code: 'placeholder' }] });
  });
});
