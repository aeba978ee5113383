import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadPartnerPipeline, parsePipeline } from '../src/pipeline/index.ts';

const VALID = `
partner: p1
displayName: P One
columns:
  recordId: [id]
  given: first
  family: [last]
  birthDate: [dob]
group: { id: p1-group, name: P One, mode: replace }
`;

describe('pipeline files', () => {
  it('applies documented defaults', () => {
    const p = parsePipeline(VALID, 'p1.yaml');
    expect(p.file).toEqual({ namePattern: '*', encoding: 'utf-8', delimiter: ',' });
    expect(p.columns.given).toEqual(['first']);
    expect(p.thresholds).toEqual({ match: 18, possible: 6 });
    expect(p.dates.birthDate).toEqual(['YYYY-MM-DD']);
  });

  it.each([
    ['an unknown key', `${VALID}colums: {}\n`, /PIPELINE_INVALID: \(top level\): .*colums/],
    ['a bad mode', VALID.replace('mode: replace', 'mode: merge'), /field "group\.mode"/],
    ['an unknown encoding', `${VALID}file: { encoding: latin-9 }\n`, /field "file\.encoding"/],
    ['no birth date column', VALID.replace('  birthDate: [dob]\n', ''), /columns\.birthDate is required/],
    ['thresholds upside down', `${VALID}thresholds: { match: 5, possible: 10 }\n`, /thresholds: possible must be below match/],
    ['equal thresholds', `${VALID}thresholds: { match: 10, possible: 10 }\n`, /thresholds: possible must be below match/],
    ['a match threshold no score reaches', `${VALID}thresholds: { match: 1e308, possible: 6 }\n`, /thresholds\.match: must be between 1 and 60 \(log2 odds\).*field "thresholds\.match"/],
    ['a negative possible threshold', `${VALID}thresholds: { match: 18, possible: -50 }\n`, /field "thresholds\.possible"/],
    ['a margin of a million bits', `${VALID}thresholds: { match: 18, possible: 6, margin: 1e6 }\n`, /thresholds\.margin: must be between 1 and 30/],
    ['a line feed as delimiter', `${VALID}file: { delimiter: "\\n" }\n`, /file\.delimiter: a line break cannot separate cells.*field "file\.delimiter"/],
    ['a carriage return as delimiter', `${VALID}file: { delimiter: "\\r" }\n`, /file\.delimiter: a line break/],
    ['the quote character as delimiter', `${VALID}file: { delimiter: '"' }\n`, /file\.delimiter: the quote character cannot separate cells/],
    ['a letter as delimiter', `${VALID}file: { delimiter: x }\n`, /file\.delimiter: a letter, digit or control character/],
    ['two fields at one column position', VALID.replace('given: first', 'given: { column: 2 }').replace('family: [last]', 'family: { column: 2 }'), /columns\.family: column 2 is already columns\.given/],
    ['an unknown logical field', VALID.replace('recordId: [id]', 'recordId: [id]\n  shoeSize: [shoe]'), /columns: .*shoeSize/],
    ['a bad date format', `${VALID}dates: { birthDate: ['YYYY-QQ-DD'] }\n`, /dates\.birthDate\.0/],
    ['broken YAML', 'partner: [p1\n', /PIPELINE_INVALID: not valid YAML \(bad\.yaml/],
    ['an identifier column with no system', VALID.replace('recordId: [id]', 'recordId: [id]\n  identifier: [ssn]'), /columns\.identifier: an identifier column needs its system: use identifiers: /],
    ['an identifier of an unknown kind', `${VALID}identifiers: [{ columns: [ssn], system: "http://hl7.org/fhir/sid/us-ssn", kind: sin }]\n`, /field "identifiers\.0\.kind"/],
    ['an identifier on a column a field has', VALID.replace('given: first', 'given: { column: 2 }') + 'identifiers: [{ columns: { column: 2 }, system: "urn:x" }]\n', /identifiers\.0\.columns: column 2 is already columns\.given/],
  ])('names the key for %s', (_label, text, error) => {
    expect(() => parsePipeline(text, 'bad.yaml')).toThrow(error);
  });

  it('accepts a tab delimiter, the UTF-16 encodings and a column position', () => {
    const p = parsePipeline(`${VALID.replace('given: first', 'given: { column: 2 }')}file: { delimiter: "\\t", encoding: utf-16le }\n`, 'p1.yaml');
    expect(p.file).toMatchObject({ delimiter: '\t', encoding: 'utf-16le' });
    expect(p.columns.given).toEqual({ column: 2 });
    expect(parsePipeline(`${VALID}file: { encoding: utf-16be }\n`, 'p1.yaml').file.encoding).toBe('utf-16be');
  });

  it('reads identifier columns with their system and kind, generic by default', () => {
    const p = parsePipeline(`${VALID}identifiers:\n  - { columns: [SSN, Social], system: "http://hl7.org/fhir/sid/us-ssn", kind: ssn }\n  - { columns: [Medicaid ID], system: "urn:oid:2.16.840.1.113883.3.9999.5", name: medicaid }\n`, 'p1.yaml');
    expect(p.identifiers).toEqual([
      { columns: ['SSN', 'Social'], system: 'http://hl7.org/fhir/sid/us-ssn', kind: 'ssn' },
      { columns: ['Medicaid ID'], system: 'urn:oid:2.16.840.1.113883.3.9999.5', kind: 'generic', name: 'medicaid' },
    ]);
    expect(parsePipeline(VALID, 'p1.yaml').identifiers).toEqual([]);
  });

  it('loads every shipped pipeline', async () => {
    for (const f of await fs.readdir('pipelines')) {
      const partner = f.replace(/\.yaml$/, '');
      expect((await loadPartnerPipeline('pipelines', partner)).partner).toBe(partner);
    }
  });

  it('refuses a pipeline file that belongs to another partner', async () => {
    await expect(loadPartnerPipeline('pipelines', 'nobody')).rejects.toThrow(/PIPELINE_NOT_FOUND/);
  });
});

const V2 = `
partner: p2
displayName: P Two
format: hl7v2
hl7v2:
  sendingFacility: PTWO
  vxu: add
  qbp: ignore
  identifiers:
    - { type: SS, system: "http://hl7.org/fhir/sid/us-ssn", kind: ssn }
group: { id: p2-group, name: P Two, mode: append }
`;

describe('HL7 v2 pipeline files (issue 13)', () => {
  it('take the feed settings with their defaults, and no columns', () => {
    const p = parsePipeline(V2, 'p2.yaml');
    expect(p.format).toBe('hl7v2');
    expect(p.hl7v2).toEqual({
      sendingFacility: 'PTWO',
      vxu: 'add',
      qbp: 'ignore',
      recordId: { type: 'MR' },
      identifiers: [{ type: 'SS', system: 'http://hl7.org/fhir/sid/us-ssn', kind: 'ssn' }],
      groupIdInResponse: false,
      patientIdAuthority: 'IIS-FHIR',
    });
    expect(parsePipeline(VALID, 'p1.yaml').format).toBe('delimited');
  });

  it.each([
    ['no hl7v2 settings', V2.replace(/hl7v2:\n[\s\S]*?group:/, 'group:'), /hl7v2: format: hl7v2 needs hl7v2/],
    ['no policy for queries', V2.replace('  qbp: ignore\n', ''), /field "hl7v2\.qbp"/],
    ['a policy that is neither add nor ignore', V2.replace('qbp: ignore', 'qbp: maybe'), /field "hl7v2\.qbp"/],
    ['a Group that V2 would empty', V2.replace('mode: append', 'mode: replace'), /group\.mode: an HL7 v2 feed only adds people/],
    ['roster columns', `${V2}columns: { recordId: [id] }\n`, /columns: an HL7 v2 pipeline has no columns/],
    ['roster identifier columns', `${V2}identifiers: [{ columns: [SSN], system: x }]\n`, /identifiers: for HL7 v2, say which PID-3/],
    ['an identifier type that is no code', V2.replace('type: SS', 'type: ssn'), /field "hl7v2\.identifiers\.0\.type"/],
    ['hl7v2 settings on a roster pipeline', `${VALID}hl7v2: { sendingFacility: X, vxu: add, qbp: add }\n`, /hl7v2: hl7v2 settings need format: hl7v2/],
  ])('refuses %s', (_, text, error) => {
    expect(() => parsePipeline(text, 'p.yaml')).toThrow(error);
  });
});
