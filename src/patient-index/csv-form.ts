/**
 * The documented CSV form of the patient index, for an IIS that cannot produce FHIR NDJSON.
 * Each row becomes the FHIR resource it describes, then follows the same path as NDJSON.
 *
 * Patients:      id,family,given,middle,suffix,birth_date,sex,street,city,state,zip,phone[,identifier_system,identifier_value]
 *                [,mothers_maiden_name,birth_order]  (the patient-mothersMaidenName extension, multipleBirthInteger 1–9)
 * Immunizations: id,patient_id,cvx,occurrence_date[,display,status]
 *
 * Cells are turned into R4 values here, and a cell that cannot be is refused naming its column:
 * `sex` in any code the roster parser reads (F, M, U, O, X, words, 1/2/0/9) becomes an R4 gender;
 * dates are ISO (YYYY-MM-DD, or a year or month alone) or YYYYMMDD. Slashed dates are refused,
 * not guessed: 05/06/2011 is May in one IIS and June in another, and the CSV form has no pipeline
 * to say which.
 */
import { MOTHERS_MAIDEN_NAME_URL, normaliseBirthOrder, normaliseSex } from '../normalise/index.ts';
import { IMMUNIZATION_STATUSES, isFhirDate, isFhirDateTime } from './validate.ts';

export const PATIENT_CSV_COLUMNS = ['id', 'family', 'given', 'middle', 'suffix', 'birth_date', 'sex', 'street', 'city', 'state', 'zip', 'phone'] as const;
export const IMMUNIZATION_CSV_COLUMNS = ['id', 'patient_id', 'cvx', 'occurrence_date'] as const;

export type CsvKind = 'Patient' | 'Immunization';

export function csvKind(header: readonly string[]): CsvKind | undefined {
  const has = (cols: readonly string[]) => cols.every((c) => header.includes(c));
  if (has(PATIENT_CSV_COLUMNS)) return 'Patient';
  if (has(IMMUNIZATION_CSV_COLUMNS)) return 'Immunization';
  return undefined;
}

const drop = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0))) as T;

const refuse = (column: string, rule: string): never => {
  throw new Error(`column ${column} ${rule}`);
};

const DATE_RULE = 'is not a date in the form YYYY-MM-DD (or YYYYMMDD), a real calendar date';

/** A date cell as a FHIR date ('' when blank); with `time`, a FHIR dateTime is taken as it is too. */
function fhirDate(column: string, cell: string | undefined, time = false): string {
  if (!cell) return '';
  const compact = /^(\d{4})(\d{2})(\d{2})$/.exec(cell);
  const value = compact ? `${compact[1]}-${compact[2]}-${compact[3]}` : cell;
  return (time ? isFhirDateTime(value) : isFhirDate(value)) ? value : refuse(column, DATE_RULE);
}

/** Throws a plain Error naming the column (never its value) when a cell cannot be an R4 value. */
export function csvToResource(kind: CsvKind, row: Record<string, string>): Record<string, unknown> {
  if (kind === 'Patient') {
    const gender = normaliseSex(row.sex ?? '');
    if (gender === null) refuse('sex', 'is not a sex code (F, M, O, U, X, female, male, other, unknown, 1, 2, 0 or 9)');
    const given = [row.given, row.middle].filter((x): x is string => !!x);
    const birthOrder = normaliseBirthOrder(row.birth_order ?? '');
    if (birthOrder === null) refuse('birth_order', 'is not a birth order from 1 to 9 (or empty)');
    return drop({
      resourceType: 'Patient',
      id: row.id,
      identifier: row.identifier_system && row.identifier_value ? [{ system: row.identifier_system, value: row.identifier_value }] : undefined,
      name: row.family || given.length > 0 ? [drop({ use: 'official', family: row.family, given, suffix: row.suffix ? [row.suffix] : undefined })] : undefined,
      gender: gender || undefined,
      birthDate: fhirDate('birth_date', row.birth_date),
      address: row.street || row.city || row.zip ? [drop({ line: row.street ? [row.street] : undefined, city: row.city, state: row.state, postalCode: row.zip })] : undefined,
      telecom: row.phone ? [{ system: 'phone', value: row.phone }] : undefined,
      extension: row.mothers_maiden_name ? [{ url: MOTHERS_MAIDEN_NAME_URL, valueString: row.mothers_maiden_name }] : undefined,
      multipleBirthInteger: birthOrder ? Number(birthOrder) : undefined,
    });
  }
  if (!row.patient_id) refuse('patient_id', 'is empty');
  if (!row.cvx) refuse('cvx', 'is empty: an immunization needs its vaccine code');
  if (!row.occurrence_date) refuse('occurrence_date', 'is empty');
  const status = row.status || 'completed';
  if (!IMMUNIZATION_STATUSES.includes(status)) refuse('status', `must be ${IMMUNIZATION_STATUSES.join(', ')} (or empty: completed)`);
  return drop({
    resourceType: 'Immunization',
    id: row.id,
    status,
    vaccineCode: { coding: [drop({ system: 'http://hl7.org/fhir/sid/cvx', code: row.cvx, display: row.display })] },
    patient: { reference: `Patient/${row.patient_id}` },
    occurrenceDateTime: fhirDate('occurrence_date', row.occurrence_date, true),
  });
}
