/**
 * The read side of HL7 v2.5.1 immunization messaging: syntax (parse.ts), files and their
 * envelopes (batch.ts), and VXU / QBP into typed people and queries or refusals (read.ts).
 * Fixtures are invented people in the shapes of the CDC IG's examples (test/fixtures/hl7v2/read-*).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBatch } from '../src/hl7v2/batch.ts';
import { component, field, parseMessage, readDelimiters, repetitions, segmentsOf, unescape, V2SyntaxError, value } from '../src/hl7v2/parse.ts';
import { isHl7Date, readMessage } from '../src/hl7v2/read.ts';
import { DEFAULT_DELIMITERS, type ReadMessage, type V2Message } from '../src/hl7v2/types.ts';

const fixture = (name: string) => fs.readFileSync(path.join('test/fixtures/hl7v2', name), 'utf8');
const d = DEFAULT_DELIMITERS;

/** The message a read accepted; fails the test with the refusal when it did not. */
function accepted(r: ReadMessage): V2Message {
  if (!r.ok) expect.fail(`refused ${r.ack}: ${JSON.stringify(r.errors)}`);
  return r.message;
}
function refused(r: ReadMessage) {
  if (r.ok) expect.fail(`accepted a ${r.message.kind} that should have been refused`);
  return r;
}

const MSH_VXU = 'MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101||VXU^V04^VXU_V04|CTL-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS';
const vxu = (...segments: string[]) => [MSH_VXU, ...segments].join('\r');
const MSH_QBP = 'MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101||QBP^Q11^QBP_Q11|CTL-Q|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS';

describe('parse: delimiters', () => {
  it('takes the separators MSH-1 and MSH-2 declare, whatever they are', () => {
    expect(readDelimiters('MSH#$*@%#X')).toEqual({ field: '#', component: '$', repetition: '*', escape: '@', subcomponent: '%' });
    expect(readDelimiters('MSH|^~\\&#|X').truncation).toBe('#');
  });

  it('refuses letters, digits, line ends, repeated or missing encoding characters (102 at MSH-1 or MSH-2)', () => {
    const code = (t: string) => {
      try {
        readDelimiters(t);
      } catch (e) {
        return e instanceof V2SyntaxError ? `${e.code} MSH-${e.field}` : 'other';
      }
      return 'accepted';
    };
    expect(code('MSHA^~\\&A')).toBe('102 MSH-1');
    expect(code('MSH1^~\\&1')).toBe('102 MSH-1');
    expect(code('MSH\r^~\\&')).toBe('102 MSH-1');
    expect(code('MSH|^~\\|')).toBe('102 MSH-2');
    expect(code('MSH|^~^&|')).toBe('102 MSH-2');
    expect(code('MSH|^~\\a|')).toBe('102 MSH-2');
    expect(code('MSH|^~\\&|EHR')).toBe('accepted');
  });

  it('keeps MSH-1 as the separator and MSH-2 as written, never unescaped', () => {
    const msh = parseMessage('MSH|^~\\&|EHR|CLINIC').segments[0]!;
    expect([field(msh, 1), field(msh, 2), field(msh, 3), field(msh, 4)]).toEqual(['|', '^~\\&', 'EHR', 'CLINIC']);
  });

  it('reads the same segments from CR, LF, CRLF and a mixture, skipping blank lines', () => {
    const lines = ['MSH|^~\\&|A', 'PID|1||X', 'RXA|0|1'];
    const ids = (text: string) => parseMessage(text).segments.map((s) => s.fields.join('|'));
    const expected = ids(lines.join('\r'));
    expect(expected).toHaveLength(3);
    expect(ids(lines.join('\n'))).toEqual(expected);
    expect(ids(lines.join('\r\n') + '\r\n')).toEqual(expected);
    expect(ids(`${lines[0]}\r\n\r\n${lines[1]}\n${lines[2]}\r`)).toEqual(expected);
  });

  it('refuses text that does not begin with MSH (100)', () => {
    expect(() => parseMessage('PID|1')).toThrow(expect.objectContaining({ code: 100 }));
  });
});

describe('parse: values', () => {
  it('splits repetitions, components and subcomponents before undoing escapes', () => {
    const seg = parseMessage('MSH|^~\\&|A\rPID|1||A1^^^EHR&1.2.3&ISO^MR~B\\S\\2^^^^SS').segments[1]!;
    const reps = repetitions(d, field(seg, 3));
    expect(reps).toHaveLength(2);
    expect([component(d, reps[0]!, 4, 1), component(d, reps[0]!, 4, 2), component(d, reps[0]!, 4, 3)]).toEqual(['EHR', '1.2.3', 'ISO']);
    expect(component(d, reps[1]!, 1)).toBe('B^2');
    expect(value(d, seg, 3, 5)).toBe('MR');
    expect(value(d, seg, 40)).toBe('');
    expect(repetitions(d, field(seg, 2))).toEqual([]);
  });

  it('turns \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ into the message’s own delimiters', () => {
    expect(unescape(d, 'a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f')).toBe('a|b^c&d~e\\f');
    const hash = { field: '#', component: '$', repetition: '*', escape: '@', subcomponent: '%' };
    expect(unescape(hash, 'a@F@b@S@c@E@')).toBe('a#b$c@');
  });

  it('decodes \\X..\\ as UTF-8 when it is valid UTF-8, else as Latin-1', () => {
    expect(unescape(d, 'Jos\\XC3A9\\')).toBe('José');
    expect(unescape(d, 'Jos\\XE9\\')).toBe('José');
    expect(unescape(d, '\\X41420D\\')).toBe('AB\r');
  });

  it('drops highlighting, makes a line break a space, keeps unknown or unclosed escapes as written', () => {
    expect(unescape(d, 'a\\H\\b\\N\\c')).toBe('abc');
    expect(unescape(d, 'line one\\.br\\line two')).toBe('line one line two');
    expect(unescape(d, 'x\\.in+4\\y')).toBe('xy');
    expect(unescape(d, 'C:\\Q9\\dir')).toBe('C:\\Q9\\dir');
    expect(unescape(d, 'a\\XZZ\\b')).toBe('a\\XZZ\\b');
    expect(unescape(d, 'tail\\F')).toBe('tail\\F');
  });

  it('reads HL7’s explicit null "" as empty', () => {
    const seg = parseMessage('MSH|^~\\&|A\rPID|1||""').segments[1]!;
    expect(value(d, seg, 3)).toBe('');
  });
});

describe('readMessage: a Z22 VXU', () => {
  const r = readMessage(fixture('read-vxu-z22.hl7'), 7);
  const m = accepted(r);

  it('reads the header, with MSH-3…6 as written for the ACK to echo', () => {
    expect(r.line).toBe(7);
    expect(m.kind).toBe('VXU');
    expect(m.header).toMatchObject({
      sendingApplication: 'MYEHR',
      sendingFacility: 'NORTHCLINIC^2.16.840.1.113883.3.9999.1^ISO',
      receivingApplication: 'IIS',
      messageType: 'VXU',
      triggerEvent: 'V04',
      structure: 'VXU_V04',
      controlId: 'NC-20240611-0001',
      processingId: 'P',
      version: '2.5.1',
      profiles: ['Z22'],
      dateTime: '20240611093000-0400',
    });
    expect(m.warnings).toEqual([]);
  });

  it('reads every PID-3, with CX-4.2 when CX-4.1 is empty', () => {
    expect(m.person.identifiers).toEqual([
      { value: 'NC48213', authority: 'MYEHR', type: 'MR' },
      { value: '123456789', authority: '2.16.840.1.113883.4.1', type: 'SS' },
    ]);
  });

  it('reads the legal name and the alias, undoing \\T\\ and \\X..\\ (UTF-8 and Latin-1)', () => {
    expect(m.person.names).toEqual([
      { family: 'Dell&Ruiz', given: 'María', middle: 'Lucía', suffix: 'Jr', type: 'L' },
      { family: 'Dell', given: 'Maria', middle: '', suffix: '', type: 'A' },
    ]);
    expect(m.person.mothersMaidenName).toBe('Quintero');
  });

  it('reads both addresses, undoing \\F\\ \\R\\ \\E\\', () => {
    expect(m.person.addresses).toEqual([
      { street: '12|B Harbor Way', street2: 'Unit 3~4\\5', city: 'Eastport', state: 'ME', zip: '04631', type: 'H' },
      { street: 'PO Box 9', street2: '', city: 'Eastport', state: 'ME', zip: '04631', type: 'M' },
    ]);
  });

  it('reads PID-13 and PID-14 phones (area code + number, or XTN-1) and skips the e-mail', () => {
    expect(m.person.phones).toEqual([
      { number: '2075550142', use: 'PRN', equipment: 'PH' },
      { number: '(207)555-0199', use: 'WPN', equipment: 'PH' },
    ]);
  });

  it('reads birth date, sex and the multiple birth fields as written', () => {
    expect(m.person).toMatchObject({ birthDate: '20190304', sex: 'F', multipleBirth: 'N', birthOrder: '1' });
  });
});

describe('readMessage: Z34 and Z44 queries', () => {
  it('reads a Z34 QBP written with CRLF: query, tag, limit and the person from QPD-3…QPD-11', () => {
    const m = accepted(readMessage(fixture('read-qbp-z34.hl7'), 1));
    if (m.kind !== 'QBP') expect.fail('not a QBP');
    expect(m.query).toEqual({ name: 'Z34', tag: 'NCQ-7731', nameField: 'Z34^Request Immunization History^CDCPHINVS', quantityLimit: 5 });
    expect(m.person).toEqual({
      identifiers: [
        { value: 'NC51877', authority: 'MYEHR', type: 'MR' },
        { value: '987654321', authority: 'SSA', type: 'SS' },
      ],
      names: [{ family: 'Brightwater', given: 'Theo', middle: 'Amos', suffix: '', type: 'L' }],
      mothersMaidenName: 'Lindqvist',
      birthDate: '20210915',
      sex: 'M',
      addresses: [{ street: '88 Orchard Ln', street2: '', city: 'Milltown', state: 'VT', zip: '05001', type: 'H' }],
      phones: [{ number: '8025550177', use: 'PRN', equipment: 'PH' }],
      multipleBirth: 'N',
      birthOrder: '',
    });
    expect(m.warnings).toEqual([]);
  });

  it('reads a Z44 QBP written with LF, processing id T, no identifier (QPD-3 is RE)', () => {
    const m = accepted(readMessage(fixture('read-qbp-z44.hl7'), 1));
    if (m.kind !== 'QBP') expect.fail('not a QBP');
    expect(m.header).toMatchObject({ processingId: 'T', profiles: ['Z44'] });
    expect(m.query).toMatchObject({ name: 'Z44', tag: 'NCQ-7732', quantityLimit: 1 });
    expect(m.person).toMatchObject({ identifiers: [], birthDate: '20230102', multipleBirth: 'Y', birthOrder: '2' });
    expect(m.person.phones).toEqual([{ number: '5415550110', use: 'PRN', equipment: 'CP' }]);
    expect(m.warnings).toEqual([]);
  });

  it('takes the query name from MSH-21 when QPD-1 is empty, with a warning', () => {
    const m = accepted(readMessage([MSH_QBP, 'QPD||T1||Ng^Bo^^^^^L||20200101'].join('\r'), 1));
    if (m.kind !== 'QBP') expect.fail('not a QBP');
    expect(m.query).toEqual({ name: 'Z34', tag: 'T1', nameField: 'Z34' });
    expect(m.warnings).toEqual([expect.objectContaining({ code: 101, severity: 'W', location: expect.objectContaining({ segment: 'QPD', field: 1 }) })]);
  });
});

describe('readMessage: a message that declares # as its field separator', () => {
  it('reads it, with | as plain data in a name', () => {
    const m = accepted(readMessage(fixture('read-vxu-hash.hl7'), 1));
    expect(m.header.delimiters.field).toBe('#');
    expect(m.header).toMatchObject({ messageType: 'VXU', controlId: 'NC-H-0001', profiles: ['Z22'] });
    expect(m.person.names[0]).toMatchObject({ family: 'Ferreira|Lopes', given: 'Joana' });
    expect(m.person.identifiers).toEqual([{ value: 'NC60012', authority: 'MYEHR', type: 'MR' }]);
    expect(m.person.phones[0]?.number).toBe('4015550123');
  });
});

describe('readMessage: refusals and warnings', () => {
  const codes = (r: ReadMessage) => refused(r).errors.map((e) => `${e.severity}${e.code} ${e.location?.segment ?? ''}${e.location?.field ? `-${e.location.field}` : ''}`);

  it('refuses text that is not an HL7 message (AR 100) or whose MSH separators are unusable (AR 102)', () => {
    expect(refused(readMessage('hello', 1))).toMatchObject({ ack: 'AR', header: {} });
    expect(codes(readMessage('hello', 1))).toEqual(['E100 MSH']);
    expect(codes(readMessage('MSHA^~\\&A', 1))).toEqual(['E102 MSH-1']);
  });

  it('refuses a truncated MSH (AR 101 at each missing field) and echoes the control id it could read', () => {
    const r = refused(readMessage('MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101||VXU^V04^VXU_V04|CTL-9', 1));
    expect(r.ack).toBe('AR');
    expect(r.header.controlId).toBe('CTL-9');
    expect(codes(r)).toEqual(['E101 MSH-11', 'E101 MSH-12']);
    expect(codes(readMessage('MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101', 1))).toEqual(['E101 MSH-9', 'E101 MSH-10', 'E101 MSH-11', 'E101 MSH-12']);
  });

  it('refuses other message types (200), events (201), processing ids (202) and versions (203), all AR', () => {
    const msh = (type: string, proc = 'P', version = '2.5.1') => `MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101||${type}|CTL-2|${proc}|${version}\rPID|1||X^^^A^MR`;
    expect(codes(readMessage(msh('ADT^A01^ADT_A01'), 1))).toEqual(['E200 MSH-9']);
    expect(codes(readMessage(msh('VXU^V05^VXU_V04'), 1))).toEqual(['E201 MSH-9']);
    expect(codes(readMessage(msh('QBP^Q11^QBP_Q13'), 1))).toEqual(['E201 MSH-9']);
    expect(codes(readMessage(msh('VXU^V04^VXU_V04', 'X'), 1))).toEqual(['E202 MSH-11']);
    expect(codes(readMessage(msh('VXU^V04^VXU_V04', 'P', '2.3.1'), 1))).toEqual(['E203 MSH-12']);
    expect(refused(readMessage(msh('VXU^V04^VXU_V04', 'P', '2.3.1'), 1)).ack).toBe('AR');
    expect(accepted(readMessage(msh('VXU^V04', 'D', '2.5'), 1)).header.structure).toBe('');
  });

  it('refuses a VXU without PID (AE 100 at PID)', () => {
    const r = refused(readMessage(vxu('ORC|RE||1^X', 'RXA|0|1|20240101'), 1));
    expect(r.ack).toBe('AE');
    expect(r.header.controlId).toBe('CTL-1');
    expect(codes(r)).toEqual(['E100 PID']);
  });

  it('refuses a PID with neither name nor identifier (AE 101); a missing name or identifier alone is a warning', () => {
    expect(codes(readMessage(vxu('PID|1||||||20200101|F'), 1))).toEqual(['E101 PID-5']);
    expect(accepted(readMessage(vxu('PID|1||||Ng^Bo||20200101|F'), 1)).warnings.map((w) => `${w.severity}${w.code} PID-${w.location?.field}`)).toEqual(['W101 PID-3']);
    expect(accepted(readMessage(vxu('PID|1||X1^^^A^MR||||20200101|F'), 1)).warnings.map((w) => `${w.severity}${w.code} PID-${w.location?.field}`)).toEqual(['W101 PID-5']);
  });

  it('warns, without the value, about a birth date that is missing or not a date and coded fields out of range', () => {
    const warnings = (pid: string) => accepted(readMessage(vxu(pid), 1)).warnings;
    expect(warnings('PID|1||X1^^^A^MR||Ng^Bo')).toEqual([{ code: 101, severity: 'W', location: { segment: 'PID', sequence: 1, field: 7 }, message: 'PID-7 is required and missing' }]);
    const bad = warnings('PID|1||X1^^^A^MR||Ng^Bo||20190231|F||||||||||||||||Q|first');
    expect(bad.map((w) => `${w.code} PID-${w.location?.field}`)).toEqual(['102 PID-7', '103 PID-24', '102 PID-25']);
    expect(bad[0]!.message).toBe('PID-7 is not a date');
    expect(JSON.stringify(bad)).not.toContain('20190231');
  });

  it('knows an HL7 date from a non-date', () => {
    expect(['2019', '201903', '20190304', '20190304123000-0500', '20200229'].every(isHl7Date)).toBe(true);
    expect(['', '2019-03-04', '20190230', '20190013', '03/04/2019', '20210229'].some(isHl7Date)).toBe(false);
  });

  it('refuses a QBP without QPD (AE 100), without query tag (AE 101 at QPD-2), or with another query (AE 103 at QPD-1)', () => {
    expect(codes(readMessage([MSH_QBP, 'RCP|I|5^RD&records&HL70126'].join('\r'), 1))).toEqual(['E100 QPD']);
    expect(codes(readMessage([MSH_QBP, 'QPD|Z34^Request Immunization History^CDCPHINVS||X1^^^A^MR|Ng^Bo||20200101'].join('\r'), 1))).toEqual(['E101 QPD-2']);
    expect(codes(readMessage([MSH_QBP, 'QPD|Z99^Something^CDCPHINVS|T1|X1^^^A^MR|Ng^Bo||20200101'].join('\r'), 1))).toEqual(['E103 QPD-1']);
    const noQueryName = 'MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101||QBP^Q11^QBP_Q11|CTL-Q|P|2.5.1\rQPD||T1|X1^^^A^MR|Ng^Bo||20200101';
    expect(codes(readMessage(noQueryName, 1))).toEqual(['E101 QPD-1']);
    expect(codes(readMessage([MSH_QBP, 'QPD|Z34^Request Immunization History^CDCPHINVS|T1'].join('\r'), 1))).toEqual(['E101 QPD-4', 'W101 QPD-6']);
  });

  it('warns about a quantity limit that is not a whole number and leaves it out', () => {
    const m = accepted(readMessage([MSH_QBP, 'QPD|Z34|T1||Ng^Bo||20200101', 'RCP|I|many^RD&records&HL70126'].join('\r'), 1));
    if (m.kind !== 'QBP') expect.fail('not a QBP');
    expect(m.query.quantityLimit).toBeUndefined();
    expect(m.warnings.map((w) => `${w.code} ${w.location?.segment}-${w.location?.field}`)).toEqual(['102 RCP-2']);
  });

  it('never throws, whatever the text', () => {
    for (const text of ['', '\u0000', 'MSH', 'MSH|', 'MSH|^~\\&', 'MSH|^~\\&|\r\r\r', 'MSH|^~\\&|||||||VXU^V04|1|P|2.5.1\rPID', '\\X\\']) {
      expect(() => readMessage(text, 1)).not.toThrow();
    }
  });
});

describe('readBatch', () => {
  it('splits bare messages at each MSH and re-joins each with CR', () => {
    const b = readBatch(`${MSH_VXU}\nPID|1||X1^^^A^MR||Ng^Bo||20200101\n${MSH_QBP}\nQPD|Z34|T1\n`);
    expect(b.envelope).toBe('bare');
    expect(b.problems).toEqual([]);
    expect(b.messages.map((m) => m.line)).toEqual([1, 3]);
    expect(b.messages[0]!.text).toBe(`${MSH_VXU}\rPID|1||X1^^^A^MR||Ng^Bo||20200101\r`);
    expect(b.batchHeader).toBeUndefined();
  });

  it('reads a file envelope with two batches, BOM, mixed line ends, blank lines and trailing whitespace; the twins come out as twins', () => {
    const b = readBatch(fixture('read-file-twins.hl7'));
    expect(b.envelope).toBe('file');
    expect(b.problems).toEqual([]);
    // The blank line after the first BTS counts: the second batch's message is at line 11, not 10.
    expect(b.messages.map((m) => m.line)).toEqual([3, 6, 11]);
    expect(b.messages.every((m) => !/\n/.test(m.text) && m.text.endsWith('\r'))).toBe(true);
    expect(b.batchHeader).toEqual({
      sendingApplication: 'MYEHR',
      sendingFacility: 'NORTHCLINIC^2.16.840.1.113883.3.9999.1^ISO',
      receivingApplication: 'IIS',
      receivingFacility: 'STATEIIS',
      controlId: 'B-0001',
    });
    const people = b.messages.map((m) => accepted(readMessage(m.text, m.line)));
    expect(people.map((m) => [m.person.names[0]?.given, m.person.multipleBirth, m.person.birthOrder])).toEqual([
      ['Pia', 'Y', '1'],
      ['Liv', 'Y', '2'],
      ['Theo', 'N', ''],
    ]);
    expect(people[2]!.kind).toBe('QBP');
  });

  it('notes wrong BTS-1 and FTS-1 counts with their lines and loses no message', () => {
    const text = ['FHS|^~\\&', 'BHS|^~\\&', MSH_VXU, 'PID|1||X1', MSH_VXU, 'PID|1||X2', 'BTS|3', 'FTS|2'].join('\r');
    const b = readBatch(text);
    expect(b.messages).toHaveLength(2);
    expect(b.problems).toEqual([
      { line: 7, message: 'BTS-1 says 3, the batch holds 2 message(s)' },
      { line: 8, message: 'FTS-1 says 2, the file holds 1 batch(es)' },
    ]);
    expect(readBatch(text.replace('BTS|3', 'BTS|two')).problems[0]).toEqual({ line: 7, message: 'BTS-1 is not a number; the batch holds 2 message(s)' });
    expect(readBatch(text.replace('BTS|3', 'BTS|2').replace('FTS|2', 'FTS|1')).problems).toEqual([]);
  });

  it('notes a missing BTS or FTS, and leaves an empty count unchecked', () => {
    expect(readBatch(['BHS|^~\\&', MSH_VXU, 'PID|1||X1'].join('\n'))).toMatchObject({
      envelope: 'batch',
      messages: [{ line: 2 }],
      problems: [{ line: 1, message: 'the batch that begins at line 1 has no BTS' }],
    });
    expect(readBatch(['FHS|^~\\&', 'BHS|^~\\&', MSH_VXU, 'BTS'].join('\n')).problems).toEqual([{ line: 1, message: 'the file that begins at line 1 has no FTS' }]);
    expect(readBatch(['FHS|^~\\&', 'BHS|^~\\&', MSH_VXU, 'FTS|1'].join('\n')).problems).toEqual([{ line: 2, message: 'the batch that begins at line 2 has no BTS' }]);
  });

  it('splits BTS with the separator its BHS declared', () => {
    const b = readBatch(['BHS#^~\\&#EHR#CLINIC#IIS#STATE#20240101####B-7', MSH_VXU, 'BTS#1'].join('\r'));
    expect(b.problems).toEqual([]);
    expect(b.batchHeader).toMatchObject({ sendingApplication: 'EHR', controlId: 'B-7' });
  });

  it('keeps junk before the first header out of any message, and a non-segment line inside a message in it', () => {
    const b = readBatch(['garbage', 'more garbage', MSH_VXU, 'PID|1||X1^^^A^MR||Ng^Bo||20200101', 'continued line'].join('\r\n'));
    expect(b.problems).toEqual([
      { line: 1, message: 'line 1 is not part of any message' },
      { line: 2, message: 'line 2 is not part of any message' },
    ]);
    expect(b.messages).toEqual([{ line: 3, text: `${MSH_VXU}\rPID|1||X1^^^A^MR||Ng^Bo||20200101\rcontinued line\r` }]);
    // The reader judges the stray line: a warning, and the message is still taken.
    const m = accepted(readMessage(b.messages[0]!.text, 3));
    expect(m.warnings.map((w) => w.code)).toEqual([100]);
  });

  it('notes a file with no message at all', () => {
    expect(readBatch('')).toEqual({ envelope: 'bare', messages: [], problems: [{ line: 1, message: 'the file holds no MSH, BHS or FHS segment' }] });
    expect(readBatch('\ufeff\r\n  \r\n').messages).toEqual([]);
  });
});

describe('a batch of bad messages among good ones', () => {
  const b = readBatch(fixture('read-batch-bad.hl7'));
  const reads = b.messages.map((m) => readMessage(m.text, m.line));
  const summary = (r: ReadMessage) =>
    r.ok ? `${r.line} ok ${r.message.kind}` : `${r.line} ${r.ack} ${r.header.controlId ?? ''} ${r.errors.map((e) => `${e.severity}${e.code}@${e.location?.segment ?? ''}${e.location?.field ? `-${e.location.field}` : ''}`).join(' ')}`;

  it('notes the junk first line and the miscount, and hands on every message', () => {
    expect(b.envelope).toBe('batch');
    expect(b.problems).toEqual([
      { line: 1, message: 'line 1 is not part of any message' },
      { line: 19, message: 'BTS-1 says 6, the batch holds 7 message(s)' },
    ]);
    expect(b.messages).toHaveLength(7);
  });

  it('refuses each bad message with its own code and location; the good ones around them are read in full', () => {
    expect(reads.map(summary)).toEqual([
      '3 ok VXU',
      '5 AR  E101@MSH-9 E101@MSH-10 E101@MSH-11 E101@MSH-12', // truncated MSH
      '6 AR BAD-ADT E200@MSH-9', // ADT^A01
      '8 AE BAD-NOPID E100@PID', // VXU without PID
      '11 AE BAD-NOTAG E101@QPD-2', // QBP without query tag
      // MSH declares # but the PID uses |: the PID line has no segment id the reader can see,
      // so the message has no PID (AE 100), with a warning saying why.
      '14 AE BAD-SEP W100@ E100@PID',
      '16 ok QBP',
    ]);
    const first = accepted(reads[0]!);
    expect(first.person.names[0]).toMatchObject({ family: 'Dell&Ruiz', given: 'María' });
    const last = accepted(reads[6]!);
    expect(last.person.names[0]).toMatchObject({ family: 'Okafor', given: 'Nneka' });
  });

  it('says which field is wrong without echoing the person', () => {
    const text = JSON.stringify(reads.filter((r) => !r.ok));
    expect(text).not.toMatch(/Ng|NC3|20200101/);
  });
});

describe('segmentsOf', () => {
  it('finds every segment of an id, in order', () => {
    const msg = parseMessage(fixture('read-vxu-z22.hl7'));
    expect(segmentsOf(msg, 'OBX').map((s) => field(s, 1))).toEqual(['1', '2', '3', '4']);
    expect(value(msg.delimiters, segmentsOf(msg, 'RXA')[0], 5, 2)).toBe('MMR');
  });
});
