/**
 * The documented CSV form of the patient index, for an IIS that cannot produce FHIR NDJSON.
 * Each row becomes the FHIR resource it describes, then follows the same path as NDJSON.
 *
 * Patients:      id,family,given,middle,suffix,birth_date,sex,street,city,state,zip,phone[,identifier_system,identifier_value]
 * Immunizations: id,patient_id,cvx,occurrence_date[,display,status]
 */
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

export function csvToResource(kind: CsvKind, row: Record<string, string>): Record<string, unknown> {
  if (kind === 'Patient') {
    const given = [row.given, row.middle].filter((x): x is string => !!x);
    return drop({
      resourceType: 'Patient',
      id: row.id,
      identifier: row.identifier_system && row.identifier_value ? [{ system: row.identifier_system, value: row.identifier_value }] : undefined,
      name: [drop({ use: 'official', family: row.family, given, suffix: row.suffix ? [row.suffix] : undefined })],
      gender: row.sex,
      birthDate: row.birth_date,
      address: row.street || row.city || row.zip ? [drop({ line: row.street ? [row.street] : undefined, city: row.city, state: row.state, postalCode: row.zip })] : undefined,
      telecom: row.phone ? [{ system: 'phone', value: row.phone }] : undefined,
    });
  }
  return drop({
    resourceType: 'Immunization',
    id: row.id,
    status: row.status || 'completed',
    vaccineCode: { coding: [drop({ system: 'http://hl7.org/fhir/sid/cvx', code: row.cvx, display: row.display })] },
    patient: { reference: `Patient/${row.patient_id}` },
    occurrenceDateTime: row.occurrence_date,
  });
}
