/** FHIR R4 Patient → the matcher's view of a patient. Pure. */
import type { Identifier, IndexPatient } from '../model/index.ts';
import {
  indexIdentifierValue,
  isPlaceholderPhone,
  isPlaceholderStreet,
  birthOrderFromFhir,
  MOTHERS_MAIDEN_NAME_URL,
  normaliseMothersMaiden,
  normaliseStreetLines,
  normaliseName,
  normalisePhone,
  normaliseSex,
  normaliseState,
  normaliseZip,
  splitSuffix,
} from '../normalise/index.ts';
import { FHIR_ID, isFhirDate } from './validate.ts';

export { FHIR_ID };

interface HumanName {
  use?: string;
  family?: string;
  given?: string[];
  suffix?: string[];
  period?: { end?: string };
}
interface Address {
  use?: string;
  line?: string[];
  city?: string;
  state?: string;
  postalCode?: string;
}
export interface FhirPatient {
  resourceType: 'Patient';
  id: string;
  identifier?: { system?: string; value?: string }[];
  name?: HumanName[];
  gender?: string;
  birthDate?: string;
  address?: Address[];
  telecom?: { system?: string; value?: string; use?: string }[];
  /** replaced-by: merged into the patient `other` names; only `reference` is read here (the identity feed resolves an `identifier` to one). */
  link?: { type?: string; other?: { reference?: string; identifier?: { system?: string; value?: string } } }[];
  extension?: { url?: string; valueString?: string }[];
  multipleBirthBoolean?: boolean;
  multipleBirthInteger?: number;
}

/** Throws a plain Error with a reason (no values) when the resource cannot be used. */
export function patientFromFhir(r: FhirPatient): IndexPatient {
  if (typeof r.id !== 'string' || !FHIR_ID.test(r.id)) throw new Error('Patient.id is missing or not a valid FHIR id');
  const name = pick(r.name, (n) => n.use === 'official') ?? pick(r.name, (n) => n.use !== 'old' && n.use !== 'maiden');
  const givens = (name?.given ?? []).map(normaliseName).filter(Boolean);
  const fam = splitSuffix(normaliseName(name?.family ?? ''));
  const sfx = name?.suffix?.map((s) => splitSuffix(`X ${normaliseName(s)}`).suffix).find((s) => s !== '') ?? '';
  const address = pick(r.address, (a) => a.use === 'home') ?? pick(r.address, () => true);
  const phoneCell = pick(r.telecom, (t) => t.system === 'phone' && t.use === 'home') ?? pick(r.telecom, (t) => t.system === 'phone');
  // Only a whole date is evidence for matching; a year or a month alone (valid FHIR) is not.
  const birthDate = r.birthDate?.length === 10 && isFhirDate(r.birthDate) ? r.birthDate : '';
  const identifiers: Identifier[] = (r.identifier ?? [])
    .filter((i) => i.system && i.value)
    .map((i) => ({ system: i.system!, value: indexIdentifierValue(i.system!, i.value!) }))
    .filter((i) => i.value !== '');
  const replacedBy = r.link?.find((l) => l.type === 'replaced-by')?.other?.reference?.replace(/^Patient\//, '');
  const patient: IndexPatient = {
    id: r.id,
    identifiers,
    person: {
      given: givens[0] ?? '',
      middle: givens.slice(1).join(' '),
      family: fam.name,
      suffix: sfx || fam.suffix,
      birthDate,
      sex: normaliseSex(r.gender ?? '') ?? '',
      street: usableStreet(normaliseStreetLines(address?.line ?? [])),
      city: normaliseName(address?.city ?? ''),
      state: normaliseState(address?.state ?? '') ?? '',
      zip: normaliseZip(address?.postalCode ?? '') ?? '',
      phone: usablePhone(normalisePhone(phoneCell?.value ?? '') ?? ''),
    },
  };
  // Left out when absent, so a Patient without them reads exactly as it did before they were read.
  const maidenExt = pick(r.extension, (e) => e.url === MOTHERS_MAIDEN_NAME_URL);
  const mothersMaiden = normaliseMothersMaiden(typeof maidenExt?.valueString === 'string' ? maidenExt.valueString : '');
  if (mothersMaiden !== '') patient.person.mothersMaiden = mothersMaiden;
  const birthOrder = birthOrderFromFhir(r.multipleBirthInteger);
  if (birthOrder !== '') patient.person.birthOrder = birthOrder;
  if (replacedBy) patient.replacedBy = replacedBy;
  return patient;
}

/** Placeholders (GENERAL DELIVERY, 555-0100) are not where or how anyone is reached: no evidence. */
function usableStreet(street: string): string {
  return isPlaceholderStreet(street) ? '' : street;
}

function usablePhone(phone: string): string {
  return phone !== '' && isPlaceholderPhone(phone) ? '' : phone;
}

function pick<T>(list: T[] | undefined, pred: (x: T) => boolean): T | undefined {
  return Array.isArray(list) ? list.find(pred) : undefined;
}
