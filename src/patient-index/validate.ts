/**
 * The FHIR R4 rules a loaded Patient or Immunization is held to before it is stored: everything
 * we store is exported as is, so what is not valid R4 here would reach partners. Hand-written,
 * not a schema validator: this runs on every line of a million-line extract, and only the few
 * elements we read or that partners' systems reject need more than a look at their JSON kind.
 *
 * checkPatient, checkImmunization and checkMeta throw a plain Error whose message names the
 * element (`Patient.name[1].family`) and the rule, never the value: rejections end up in logs and
 * terminals. Not checked: contained resources, extensions' insides, and the inner elements of the
 * types we neither read nor export differently (CodeableConcepts of Patient.contact, say) beyond
 * their JSON kind.
 */

export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

// Year 0001 and later (R4's date regex has no year 0000); month and day ranges are checked after.
const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
const DATE_TIME = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$/;
const CODE = /^[^\s]+( [^\s]+)*$/;

/** A FHIR `date`: YYYY, YYYY-MM or YYYY-MM-DD, and a day that exists in that month. */
export function isFhirDate(s: unknown): s is string {
  return typeof s === 'string' && realParts(DATE.exec(s));
}

/** A FHIR `dateTime`: a `date`, or a full date with a time and its offset. */
export function isFhirDateTime(s: unknown): s is string {
  return typeof s === 'string' && realParts(DATE_TIME.exec(s));
}

function realParts(m: RegExpExecArray | null): boolean {
  if (!m || m[1] === '0000') return false;
  if (m[2] === undefined) return true;
  const month = Number(m[2]);
  if (month < 1 || month > 12) return false;
  if (m[3] === undefined) return true;
  const day = Number(m[3]);
  return day >= 1 && day <= daysInMonth(Number(m[1]), month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

export const IMMUNIZATION_STATUSES: readonly string[] = ['completed', 'entered-in-error', 'not-done'];

/**
 * A check returns undefined when the value holds, or what is wrong with it relative to the value
 * (" must be …", ".family is not …", "[2].system is …"); the caller puts the element's path in
 * front. Paths are only built for a value that fails, so a valid line allocates no strings.
 */
type Check = (v: unknown) => string | undefined;
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function isEmpty(o: Json): boolean {
  for (const _ in o) return false;
  return true;
}

const NOT_OBJECT = ' is not a JSON object with content';

const string: Check = (v) => (typeof v === 'string' && v !== '' ? undefined : ' is not a non-empty string');
const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : ' is not true or false');
const object: Check = (v) => (isObject(v) && !isEmpty(v) ? undefined : NOT_OBJECT);
const code: Check = (v) => (typeof v === 'string' && CODE.test(v) ? undefined : ' is not a FHIR code');
const date: Check = (v) => (isFhirDate(v) ? undefined : ' is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date)');
const dateTime: Check = (v) =>
  isFhirDateTime(v) ? undefined : ' is not a FHIR dateTime (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date, or that with a time and its offset)';
const positiveInt: Check = (v) => (Number.isInteger(v) && (v as number) >= 1 ? undefined : ' is not a positive whole number');
const integer: Check = (v) => (Number.isInteger(v) ? undefined : ' is not a whole number');
/** Checked by the loader itself, or replaced by it. */
const anything: Check = () => undefined;

const codeIn = (codes: readonly string[]): Check => {
  const set = new Set(codes);
  const rule = ` must be ${codes.slice(0, -1).join(', ')} or ${codes[codes.length - 1]}`;
  return (v) => (typeof v === 'string' && set.has(v) ? undefined : rule);
};

/** A repeating element: a non-empty array of values that each pass `each`. */
const many = (each: Check): Check => (v) => {
  if (!Array.isArray(v) || v.length === 0) return ' is not a non-empty JSON array';
  for (let i = 0; i < v.length; i++) {
    const p = each(v[i]);
    if (p !== undefined) return `[${i}]${p}`;
  }
  return undefined;
};

/** The members of an object; anything else is not an element of it. */
function members(o: Json, all: Record<string, Check>, type: string): string | undefined {
  for (const k in o) {
    const v = o[k];
    const check = all[k];
    if (check !== undefined) {
      if (v === null) return `.${k} is null (FHIR JSON leaves an absent element out)`;
      const p = check(v);
      if (p !== undefined) return `.${k}${p}`;
    } else if (k.charCodeAt(0) === 95 /* _ */ && all[k.slice(1)] !== undefined) {
      // A primitive's own id and extensions (`_birthDate`): an object, or an array beside a repeating one.
      if (typeof v !== 'object' || v === null) return `.${k} is not a JSON object or array`;
    } else {
      return `.${k} is not an element of an R4 ${type}`;
    }
  }
  return undefined;
}

/** A data type: its members (with every element's id and extension) and any rule across them. */
function shape(type: string, own: Record<string, Check>, rule?: (o: Json) => string | undefined): Check {
  const all: Record<string, Check> = { id: string, extension: many(object), ...own };
  return (v) => {
    if (!isObject(v) || isEmpty(v)) return NOT_OBJECT;
    return members(v, all, type) ?? rule?.(v);
  };
}

const PERIOD = shape('Period', { start: dateTime, end: dateTime });
const REFERENCE = shape('Reference', { reference: string, type: string, identifier: object, display: string });

const IDENTIFIER = shape('Identifier', {
  use: codeIn(['usual', 'official', 'temp', 'secondary', 'old']),
  type: object,
  system: string,
  value: string,
  period: PERIOD,
  assigner: REFERENCE,
});

const HUMAN_NAME = shape('HumanName', {
  use: codeIn(['usual', 'official', 'temp', 'nickname', 'anonymous', 'old', 'maiden']),
  text: string,
  family: string,
  given: many(string),
  prefix: many(string),
  suffix: many(string),
  period: PERIOD,
});

const CONTACT_POINT = shape(
  'ContactPoint',
  {
    system: codeIn(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']),
    value: string,
    use: codeIn(['home', 'work', 'temp', 'old', 'mobile']),
    rank: positiveInt,
    period: PERIOD,
  },
  // Invariant cpt-2: a system is required if a value is provided.
  (o) => (o.value !== undefined && o.system === undefined ? '.system is missing: R4 requires it when there is a value (cpt-2)' : undefined),
);

const ADDRESS = shape('Address', {
  use: codeIn(['home', 'work', 'temp', 'old', 'billing']),
  type: codeIn(['postal', 'physical', 'both']),
  text: string,
  line: many(string),
  city: string,
  district: string,
  state: string,
  postalCode: string,
  country: string,
  period: PERIOD,
});

const LINK = shape(
  'Patient.link',
  { modifierExtension: many(object), other: REFERENCE, type: codeIn(['replaced-by', 'replaces', 'refer', 'seealso']) },
  (o) => (o.other === undefined ? '.other is missing' : o.type === undefined ? '.type is missing' : undefined),
);

const CODING = shape('Coding', { system: string, version: string, code, display: string, userSelected: boolean });
const CODEABLE_CONCEPT = shape('CodeableConcept', { coding: many(CODING), text: string });

const META = shape('Meta', { versionId: string, lastUpdated: anything, source: string, profile: many(string), security: many(object), tag: many(object) });

/** The elements every resource may have (Resource's and DomainResource's). */
const RESOURCE: Record<string, Check> = {
  resourceType: anything,
  id: anything,
  implicitRules: string,
  language: code,
  text: object,
  contained: many(object),
  extension: many(object),
  modifierExtension: many(object),
};

const PATIENT: Record<string, Check> = {
  ...RESOURCE,
  identifier: many(IDENTIFIER),
  active: boolean,
  name: many(HUMAN_NAME),
  telecom: many(CONTACT_POINT),
  gender: codeIn(['male', 'female', 'other', 'unknown']),
  birthDate: date,
  deceasedBoolean: boolean,
  deceasedDateTime: dateTime,
  address: many(ADDRESS),
  maritalStatus: CODEABLE_CONCEPT,
  multipleBirthBoolean: boolean,
  multipleBirthInteger: integer,
  photo: many(object),
  contact: many(object),
  communication: many(object),
  generalPractitioner: many(REFERENCE),
  managingOrganization: REFERENCE,
  link: many(LINK),
};

const IMMUNIZATION: Record<string, Check> = {
  ...RESOURCE,
  identifier: many(IDENTIFIER),
  status: codeIn(IMMUNIZATION_STATUSES),
  statusReason: CODEABLE_CONCEPT,
  vaccineCode: CODEABLE_CONCEPT,
  patient: REFERENCE,
  encounter: REFERENCE,
  occurrenceDateTime: dateTime,
  occurrenceString: string,
  recorded: dateTime,
  primarySource: boolean,
  reportOrigin: CODEABLE_CONCEPT,
  location: REFERENCE,
  manufacturer: REFERENCE,
  lotNumber: string,
  expirationDate: date,
  site: CODEABLE_CONCEPT,
  route: CODEABLE_CONCEPT,
  doseQuantity: object,
  performer: many(object),
  note: many(object),
  reasonCode: many(CODEABLE_CONCEPT),
  reasonReference: many(REFERENCE),
  isSubpotent: boolean,
  subpotentReason: many(CODEABLE_CONCEPT),
  education: many(object),
  programEligibility: many(CODEABLE_CONCEPT),
  fundingSource: CODEABLE_CONCEPT,
  reaction: many(object),
  protocolApplied: many(object),
};

const problem = (type: string, p: string | undefined): void => {
  if (p !== undefined) throw new Error(`${type}${p}`);
};

/** meta as sent, which the loader keeps beside its own lastUpdated: may be {}. */
export function checkMeta(type: string, meta: unknown): void {
  if (meta === undefined || (isObject(meta) && isEmpty(meta))) return;
  problem(type, prefixed('.meta', META(meta)));
}

const prefixed = (at: string, p: string | undefined) => (p === undefined ? undefined : `${at}${p}`);

/**
 * Throws when `content` (a Patient without its meta, its id already checked) is not a Patient we
 * may store and export.
 */
export function checkPatient(content: Json): void {
  problem('Patient', members(content, PATIENT, 'Patient'));
  if (content.deceasedBoolean !== undefined && content.deceasedDateTime !== undefined) problem('Patient', '.deceased[x] is given twice (deceasedBoolean and deceasedDateTime)');
  if (content.multipleBirthBoolean !== undefined && content.multipleBirthInteger !== undefined) {
    problem('Patient', '.multipleBirth[x] is given twice (multipleBirthBoolean and multipleBirthInteger)');
  }
}

/**
 * Throws when `content` (an Immunization without its meta, its id already checked) is not one we
 * may store and export. Its patient reference is the loader's to read.
 */
export function checkImmunization(content: Json): void {
  problem('Immunization', members(content, IMMUNIZATION, 'Immunization'));
  if (content.status === undefined) problem('Immunization', '.status is missing (completed, entered-in-error or not-done)');
  const vaccine = content.vaccineCode as Json | undefined;
  if (vaccine === undefined) problem('Immunization', '.vaccineCode is missing');
  else if (vaccine.coding === undefined && vaccine.text === undefined) problem('Immunization', '.vaccineCode has neither a coding nor a text');
  const at = content.occurrenceDateTime !== undefined;
  const said = content.occurrenceString !== undefined;
  if (!at && !said) problem('Immunization', '.occurrence[x] is missing (occurrenceDateTime or occurrenceString)');
  if (at && said) problem('Immunization', '.occurrence[x] is given twice (occurrenceDateTime and occurrenceString)');
}
