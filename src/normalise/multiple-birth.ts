/**
 * The two fields that tell apart twins, who share birth date, surname, address, phone and mother
 * and so look like one person with a given-name difference: the mother's maiden name (HL7 v2
 * PID-6, FHIR extension patient-mothersMaidenName, a roster's `mothersMaidenName` column) and the
 * birth order within a multiple birth (PID-25, FHIR multipleBirthInteger, a `birthOrder` column).
 * '' means absent, as everywhere in PersonFields.
 */
import { normaliseName } from './names.ts';
import { NO_ADDITIONS, placeholderNames, type PlaceholderAdditions } from './placeholders.ts';

/** The FHIR extension that carries a patient's mother's maiden name (valueString). */
export const MOTHERS_MAIDEN_NAME_URL = 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName';

/**
 * A mother's maiden name folded as a family name is; a placeholder surname (UNKNOWN, NONE, N/A,
 * or one the pipeline adds) names nobody and is ''.
 */
export function normaliseMothersMaiden(raw: string, extra: PlaceholderAdditions = NO_ADDITIONS): string {
  const name = normaliseName(raw);
  return name !== '' && placeholderNames('', name, extra).family ? '' : name;
}

/** Higher orders exist (octuplets) but a digit this large in the field is far likelier a slip. */
const MAX_BIRTH_ORDER = 9;

/**
 * A birth-order cell: '' when blank, '1'…'9' (leading zeros and spaces dropped), or null when it
 * is anything else (0, 10, "B", "2nd") — the caller warns and leaves it out.
 */
export function normaliseBirthOrder(raw: string): string | null {
  const t = raw.trim();
  if (t === '') return '';
  if (!/^\d{1,3}$/.test(t)) return null;
  const n = Number(t);
  return n >= 1 && n <= MAX_BIRTH_ORDER ? String(n) : null;
}

/**
 * FHIR multipleBirth[x] as a birth order: multipleBirthInteger 1…9 is one; multipleBirthBoolean
 * is none. `true` says the patient is a twin or more but not which one. `false` is '' too, not
 * '1': many systems send false for "not recorded", and PID-25 is blank for a singleton, so a '1'
 * here would meet a roster's blank (no evidence, fine) but also a roster's "2" for the co-twin the
 * IIS never learnt was one — and the birth-order disagreement, which bars an automatic match,
 * would then fire on a default value instead of on two sources that each named an order.
 */
export function birthOrderFromFhir(multipleBirthInteger: unknown): string {
  return typeof multipleBirthInteger === 'number' && Number.isInteger(multipleBirthInteger) && multipleBirthInteger >= 1 && multipleBirthInteger <= MAX_BIRTH_ORDER
    ? String(multipleBirthInteger)
    : '';
}
