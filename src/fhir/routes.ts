/**
 * The FHIR surface of `serve`, under [base] = <public URL>/fhir: discovery, the SMART token
 * endpoint, Group read and search, Group-level Bulk Data `$export` with the asynchronous
 * request pattern, the PIXm identity feed (patient-feed.ts) and the read of a Patient (patient-read.ts). An adapter only: the export itself runs on a queue worker (src/export), and
 * every route that names a Group or a job answers for the token's partner and client alone — the
 * Group of another partner is the same 404 as a Group that does not exist.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { bulkJobDir, type BulkManifest, type BulkParams, type BulkType } from '../export/bulk-job.ts';
import { addPartnerMember, audit, cancelBulkJob, groupMembersAmong, hasRelationship, patientsByIdentifier, removePartnerMember, createBulkJob, getBulkJob, getGroup, GROUP_IDENTIFIER_SYSTEM, writeFhirGroup, listGroups, notePoll, type AccessGrant, type Db, type GroupRecord } from '../store/index.ts';
import { authorise, issueToken, type TokenForm } from './auth.ts';
import { capabilityStatement, smartConfiguration } from './capability.ts';
import { FhirError, groupNotFound, operationOutcome } from './outcome.ts';
import { parseMemberOperation } from './membership.ts';
import { patientFeedRoutes, sendFhir } from './patient-feed.ts';
import { patientReadRoutes } from './patient-read.ts';
import { bodyParams, parseKickOff, preferences, queryParams } from './params.ts';
import { accessOf, type Permission, type ScopedType } from './scopes.ts';

export interface FhirOptions {
  db: Db;
  log: Logger;
  /** The FHIR base as clients reach it (absolute, no trailing slash): token audience and every URL handed out. */
  base: () => string;
  /** Queues an export job; the queue's worker runs it. */
  enqueue: (jobId: string) => Promise<void>;
  /** Where export jobs write their files. */
  bulkRoot: string;
  /** Seconds a client is asked to wait between status requests. @defaultValue 2 */
  retryAfterS?: number;
  version: string;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export async function fhirRoutes(app: FastifyInstance, o: FhirOptions): Promise<void> {
  const retryAfter = o.retryAfterS ?? 2;
  const started = new Date().toISOString();
  // FHIR clients send their JSON as application/fhir+json.
  app.addContentTypeParser(['application/fhir+json'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new FhirError(400, 'invalid', 'the body is not valid JSON'), undefined);
    }
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
    // The identity feed and the Patient read answer in XML when asked to, their refusals too.
    if (err instanceof FhirError && /\/Patient(\/:id)?$/.test(req.routeOptions.url ?? '')) return sendFhir(req, reply.headers(err.headers), err.status, operationOutcome(err.code, err.message, 'error', err.expression));
    if (err instanceof FhirError) return reply.code(err.status).headers(err.headers).type(FHIR_JSON).send(operationOutcome(err.code, err.message, 'error', err.expression));
    // The stages' own refusals, as FHIR says them (their messages name no PHI).
    if (isRostermatchError(err) && err.code === 'GROUP_DEFINED') return reply.code(422).type(FHIR_JSON).send(operationOutcome('business-rule', err.message));
    if (isRostermatchError(err) && (err.code === 'GROUP_NOT_FOUND' || err.code === 'GROUP_NOT_YOURS')) return reply.code(404).type(FHIR_JSON).send(operationOutcome('not-found', 'the Group is not known'));
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) o.log.error({ url: req.routeOptions.url, err: err.message }, 'FHIR request failed');
    // A failure of ours (the store unreachable, say) is worth retrying: Bulk Data's `transient`, so a
    // client polling a job that is fine polls again rather than giving up.
    if (status >= 500) return reply.code(status).header('retry-after', '5').type(FHIR_JSON).send(operationOutcome('transient', 'the request could not be answered now; try again'));
    return reply.code(status).type(FHIR_JSON).send(operationOutcome('invalid', err.message));
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).type(FHIR_JSON).send(operationOutcome('not-found', `${req.method} ${req.url.split('?')[0]} is not served`)));

  /** The token's grant, holding `permission` on `type`; 401 without a live token, 403 without the scope. */
  const need = async (req: FastifyRequest, type: ScopedType, permission: Permission): Promise<AccessGrant> => {
    const grant = await authorise(o.db, req.headers.authorization);
    if (!accessOf(grant.scopes)[type].has(permission)) {
      throw new FhirError(403, 'forbidden', `the token's scopes do not allow ${{ c: 'creating', r: 'reading', s: 'searching', u: 'changing', d: 'deleting' }[permission]} ${type}`, {
        'www-authenticate': 'Bearer realm="rostermatch", error="insufficient_scope"',
      });
    }
    return grant;
  };
  /** The partner's Group; any other is not found. */
  const partnersGroup = async (grant: AccessGrant, id: string): Promise<GroupRecord> => {
    const g = await getGroup(o.db, id);
    if (!g || g.partner !== grant.partner) throw groupNotFound(id);
    return g;
  };

  // IHE PIXm ITI-104: the Patient Identity Feed (PUT and DELETE [base]/Patient?identifier=…).
  patientFeedRoutes(app, { db: o.db, log: o.log, base: o.base });
  // GET [base]/Patient/<id>: the identity feed reads any Patient, a partner its Groups' members only.
  patientReadRoutes(app, { db: o.db });

  app.get('/metadata', async (_req, reply) => reply.type(FHIR_JSON).send(capabilityStatement(o.base(), { version: o.version, date: started })));
  app.get('/.well-known/smart-configuration', async (_req, reply) => reply.header('cache-control', 'no-store').send(smartConfiguration(o.base())));

  app.post<{ Body: TokenForm }>('/auth/token', async (req, reply) => {
    const form = typeof req.body === 'object' && req.body !== null ? req.body : {};
    const answer = await issueToken(o.db, form, { tokenUrl: `${o.base()}/auth/token`, log: o.log });
    return reply.code(answer.status).header('cache-control', 'no-store').header('pragma', 'no-cache').send(answer.body);
  });

  app.get<{ Params: { id: string } }>('/Group/:id', async (req, reply) => {
    const grant = await need(req, 'Group', 'r');
    const g = await partnersGroup(grant, req.params.id);
    return reply.type(FHIR_JSON).send(streamed((out) => writeFhirGroup(o.db, g, out)));
  });

  app.get<{ Querystring: Record<string, string | string[]> }>('/Group', async (req, reply) => {
    const grant = await need(req, 'Group', 's');
    const raw = queryParams(req.query);
    for (const k of raw.keys()) if (!['identifier', 'name', 'name:exact', 'name:contains'].includes(k)) throw new FhirError(400, 'not-supported', `search parameter ${k} is not supported on Group (supported: identifier, name)`);
    const found = (await listGroups(o.db)).filter((g) => g.partner === grant.partner && matchesSearch(g, raw));
    const head = JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total: found.length, link: [{ relation: 'self', url: `${o.base()}${req.url.slice(req.url.indexOf('/Group'))}` }] });
    // Each Group streamed into its entry: a search must not hold a large Group's members in memory either.
    const body = streamed(async (out) => {
      out.write(head.slice(0, -1));
      for (const [i, g] of found.entries()) {
        out.write(`${i === 0 ? ',"entry":[' : ','}{"fullUrl":${JSON.stringify(`${o.base()}/Group/${g.id}`)},"resource":`);
        await writeFhirGroup(o.db, g, out);
        out.write(',"search":{"mode":"match"}}');
      }
      out.write(found.length > 0 ? ']}' : '}');
    });
    return reply.type(FHIR_JSON).send(body);
  });

  /**
   * $member-add / $member-remove: the partner's own Group, changed by its client, with the client
   * as the actor in the Group's history. An add needs a reasonable relationship between the
   * person and the partner (seed 000): the IIS matched them for it, or they are or were in one of
   * its Groups — otherwise a guessed Patient id would hand the partner a stranger's record.
   */
  const memberOperation = (op: 'add' | 'remove') => async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const grant = await need(req, 'Group', 'u');
    const group = await partnersGroup(grant, req.params.id);
    const asked = parseMemberOperation(req.body, op);
    // Whether a person exists in the IIS at all is not the partner's to learn: an unknown Patient
    // id or memberId gets the same answer as a person with no relationship to the partner.
    const noRelationship = () =>
      new FhirError(422, 'business-rule', 'the IIS has no record of a relationship between this person and the partner (matched for it in its files or messages, or in one of its Groups); nothing was changed');
    let patientId = asked.patientId;
    if (asked.memberId) {
      const found = await patientsByIdentifier(o.db, asked.memberId.system, asked.memberId.value);
      const theirs = [];
      for (const id of found) if (await hasRelationship(o.db, grant.partner, id)) theirs.push(id);
      if (theirs.length === 0) throw noRelationship();
      if (theirs.length > 1) throw new FhirError(422, 'multiple-matches', 'several of the partner\'s people hold that memberId; name the person by patientReference');
      patientId = theirs[0]!;
    }
    const change = { groupId: group.id, partner: grant.partner, patientId: patientId!, actor: `client/${grant.clientId}` };
    if (op === 'add') {
      const r = await addPartnerMember(o.db, { ...change, ...(asked.period ? { period: asked.period } : {}) });
      if (r.kind === 'unknown-patient' || r.kind === 'no-relationship') throw noRelationship();
      o.log.info({ clientId: grant.clientId, groupId: group.id, outcome: r.kind }, 'member-add');
      return reply.type(FHIR_JSON).send(streamed((out) => writeFhirGroup(o.db, r.group, out)));
    }
    const r = await removePartnerMember(o.db, change);
    o.log.info({ clientId: grant.clientId, groupId: group.id, outcome: r.kind }, 'member-remove');
    return reply.type(FHIR_JSON).send(streamed((out) => writeFhirGroup(o.db, r.group, out)));
  };
  app.post<{ Params: { id: string } }>('/Group/:id/$member-add', memberOperation('add'));
  app.post<{ Params: { id: string } }>('/Group/:id/$member-remove', memberOperation('remove'));

  const kickOff = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const grant = await authorise(o.db, req.headers.authorization);
    const prefer = preferences(req.headers.prefer);
    if (!prefer.has('respond-async')) throw new FhirError(400, 'invalid', 'a Bulk Data kick-off request needs the header Prefer: respond-async');
    const accept = req.headers.accept;
    if (accept !== undefined && !/application\/(fhir\+)?json|\*\/\*/.test(accept)) throw new FhirError(400, 'invalid', 'the kick-off request\'s Accept must be application/fhir+json');
    const method = req.method === 'POST' ? 'POST' : 'GET';
    const raw = method === 'POST' ? bodyParams(req.body) : queryParams(req.query as Record<string, string | string[]>);
    if (method === 'POST' && Object.keys(req.query as object).length > 0) throw new FhirError(400, 'invalid', 'a POST kick-off request carries its parameters in the body only');
    const group = await partnersGroup(grant, req.params.id);
    const access = accessOf(grant.scopes);
    const explicit = raw.has('_type');
    const parsed = parseKickOff(raw, { method, lenient: prefer.has('handling=lenient') });
    // Without _type, the types the token may read; a type asked for by name must be readable.
    const types = parsed.types.filter((t) => access[t].has('r') || (explicit && forbid(t)));
    if (types.length === 0) throw new FhirError(403, 'forbidden', 'the token\'s scopes allow reading none of the exported types');
    if (parsed.patients && group.actual) {
      // Not a member, or no such patient: one answer, so a partner learns nothing of people outside its Group.
      const members = new Set(await groupMembersAmong(o.db, group.id, parsed.patients));
      const outside = parsed.patients.filter((p) => !members.has(p));
      if (outside.length > 0) {
        const message = `patient ${outside.map((p) => `Patient/${p}`).join(', ')} ${outside.length === 1 ? 'is' : 'are'} not a member of Group/${group.id}`;
        if (!prefer.has('handling=lenient')) throw new FhirError(400, 'not-found', message);
        parsed.patients = parsed.patients.filter((p) => members.has(p));
        parsed.skipped = [...(parsed.skipped ?? []), `${message}; left out`];
        if (parsed.patients.length === 0) throw new FhirError(400, 'not-found', `${message}: nobody is left to export`);
      }
    }
    const id = randomUUID();
    const params: BulkParams = { ...parsed, types, baseUrl: o.base() };
    const request = `${o.base()}${req.url.slice(req.url.indexOf('/Group'))}`;
    await createBulkJob(o.db, { id, clientId: grant.clientId, partner: grant.partner, groupId: group.id, request, params, transactionTime: new Date().toISOString() });
    await audit(o.db, { actor: `client/${grant.clientId}`, action: 'bulk.kickoff', entity: `group/${group.id}`, detail: { job: id, types } });
    await o.enqueue(id);
    return reply.code(202).header('content-location', `${o.base()}/bulk/${id}`).type(FHIR_JSON).send(operationOutcome('informational', `export ${id} accepted`, 'information'));
  };
  app.get<{ Params: { id: string } }>('/Group/:id/$export', kickOff);
  app.post<{ Params: { id: string } }>('/Group/:id/$export', kickOff);

  /** The client's own job; another client's is not found. */
  const clientsJob = async (grant: AccessGrant, id: string) => {
    const job = await getBulkJob<BulkParams, BulkManifest>(o.db, id);
    if (!job || job.clientId !== grant.clientId) throw new FhirError(404, 'not-found', `export ${id} is not known`);
    return job;
  };

  app.get<{ Params: { job: string } }>('/bulk/:job', async (req, reply) => {
    const grant = await authorise(o.db, req.headers.authorization);
    const job = await clientsJob(grant, req.params.job);
    if (job.state === 'cancelled' || job.state === 'expired') throw new FhirError(404, 'deleted', `export ${job.id} was ${job.state === 'cancelled' ? 'deleted' : 'expired'}`);
    if (job.state === 'failed') return reply.code(500).type(FHIR_JSON).send(operationOutcome('exception', `export ${job.id} failed; ask again`));
    if (job.state === 'completed') {
      return reply.code(200).type('application/json').header('expires', new Date(job.expiresAt!).toUTCString()).send(job.manifest);
    }
    const now = new Date();
    const before = await notePoll(o.db, job.id, now.toISOString());
    // Polling at well under the asked interval is throttled; polling at it is always answered.
    if (before && now.getTime() - new Date(before).getTime() < (retryAfter * 1000) / 2) {
      return reply.code(429).header('retry-after', String(retryAfter)).type(FHIR_JSON).send(operationOutcome('throttled', `poll at most every ${retryAfter} seconds`));
    }
    return reply.code(202).header('x-progress', job.progress ?? 'queued').header('retry-after', String(retryAfter)).send();
  });

  app.delete<{ Params: { job: string } }>('/bulk/:job', async (req, reply) => {
    const grant = await authorise(o.db, req.headers.authorization);
    const job = await clientsJob(grant, req.params.job);
    const was = await cancelBulkJob(o.db, job.id, new Date().toISOString());
    if (was === undefined) throw new FhirError(404, 'deleted', `export ${job.id} was already deleted`);
    // A running job removes what it wrote when it sees the cancellation; a finished one's files go now.
    if (was !== 'queued' && was !== 'running') await fs.rm(bulkJobDir(o.bulkRoot, job.id), { recursive: true, force: true });
    await audit(o.db, { actor: `client/${grant.clientId}`, action: 'bulk.delete', entity: `bulk/${job.id}`, detail: { was } });
    return reply.code(202).type(FHIR_JSON).send(operationOutcome('informational', `export ${job.id} deleted`, 'information'));
  });

  app.get<{ Params: { job: string; file: string } }>('/bulk/:job/:file', async (req, reply) => {
    const grant = await authorise(o.db, req.headers.authorization);
    const job = await clientsJob(grant, req.params.job);
    const listed = job.state === 'completed' ? [...job.manifest!.output, ...job.manifest!.error].find((f) => f.url.endsWith(`/${req.params.file}`)) : undefined;
    if (!listed) throw new FhirError(404, 'not-found', `no file ${req.params.file} in export ${job.id}`);
    if (listed.type !== 'OperationOutcome' && !accessOf(grant.scopes)[listed.type as BulkType].has('r')) throw new FhirError(403, 'forbidden', `the token's scopes do not allow reading ${listed.type}`);
    const file = path.join(bulkJobDir(o.bulkRoot, job.id), path.basename(req.params.file));
    await audit(o.db, { actor: `client/${grant.clientId}`, action: 'bulk.download', entity: `bulk/${job.id}/${path.basename(file)}`, detail: { group: job.groupId, count: listed.count } });
    reply.type('application/fhir+ndjson');
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(createReadStream(file).pipe(createGzip({ level: 1 })));
    return reply.header('content-length', (await fs.stat(file)).size).send(createReadStream(file));
  });
}

function forbid(type: string): never {
  throw new FhirError(403, 'forbidden', `the token's scopes do not allow reading ${type}`);
}

/** FHIR search on a Group resource: identifier as a token ([system]|value), name as a string (starts with, any case). */
/** A body written as it is produced; a failure part-way ends the response (its status is already sent). */
function streamed(write: (out: PassThrough) => Promise<void>): PassThrough {
  const out = new PassThrough();
  write(out).then(
    () => out.end(),
    (e: unknown) => out.destroy(e as Error),
  );
  return out;
}

function matchesSearch(g: GroupRecord, raw: Map<string, string[]>): boolean {
  const ids = [{ system: GROUP_IDENTIFIER_SYSTEM as string | undefined, value: g.partner }];
  const name = g.name;
  for (const [k, values] of raw) {
    // Each repetition must hold; a comma lists alternatives.
    for (const v of values) {
      const alternatives = v.split(',');
      const ok = alternatives.some((a) => {
        if (k === 'identifier') {
          const bar = a.indexOf('|');
          return bar < 0 ? ids.some((i) => i.value === a) : ids.some((i) => (bar === 0 ? !i.system : i.system === a.slice(0, bar)) && i.value === a.slice(bar + 1));
        }
        if (k === 'name:exact') return name === a;
        if (k === 'name:contains') return name.toLowerCase().includes(a.toLowerCase());
        return name.toLowerCase().startsWith(a.toLowerCase());
      });
      if (!ok) return false;
    }
  }
  return true;
}
