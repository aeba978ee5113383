/**
 * One-line FHIR R4 JSON for the IIS side of the samples: Patient and Immunization resources as the
 * registry would export them in Bulk FHIR NDJSON. Lines are built from known keys in a fixed
 * order (no pretty printing), which is both compact and byte-stable.
 */
import { DAYS_PER_YEAR, isoDate, isoInstant } from './dates.ts';
import { iisNumber } from './ids.ts';
import type { Dose } from './immunizations.ts';
import { CVX } from './immunizations.ts';
import { stripDiacritics } from './names.ts';
import { formatPhone, streetLine, townOf, unitLine } from './places.ts';
import type { Household, Person } from './population.ts';
import { hash32 } from './random.ts';

export const IIS_IDENTIFIER_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.1';
export const CLINIC_MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.9999.7.1';
export const CVX_SYSTEM = 'http://hl7.org/fhir/sid/cvx';

const j = JSON.stringify;

/** A last-updated instant between `from` and `to` (day numbers), fixed by the hash. */
function instantBetween(h: number, from: number, to: number): string {
  const span = Math.max(0, to - from);
  return isoInstant(from + (h % (span + 1)), fmod(h >>> 7, 86400));
}

function fmod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** The Patient resource of an IIS patient, as one JSON line (no newline). */
export function patientLine(p: Person, house: Household, seed: number, patients: number, today: number): string {
  const h = hash32(seed, 'patient-meta', p.ordinal);
  const lastUpdated = instantBetween(h, Math.max(p.birth, today - Math.round(4 * DAYS_PER_YEAR)), today);
  const fold = p.asciiInIIS ? stripDiacritics : (s: string): string => s;
  let identifiers = `{"system":"${IIS_IDENTIFIER_SYSTEM}","value":"${iisNumber(p.ordinal, patients, h >>> 3)}"}`;
  if (p.mrn && p.mrnInIIS) identifiers += `,{"system":"${CLINIC_MRN_SYSTEM}","value":${j(p.mrn)}}`;
  const given = p.middle ? `${j(fold(p.given))},${j(fold(p.middle))}` : j(fold(p.given));
  const suffix = p.suffix ? `,"suffix":[${j(p.suffix)}]` : '';
  let out =
    `{"resourceType":"Patient","id":"${p.id}","meta":{"lastUpdated":"${lastUpdated}"},` +
    `"identifier":[${identifiers}],` +
    `"name":[{"use":"official","family":${j(fold(p.family))},"given":[${given}]${suffix}}],` +
    `"gender":"${p.sex}","birthDate":"${isoDate(p.birth)}"`;
  if (p.addressInIIS) {
    const a = house.address;
    const town = townOf(a);
    const unit = unitLine(a, house.streetStyle);
    const lines = unit ? `${j(streetLine(a, house.streetStyle))},${j(unit)}` : j(streetLine(a, house.streetStyle));
    out += `,"address":[{"line":[${lines}],"city":${j(town.city)},"state":"${town.state}","postalCode":"${a.zip}"}]`;
  }
  if (p.phoneInIIS) out += `,"telecom":[{"system":"phone","value":"${formatPhone(p.phone, 'dash')}"}]`;
  if (p.multipleBirth > 0) out += `,"multipleBirthInteger":${p.multipleBirth}`;
  return `${out}}`;
}

/** The Immunization resource for dose `n` (1-based) of a patient, as one JSON line. */
export function immunizationLine(p: Person, dose: Dose, n: number, lagDays: number, second: number, today: number): string {
  const updated = isoInstant(Math.min(today, dose.day + lagDays), second);
  return (
    `{"resourceType":"Immunization","id":"${p.id}-${n}","meta":{"lastUpdated":"${updated}"},"status":"completed",` +
    `"vaccineCode":{"coding":[{"system":"${CVX_SYSTEM}","code":"${dose.cvx}","display":${j(CVX[dose.cvx])}}]},` +
    `"patient":{"reference":"Patient/${p.id}"},"occurrenceDateTime":"${isoDate(dose.day)}","primarySource":true}`
  );
}
