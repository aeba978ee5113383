/**
 * `GET [base]/Patient/<id>` over real HTTP against the real `serve` on PostgreSQL: the Location of
 * a PIXm ITI-104 create is readable back. The identity feed reads any Patient (merged-away ones as
 * stored, removed ones 410); a partner reads only the current members of its own Groups, and every
 * other id — another partner's member, a former member, a merged-away or removed Patient, an id
 * nobody holds — is the very same 404. Then 401, 403, 400, XML, the CapabilityStatement and the
 * audit of partners' reads.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirXmlToJson } from '../src/fhir/xml.ts';
import { startServe, type Service } from '../src/service/index.ts';
import { addClient, applyMembership, ensureGroup, FEED_PARTNER, listAuditEvents, openStore, type Db } from '../src/store/index.ts';
import { makeKeyPair, requestToken, type KeyPair } from './bulk-client/client.ts';
import { errorsOf } from './fhir-validators.ts';
import { fileQueuePrefix, pipelinesDir, REDIS_URL } from './daemon-helpers.ts';
import { filePgDatabase, quietLog } from './helpers.ts';

const RED = 'urn:oid:1.3.6.1.4.1.21367.13.20.1000';
const BLUE = 'urn:oid:1.3.6.1.4.1.21367.13.20.3000';
const SCHOOL = 'school-district-7';
const PAYER = 'acme-health';

const person = (value: string, given: string, o: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: RED, value }],
  active: true,
  name: [{ family: 'MOHR', given: [given] }],
  gender: 'female',
  birthDate: '1958-01-30',
  address: [{ line: ['1 Main St'], city: 'Normal', state: 'IL', postalCode: '61761' }],
  ...o,
});

type Json = Record<string, unknown>;

describe('GET [base]/Patient/<id> (PostgreSQL)', () => {
  let service: Service;
  let base: string;
  let db: Db;
  let stop: () => Promise<void>;
  const keys: Record<string, KeyPair> = {};
  const ids: Record<string, string> = {};
  const sent: Record<string, Json> = {};
  const tokens: Record<string, string> = {};

  const token = async (clientId: string, scope: string) => {
    const t = await requestToken({ tokenEndpoint: `${base}/auth/token`, clientId, key: keys[clientId]!, scope });
    if (!t.ok) throw new Error(`token refused: ${JSON.stringify(t.body)}`);
    expect(t.scope).toBe(scope);
    return t.accessToken;
  };
  const read = (id: string, o: { token?: string; accept?: string; query?: string } = {}) =>
    fetch(`${base}/Patient/${id}${o.query ?? ''}`, {
      headers: { ...(o.token !== '' ? { authorization: `Bearer ${o.token ?? tokens.feed}` } : {}), ...(o.accept ? { accept: o.accept } : {}) },
    });
  const put = async (value: string, body: Json) => {
    const res = await fetch(`${base}/Patient?identifier=${encodeURIComponent(`${RED}|${value}`)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens.feed}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: JSON.stringify(body),
    });
    return res;
  };
  const group = async (id: string, partner: string, members: string[], mode: 'append' | 'replace' = 'append') =>
    db.transaction(async (tx) => {
      const at = new Date().toISOString();
      await ensureGroup(tx, { id, partner, name: id, mode, at });
      await applyMembership(tx, id, members, mode, { actor: 'test', at });
    });
  /** The whole answer as a client sees it: status, the headers that could tell cases apart, the body. */
  const answer = async (res: Response) => ({
    status: res.status,
    type: res.headers.get('content-type'),
    etag: res.headers.get('etag'),
    modified: res.headers.get('last-modified'),
    body: await res.text(),
  });
  const issue = async (res: Response) => ((await res.json()) as { resourceType: string; issue: { severity: string; code: string; diagnostics: string }[] });

  beforeAll(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-read-'));
    const { url: databaseUrl, drop: dropDatabase } = await filePgDatabase();
    const { prefix, drop: dropQueueKeys } = fileQueuePrefix();
    db = await openStore({ databaseUrl, embeddedDir: path.join(dir, 'unused') });
    for (const id of ['iis-red', 'iis-blue', 'school', 'payer']) keys[id] = await makeKeyPair('ES384');
    await addClient(db, { id: 'iis-red', partner: FEED_PARTNER, domains: [RED], jwks: keys['iis-red']!.jwks as never, scopes: 'system/Patient.write', by: 'test' });
    await addClient(db, { id: 'iis-blue', partner: FEED_PARTNER, domains: [BLUE], jwks: keys['iis-blue']!.jwks as never, scopes: 'ITI-104', by: 'test' });
    await addClient(db, { id: 'school', partner: SCHOOL, jwks: keys.school!.jwks as never, scopes: 'system/*.read system/Group.write', by: 'test' });
    await addClient(db, { id: 'payer', partner: PAYER, jwks: keys.payer!.jwks as never, scopes: 'system/*.read', by: 'test' });
    service = await startServe({ dropRoot: path.join(dir, 'drop'), dataDir: path.join(dir, 'data'), pipelinesDir: await pipelinesDir(dir), redisUrl: REDIS_URL, queuePrefix: prefix, databaseUrl, port: 0, log: quietLog });
    base = service.fhirBase;
    tokens.feed = await token('iis-red', 'system/Patient.write');
    tokens.school = await token('school', 'system/Patient.read');
    tokens.payer = await token('payer', 'system/*.read');
    stop = async () => {
      await service.close();
      await db.close();
      await fs.rm(dir, { recursive: true, force: true });
      await dropDatabase();
      await dropQueueKeys();
    };

    // Alice and Maiden Alice in the school's Group, Bob in the payer's, Carol in the school's once.
    for (const [name, value, given] of [['alice', 'R-1', 'ALICE'], ['maiden', 'R-2', 'MAIDEN'], ['bob', 'R-3', 'BOB'], ['carol', 'R-4', 'CAROL']] as const) {
      sent[name] = person(value, given);
      const res = await put(value, sent[name]);
      expect(res.status).toBe(201);
      ids[name] = res.headers.get('location')!.split('/').pop()!;
    }
    await group('school-students', SCHOOL, [ids.alice!, ids.maiden!, ids.carol!]);
    await group('school-students', SCHOOL, [ids.alice!, ids.maiden!], 'replace');
    await group('payer-members', PAYER, [ids.bob!]);
  }, 120_000);
  afterAll(async () => stop?.());

  it('reads back the Location of a create: 200, the stored Patient, Last-Modified from meta.lastUpdated, no ETag', async () => {
    const created = await put('R-9', person('R-9', 'DORA'));
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    expect(location.startsWith(`${base}/Patient/`)).toBe(true);
    const res = await fetch(location, { headers: { authorization: `Bearer ${tokens.feed}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const body = (await res.json()) as Json & { meta: { lastUpdated: string } };
    const id = location.split('/').pop()!;
    // What was sent, under its id, with the index's meta.lastUpdated: nothing more, nothing less.
    expect(body).toEqual({ ...person('R-9', 'DORA'), id, meta: { lastUpdated: body.meta.lastUpdated } });
    expect(Object.keys(body).slice(0, 3)).toEqual(['resourceType', 'id', 'meta']);
    expect(errorsOf(body as never)).toEqual([]);
    expect(res.headers.get('last-modified')).toBe(new Date(body.meta.lastUpdated).toUTCString());
    // The index keeps no version per Patient: no ETag rather than one that is not a versionId.
    expect(res.headers.get('etag')).toBeNull();
    // Another domain's source reads it as well (ITI-104 scope): the feed reads any Patient.
    const blue = await read(id, { token: await token('iis-blue', 'ITI-104') });
    expect(blue.status).toBe(200);
    expect(await blue.json()).toEqual(body);
  });

  it('gives a partner the members of its own Groups (200), with system/Patient.read, .rs and system/*.read alike', async () => {
    const feedView = (await (await read(ids.alice!)).json()) as Json;
    expect(feedView).toMatchObject({ id: ids.alice, name: [{ given: ['ALICE'] }] });
    for (const scope of ['system/Patient.read', 'system/Patient.rs', 'system/Patient.r', 'system/*.read']) {
      const res = await read(ids.alice!, { token: await token('school', scope) });
      expect(res.status, scope).toBe(200);
      expect(await res.json(), scope).toEqual(feedView);
    }
    const bob = await read(ids.bob!, { token: tokens.payer });
    expect(bob.status).toBe(200);
    expect(((await bob.json()) as Json).id).toBe(ids.bob);
  });

  it('answers a partner for another partner\'s member and for a former member exactly as for an id nobody holds (404)', async () => {
    const unknown = await answer(await read('no-such-patient', { token: tokens.school }));
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
    expect(unknown.body).not.toContain('no-such-patient');
    // Bob is the payer's; Carol left the school's Group: the same answer, byte for byte.
    expect(await answer(await read(ids.bob!, { token: tokens.school }))).toEqual(unknown);
    expect(await answer(await read(ids.carol!, { token: tokens.school }))).toEqual(unknown);
    expect(await answer(await read(ids.alice!, { token: tokens.payer }))).toEqual(unknown);
    expect(await answer(await read('another-unknown-id', { token: tokens.payer }))).toEqual(unknown);
    // The feed itself reads Carol and Bob: the 404s were the partners' view only.
    expect((await read(ids.carol!)).status).toBe(200);
    expect((await read(ids.bob!)).status).toBe(200);
    // An id nobody holds is a 404 for the feed too.
    expect((await read('no-such-patient')).status).toBe(404);
  });

  it('merged away: the feed reads it as stored (active false, replaced-by the survivor); to the partner it is the unknown 404', async () => {
    const merged = await put('R-2', { ...person('R-2', 'MAIDEN'), active: false, link: [{ other: { identifier: { system: RED, value: 'R-1' } }, type: 'replaced-by' }] });
    expect(merged.status).toBe(200);
    const res = await read(ids.maiden!);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ resourceType: 'Patient', id: ids.maiden, active: false, link: [{ type: 'replaced-by', other: { reference: `Patient/${ids.alice}`, identifier: { system: RED, value: 'R-1' } } }] });
    const unknown = await answer(await read('no-such-patient', { token: tokens.school }));
    expect(await answer(await read(ids.maiden!, { token: tokens.school }))).toEqual(unknown);
    // The survivor is still the school's member.
    expect((await read(ids.alice!, { token: tokens.school })).status).toBe(200);
  });

  it('removed: 410 Gone with an OperationOutcome for the feed, the unknown 404 for the partner', async () => {
    const removed = await fetch(`${base}/Patient?identifier=${encodeURIComponent(`${RED}|R-1`)}`, { method: 'DELETE', headers: { authorization: `Bearer ${tokens.feed}` } });
    expect(removed.status).toBe(200);
    const res = await read(ids.alice!);
    expect(res.status).toBe(410);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(await issue(res)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'deleted' }] });
    const unknown = await answer(await read('no-such-patient', { token: tokens.school }));
    expect(await answer(await read(ids.alice!, { token: tokens.school }))).toEqual(unknown);
    // The merged-away Maiden is still the feed's to read, as stored.
    expect((await read(ids.maiden!)).status).toBe(200);
  });

  it('refuses no token and a token that is not live (401), a token without a Patient read scope (403), a malformed id (400)', async () => {
    for (const auth of [undefined, 'Bearer not-a-token', 'Basic c2Nob29sOnNlY3JldA==']) {
      const res = await fetch(`${base}/Patient/${ids.bob}`, { headers: auth ? { authorization: auth } : {} });
      expect(res.status, auth).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await issue(res)).issue[0]!.code).toBe('login');
    }
    for (const scope of ['system/Group.read', 'system/Immunization.read', 'system/Patient.s']) {
      const res = await read(ids.bob!, { token: await token('payer', scope) });
      expect(res.status, scope).toBe(403);
      expect(res.headers.get('www-authenticate')).toMatch(/insufficient_scope/);
      expect((await issue(res)).issue[0]!.code).toBe('forbidden');
    }
    for (const t of [tokens.feed!, tokens.school!]) {
      for (const bad of ['a_b', 'x'.repeat(65), 'a%20b', 'caf%C3%A9']) {
        const res = await read(bad, { token: t });
        expect(res.status, bad).toBe(400);
        expect((await issue(res)).issue[0]!.code).toBe('invalid');
      }
    }
    // 64 characters is a well-formed id: unknown, not malformed.
    expect((await read('x'.repeat(64))).status).toBe(404);
  });

  it('answers in FHIR XML when asked (Accept or _format), members in R4 order; refusals too', async () => {
    const json = (await (await read(ids.bob!)).json()) as Json;
    for (const o of [{ accept: 'application/fhir+xml' }, { query: '?_format=xml' }, { accept: 'application/xml, application/json;q=0.5' }]) {
      const res = await read(ids.bob!, o);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
      const xml = await res.text();
      expect(fhirXmlToJson(xml)).toEqual(json);
      // FHIR XML is ordered: the stored jsonb's key order (given before family, value before system) would not do.
      expect(xml.indexOf('<family')).toBeLessThan(xml.indexOf('<given'));
      expect(xml.indexOf('<system')).toBeLessThan(xml.indexOf('<value'));
      expect(xml.indexOf('<identifier')).toBeLessThan(xml.indexOf('<active'));
      expect(xml.indexOf('<meta')).toBeLessThan(xml.indexOf('<identifier'));
      expect(xml.indexOf('<line')).toBeLessThan(xml.indexOf('<city'));
      expect(xml.indexOf('<birthDate')).toBeLessThan(xml.indexOf('<address'));
    }
    const gone = await read(ids.alice!, { accept: 'application/fhir+xml' });
    expect(gone.status).toBe(410);
    expect(gone.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(fhirXmlToJson(await gone.text())).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'deleted' }] });
    // JSON when XML is not asked for.
    expect((await read(ids.bob!, { query: '?_format=json', accept: 'application/fhir+xml' })).headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  });

  it('declares read on Patient in the CapabilityStatement', async () => {
    const cs = (await (await fetch(`${base}/metadata`)).json()) as { rest: { resource: { type: string; interaction?: { code: string }[] }[] }[] };
    expect(errorsOf(cs as never).filter((e) => !e.startsWith('schema'))).toEqual([]);
    const patient = cs.rest[0]!.resource.find((r) => r.type === 'Patient')!;
    expect(patient.interaction!.map((i) => i.code)).toEqual(['read', 'update', 'delete']);
  });

  it('audits a partner\'s reads, found or not (ids only); the feed\'s reads are not audited', async () => {
    const events = await listAuditEvents(db, { action: 'patient.read', limit: 1000 });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.actor === 'client/school' || e.actor === 'client/payer')).toBe(true);
    expect(events.some((e) => e.actor === 'client/payer' && e.entity === `Patient/${ids.bob}` && (e.detail as Json).outcome === 'read')).toBe(true);
    expect(events.some((e) => e.actor === 'client/school' && e.entity === `Patient/${ids.bob}` && (e.detail as Json).outcome === 'not-found')).toBe(true);
    // No name, birth date or identifier value of anyone in them.
    const text = JSON.stringify(events);
    for (const phi of ['MOHR', 'ALICE', 'BOB', '1958-01-30', 'R-3']) expect(text).not.toContain(phi);
  });
});
