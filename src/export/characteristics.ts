/**
 * Who is in a Group defined by characteristics, on the day it is exported: the membership an
 * export walks, built from the patient index as it is then. Ages are whole years on that day,
 * so "under 18" is a birth date after the day 18 years before it.
 */
import type { GroupCharacteristics } from '../store/index.ts';
import { literal, textArray } from './sql.ts';

/** The day `years` before `isoDay` (YYYY-MM-DD); 29 February falls back to the 28th. */
export function yearsBefore(isoDay: string, years: number): string {
  const [y, m, d] = isoDay.split('-').map(Number) as [number, number, number];
  const year = y - years;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const day = m === 2 && d === 29 && !leap ? 28 : d;
  return `${String(year).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/**
 * A subquery of (patient_id, added_at) for the export's member walk. added_at is -infinity: when
 * someone came to meet the definition is not known, so a `_since` export gives them what changed
 * since, like any member who was there before.
 */
export function characteristicMembers(c: GroupCharacteristics, on: string): string {
  const day = on.slice(0, 10);
  const where = ['p.replaced_by IS NULL', 'p.removed_at IS NULL', `left(p.zip, 5) = ANY (${textArray(c.zips)})`];
  if (c.underAge !== undefined || c.minAge !== undefined) where.push("p.birth_date <> ''");
  if (c.underAge !== undefined) where.push(`p.birth_date > ${literal(yearsBefore(day, c.underAge))}`);
  if (c.minAge !== undefined) where.push(`p.birth_date <= ${literal(yearsBefore(day, c.minAge))}`);
  // Anyone born after the day of the export is not anyone's member yet.
  where.push(`(p.birth_date = '' OR p.birth_date <= ${literal(day)})`);
  if (c.vaccines && c.vaccines.length > 0) {
    where.push(`EXISTS (SELECT 1 FROM immunization i, jsonb_array_elements(coalesce(i.resource->'vaccineCode'->'coding', '[]'::jsonb)) cc
                         WHERE i.patient_id = p.id AND cc->>'system' = 'http://hl7.org/fhir/sid/cvx' AND cc->>'code' = ANY (${textArray(c.vaccines)}))`);
  }
  return `SELECT p.id AS patient_id, '-infinity'::timestamptz AS added_at FROM patient p WHERE ${where.join(' AND ')}`;
}
