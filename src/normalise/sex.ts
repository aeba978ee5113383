import type { Sex } from '../model/index.ts';

/**
 * Codes partners actually send: words, single letters, and the numeric codes of common student
 * information systems and X12 (1 male, 2 female, 0/9 unknown).
 */
const SEX_CODES: ReadonlyMap<string, Sex> = new Map<string, Sex>([
  ['M', 'male'],
  ['MALE', 'male'],
  ['BOY', 'male'],
  ['MAN', 'male'],
  ['1', 'male'],
  ['F', 'female'],
  ['FEMALE', 'female'],
  ['GIRL', 'female'],
  ['WOMAN', 'female'],
  ['2', 'female'],
  ['X', 'other'],
  ['O', 'other'],
  ['OTHER', 'other'],
  ['NONBINARY', 'other'],
  ['NON-BINARY', 'other'],
  ['NON BINARY', 'other'],
  ['U', 'unknown'],
  ['UN', 'unknown'],
  ['UNK', 'unknown'],
  ['UNKNOWN', 'unknown'],
  ['0', 'unknown'],
  ['9', 'unknown'],
]);

/** A FHIR administrative gender; '' for blank; null for a value we do not recognise. */
export function normaliseSex(raw: string): Sex | null {
  let key = raw;
  // Most cells are already a bare upper-case code: look them up without allocating.
  let sex = SEX_CODES.get(key);
  if (sex !== undefined) return sex;
  key = raw.trim();
  if (key === '') return '';
  sex = SEX_CODES.get(key.toUpperCase());
  return sex === undefined ? null : sex;
}
