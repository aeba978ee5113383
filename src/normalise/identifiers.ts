/**
 * Student ids, MRNs and member ids. They are compared as strings, so formatting that partners add
 * or drop (spaces, dashes, case) must go, while leading zeros are part of the id and stay.
 */
export function normaliseIdentifier(raw: string): string {
  let out = '';
  let same = true;
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    let c = raw.charCodeAt(i);
    if (isSpaceOrDash(c)) continue;
    if (c >= 97 && c <= 122) c -= 32;
    if (same) {
      if (raw.charCodeAt(n) === c) {
        n++;
        continue;
      }
      same = false;
      out = raw.slice(0, n);
    }
    out += c < 128 ? String.fromCharCode(c) : raw[i]!.toUpperCase();
    n++;
  }
  return same ? (n === raw.length ? raw : raw.slice(0, n)) : out;
}

function isSpaceOrDash(c: number): boolean {
  return (
    c === 32 || c === 9 || c === 10 || c === 13 || c === 0xa0 || c === 0xfeff || c === 0x2d ||
    (c >= 0x2010 && c <= 0x2015) || c === 0x2212 || (c >= 0x2000 && c <= 0x200b) || c === 0x3000
  );
}

/**
 * How a partner's identifier column is read. `ssn` is a full US Social Security number,
 * `ssn-last4` its last four digits (all some payers send), `generic` any other id (student,
 * Medicaid, member, MRN), compared as written less spaces, dashes and case.
 */
export type IdentifierKind = 'ssn' | 'ssn-last4' | 'generic';

/** The FHIR identifier system for US SSNs: index values under it are held to the SSN rules too. */
export const US_SSN_SYSTEM = 'http://hl7.org/fhir/sid/us-ssn';
/** Systems an index's SSNs come under: FHIR's, and HL7 v2's OID for the SSA. */
const SSN_SYSTEMS: ReadonlySet<string> = new Set([US_SSN_SYSTEM, 'urn:oid:2.16.840.1.113883.4.1']);

export type IdentifierReading = { ok: true; value: string } | { ok: false; code: 'malformed' | 'placeholder'; message: string };

const BLANK: IdentifierReading = { ok: true, value: '' };

/** Cells that mean "no id", and numbers handed out as examples (the 1938 Woolworth wallet card). */
const NO_ID_WORDS: ReadonlySet<string> = new Set(['UNKNOWN', 'UNK', 'NONE', 'NA', 'N/A', '#N/A', 'NULL', 'TBD', 'PENDING', 'REFUSED', 'DECLINED', 'APPLIEDFOR', 'NOTAPPLICABLE']);
const EXAMPLE_SSNS: ReadonlySet<string> = new Set(['123456789', '012345678', '987654321', '078051120', '219099999', '111223333', '123121234']);

/** One identifier cell read as `kind`: its canonical value, '' when blank, or why it cannot be used. */
export function readIdentifier(kind: IdentifierKind, raw: string, extraPlaceholders: ReadonlySet<string> = new Set()): IdentifierReading {
  const value = normaliseIdentifier(raw.trim());
  if (value === '') return BLANK;
  if (NO_ID_WORDS.has(value) || extraPlaceholders.has(value)) return placeholder(kind);
  if (kind === 'generic') {
    // All zeros, or one character five times or more: what a form puts in a field it must fill.
    return /^0+$/.test(value) || /^(.)\1{4,}$/.test(value) ? placeholder(kind) : { ok: true, value };
  }
  const digits = value.replaceAll('.', '');
  if (kind === 'ssn-last4') {
    if (!/^\d{4}$/.test(digits)) return { ok: false, code: 'malformed', message: 'SSN last four is not four digits; ignored' };
    return digits === '0000' ? placeholder(kind) : { ok: true, value: digits };
  }
  if (!/^\d{9}$/.test(digits)) return { ok: false, code: 'malformed', message: 'SSN is not nine digits; ignored' };
  return ssnAssignable(digits) ? { ok: true, value: digits } : placeholder(kind);
}

/**
 * Whether the SSA could have issued the number: area 000, 666 and 900–999, group 00 and serial
 * 0000 never are; a digit nine times over and the well-known example numbers are fill-ins.
 */
function ssnAssignable(d: string): boolean {
  const area = d.slice(0, 3);
  if (area === '000' || area === '666' || area[0] === '9') return false;
  if (d.slice(3, 5) === '00' || d.slice(5) === '0000') return false;
  return !/^(\d)\1{8}$/.test(d) && !EXAMPLE_SSNS.has(d);
}

function placeholder(kind: IdentifierKind): IdentifierReading {
  const what = kind === 'generic' ? 'identifier' : kind === 'ssn' ? 'SSN' : 'SSN last four';
  return { ok: false, code: 'placeholder', message: `${what} is a placeholder or a number never issued; ignored` };
}

/** An index Patient's identifier value, or '' when it carries no identity (placeholders, impossible SSNs). */
export function indexIdentifierValue(system: string, raw: string): string {
  const r = readIdentifier(SSN_SYSTEMS.has(system) ? 'ssn' : 'generic', raw);
  return r.ok ? r.value : '';
}
