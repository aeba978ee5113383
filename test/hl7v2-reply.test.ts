/**
 * The write side of HL7 v2 immunization messaging: escaping, ACK (Z23), RSP (Z31, Z32, Z33, Z42),
 * the reply batch, and the FHIR → PID/RXA mappers. Expected segments follow the CDC IG's and the
 * NIST immunization test tool's example messages (Release 1.5).
 */
import { describe, expect, it } from 'vitest';
import { readBatch } from '../src/hl7v2/batch.ts';
import { escapeText, headerSegment, repeat, segment, transcode } from '../src/hl7v2/encode.ts';
import { authorityOf, hl7Date, replyImmunization, replyPatient, type FhirImmunizationJson, type FhirPatientJson } from '../src/hl7v2/from-fhir.ts';
import { FORECAST_NOT_PROVIDED, ack, hl7Timestamp, replyBatch, requestQpd, rsp, rspOutcome, type RspInput } from '../src/hl7v2/reply.ts';
import { readMessage } from '../src/hl7v2/read.ts';
import { DEFAULT_DELIMITERS, type Delimiters, type MessageHeader, type V2ReplyPatient } from '../src/hl7v2/types.ts';
import { parseIsoDate } from '../src/samples/dates.ts';
import { immunizationLine, patientLine } from '../src/samples/fhir.ts';
import { immunizationHistory } from '../src/samples/immunizations.ts';
import { generatePopulation } from '../src/samples/population.ts';
import { Rng } from '../src/samples/random.ts';

const NOW = new Date('2024-03-05T14:07:09.500Z');
const TS = '20240305140709+0000';

const VXU_HEADER: MessageHeader = {
  delimiters: DEFAULT_DELIMITERS,
  sendingApplication: 'NISTEHRAPP',
  sendingFacility: 'NISTEHRFAC',
  receivingApplication: 'NISTIISAPP',
  receivingFacility: 'NISTIISFAC',
  dateTime: '20150624073734-0500',
  messageType: 'VXU',
  triggerEvent: 'V04',
  structure: 'VXU_V04',
  controlId: 'NIST-IZ-AD-1.1_Send_V04_Z22',
  processingId: 'P',
  version: '2.5.1',
  profiles: ['Z22'],
};

const QBP_HEADER: MessageHeader = {
  ...VXU_HEADER,
  messageType: 'QBP',
  triggerEvent: 'Q11',
  structure: 'QBP_Q11',
  controlId: 'NIST-IZ-QR-4.1_Query_Q11_Z44',
  profiles: ['Z44'],
};

const Z44_QPD =
  'QPD|Z44^Request Evaluated History and Forecast^CDCPHINVS|IZ-4.1-2015|412299^^^NIST-MPI-1^MR|Smith^James^^^^^L||20110905|M|22 East Branch Way^^Livingston^MT^59047^^P|^PRN^PH^^^406^5556285';
const Z34_QPD = 'QPD|Z34^Request Immunization History^CDCPHINVS|Q-77|123456^^^MYEHR^MR|Child^Bobbie^Q^^^^L|Que^Suzy^^^^^M|20050512|M';

const segs = (text: string): string[] => text.split('\r');
const ids = (text: string): string[] => segs(text).map((s) => s.slice(0, 3));
const field = (seg: string, n: number): string => seg.split('|')[n] ?? '';
/** MSH-n: MSH-1 is the separator itself, so MSH-2 is the first item after the split. */
const msh = (text: string, n: number): string => field(segs(text)[0]!, n - 1);

function patient(over: Partial<V2ReplyPatient> = {}): V2ReplyPatient {
  return {
    identifiers: [
      { value: 'pat-0001', authority: 'RMIIS', type: 'PI' },
      { value: '34500907', authority: '2.16.840.1.113883.3.9999.1', type: 'SR' },
    ],
    name: { family: 'Smith', given: 'James', middle: 'A', suffix: 'Jr', type: 'L' },
    mothersMaidenName: 'Bell',
    birthDate: '20110905',
    sex: 'M',
    address: { street: '22 East Branch Way', street2: '', city: 'Livingston', state: 'MT', zip: '59047', type: 'L' },
    phone: '(406) 555-6285',
    multipleBirth: 'Y',
    birthOrder: '2',
    immunizations: [
      {
        date: '20151029',
        cvx: { code: '140', display: 'Influenza, seasonal, injectable, preservative free' },
        amount: '0.5',
        units: 'mL',
        informationSource: '00',
        lotNumber: 'L0T-1',
        manufacturer: { code: 'SKB', display: 'GlaxoSmithKline' },
        completionStatus: 'CP',
        route: { code: 'IM', display: 'Intramuscular' },
        site: { code: 'LD', display: 'Left Deltoid' },
        fillerOrder: { id: 'pat-0001-1', authority: 'RMIIS' },
      },
      { date: '20160101', cvx: { code: '08', display: 'Hep B, adolescent or pediatric' }, amount: '999', units: '', informationSource: '01', lotNumber: '', completionStatus: 'CP' },
    ],
    ...over,
  };
}

function query(over: Partial<RspInput> = {}): RspInput {
  return {
    request: QBP_HEADER,
    query: { name: 'Z44', tag: 'IZ-4.1-2015', nameField: 'Z44^Request Evaluated History and Forecast^CDCPHINVS' },
    qpd: Z44_QPD,
    result: { kind: 'not-found' },
    controlId: 'RM-2',
    now: NOW,
    ...over,
  };
}

describe('escapeText', () => {
  it('escapes the escape character first, then field, component, repetition and subcomponent separators', () => {
    expect(escapeText('a|b^c~d\\e&f')).toBe('a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f');
    // An escape sequence in the data is data: it is not left to be decoded by the receiver.
    expect(escapeText('\\F\\')).toBe('\\E\\F\\E\\');
  });

  it('turns line breaks and other control characters into one space each run', () => {
    expect(escapeText('line one\r\nline two\nthree\r\x0bfour\x1cend')).toBe('line one line two three four end');
  });

  it('uses the delimiters it is given', () => {
    const d: Delimiters = { field: '#', component: '$', repetition: '*', escape: '!', subcomponent: '%' };
    expect(escapeText('a#b$c*d!e%f|^', d)).toBe('a!F!b!S!c!R!d!E!e!T!f|^');
  });
});

describe('segments', () => {
  it('writes components, subcomponents and repetitions and drops trailing empties', () => {
    expect(segment('PID', ['1', '', repeat([['1', '', '', 'A&B', 'MR'], ['2', '', '', ['', '1.2.3', 'ISO'], 'SR']]), '', ['X^Y', 'Z', '', '', '', '', 'L'], '', '', ''])).toBe(
      'PID|1||1^^^A\\T\\B^MR~2^^^&1.2.3&ISO^SR||X\\S\\Y^Z^^^^^L',
    );
  });

  it('writes MSH-1 and MSH-2 unescaped', () => {
    expect(headerSegment('MSH', ['APP', 'FAC'])).toBe('MSH|^~\\&|APP|FAC');
    expect(headerSegment('BHS', [])).toBe('BHS|^~\\&');
  });

  it('carries encoded text into other delimiters, keeping escape sequences and escaping new separators', () => {
    const from: Delimiters = { field: '#', component: '$', repetition: '*', escape: '!', subcomponent: '%' };
    expect(transcode('QPD#Z34$Name$CDCPHINVS#T|1#A!F!B*C%D', from)).toBe('QPD|Z34^Name^CDCPHINVS|T\\F\\1|A\\F\\B~C&D');
    expect(transcode(Z44_QPD, DEFAULT_DELIMITERS)).toBe(Z44_QPD);
    // One field: a field separator cannot split it.
    expect(transcode('A|B^C', DEFAULT_DELIMITERS, DEFAULT_DELIMITERS, 'field')).toBe('A\\F\\B^C');
  });

  it('writes MSH-7 in UTC to the second with the zone', () => {
    expect(hl7Timestamp(NOW)).toBe(TS);
  });
});

describe('ack (Z23)', () => {
  it('AA: MSH with the ends swapped and MSA, no ERR', () => {
    expect(segs(ack({ request: VXU_HEADER, code: 'AA', errors: [], controlId: 'RM-1', now: NOW }))).toEqual([
      `MSH|^~\\&|NISTIISAPP|NISTIISFAC|NISTEHRAPP|NISTEHRFAC|${TS}||ACK^V04^ACK|RM-1|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS`,
      'MSA|AA|NIST-IZ-AD-1.1_Send_V04_Z22',
    ]);
  });

  it('AE: one ERR per error with location, 0357 and 0533 codes, severity and escaped message', () => {
    const text = ack({
      request: VXU_HEADER,
      code: 'AE',
      errors: [
        { code: 103, severity: 'E', location: { segment: 'RXA', sequence: 1, field: 5, component: 1 }, message: 'Vaccine code not recognized - message rejected' },
        { code: 101, severity: 'W', location: { segment: 'PID', sequence: 1, field: 11, repetition: 2 }, message: 'Address | city ^ missing & ignored ~ \\' },
        { code: 207, severity: 'I', message: 'Line one\r\nline two' },
      ],
      controlId: 'RM-1',
      now: NOW,
    });
    expect(segs(text).slice(1)).toEqual([
      'MSA|AE|NIST-IZ-AD-1.1_Send_V04_Z22',
      'ERR||RXA^1^5^1^1|103^Table value not found^HL70357|E|5^Table value not found^HL70533|||Vaccine code not recognized - message rejected',
      'ERR||PID^1^11^2|101^Required field missing^HL70357|W|7^Required data missing^HL70533|||Address \\F\\ city \\S\\ missing \\T\\ ignored \\R\\ \\E\\',
      'ERR|||207^Application internal error^HL70357|I||||Line one line two',
    ]);
  });

  it('AR on a header read only in part: MSA-2 empty, processing id P, trigger V04', () => {
    const text = ack({
      request: { sendingApplication: 'EHR', processingId: 'X' },
      code: 'AR',
      errors: [{ code: 203, severity: 'E', location: { segment: 'MSH', sequence: 1, field: 12 }, message: 'Version ID not recognized - message rejected' }],
      controlId: 'RM-9',
      now: NOW,
      sender: { application: 'ROSTERMATCH', facility: 'STATEIIS' },
    });
    expect(segs(text)).toEqual([
      `MSH|^~\\&|ROSTERMATCH|STATEIIS|EHR||${TS}||ACK^V04^ACK|RM-9|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS`,
      'MSA|AR',
      'ERR||MSH^1^12^1|203^Unsupported version id^HL70357|E||||Version ID not recognized - message rejected',
    ]);
  });

  it('echoes processing id T and carries HD components of the request header', () => {
    const text = ack({
      request: { ...VXU_HEADER, processingId: 'T', sendingFacility: 'NISTEHRFAC^2.16.840.1.113883.3.72.5.40.2^ISO' },
      code: 'AA',
      errors: [],
      controlId: 'RM-1',
      now: NOW,
    });
    expect(msh(text, 6)).toBe('NISTEHRFAC^2.16.840.1.113883.3.72.5.40.2^ISO');
    expect(msh(text, 11)).toBe('T');
  });
});

describe('rsp', () => {
  it('Z32: PID with the FHIR id in PID-3, then ORC, RXA and RXR per immunization', () => {
    const text = rsp(query({ query: { name: 'Z34', tag: 'Q-77' }, qpd: Z34_QPD, result: { kind: 'found', patient: patient() } }));
    expect(segs(text)).toEqual([
      `MSH|^~\\&|NISTIISAPP|NISTIISFAC|NISTEHRAPP|NISTEHRFAC|${TS}||RSP^K11^RSP_K11|RM-2|P|2.5.1|||NE|NE|||||Z32^CDCPHINVS`,
      'MSA|AA|NIST-IZ-QR-4.1_Query_Q11_Z44',
      'QAK|Q-77|OK|Z34^Request Immunization History^CDCPHINVS',
      Z34_QPD,
      'PID|1||pat-0001^^^RMIIS^PI~34500907^^^&2.16.840.1.113883.3.9999.1&ISO^SR||Smith^James^A^Jr^^^L|Bell^^^^^^M|20110905|M|||22 East Branch Way^^Livingston^MT^59047^^L||^PRN^PH^^^406^5556285|||||||||||Y|2',
      'ORC|RE||pat-0001-1^RMIIS',
      'RXA|0|1|20151029||140^Influenza, seasonal, injectable, preservative free^CVX|0.5|mL^^UCUM||00^New immunization record^NIP001||||||L0T-1||SKB^GlaxoSmithKline^MVX|||CP',
      'RXR|IM^Intramuscular^HL70162|LD^Left Deltoid^HL70163',
      'ORC|RE||9999',
      'RXA|0|1|20160101||08^Hep B, adolescent or pediatric^CVX|999|||01^Historical information - source unspecified^NIP001|||||||||||CP',
    ]);
  });

  it('Z42: the history with no evaluation or forecast rows, and an informational ERR saying so', () => {
    const text = rsp(query({ result: { kind: 'found', patient: patient() } }));
    const s = segs(text);
    expect(msh(text, 21)).toBe('Z42^CDCPHINVS');
    expect(s[1]).toBe('MSA|AA|NIST-IZ-QR-4.1_Query_Q11_Z44');
    expect(s[2]).toBe(`ERR|||0^Message accepted^HL70357|I||||${FORECAST_NOT_PROVIDED}`);
    expect(s[3]).toBe('QAK|IZ-4.1-2015|OK|Z44^Request Evaluated History and Forecast^CDCPHINVS');
    expect(s[4]).toBe(Z44_QPD);
    expect(ids(text)).toEqual(['MSH', 'MSA', 'ERR', 'QAK', 'QPD', 'PID', 'ORC', 'RXA', 'RXR', 'ORC', 'RXA']);
    expect(text).not.toMatch(/\|998\^/);
  });

  it('Z31: one PID per candidate with set ids, no immunizations', () => {
    const second = patient({ identifiers: [{ value: 'pat-0002', authority: 'RMIIS', type: 'PI' }], birthOrder: '1' });
    const text = rsp(query({ query: { name: 'Z34', tag: 'Q-77', quantityLimit: 2 }, qpd: Z34_QPD, result: { kind: 'candidates', patients: [patient(), second] } }));
    expect(msh(text, 21)).toBe('Z31^CDCPHINVS');
    expect(ids(text)).toEqual(['MSH', 'MSA', 'QAK', 'QPD', 'PID', 'PID']);
    expect(segs(text)[2]).toBe('QAK|Q-77|OK|Z34^Request Immunization History^CDCPHINVS');
    expect(segs(text)[4]!.startsWith('PID|1||pat-0001^^^RMIIS^PI~')).toBe(true);
    expect(segs(text)[5]!.startsWith('PID|2||pat-0002^^^RMIIS^PI||')).toBe(true);
  });

  it('more candidates than RCP-2 allows: Z33 with QAK-2 TM and no PID, as the NIST TM case', () => {
    const text = rsp(query({ query: { name: 'Z44', tag: 'IZ-4.1-2015', quantityLimit: 1 }, result: { kind: 'candidates', patients: [patient(), patient()] } }));
    expect(segs(text)).toEqual([
      `MSH|^~\\&|NISTIISAPP|NISTIISFAC|NISTEHRAPP|NISTEHRFAC|${TS}||RSP^K11^RSP_K11|RM-2|P|2.5.1|||NE|NE|||||Z33^CDCPHINVS`,
      'MSA|AA|NIST-IZ-QR-4.1_Query_Q11_Z44',
      'QAK|IZ-4.1-2015|TM|Z44^Request Evaluated History and Forecast^CDCPHINVS',
      Z44_QPD,
    ]);
  });

  it('our own cap applies when RCP-2 is absent or larger', () => {
    const many = { kind: 'candidates' as const, patients: [patient(), patient(), patient()] };
    expect(rspOutcome({ name: 'Z34' }, many, 2).status).toBe('TM');
    expect(rspOutcome({ name: 'Z34', quantityLimit: 10 }, many, 2).status).toBe('TM');
    expect(rspOutcome({ name: 'Z34', quantityLimit: 3 }, many).profile).toBe('Z31');
    expect(rspOutcome({ name: 'Z34' }, { kind: 'candidates', patients: [] }).status).toBe('NF');
  });

  it('Z33 NF: no match, MSA AA, no PID', () => {
    const text = rsp(query());
    expect(segs(text).slice(1)).toEqual(['MSA|AA|NIST-IZ-QR-4.1_Query_Q11_Z44', 'QAK|IZ-4.1-2015|NF|Z44^Request Evaluated History and Forecast^CDCPHINVS', Z44_QPD]);
    expect(msh(text, 21)).toBe('Z33^CDCPHINVS');
  });

  it('Z33 AE: the errors under MSA AE and QAK-2 AE', () => {
    const text = rsp(
      query({ result: { kind: 'refused', ack: 'AE', errors: [{ code: 101, severity: 'E', location: { segment: 'QPD', sequence: 1, field: 6 }, message: 'Birth date is required' }] } }),
    );
    expect(segs(text).slice(1, 4)).toEqual([
      'MSA|AE|NIST-IZ-QR-4.1_Query_Q11_Z44',
      'ERR||QPD^1^6^1|101^Required field missing^HL70357|E|7^Required data missing^HL70533|||Birth date is required',
      'QAK|IZ-4.1-2015|AE|Z44^Request Evaluated History and Forecast^CDCPHINVS',
    ]);
  });

  it('without the QPD text, rebuilds QPD-1 and QPD-2 from the query', () => {
    const text = rsp(query({ qpd: undefined, query: { name: 'Z34', tag: 'T|1' } }));
    expect(segs(text).slice(2)).toEqual(['QAK|T\\F\\1|NF|Z34^Request Immunization History^CDCPHINVS', 'QPD|Z34^Request Immunization History^CDCPHINVS|T\\F\\1']);
  });

  it('writes the full QAK-3 when the request named the query only in MSH-21', () => {
    const text = rsp(query({ qpd: 'QPD||Q-5|1^^^A^MR', query: { name: 'Z34', tag: 'Q-5', nameField: 'Z34' } }));
    expect(segs(text).slice(2)).toEqual(['QAK|Q-5|NF|Z34^Request Immunization History^CDCPHINVS', 'QPD||Q-5|1^^^A^MR']);
  });

  it("finds the QPD to echo in a request's text", () => {
    const request = `MSH|^~\\&|A|B|C|D|20240101||QBP^Q11^QBP_Q11|1|P|2.5.1\r\n${Z44_QPD}\nRCP|I|1^RD&Records&HL70126`;
    expect(requestQpd(request)).toBe(Z44_QPD);
    expect(requestQpd('MSH|^~\\&')).toBeUndefined();
  });

  it('echoes a QPD sent with other delimiters in ours', () => {
    const d: Delimiters = { field: '#', component: '$', repetition: '*', escape: '!', subcomponent: '%' };
    const text = rsp(query({ request: { ...QBP_HEADER, delimiters: d }, qpd: 'QPD#Z34$Request Immunization History$CDCPHINVS#Q!F!9#1$$$A%1.2%ISO$MR', query: { name: 'Z34' } }));
    expect(segs(text).slice(2)).toEqual(['QAK|Q\\F\\9|NF|Z34^Request Immunization History^CDCPHINVS', 'QPD|Z34^Request Immunization History^CDCPHINVS|Q\\F\\9|1^^^A&1.2&ISO^MR']);
  });

  it('escapes delimiters in patient values', () => {
    const text = rsp(
      query({
        query: { name: 'Z34' },
        qpd: Z34_QPD,
        result: { kind: 'candidates', patients: [patient({ name: { family: "O'Brien-Smith|Jones", given: 'Ann^Marie', middle: '', suffix: '', type: 'L' }, mothersMaidenName: 'A&B' })] },
      }),
    );
    const pid = segs(text)[4]!;
    expect(field(pid, 5)).toBe("O'Brien-Smith\\F\\Jones^Ann\\S\\Marie^^^^^L");
    expect(field(pid, 6)).toBe('A\\T\\B^^^^^^M');
  });
});

describe('replyBatch', () => {
  it('wraps replies in FHS BHS … BTS FTS with counts, swapped ends and the request batch id', () => {
    const a = ack({ request: VXU_HEADER, code: 'AA', errors: [], controlId: 'RM-1', now: NOW });
    const b = ack({ request: VXU_HEADER, code: 'AE', errors: [{ code: 101, severity: 'E', message: 'x' }], controlId: 'RM-2', now: NOW });
    const text = replyBatch([a, b], {
      header: { sendingApplication: 'EHR', sendingFacility: 'CLINIC', receivingApplication: 'IIS', receivingFacility: 'STATE', controlId: 'REQ-BATCH-7' },
      now: NOW,
      controlId: 'RM-B1',
    });
    const s = segs(text);
    expect(s[0]).toBe(`FHS|^~\\&|IIS|STATE|EHR|CLINIC|${TS}||||RM-B1`);
    expect(s[1]).toBe(`BHS|^~\\&|IIS|STATE|EHR|CLINIC|${TS}||||RM-B1|REQ-BATCH-7`);
    expect(s.slice(-2)).toEqual(['BTS|2', 'FTS|1']);
    expect(ids(text).filter((x) => x === 'MSH')).toHaveLength(2);
    expect(s).toHaveLength(2 + 2 + 3 + 2);
  });

  it('an empty batch still counts: BTS|0', () => {
    expect(segs(replyBatch([], { now: NOW, controlId: 'B', sender: { application: 'RM', facility: 'IIS' } }))).toEqual([
      `FHS|^~\\&|RM|IIS|||${TS}||||B`,
      `BHS|^~\\&|RM|IIS|||${TS}||||B`,
      'BTS|0',
      'FTS|1',
    ]);
  });
});

describe('from FHIR', () => {
  const fhirPatient: FhirPatientJson = {
    resourceType: 'Patient',
    id: 'pat-0001',
    identifier: [
      { system: 'http://hl7.org/fhir/sid/us-ssn', value: '123-45-6789' },
      { system: 'https://clinic.example.org/ids/mrn', value: 'M1', type: { coding: [{ code: 'MR' }] } },
      { system: 'urn:oid:2.16.840.1.113883.3.9999.1', value: 'IIS-9' },
    ],
    name: [
      { use: 'maiden', family: 'Old' },
      { use: 'usual', family: 'Usual', given: ['U'] },
      { use: 'official', family: 'Smith', given: ['Ann', 'B', 'C'], suffix: ['III'] },
    ],
    gender: 'female',
    birthDate: '2011-09-05',
    address: [
      { use: 'old', line: ['9 Gone Rd'], city: 'Past' },
      { use: 'home', line: ['22 East Branch Way', 'Apt 2'], city: 'Livingston', state: 'MT', postalCode: '59047' },
    ],
    telecom: [
      { system: 'email', value: 'a@example.org' },
      { system: 'phone', value: '406-555-6285', use: 'mobile' },
    ],
    multipleBirthBoolean: true,
    extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName', valueString: 'Bell' }],
  };
  const imm = (over: Partial<FhirImmunizationJson>): FhirImmunizationJson => ({
    resourceType: 'Immunization',
    id: 'i',
    status: 'completed',
    vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '08', display: 'Hep B' }] },
    occurrenceDateTime: '2011-09-06',
    primarySource: true,
    ...over,
  });

  it('maps a Patient: FHIR id first as PI, typed identifiers, official name, maiden name, sex, address, phone, multiple birth', () => {
    const p = replyPatient(fhirPatient, [], { fhirId: 'pat-0001', fhirIdAuthority: 'RMIIS', extra: [{ value: 'Q1', authority: 'EHR', type: 'MR' }] });
    expect(p.identifiers).toEqual([
      { value: 'pat-0001', authority: 'RMIIS', type: 'PI' },
      { value: '123-45-6789', authority: 'SSA', type: 'SS' },
      { value: 'M1', authority: 'mrn', type: 'MR' },
      { value: 'Q1', authority: 'EHR', type: 'MR' },
    ]);
    expect(p.name).toEqual({ family: 'Smith', given: 'Ann', middle: 'B C', suffix: 'III', type: 'L' });
    expect(p.mothersMaidenName).toBe('Bell');
    expect(p.birthDate).toBe('20110905');
    expect(p.sex).toBe('F');
    expect(p.address).toEqual({ street: '22 East Branch Way', street2: 'Apt 2', city: 'Livingston', state: 'MT', zip: '59047', type: 'H' });
    expect(p.phone).toBe('406-555-6285');
    expect([p.multipleBirth, p.birthOrder]).toEqual(['Y', '']);
  });

  it('lists an untyped identifier when its system is given a type', () => {
    const p = replyPatient(fhirPatient, [], { fhirId: 'x', fhirIdAuthority: 'RMIIS', identifierTypes: { 'urn:oid:2.16.840.1.113883.3.9999.1': 'SR' } });
    expect(p.identifiers.map((i) => `${i.value}/${i.authority}/${i.type}`)).toEqual(['x/RMIIS/PI', 'M1/mrn/MR', 'IIS-9/2.16.840.1.113883.3.9999.1/SR']);
  });

  it('maps multipleBirthInteger and missing elements to empty values', () => {
    const p = replyPatient({ resourceType: 'Patient', multipleBirthInteger: 2 }, [], { fhirId: 'x', fhirIdAuthority: 'A' });
    expect(p).toMatchObject({ name: { family: '', given: '', middle: '', suffix: '', type: 'L' }, birthDate: '', sex: '', multipleBirth: 'Y', birthOrder: '2' });
    expect(p.address).toBeUndefined();
    expect(p.phone).toBeUndefined();
    expect(replyPatient({ multipleBirthBoolean: false, gender: 'unknown' }, [], { fhirId: 'x', fhirIdAuthority: 'A' })).toMatchObject({ multipleBirth: 'N', sex: 'U' });
  });

  it('orders immunizations by date and leaves out entered-in-error ones', () => {
    const p = replyPatient(
      fhirPatient,
      [imm({ id: 'b', occurrenceDateTime: '2012-01-01T10:00:00-05:00' }), imm({ id: 'x', status: 'entered-in-error' }), imm({ id: 'a', occurrenceDateTime: '2011-09-06' })],
      { fhirId: 'pat-0001', fhirIdAuthority: 'RMIIS' },
    );
    expect(p.immunizations.map((i) => [i.date, i.fillerOrder?.id])).toEqual([
      ['20110906', 'a'],
      ['20120101', 'b'],
    ]);
  });

  it('maps an Immunization: CVX, dose, lot, MVX, source, status, route and site', () => {
    const im = replyImmunization(
      imm({
        status: 'not-done',
        primarySource: false,
        doseQuantity: { value: 0.5, unit: 'milliliter', system: 'http://unitsofmeasure.org', code: 'mL' },
        lotNumber: 'AB12',
        manufacturer: { identifier: { system: 'http://hl7.org/fhir/sid/mvx', value: 'PFR' }, display: 'Pfizer' },
        route: { coding: [{ system: 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl', code: 'C28161', display: 'INTRAMUSCULAR' }] },
        site: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActSite', code: 'LA', display: 'left arm' }] },
      }),
      'RMIIS',
    );
    expect(im).toEqual({
      date: '20110906',
      cvx: { code: '08', display: 'Hep B' },
      amount: '0.5',
      units: 'mL',
      informationSource: '01',
      lotNumber: 'AB12',
      manufacturer: { code: 'PFR', display: 'Pfizer' },
      completionStatus: 'RE',
      route: { code: 'IM', display: 'Intramuscular' },
      site: { code: 'LA', display: 'left arm' },
      fillerOrder: { id: 'i', authority: 'RMIIS' },
    });
  });

  it('without CVX coding or dose: CVX 999 and amount 999', () => {
    const im = replyImmunization({ vaccineCode: { text: 'flu shot' }, occurrenceDateTime: '2020-10' });
    expect(im).toMatchObject({ date: '202010', cvx: { code: '999', display: 'unknown' }, amount: '999', units: '', informationSource: '01', completionStatus: 'CP' });
    expect(im.fillerOrder).toBeUndefined();
  });

  it.each([
    ['http://hl7.org/fhir/sid/us-ssn', 'SSA'],
    ['urn:oid:2.16.840.1.113883.3.9999.7.1', '2.16.840.1.113883.3.9999.7.1'],
    ['https://example.org/fhir/sid/mrn/', 'mrn'],
    ['https://example.org', 'https://example.org'],
    ['LOCAL', 'LOCAL'],
  ])('authority of %s is %s', (system, expected) => expect(authorityOf(system)).toBe(expected));

  it.each([
    ['2011-09-05', '20110905'],
    ['2011-09-05T23:30:00-05:00', '20110905'],
    ['2011', '2011'],
    ['not a date', ''],
    [undefined, ''],
  ])('HL7 date of %s is %s', (value, expected) => expect(hl7Date(value)).toBe(expected));

  it("reads the sample generator's Patient and Immunization lines into an RSP", () => {
    const today = parseIsoDate('2026-11-01');
    const pop = generatePopulation({ seed: 7, patients: 40, outsiders: 5, today });
    let doses = 0;
    for (const person of pop.patients) {
      const resource = JSON.parse(patientLine(person, pop.households[person.household]!, 7, pop.iisCount, today)) as FhirPatientJson;
      const history = immunizationHistory(new Rng(7, 'immunizations', person.ordinal), person.birth, today);
      const imms = history.map((d, n) => JSON.parse(immunizationLine(person, d, n + 1, 3, 100, today)) as FhirImmunizationJson);
      doses += imms.length;
      const p = replyPatient(resource, imms, {
        fhirId: resource.id!,
        fhirIdAuthority: 'RMIIS',
        identifierTypes: { 'urn:oid:2.16.840.1.113883.3.9999.1': 'SR', 'urn:oid:2.16.840.1.113883.3.9999.7.1': 'MR' },
      });
      expect(p.identifiers[0]).toEqual({ value: resource.id, authority: 'RMIIS', type: 'PI' });
      expect(p.identifiers.some((i) => i.type === 'SR' && i.authority === '2.16.840.1.113883.3.9999.1')).toBe(true);
      expect(p.birthDate).toMatch(/^\d{8}$/);
      expect(p.sex).toMatch(/^[FM]$/);
      expect(p.name.family).not.toBe('');
      expect(p.immunizations).toHaveLength(imms.length);
      for (const im of p.immunizations) {
        expect(im.date).toMatch(/^\d{8}$/);
        expect(im.cvx.code).toMatch(/^\d+$/);
        expect(im.cvx.display).not.toBe('');
        expect(im).toMatchObject({ informationSource: '00', completionStatus: 'CP', amount: '999' });
      }
      const text = rsp(query({ query: { name: 'Z34', tag: 'T' }, qpd: Z34_QPD, result: { kind: 'found', patient: p } }));
      expect(ids(text).filter((s) => s === 'RXA')).toHaveLength(imms.length);
      expect(text).not.toMatch(/\n/);
    }
    expect(doses).toBeGreaterThan(0);
  });
});

describe('with the reader', () => {
  it('answers a batch of a QBP and a refused message: the RSP echoes QPD and MSH ends, the ACK echoes MSH-10, the batch refers to BHS-11', () => {
    const file = [
      'FHS|^~\\&|NISTEHRAPP|NISTEHRFAC|NISTIISAPP|NISTIISFAC|20150531145156-0500',
      'BHS|^~\\&|NISTEHRAPP|NISTEHRFAC^1.2.3^ISO|NISTIISAPP|NISTIISFAC|20150531145156-0500||||REQ-B-1',
      'MSH|^~\\&|NISTEHRAPP|NISTEHRFAC^1.2.3^ISO|NISTIISAPP|NISTIISFAC|20150531145156-0500||QBP^Q11^QBP_Q11|NIST-IZ-QR-4.1_Query_Q11_Z44|P|2.5.1|||ER|AL|||||Z44^CDCPHINVS',
      Z44_QPD,
      'RCP|I|1^RD&Records&HL70126',
      'MSH|^~\\&|NISTEHRAPP|NISTEHRFAC|NISTIISAPP|NISTIISFAC|20150531145156-0500||ADT^A01^ADT_A01|ADT-9|P|2.5.1',
      'PID|1||1^^^A^MR||Doe^Jo',
      'BTS|2',
      'FTS|1',
    ].join('\r');
    const batch = readBatch(file);
    expect(batch.messages).toHaveLength(2);
    const replies = batch.messages.map((m, n) => {
      const read = readMessage(m.text, m.line);
      if (!read.ok) return ack({ request: read.header, code: read.ack, errors: read.errors, controlId: `RM-${n}`, now: NOW });
      if (read.message.kind !== 'QBP') throw new Error('expected a QBP');
      const qpd = requestQpd(m.text);
      return rsp({ request: read.message.header, query: read.message.query, ...(qpd ? { qpd } : {}), result: { kind: 'candidates', patients: [patient(), patient()] }, controlId: `RM-${n}`, now: NOW });
    });
    const [answer, refusal] = replies.map(segs);
    expect(answer!.slice(0, 4)).toEqual([
      `MSH|^~\\&|NISTIISAPP|NISTIISFAC|NISTEHRAPP|NISTEHRFAC^1.2.3^ISO|${TS}||RSP^K11^RSP_K11|RM-0|P|2.5.1|||NE|NE|||||Z33^CDCPHINVS`,
      'MSA|AA|NIST-IZ-QR-4.1_Query_Q11_Z44',
      'QAK|IZ-4.1-2015|TM|Z44^Request Evaluated History and Forecast^CDCPHINVS',
      Z44_QPD,
    ]);
    expect(refusal![0]).toBe(`MSH|^~\\&|NISTIISAPP|NISTIISFAC|NISTEHRAPP|NISTEHRFAC|${TS}||ACK^A01^ACK|RM-1|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS`);
    expect(refusal![1]).toBe('MSA|AR|ADT-9');
    expect(refusal![2]).toMatch(/^ERR\|\|MSH\^1\^9\^1\^1\|200\^Unsupported message type\^HL70357\|E\|/);
    const out = segs(replyBatch(replies, { header: batch.batchHeader, now: NOW, controlId: 'RM-B' }));
    expect(out[1]).toBe(`BHS|^~\\&|NISTIISAPP|NISTIISFAC|NISTEHRAPP|NISTEHRFAC^1.2.3^ISO|${TS}||||RM-B|REQ-B-1`);
    expect(out.slice(-2)).toEqual(['BTS|2', 'FTS|1']);
    // What we write, the reader reads back as a well-formed file.
    const back = readBatch(out.join('\r'));
    expect(back).toMatchObject({ envelope: 'file', problems: [] });
    expect(back.messages).toHaveLength(2);
  });
});
