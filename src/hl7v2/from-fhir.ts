/**
 * FHIR R4 Patient and Immunization JSON, as the patient index holds them, to the values an RSP's
 * PID, ORC, RXA and RXR carry. Pure and forgiving: an element that is missing or malformed gives
 * an empty value, never an exception, because a reply should still go out.
 */
import type { V2Address, V2Identifier, V2Immunization, V2Name, V2ReplyPatient } from './types.ts';

interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

/** The parts of a FHIR R4 Patient read here. */
export interface FhirPatientJson {
  resourceType?: string;
  id?: string;
  identifier?: { system?: string; value?: string; type?: CodeableConcept }[];
  name?: { use?: string; family?: string; given?: string[]; suffix?: string[] }[];
  gender?: string;
  birthDate?: string;
  address?: { use?: string; type?: string; line?: string[]; city?: string; state?: string; postalCode?: string }[];
  telecom?: { system?: string; value?: string; use?: string }[];
  multipleBirthBoolean?: boolean;
  multipleBirthInteger?: number;
  extension?: { url?: string; valueString?: string }[];
}

/** The parts of a FHIR R4 Immunization read here. */
export interface FhirImmunizationJson {
  resourceType?: string;
  id?: string;
  status?: string;
  vaccineCode?: CodeableConcept;
  occurrenceDateTime?: string;
  primarySource?: boolean;
  lotNumber?: string;
  manufacturer?: { reference?: string; display?: string; identifier?: { system?: string; value?: string } };
  doseQuantity?: { value?: number; unit?: string; system?: string; code?: string };
  route?: CodeableConcept;
  site?: CodeableConcept;
}

export const MOTHERS_MAIDEN_NAME = 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName';
export const US_SSN = 'http://hl7.org/fhir/sid/us-ssn';
const CVX = 'http://hl7.org/fhir/sid/cvx';
const MVX = 'http://hl7.org/fhir/sid/mvx';
const UCUM = 'http://unitsofmeasure.org';
const V2_0162 = 'http://terminology.hl7.org/CodeSystem/v2-0162';
const V2_0163 = 'http://terminology.hl7.org/CodeSystem/v2-0163';
const V3_ROUTE = 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration';
const V3_SITE = 'http://terminology.hl7.org/CodeSystem/v3-ActSite';
/** NCI Thesaurus: FHIR's canonical URI, the NCI Metathesaurus and the OID the CDC route value set names. */
const NCIT = new Set(['http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl', 'http://ncimeta.nci.nih.gov', 'urn:oid:2.16.840.1.113883.3.26.1.1']);

// Routes the IG's partners send (CDC route value set, NCIT) and the FHIR example binding
// (v3 RouteOfAdministration), as HL7 0162 codes, so RXR-1 always names one code system.
const ROUTE_0162: Readonly<Record<string, readonly [string, string]>> = {
  C28161: ['IM', 'Intramuscular'],
  C38238: ['ID', 'Intradermal'],
  C38284: ['NS', 'Nasal'],
  C38288: ['PO', 'Oral'],
  C38299: ['SC', 'Subcutaneous'],
  C38305: ['TD', 'Transdermal'],
  C38276: ['IV', 'Intravenous'],
  IM: ['IM', 'Intramuscular'],
  IDINJ: ['ID', 'Intradermal'],
  NASINHLC: ['NS', 'Nasal'],
  PO: ['PO', 'Oral'],
  SQ: ['SC', 'Subcutaneous'],
  TRNSDERMD: ['TD', 'Transdermal'],
  IVINJ: ['IV', 'Intravenous'],
};

const GENDER: Readonly<Record<string, string>> = { female: 'F', male: 'M', other: 'O', unknown: 'U' };

export interface ReplyPatientOptions {
  /** The IIS's FHIR Patient id, listed in PID-3 with type PI. */
  fhirId: string;
  /** PID-3's CX-4 for the FHIR id, and ORC-3's namespace for Immunization ids. */
  fhirIdAuthority: string;
  /** More identifiers to list after the patient's own (e.g. the requester's MR, echoed). */
  extra?: readonly V2Identifier[];
  /**
   * CX-5 for identifiers whose `type` has no code, by system. The IG requires CX-5, so an
   * identifier with neither is left out (the samples' IIS number and clinic MRN carry no type).
   * @defaultValue `{ 'http://hl7.org/fhir/sid/us-ssn': 'SS' }`
   */
  identifierTypes?: Readonly<Record<string, string>>;
}

/**
 * CX-4 for a FHIR identifier system: `SSA` for the US SSN system; the OID of a `urn:oid:`
 * system (written to CX-4.2 with ISO); the last path segment of a URL (`…/sid/mrn` → `mrn`),
 * which stays within HD-1's 20 characters where the URL would not; else the system as given.
 */
export function authorityOf(system: string): string {
  if (system === US_SSN) return 'SSA';
  if (system.startsWith('urn:oid:')) return system.slice('urn:oid:'.length);
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^/]+(\/.*)?$/i.exec(system);
  if (url) {
    const last = (url[1] ?? '').split('/').filter((s) => s !== '').pop();
    if (last) return last;
  }
  return system;
}

/** FHIR date or dateTime → HL7 DT: YYYY[MM[DD]], the date as written (no zone shift); '' when not a date. */
export function hl7Date(value: string | undefined): string {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value ?? '');
  return m ? `${m[1]}${m[2] ?? ''}${m[3] ?? ''}` : '';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

function pickName(names: FhirPatientJson['name']): NonNullable<FhirPatientJson['name']>[number] | undefined {
  if (!Array.isArray(names)) return undefined;
  return names.find((n) => n.use === 'official') ?? names.find((n) => n.use === 'usual') ?? names.find((n) => n.use !== 'old' && n.use !== 'maiden') ?? names[0];
}

function address(list: FhirPatientJson['address']): V2Address | undefined {
  if (!Array.isArray(list)) return undefined;
  const a = list.find((x) => x.use === 'home') ?? list.find((x) => x.use !== 'old') ?? list[0];
  if (!a) return undefined;
  const lines = (a.line ?? []).map(str).filter(Boolean);
  // XAD-7 (HL7 0190): a postal-only address is M; otherwise by use, and L (legal) when unstated.
  const type = a.type === 'postal' ? 'M' : a.use === 'home' ? 'H' : a.use === 'work' ? 'B' : a.use === 'temp' ? 'C' : a.use === 'old' ? 'BA' : 'L';
  return { street: lines[0] ?? '', street2: lines.slice(1).join(' '), city: str(a.city), state: str(a.state), zip: str(a.postalCode), type };
}

function phone(list: FhirPatientJson['telecom']): string | undefined {
  if (!Array.isArray(list)) return undefined;
  const phones = list.filter((t) => t.system === 'phone' && str(t.value) !== '' && t.use !== 'old');
  return str((phones.find((t) => t.use === 'home') ?? phones.find((t) => t.use === 'mobile') ?? phones[0])?.value) || undefined;
}

function identifiers(r: FhirPatientJson, o: ReplyPatientOptions): V2Identifier[] {
  const types = o.identifierTypes ?? { [US_SSN]: 'SS' };
  const own: V2Identifier[] = [];
  for (const i of Array.isArray(r.identifier) ? r.identifier : []) {
    const value = str(i.value);
    const system = str(i.system);
    const type = str(i.type?.coding?.[0]?.code) || (types[system] ?? '');
    if (value && system && type) own.push({ value, authority: authorityOf(system), type });
  }
  const all = [{ value: o.fhirId, authority: o.fhirIdAuthority, type: 'PI' }, ...own, ...(o.extra ?? [])];
  const seen = new Set<string>();
  return all.filter((i) => {
    const key = `${i.value}\u0000${i.authority}\u0000${i.type}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * A Patient and its Immunizations as an RSP lists them: the FHIR id first in PID-3, the
 * official (else usual) name as the legal one, immunizations by date (entered-in-error ones
 * left out: they never happened).
 */
export function replyPatient(resource: FhirPatientJson, immunizations: readonly FhirImmunizationJson[], o: ReplyPatientOptions): V2ReplyPatient {
  const n = pickName(resource.name);
  const given = (n?.given ?? []).map(str).filter(Boolean);
  const name: V2Name = {
    family: str(n?.family),
    given: given[0] ?? '',
    middle: given.slice(1).join(' '),
    suffix: str(n?.suffix?.[0]),
    type: 'L',
  };
  const maiden = Array.isArray(resource.extension) ? resource.extension.find((e) => e.url === MOTHERS_MAIDEN_NAME) : undefined;
  const order = resource.multipleBirthInteger;
  const multipleBirth =
    typeof order === 'number' && order > 0 ? 'Y' : typeof resource.multipleBirthBoolean === 'boolean' ? (resource.multipleBirthBoolean ? 'Y' : 'N') : '';
  const patient: V2ReplyPatient = {
    identifiers: identifiers(resource, o),
    name,
    mothersMaidenName: str(maiden?.valueString),
    birthDate: hl7Date(resource.birthDate),
    sex: GENDER[str(resource.gender)] ?? '',
    multipleBirth,
    birthOrder: typeof order === 'number' && order > 0 ? String(Math.trunc(order)) : '',
    immunizations: immunizations
      .filter((im) => im.status !== 'entered-in-error')
      .map((im) => replyImmunization(im, o.fhirIdAuthority))
      .sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0)),
  };
  const a = address(resource.address);
  if (a) patient.address = a;
  const p = phone(resource.telecom);
  if (p) patient.phone = p;
  return patient;
}

function coding(c: CodeableConcept | undefined, systems: (system: string) => boolean): Coding | undefined {
  return Array.isArray(c?.coding) ? c.coding.find((x) => systems(str(x.system)) && str(x.code) !== '') : undefined;
}

function route(c: CodeableConcept | undefined): V2Immunization['route'] {
  const direct = coding(c, (s) => s === V2_0162);
  if (direct) return { code: str(direct.code), display: str(direct.display) };
  const other = coding(c, (s) => s === V3_ROUTE || NCIT.has(s));
  const mapped = other ? ROUTE_0162[str(other.code)] : undefined;
  return mapped ? { code: mapped[0], display: mapped[1] } : undefined;
}

function site(c: CodeableConcept | undefined): V2Immunization['site'] {
  // v3 ActSite's body-site codes (LA, RA, LT, RT, LD, RD, LVL…) are HL7 0163's codes.
  const s = coding(c, (sys) => sys === V2_0163 || sys === V3_SITE);
  return s ? { code: str(s.code), display: str(s.display) } : undefined;
}

/**
 * An Immunization as RXA/RXR give it. No CVX coding: CVX 999 (unknown). No dose: amount 999.
 * Units from a UCUM-coded dose, else its unit text. `fillerAuthority` names the namespace of
 * ORC-3, which carries the resource id.
 */
export function replyImmunization(resource: FhirImmunizationJson, fillerAuthority = ''): V2Immunization {
  const cvx = coding(resource.vaccineCode, (s) => s === CVX);
  const dose = resource.doseQuantity;
  const m = resource.manufacturer;
  const mvx = m?.identifier && str(m.identifier.system) === MVX ? str(m.identifier.value) : '';
  const im: V2Immunization = {
    date: hl7Date(resource.occurrenceDateTime),
    cvx: cvx ? { code: str(cvx.code), display: str(cvx.display) || str(resource.vaccineCode?.text) } : { code: '999', display: 'unknown' },
    amount: typeof dose?.value === 'number' && Number.isFinite(dose.value) ? String(dose.value) : '999',
    units: typeof dose?.value === 'number' ? (str(dose.system) === UCUM && str(dose.code)) || str(dose.unit) : '',
    // RXA-9: the IG's 00 only for a record from the one who gave the dose.
    informationSource: resource.primarySource === true ? '00' : '01',
    lotNumber: str(resource.lotNumber),
    completionStatus: resource.status === 'not-done' ? 'RE' : 'CP',
  };
  if (mvx || str(m?.display)) im.manufacturer = { code: mvx, display: str(m?.display) };
  const r = route(resource.route);
  if (r) im.route = r;
  const s = site(resource.site);
  if (s) im.site = s;
  if (str(resource.id)) im.fillerOrder = { id: str(resource.id), authority: fillerAuthority };
  return im;
}
