/**
 * FHIR read of a Patient, `GET [base]/Patient/<id>`: the `Location` a PIXm ITI-104 create hands
 * out (patient-feed.ts), readable back. The resource is the index's stored one, as the export
 * writes it.
 *
 * Who reads what:
 * - A Patient Identity Source (a feed client, its token holding a feed scope or a Patient read
 *   scope): any Patient the index holds, merged-away ones as stored (`active: false`, their
 *   `replaced-by` link); a removed one is `410 Gone`.
 * - A partner's client with a Patient read scope (`system/Patient.read`, `.r`, `.rs`, `system/*.read`):
 *   only a Patient who is a member now of one of the partner's own Groups. Any other — unknown,
 *   removed, merged away, another partner's — is one and the same `404`, so a guessed id never
 *   tells a partner whether a person exists (the rule `$member-add` keeps too, in routes.ts).
 *   Not `$member-add`'s relationship test (hasRelationship), which also counts people the partner
 *   once matched or once held: a read hands over the record, so only a member now.
 * - No token, or a token that is not live: `401`; no Patient read scope: `403`.
 *
 * JSON by default; FHIR XML with `_format=xml` or an Accept that asks for it (xml.ts). Stored as
 * jsonb, the resource has lost its member order, which FHIR XML needs: members are put back in
 * R4's order for the elements a Patient holds.
 */
import type { FastifyInstance } from 'fastify';
import { FHIR_ID } from '../patient-index/validate.ts';
import { audit, FEED_PARTNER, getClient, isPartnerMember, storedPatient, type AccessGrant, type Db, type StoredPatient } from '../store/index.ts';
import { authorise } from './auth.ts';
import { FhirError } from './outcome.ts';
import { sendFhir } from './patient-feed.ts';
import { accessOf } from './scopes.ts';

export interface PatientReadOptions {
  db: Db;
}

/** Who is reading: the identity feed, which may read any Patient, or a partner, which reads its Groups' members only. */
type Reader = { kind: 'feed'; grant: AccessGrant } | { kind: 'partner'; grant: AccessGrant };

/**
 * The one answer for a Patient the reader may not see and for one that does not exist: the same
 * status, the same body, the same headers, whatever the id.
 */
export const patientNotFound = () => new FhirError(404, 'not-found', 'no Patient with this id is known');

const INSUFFICIENT = { 'www-authenticate': 'Bearer realm="rostermatch", error="insufficient_scope"' };

/** The reader behind the request's token: 401 without a live token, 403 without a scope that reads Patients. */
async function reader(db: Db, authorization: string | undefined): Promise<Reader> {
  const grant = await authorise(db, authorization);
  const may = accessOf(grant.scopes).Patient;
  if (grant.partner === FEED_PARTNER) {
    // A Patient Identity Source reads back what it feeds: its feed scopes (c, u, d) are enough.
    const client = await getClient(db, grant.clientId);
    if (!client || client.domains.length === 0) throw new FhirError(403, 'forbidden', 'this client is not registered as a Patient Identity Source', INSUFFICIENT);
    if (!(['r', 'c', 'u', 'd'] as const).some((p) => may.has(p))) throw new FhirError(403, 'forbidden', 'the token\'s scopes do not allow reading Patients', INSUFFICIENT);
    return { kind: 'feed', grant };
  }
  if (!may.has('r')) throw new FhirError(403, 'forbidden', 'the token\'s scopes do not allow reading Patient (system/Patient.read, system/Patient.r or system/Patient.rs)', INSUFFICIENT);
  return { kind: 'partner', grant };
}

/** The patient for a partner: a member now of one of its Groups, else the one 404. */
async function partnersPatient(db: Db, grant: AccessGrant, id: string): Promise<StoredPatient> {
  // Membership first, for an unknown id as for a known one: the same work, the same answer.
  const found = (await isPartnerMember(db, grant.partner, id)) ? await storedPatient(db, id) : undefined;
  const readable = found !== undefined && found.removedAt === null && found.replacedBy === null;
  // Who read which of the IIS's records: ids only, the refusals too (a run of guesses shows).
  await audit(db, { actor: `client/${grant.clientId}`, action: 'patient.read', entity: `Patient/${id}`, detail: { partner: grant.partner, outcome: readable ? 'read' : 'not-found' } });
  if (!found || !readable) throw patientNotFound();
  return found;
}

/** The patient for the identity feed: whatever the index holds, merged away too; a removed one is gone (410). */
async function anyPatient(db: Db, id: string): Promise<StoredPatient> {
  const found = await storedPatient(db, id);
  if (!found) throw patientNotFound();
  if (found.removedAt !== null) throw new FhirError(410, 'deleted', `Patient/${id} was removed from the index (by the identity feed or an index load delta)`);
  return found;
}

export function patientReadRoutes(app: FastifyInstance, o: PatientReadOptions): void {
  app.get<{ Params: { id: string } }>('/Patient/:id', async (req, reply) => {
    const who = await reader(o.db, req.headers.authorization);
    const id = req.params.id;
    if (!FHIR_ID.test(id)) throw new FhirError(400, 'invalid', 'a Patient id is 1 to 64 letters, digits, "-" and "."');
    const found = who.kind === 'partner' ? await partnersPatient(o.db, who.grant, id) : await anyPatient(o.db, id);
    const resource = inFhirOrder(found.resource);
    const meta = resource.meta as { lastUpdated?: unknown } | undefined;
    const modified = new Date(typeof meta?.lastUpdated === 'string' ? meta.lastUpdated : found.lastUpdated);
    if (!Number.isNaN(modified.getTime())) reply.header('last-modified', modified.toUTCString());
    return sendFhir(req, reply, 200, resource);
  });
}

// ── R4's member order ─────────────────────────────────────────────────────────────────────────

/** Each type's elements in R4 order, with the type of those that are not primitives. */
const ELEMENTS: Record<string, [string, string?][]> = {
  Patient: [
    ['id'], ['meta', 'Meta'], ['implicitRules'], ['language'], ['text', 'Narrative'], ['contained'], ['extension', 'Extension'], ['modifierExtension', 'Extension'],
    ['identifier', 'Identifier'], ['active'], ['name', 'HumanName'], ['telecom', 'ContactPoint'], ['gender'], ['birthDate'], ['deceasedBoolean'], ['deceasedDateTime'],
    ['address', 'Address'], ['maritalStatus', 'CodeableConcept'], ['multipleBirthBoolean'], ['multipleBirthInteger'], ['photo', 'Attachment'], ['contact', 'PatientContact'],
    ['communication', 'PatientCommunication'], ['generalPractitioner', 'Reference'], ['managingOrganization', 'Reference'], ['link', 'PatientLink'],
  ],
  PatientContact: [['relationship', 'CodeableConcept'], ['name', 'HumanName'], ['telecom', 'ContactPoint'], ['address', 'Address'], ['gender'], ['organization', 'Reference'], ['period', 'Period']],
  PatientCommunication: [['language', 'CodeableConcept'], ['preferred']],
  PatientLink: [['other', 'Reference'], ['type']],
  Meta: [['versionId'], ['lastUpdated'], ['source'], ['profile'], ['security', 'Coding'], ['tag', 'Coding']],
  Narrative: [['status'], ['div']],
  Identifier: [['use'], ['type', 'CodeableConcept'], ['system'], ['value'], ['period', 'Period'], ['assigner', 'Reference']],
  HumanName: [['use'], ['text'], ['family'], ['given'], ['prefix'], ['suffix'], ['period', 'Period']],
  ContactPoint: [['system'], ['value'], ['use'], ['rank'], ['period', 'Period']],
  Address: [['use'], ['type'], ['text'], ['line'], ['city'], ['district'], ['state'], ['postalCode'], ['country'], ['period', 'Period']],
  CodeableConcept: [['coding', 'Coding'], ['text']],
  Coding: [['system'], ['version'], ['code'], ['display'], ['userSelected']],
  Period: [['start'], ['end']],
  Reference: [['reference'], ['type'], ['identifier', 'Identifier'], ['display']],
  Attachment: [['contentType'], ['language'], ['data'], ['url'], ['size'], ['hash'], ['title'], ['creation']],
  Extension: [['url']],
  /** A primitive's `_name`: its id and extensions. */
  Element: [],
};
/** What every element starts with: a backbone element's modifierExtension too. */
const HEAD: [string, string?][] = [['id'], ['extension', 'Extension']];
const BACKBONE = new Set(['PatientContact', 'PatientCommunication', 'PatientLink']);
/** Datatypes an extension's value[x] may be that have elements of their own to order. */
const VALUE_TYPES = ['Address', 'Attachment', 'CodeableConcept', 'Coding', 'ContactPoint', 'HumanName', 'Identifier', 'Period', 'Reference'];

/** The resource with its members, and theirs, in R4's order; members it does not know keep their place after those it does. */
export function inFhirOrder(resource: Record<string, unknown>): Record<string, unknown> {
  return { resourceType: resource.resourceType, ...ordered(resource, 'Patient') };
}

function ordered(o: Record<string, unknown>, type: string): Record<string, unknown> {
  const own = ELEMENTS[type];
  if (!own) return o;
  const elements: [string, string?][] = type === 'Patient' ? own : [...HEAD, ...(BACKBONE.has(type) ? [['modifierExtension', 'Extension'] as [string, string]] : []), ...own];
  if (type === 'Extension') {
    // value[x], after the url: its type is in its name.
    const value = Object.keys(o).find((k) => k.startsWith('value'));
    if (value) elements.push([value, VALUE_TYPES.find((t) => value === `value${t}`)]);
  }
  const out: Record<string, unknown> = {};
  const put = (k: string, elementType: string | undefined) => {
    if (!(k in o)) return;
    const v = o[k];
    const one = (x: unknown) => (elementType && x !== null && typeof x === 'object' && !Array.isArray(x) ? ordered(x as Record<string, unknown>, elementType) : x);
    out[k] = Array.isArray(v) ? v.map(one) : one(v);
  };
  for (const [name, elementType] of elements) {
    put(name, elementType);
    // A primitive's id and extensions, beside it.
    put(`_${name}`, 'Element');
  }
  for (const k of Object.keys(o)) if (!(k in out) && k !== 'resourceType') out[k] = o[k];
  return out;
}
