/**
 * What an IHE PIXm Patient Identity Feed (ITI-104) request asks, read from its Patient before
 * the store is touched: the identifier of the source's domain it is keyed on, and whether it is a
 * merge (a `replaced-by` link naming the survivor by reference or by identifier). Pure; every
 * refusal is a FEED_INVALID naming the element, never quoting a value.
 */
import { RostermatchError } from '../errors/index.ts';
import { indexIdentifierValue } from '../normalise/index.ts';

export interface FeedIdentifier {
  system: string;
  value: string;
}

/** The survivor a merge names: a Patient of this server by id, or a holder of an identifier. */
export type SurvivorRef = { id: string } | { identifier: FeedIdentifier };

export interface FeedRead {
  /** The resource as sent (the store gives it our id and the survivor's reference). */
  resource: Record<string, unknown>;
  /** The id the resource carries, if any. */
  id?: string;
  /** The identifier's value as the index normalises it (what is looked up). */
  normalisedValue: string;
  survivor?: SurvivorRef;
}

/** A literal reference to a Patient: relative (`Patient/<id>`) or absolute (`<base>/Patient/<id>`). */
const PATIENT_REFERENCE = /^(?:[a-z][a-z0-9+.-]*:\/\/[^\s]*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/i;

export function invalid(detail: string, field: string): RostermatchError {
  return new RostermatchError('FEED_INVALID', detail, { field });
}

/** The request's identifier (`identifier=system|value`), checked; its value as the index normalises it. */
export function readFeedIdentifier(identifier: FeedIdentifier): string {
  if (typeof identifier?.system !== 'string' || identifier.system.trim() === '') throw invalid('the identifier has no system (identifier=system|value)', 'identifier');
  if (typeof identifier.value !== 'string' || identifier.value.trim() === '') throw invalid('the identifier has no value (identifier=system|value)', 'identifier');
  const normalised = indexIdentifierValue(identifier.system, identifier.value);
  if (normalised === '') throw invalid('the identifier value is not one the index can hold', 'identifier');
  return normalised;
}

/**
 * Checks what ITI-104 needs of the Patient: a Patient, carrying the identifier of the request,
 * with at most one `replaced-by` link whose `other` names the survivor by a Patient reference or
 * by an identifier. The rest of the resource is checked by the loader's R4 rules when it is
 * written (patientWrite). A link of another type (seealso, refer, replaces) is kept, not acted on.
 */
export function readFeedPatient(resource: unknown, identifier: FeedIdentifier): FeedRead {
  const normalisedValue = readFeedIdentifier(identifier);
  const read = readFeedResource(resource);
  const ids = Array.isArray(read.resource.identifier) ? (read.resource.identifier as unknown[]) : [];
  const carries = ids.some((i) => {
    const x = i as { system?: unknown; value?: unknown } | null;
    return x !== null && typeof x === 'object' && x.system === identifier.system && typeof x.value === 'string' && indexIdentifierValue(identifier.system, x.value) === normalisedValue;
  });
  if (!carries) throw invalid('the Patient does not carry the identifier of the request (Patient.identifier must hold the same system and value)', 'Patient.identifier');
  return { ...read, normalisedValue };
}

/**
 * The checks of readFeedPatient that do not depend on an identifier: a Patient, with at most one
 * `replaced-by` link naming its survivor. What `index load` uses for a delta line, whose Patient is
 * named by the index's own id.
 */
export function readFeedResource(resource: unknown): Omit<FeedRead, 'normalisedValue'> {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) throw invalid('the body is not a FHIR resource (a JSON object)', 'Patient');
  const r = resource as Record<string, unknown>;
  if (r.resourceType !== 'Patient') throw invalid('resourceType must be Patient', 'Patient.resourceType');
  if (r.id !== undefined && typeof r.id !== 'string') throw invalid('Patient.id must be a string', 'Patient.id');
  const out: Omit<FeedRead, 'normalisedValue'> = { resource: r, ...(typeof r.id === 'string' ? { id: r.id } : {}) };
  if (r.link === undefined) return out;
  if (!Array.isArray(r.link)) throw invalid('Patient.link must be a list', 'Patient.link');
  const replacedBy = (r.link as unknown[]).filter((l) => (l as { type?: unknown } | null)?.type === 'replaced-by');
  if (replacedBy.length > 1) throw invalid('the Patient has more than one replaced-by link: a merge names one survivor', 'Patient.link');
  if (replacedBy.length === 1) out.survivor = survivorOf(replacedBy[0] as { other?: unknown });
  return out;
}

function survivorOf(link: { other?: unknown }): SurvivorRef {
  const other = link.other as { reference?: unknown; identifier?: { system?: unknown; value?: unknown } } | undefined;
  if (typeof other !== 'object' || other === null) throw invalid('the replaced-by link has no other (the surviving Patient)', 'Patient.link.other');
  if (other.reference !== undefined) {
    const m = typeof other.reference === 'string' ? PATIENT_REFERENCE.exec(other.reference) : null;
    if (!m) throw invalid('the replaced-by link\'s reference is not a Patient reference ("Patient/<id>")', 'Patient.link.other.reference');
    return { id: m[1]! };
  }
  const i = other.identifier;
  if (typeof i?.system === 'string' && i.system !== '' && typeof i.value === 'string' && i.value !== '') return { identifier: { system: i.system, value: i.value } };
  throw invalid('the replaced-by link names its survivor neither by reference nor by an identifier with a system and a value', 'Patient.link.other');
}

/** The resource to store: ours by id, its replaced-by link naming the survivor also by reference (so the index and exports can follow it). */
export function storedFeedResource(r: Record<string, unknown>, id: string, survivorId: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r, id };
  if (survivorId !== undefined && Array.isArray(r.link)) {
    out.link = (r.link as Record<string, unknown>[]).map((l) =>
      l?.type === 'replaced-by' ? { ...l, other: { ...(l.other as Record<string, unknown>), reference: `Patient/${survivorId}` } } : l,
    );
  }
  return out;
}
