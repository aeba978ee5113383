/**
 * The Patient Identifier Cross-reference Manager side of IHE PIXm ITI-104, the Patient Identity
 * Feed FHIR, over serve's FHIR base: an adapter that turns the HTTP of FHIR conditional update and
 * conditional delete into the store's feed (src/store/identity-feed.ts), which keeps the index,
 * the Groups and their history, and audits each transaction.
 *
 * - `PUT [base]/Patient?identifier=<system>|<value>` adds (201, Location), revises (200), or — a
 *   Patient with `link.type = replaced-by` — merges it into the survivor (200); dropping the link
 *   unmerges (200). JSON (`application/fhir+json`, `application/json`) or XML
 *   (`application/fhir+xml`, `application/xml`) bodies; the answer in the form Accept asks for.
 * - `DELETE [base]/Patient?identifier=<system>|<value>` removes (200 with an OperationOutcome, 204
 *   with Prefer: return=minimal), and says so when nothing held the identifier.
 *
 * Who may: a SMART Backend Services token with the feed's scope (src/fhir/scopes.ts), of a client
 * registered as the Patient Identity Source of the query's domain — PIXm's one source per domain.
 * A partner's client holds no feed scope (refused at registration), and every check is made
 * again here: its token is a 403 whatever it holds.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { audit, FEED_PARTNER, getClient, type AccessGrant, type Db } from '../store/index.ts';
import { feedPatient, removeFeedPatient, type FeedIdentifier, type FeedOutcome } from '../store/identity-feed.ts';
import { authorise } from './auth.ts';
import { FhirError, operationOutcome } from './outcome.ts';
import { preferences } from './params.ts';
import { accessOf } from './scopes.ts';
import { FhirXmlError, fhirJsonToXml, fhirXmlToJson } from './xml.ts';

export const PIXM_PATIENT_PROFILE = 'https://profiles.ihe.net/ITI/PIXm/StructureDefinition/IHE.PIXm.Patient';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const FHIR_XML = 'application/fhir+xml; charset=utf-8';
const JSON_TYPES = ['application/fhir+json', 'application/json'];
const XML_TYPES = ['application/fhir+xml', 'application/xml', 'text/xml'];

export interface PatientFeedOptions {
  db: Db;
  log: Logger;
  base: () => string;
}

/** Whether the client asked for XML: `_format`, else an Accept that names XML before (or without) JSON. */
export function wantsXml(req: FastifyRequest): boolean {
  const format = (req.query as Record<string, unknown> | undefined)?._format;
  if (typeof format === 'string') return /xml/.test(format);
  const accept = String(req.headers.accept ?? '');
  const x = accept.search(/application\/(fhir\+)?xml|text\/xml/);
  const j = accept.search(/application\/(fhir\+)?json/);
  return x >= 0 && (j < 0 || x < j);
}

/** A FHIR answer in the form the client asked for. */
export function sendFhir(req: FastifyRequest, reply: FastifyReply, status: number, body: Record<string, unknown> | undefined): FastifyReply {
  reply.code(status);
  if (body === undefined) return reply.send();
  return wantsXml(req) ? reply.type(FHIR_XML).send(fhirJsonToXml(body)) : reply.type(FHIR_JSON).send(body);
}

/**
 * The one identifier a conditional request names: `identifier=<system>|<value>`, both present,
 * FHIR's escapes (`\|`, `\,`, `\$`, `\\`) undone; a 400 for anything else (several identifiers,
 * other parameters, a value without its system).
 */
export function feedIdentifier(query: Record<string, unknown>): FeedIdentifier {
  const bad = (why: string) => new FhirError(400, 'invalid', `the conditional ${why}: name the Patient as identifier=<system>|<value>`);
  const keys = Object.keys(query).filter((k) => k !== '_format');
  const other = keys.filter((k) => k !== 'identifier');
  if (other.length > 0) throw new FhirError(400, 'not-supported', `search parameter${other.length > 1 ? 's' : ''} ${other.join(', ')} ${other.length > 1 ? 'are' : 'is'} not supported here: name the Patient as identifier=<system>|<value>`);
  const raw = query.identifier;
  if (raw === undefined) throw bad('request has no identifier');
  if (Array.isArray(raw) || typeof raw !== 'string') throw bad('request names more than one identifier');
  // Split on the first unescaped "|"; an unescaped "," would be a choice of identifiers.
  let system = '';
  let value = '';
  let seenBar = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length && '|,$\\'.includes(raw[i + 1]!)) {
      if (seenBar) value += raw[++i];
      else system += raw[++i];
    } else if (c === ',') throw bad('request names a choice of identifiers');
    else if (c === '|' && !seenBar) seenBar = true;
    else if (seenBar) value += c;
    else system += c;
  }
  if (!seenBar) throw bad('identifier has no system (no "|")');
  if (!system) throw bad('identifier\'s system is empty');
  if (!value) throw bad('identifier\'s value is empty');
  return { system, value };
}

/** The grant of a Patient Identity Source allowed `perms` on Patient, and its client's domains. */
async function feedSource(db: Db, req: FastifyRequest, perms: ('c' | 'u' | 'd')[]): Promise<{ grant: AccessGrant; domains: string[] }> {
  const grant = await authorise(db, req.headers.authorization);
  const may = accessOf(grant.scopes).Patient;
  const insufficient = { 'www-authenticate': 'Bearer realm="rostermatch", error="insufficient_scope"' };
  if (!perms.every((p) => may.has(p))) {
    const what = perms.includes('d') ? 'removing' : 'adding or revising';
    throw new FhirError(403, 'forbidden', `the token's scopes do not allow ${what} Patients (the identity feed's scope: system/Patient.write, system/Patient.${perms.join('')} or ITI-104)`, insufficient);
  }
  const client = await getClient(db, grant.clientId);
  // A partner's client never writes Patients, whatever it holds.
  if (!client || grant.partner !== FEED_PARTNER || client.domains.length === 0) throw new FhirError(403, 'forbidden', 'this client is not registered as a Patient Identity Source', insufficient);
  return { grant, domains: client.domains };
}

function checkDomain(grant: AccessGrant, domains: readonly string[], system: string, what: string): void {
  if (!domains.includes(system)) {
    throw new FhirError(403, 'forbidden', `${what} is in the domain ${system}, and this client is the Patient Identity Source of ${domains.join(', ')} only (client ${grant.clientId})`);
  }
}

/** The body as a Patient's JSON: parsed from XML when it is XML, a 415 for any other type, a 400 when it is not a Patient. */
function patientBody(req: FastifyRequest): Record<string, unknown> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let body: unknown = req.body;
  if (XML_TYPES.includes(type)) {
    try {
      body = fhirXmlToJson(String(req.body ?? ''));
    } catch (e) {
      if (e instanceof FhirXmlError) throw new FhirError(400, 'structure', e.message);
      throw e;
    }
  } else if (!JSON_TYPES.includes(type)) {
    throw new FhirError(415, 'not-supported', `a Patient is sent as application/fhir+json or application/fhir+xml${type ? `, not ${type}` : ''}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FhirError(400, 'structure', 'the body is not a FHIR resource');
  const r = body as Record<string, unknown>;
  if (r.resourceType !== 'Patient') throw new FhirError(400, 'invalid', `the body is ${typeof r.resourceType === 'string' ? `a ${r.resourceType}` : 'no resource'}, not a Patient`, {}, 'resourceType');
  return r;
}

/** The checks a Patient must pass before the store sees it: it holds the identifier its query names, and merges within the source's domains. */
function checkPatient(r: Record<string, unknown>, id: FeedIdentifier, grant: AccessGrant, domains: readonly string[]): void {
  const ids = Array.isArray(r.identifier) ? (r.identifier as { system?: unknown; value?: unknown }[]) : [];
  if (!ids.some((i) => i && i.system === id.system && i.value === id.value)) {
    throw new FhirError(422, 'business-rule', 'the Patient does not hold the identifier its conditional request names', {}, 'Patient.identifier');
  }
  const links = Array.isArray(r.link) ? (r.link as { other?: { identifier?: { system?: unknown } }; type?: unknown }[]) : [];
  for (const [i, l] of links.entries()) {
    const system = l?.other?.identifier?.system;
    if (l?.type === 'replaced-by' && typeof system === 'string') checkDomain(grant, domains, system, `the survivor its link[${i}] names`);
  }
}

const ACTION: Record<FeedOutcome['kind'], string> = { created: 'created', updated: 'updated', merged: 'merged', unmerged: 'unmerged', removed: 'removed', absent: 'absent' };

/** What happened, said as an informational OperationOutcome: ids only. */
function outcomeMessage(o: FeedOutcome): string {
  const groups = 'groups' in o ? ` (${o.groups.length} Group${o.groups.length === 1 ? '' : 's'}: ${o.groups.join(', ') || 'none'})` : '';
  switch (o.kind) {
    case 'created':
      return `Patient/${o.patientId} created`;
    case 'updated':
      return `Patient/${o.patientId} updated`;
    case 'merged':
      return `Patient/${o.patientId} merged into Patient/${o.survivorId}: its Group memberships moved to the survivor${groups}`;
    case 'unmerged':
      return `Patient/${o.patientId} unmerged from Patient/${o.survivorId}: the memberships that moved came back${groups}`;
    case 'removed':
      return `Patient/${o.patientId} removed: it left every Group${groups} and is no longer matched or exported`;
    default:
      return 'no Patient holds this identifier: nothing was removed';
  }
}

/** The store's refusals, as FHIR says them: 412 for several matches, 422 for a Patient it cannot use. */
function storeRefusal(e: unknown): FhirError | undefined {
  if (!isRostermatchError(e)) return undefined;
  const code = e.code as string;
  const expression = e.location.field;
  if (code === 'FEED_MULTIPLE_MATCHES') return new FhirError(412, 'multiple-matches', e.message);
  if (code === 'FEED_INVALID') return new FhirError(422, 'processing', e.message, {}, expression);
  if (code === 'FEED_SURVIVOR_UNKNOWN') return new FhirError(422, 'business-rule', e.message, {}, expression ?? 'Patient.link.other');
  return undefined;
}

export function patientFeedRoutes(app: FastifyInstance, o: PatientFeedOptions): void {
  // XML bodies as text, converted in the route (so a malformed one is the route's 400, in the client's form).
  app.addContentTypeParser(XML_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  /** A refused transaction is audited as well: who tried which identifier, and the answer. */
  const refused = async (grant: AccessGrant | undefined, id: FeedIdentifier | undefined, method: string, e: FhirError) => {
    if (!grant || !id) return;
    await audit(o.db, {
      actor: `client/${grant.clientId}`,
      action: 'feed.refused',
      entity: `Patient?identifier=${id.system}|${id.value}`,
      detail: { identifier: { system: id.system, value: id.value }, outcome: 'refused', method, status: e.status, reason: e.message.slice(0, 300) },
    });
  };

  app.put('/Patient', async (req, reply) => {
    const { grant, domains } = await feedSource(o.db, req, ['c', 'u']);
    const id = feedIdentifier(req.query as Record<string, unknown>);
    try {
      checkDomain(grant, domains, id.system, 'the identifier');
      const resource = patientBody(req);
      checkPatient(resource, id, grant, domains);
      let outcome: FeedOutcome;
      try {
        outcome = await feedPatient(o.db, { identifier: id, resource, actor: `client/${grant.clientId}` });
      } catch (e) {
        throw storeRefusal(e) ?? e;
      }
      o.log.info({ clientId: grant.clientId, outcome: ACTION[outcome.kind], patientId: 'patientId' in outcome ? outcome.patientId : null }, 'identity feed: update');
      if (outcome.kind === 'absent' || outcome.kind === 'removed') throw new Error(`the feed answered a PUT with ${outcome.kind}`);
      const created = outcome.kind === 'created';
      const location = `${o.base()}/Patient/${outcome.patientId}`;
      if (created) reply.header('location', location);
      reply.header('content-location', location);
      const prefer = preferences(req.headers.prefer);
      const status = created ? 201 : 200;
      if (prefer.has('return=minimal')) return sendFhir(req, reply, status, undefined);
      if (prefer.has('return=operationoutcome')) return sendFhir(req, reply, status, operationOutcome('informational', outcomeMessage(outcome), 'information'));
      // The resource as the index now holds it for this identifier: what was sent, under its id.
      const { resourceType: _type, id: _sent, meta: _meta, ...rest } = resource;
      return sendFhir(req, reply, status, { resourceType: 'Patient', id: outcome.patientId, ...rest });
    } catch (e) {
      if (e instanceof FhirError && e.status < 500) await refused(grant, id, 'PUT', e);
      throw e;
    }
  });

  app.delete('/Patient', async (req, reply) => {
    const { grant, domains } = await feedSource(o.db, req, ['d']);
    const id = feedIdentifier(req.query as Record<string, unknown>);
    try {
      checkDomain(grant, domains, id.system, 'the identifier');
      let outcome: FeedOutcome;
      try {
        outcome = await removeFeedPatient(o.db, { identifier: id, actor: `client/${grant.clientId}` });
      } catch (e) {
        throw storeRefusal(e) ?? e;
      }
      o.log.info({ clientId: grant.clientId, outcome: ACTION[outcome.kind], patientId: 'patientId' in outcome ? outcome.patientId : null }, 'identity feed: delete');
      if (preferences(req.headers.prefer).has('return=minimal')) return sendFhir(req, reply, 204, undefined);
      return sendFhir(req, reply, 200, operationOutcome(outcome.kind === 'absent' ? 'not-found' : 'deleted', outcomeMessage(outcome), 'information'));
    } catch (e) {
      if (e instanceof FhirError && e.status < 500) await refused(grant, id, 'DELETE', e);
      throw e;
    }
  });
}
