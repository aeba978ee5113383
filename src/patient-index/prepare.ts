/**
 * One line of an index file, read: checked against the R4 rules, hashed, and (asked to) normalised
 * for matching. Pure, and of plain data in and out, so that a worker thread can do it for the
 * loader (prepared-lines.ts) while the loader writes the batch before.
 */
import { createHash } from 'node:crypto';
import { blockingKeys } from '../match/index.ts';
import { patientText, type PatientText, type PatientWrite } from '../store/patients.ts';
import { FHIR_ID, patientFromFhir, type FhirPatient } from './fhir.ts';
import { checkImmunization, checkMeta, checkPatient } from './validate.ts';

/**
 * The mark of a removal in an NDJSON delta: a Patient whose meta.tag holds this coding (and whose
 * `active` is not true: `active: false` is what a removed record says), named by its id. Nothing
 * else of the line is read or stored.
 */
export const REMOVED_TAG = { system: 'https://rostermatch/tags', code: 'removed' } as const;

/** Whether a resource's meta.tag holds the removal mark (REMOVED_TAG). */
export function hasRemovedTag(resource: unknown): boolean {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) return false;
  const tags = (resource as { meta?: { tag?: unknown } }).meta?.tag;
  return (
    Array.isArray(tags) &&
    tags.some((t) => {
      const c = t as { system?: unknown; code?: unknown } | null;
      return c !== null && typeof c === 'object' && c.system === REMOVED_TAG.system && c.code === REMOVED_TAG.code;
    })
  );
}

/** A line as read: checked and hashed; stamped only in the transaction that stores it. */
export interface ReadLine {
  line: number;
  id: string;
  /** The resource without meta, as JSON text (what the content hash is of). */
  content: string;
  /** meta as sent (the loader's own lastUpdated goes beside it). */
  meta: unknown;
  contentHash: string;
}

/** The matcher's view of a Patient line and its blocking keys; or why the line cannot be matched on. */
export type PatientView = Pick<PatientWrite, 'patient' | 'blockKeys'> | { error: string };

/** A Patient line as read; normalised only if it changes the index (or when asked to up front). */
export interface ReadPatient extends ReadLine {
  /** It carries a replaced-by link: it is applied as the identity feed applies a merge. */
  linked: boolean;
  /** Normalised up front (a first load): its columns as COPY text, or why it cannot be matched on. */
  ready?: { text: PatientText } | { error: string };
}

export interface ReadImmunization extends ReadLine {
  patientId: string;
}

/** What one line of an index file is: a Patient, an Immunization, a removal, or refused (with why). */
export type PreparedLine =
  | { kind: 'Patient'; read: ReadPatient }
  | { kind: 'Immunization'; read: ReadImmunization }
  | { kind: 'remove'; line: number; id: string }
  | { kind: 'rejected'; line: number; reason: string };

/** The input of one line: its text (NDJSON), or the resource already built (the CSV form). */
export interface SourceLine {
  line: number;
  input: string | Record<string, unknown>;
}

/** Prepares one line; `normalise`: give a Patient its view now (a first load, where every line is new). */
export function prepareLine({ line, input }: SourceLine, normalise: boolean): PreparedLine {
  let resource: unknown = input;
  if (typeof input === 'string') {
    try {
      resource = JSON.parse(input);
    } catch {
      return { kind: 'rejected', line, reason: 'not valid JSON' };
    }
  }
  try {
    const removal = removalMark(resource);
    if (removal !== undefined) return { kind: 'remove', line, id: removal };
    const { prepared, content } = prepare(resource, line);
    if (prepared.kind === 'Patient' && normalise) {
      const view = patientViewOf(content as unknown as FhirPatient);
      prepared.read.ready = 'error' in view ? view : { text: patientText(view.patient, view.blockKeys) };
    }
    return prepared;
  } catch (e) {
    return { kind: 'rejected', line, reason: (e as Error).message };
  }
}

/** The id a removal-marked Patient line names; undefined for any other line. Throws when the mark is there but the line is unusable. */
function removalMark(resource: unknown): string | undefined {
  const r = resource as { resourceType?: unknown; id?: unknown; active?: unknown; meta?: unknown };
  if (!hasRemovedTag(resource) || r.resourceType !== 'Patient') return undefined;
  if (typeof r.id !== 'string' || !FHIR_ID.test(r.id)) throw new Error('Patient.id is missing or not a valid FHIR id (a removal names the Patient by id)');
  if (r.active === true) throw new Error('Patient.active is true on a Patient marked removed (meta.tag removed): send active false');
  checkMeta('Patient', r.meta);
  return r.id;
}

/**
 * The stored resource carries our own meta.lastUpdated (when this index last changed it), as a
 * FHIR server's would, so Bulk `_since` means "changed here since"; the content hash ignores meta
 * so a reload of unchanged data is recognised as unchanged. Every line is checked against the R4
 * rules (validate.ts) — unchanged ones too, so a reload still names a bad line — since what is
 * stored here is what partners' exports carry.
 */
export function prepare(resource: unknown, line: number): { prepared: Exclude<PreparedLine, { line: number }>; content: Record<string, unknown> } {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) throw new Error('not a JSON object');
  const r = resource as Record<string, unknown>;
  // An empty array means "none" to the exporters that write one, but FHIR JSON forbids it: it is
  // left out (as are meta, which is ours to stamp) rather than the whole line refused.
  const content: Record<string, unknown> = {};
  let meta: unknown;
  for (const k in r) {
    const v = r[k];
    if (k === 'meta') meta = v;
    else if (!(Array.isArray(v) && v.length === 0)) content[k] = v;
  }
  if (r.resourceType === 'Patient') {
    if (typeof r.id !== 'string' || !FHIR_ID.test(r.id)) throw new Error('Patient.id is missing or not a valid FHIR id');
    checkMeta('Patient', meta);
    checkPatient(content);
    const linked = Array.isArray(content.link) && content.link.some((l) => (l as { type?: unknown } | null)?.type === 'replaced-by');
    return { prepared: { kind: 'Patient', read: { line, id: r.id, meta, linked, ...hashed(content) } }, content };
  }
  if (r.resourceType === 'Immunization') {
    if (typeof r.id !== 'string' || !FHIR_ID.test(r.id)) throw new Error('Immunization.id is missing or not a valid FHIR id');
    const ref = (r.patient as { reference?: unknown } | undefined)?.reference;
    const m = typeof ref === 'string' ? /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(ref) : null;
    if (!m) throw new Error('Immunization.patient.reference is missing or not "Patient/<id>"');
    checkMeta('Immunization', meta);
    checkImmunization(content);
    return { prepared: { kind: 'Immunization', read: { line, id: r.id, patientId: m[1]!, meta, ...hashed(content) } }, content };
  }
  throw new Error(`resourceType must be Patient or Immunization`);
}

function hashed(content: Record<string, unknown>): { content: string; contentHash: string } {
  const text = JSON.stringify(content);
  return { content: text, contentHash: createHash('sha256').update(text).digest('hex') };
}

/** The Patient line's view for matching, normalised from its content (which may refuse it). */
export function patientView(r: ReadLine): PatientView {
  return patientViewOf(JSON.parse(r.content) as FhirPatient);
}

/** A Patient resource's view for matching, or why it cannot be matched on. */
export function patientViewOf(fhir: FhirPatient): PatientView {
  try {
    const patient = patientFromFhir(fhir);
    return { patient, blockKeys: blockingKeys(patient.person, patient.identifiers) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The resource as sent, less what the loader drops (meta goes first): what the identity feed is given for a delta line. */
export function sentResource(r: ReadLine): Record<string, unknown> {
  const content = JSON.parse(r.content) as Record<string, unknown>;
  return r.meta === undefined ? content : { meta: r.meta, ...content };
}
