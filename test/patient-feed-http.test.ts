/**
 * IHE PIXm ITI-104 over real HTTP against the real `serve` on PostgreSQL: PIXm's own examples
 * (add Alissa Mohr, revise her to Alice, merge Maiden Alice into her by `replaced-by`, remove),
 * an XML body, and every refusal the HTTP layer owns — 412 when two Patients hold the identifier,
 * 403 for a partner's token and for another domain, 400 for a malformed query, 415, 422 — then
 * the CapabilityStatement and the audit trail as FHIR AuditEvents. What the feed does to the
 * index and the Groups in depth is test/identity-feed.test.ts's; a few assertions here show it
 * reaches them.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedAuditBundle } from '../src/fhir/audit-event.ts';
import { fhirXmlToJson } from '../src/fhir/xml.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { startServe, type Service } from '../src/service/index.ts';
import { exportGroup } from '../src/export/index.ts';
import { runFile } from '../src/run/index.ts';
import { addClient, applyMembership, ensureGroup, FEED_PARTNER, groupHistory, groupMembers, listAuditEvents, openStore, readRunResults, type Db } from '../src/store/index.ts';
import { makeKeyPair, requestToken, type KeyPair } from './bulk-client/client.ts';
import { errorsOf } from './fhir-validators.ts';
import { fileQueuePrefix, pipelinesDir, REDIS_URL } from './daemon-helpers.ts';
import { HEADER } from './fixtures.ts';
import { filePgDatabase, quietLog, testPipeline } from './helpers.ts';

const RED = 'urn:oid:1.3.6.1.4.1.21367.13.20.1000';
const BLUE = 'urn:oid:1.3.6.1.4.1.21367.13.20.3000';
const SCHOOL = 'school-district-7';
const GROUP = 'feed-test-students';

const alissa = (given: string) => ({
  resourceType: 'Patient',
  identifier: [{ system: RED, value: 'IHERED-994' }],
  active: true,
  name: [{ family: 'MOHR', given: [given] }],
  gender: 'female',
  birthDate: '1958-01-30',
});

const MAIDEN_XML = `<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <identifier><system value="${RED}"/><value value="IHERED-m94"/></identifier>
  <active value="true"/>
  <name><family value="MOHR"/><given value="MAIDEN"/></name>
  <gender value="female"/>
  <birthDate value="1958-01-30"/>
</Patient>`;

const maidenMerged = {
  resourceType: 'Patient',
  identifier: [{ system: RED, value: 'IHERED-m94' }],
  active: false,
  name: [{ family: 'MOHR', given: ['MAIDEN'] }],
  gender: 'female',
  birthDate: '1958-01-30',
  link: [{ other: { identifier: { system: RED, value: 'IHERED-994' } }, type: 'replaced-by' }],
};

describe('the identity feed over HTTP (PIXm ITI-104, PostgreSQL)', () => {
  let service: Service;
  let base: string;
  let db: Db;
  let feedToken: string;
  let stop: () => Promise<void>;
  const keys: Record<string, KeyPair> = {};
  const ids: Record<string, string> = {};
  let work: string;

  const token = async (clientId: string, scope: string) => {
    const t = await requestToken({ tokenEndpoint: `${base}/auth/token`, clientId, key: keys[clientId]!, scope });
    if (!t.ok) throw new Error(`token refused: ${JSON.stringify(t.body)}`);
    return t.accessToken;
  };
  const feed = (method: 'PUT' | 'DELETE', query: string, o: { token?: string; body?: unknown; type?: string; accept?: string; prefer?: string } = {}) =>
    fetch(`${base}/Patient${query}`, {
      method,
      headers: {
        ...(o.token !== '' ? { authorization: `Bearer ${o.token ?? feedToken}` } : {}),
        accept: o.accept ?? 'application/fhir+json',
        ...(o.body !== undefined ? { 'content-type': o.type ?? 'application/fhir+json' } : {}),
        ...(o.prefer ? { prefer: o.prefer } : {}),
      },
      ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
    });
  const q = (system: string, value: string) => `?identifier=${encodeURIComponent(`${system}|${value}`)}`;
  /** The ids in the Group's next export's Patient file. */
  const exportedPatients = async () => {
    const r = await exportGroup(db, { groupId: GROUP, outRoot: path.join(work, 'exports') });
    const text = await fs.readFile(path.join(r.dir, 'Patient.ndjson'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
  };
  /** Whom one roster row (test pipeline columns) is matched to, by a run of the school's. */
  let rosters = 0;
  const rosterFinds = async (row: string) => {
    const file = path.join(work, `roster-${++rosters}.csv`);
    await fs.writeFile(file, `${HEADER}\r\n${row}\r\n`);
    const pipeline = testPipeline({ partner: SCHOOL, group: { id: 'feed-test-roster', name: 'Feed test roster', mode: 'append' } });
    const out = await runFile(db, quietLog, { file, pipeline, outDir: path.join(work, 'out'), exportsDir: path.join(work, 'exports'), candidates: 'database' });
    return (await readRunResults(db, out.run.id))[0]!.patientId;
  };
  const issue = async (res: Response) => ((await res.json()) as { issue: { severity: string; code: string; diagnostics: string; expression?: string[] }[] }).issue[0]!;

  beforeAll(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-feed-'));
    work = dir;
    const { url: databaseUrl, drop: dropDatabase } = await filePgDatabase();
    const { prefix, drop: dropQueueKeys } = fileQueuePrefix();
    db = await openStore({ databaseUrl, embeddedDir: path.join(dir, 'unused') });
    // Two index Patients holding one identifier: a conditional request naming it is a 412.
    const dup = (id: string, given: string) => JSON.stringify({ resourceType: 'Patient', id, identifier: [{ system: RED, value: 'IHERED-DUP' }], name: [{ family: 'TWICE', given: [given] }], gender: 'male', birthDate: '1990-05-05' });
    await fs.writeFile(path.join(dir, 'Patient.ndjson'), `${dup('dup-1', 'ONE')}\n${dup('dup-2', 'TWO')}\n`);
    await loadIndexFile(db, path.join(dir, 'Patient.ndjson'));
    for (const id of ['iis-red', 'iis-blue', 'school']) keys[id] = await makeKeyPair('ES384');
    await addClient(db, { id: 'iis-red', partner: FEED_PARTNER, domains: [RED], jwks: keys['iis-red']!.jwks as never, scopes: 'system/Patient.write', by: 'test' });
    await addClient(db, { id: 'iis-blue', partner: FEED_PARTNER, domains: [BLUE], jwks: keys['iis-blue']!.jwks as never, scopes: 'ITI-104', by: 'test' });
    await addClient(db, { id: 'school', partner: SCHOOL, jwks: keys.school!.jwks as never, scopes: 'system/*.read system/Group.write', by: 'test' });
    service = await startServe({ dropRoot: path.join(dir, 'drop'), dataDir: path.join(dir, 'data'), pipelinesDir: await pipelinesDir(dir), redisUrl: REDIS_URL, queuePrefix: prefix, databaseUrl, port: 0, log: quietLog });
    base = service.fhirBase;
    feedToken = await token('iis-red', 'system/Patient.write');
    stop = async () => {
      await service.close();
      await db.close();
      await fs.rm(dir, { recursive: true, force: true });
      await dropDatabase();
      await dropQueueKeys();
    };
  }, 120_000);
  afterAll(async () => stop?.());

  it('declares the feed: Patient read, update and delete, conditional, the PIXm Patient profile, and the scopes', async () => {
    const cs = (await (await fetch(`${base}/metadata`)).json()) as { rest: { resource: Record<string, unknown>[] }[] };
    // FHIR.js and R4's JSON rules; the JSON schema's enumeration of fhirVersion predates 4.0.1.
    expect(errorsOf(cs as never).filter((e) => !e.startsWith('schema'))).toEqual([]);
    const patient = cs.rest[0]!.resource.find((r) => r.type === 'Patient')!;
    expect(patient).toMatchObject({
      interaction: [{ code: 'read' }, { code: 'update' }, { code: 'delete' }],
      conditionalUpdate: true,
      conditionalDelete: 'single',
      supportedProfile: ['https://profiles.ihe.net/ITI/PIXm/StructureDefinition/IHE.PIXm.Patient'],
    });
    const smart = (await (await fetch(`${base}/.well-known/smart-configuration`)).json()) as { scopes_supported: string[] };
    expect(smart.scopes_supported).toEqual(expect.arrayContaining(['system/Patient.write', 'system/Patient.cud', 'ITI-104']));
  });

  it('adds Alissa Mohr (201, Location), revises her to Alice (200, same id), in JSON', async () => {
    const added = await feed('PUT', q(RED, 'IHERED-994'), { body: alissa('ALISSA') });
    expect(added.status).toBe(201);
    const location = added.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^${base}/Patient/[0-9a-f-]{36}$`));
    const body = (await added.json()) as { resourceType: string; id: string; name: unknown };
    ids.alice = location.split('/').pop()!;
    expect(body).toMatchObject({ resourceType: 'Patient', id: ids.alice, name: [{ family: 'MOHR', given: ['ALISSA'] }] });

    const revised = await feed('PUT', q(RED, 'IHERED-994'), { body: alissa('ALICE'), prefer: 'return=OperationOutcome' });
    expect(revised.status).toBe(200);
    expect(revised.headers.get('location')).toBeNull();
    expect(await issue(revised)).toMatchObject({ severity: 'information', diagnostics: `Patient/${ids.alice} updated` });
    const minimal = await feed('PUT', q(RED, 'IHERED-994'), { body: alissa('ALICE'), prefer: 'return=minimal' });
    expect(minimal.status).toBe(200);
    expect(await minimal.text()).toBe('');
  });

  it('adds Maiden Alice from an XML body, answering in XML', async () => {
    const res = await feed('PUT', q(RED, 'IHERED-m94'), { body: MAIDEN_XML, type: 'application/fhir+xml', accept: 'application/fhir+xml' });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    const p = fhirXmlToJson(await res.text());
    ids.maiden = res.headers.get('location')!.split('/').pop()!;
    expect(p).toMatchObject({ resourceType: 'Patient', id: ids.maiden, active: true, name: [{ family: 'MOHR', given: ['MAIDEN'] }] });
    expect(errorsOf(p)).toEqual([]);
    // Malformed XML is a 400, said in XML.
    const bad = await feed('PUT', q(RED, 'IHERED-m94'), { body: '<Patient xmlns="http://hl7.org/fhir"><name></Patient>', type: 'application/fhir+xml', accept: 'application/fhir+xml' });
    expect(bad.status).toBe(400);
    expect(fhirXmlToJson(await bad.text())).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'structure' }] });
  });

  it('merges Maiden Alice into Alice by a replaced-by link (200): the Group holds the survivor once, its history says why', async () => {
    await db.transaction(async (tx) => {
      const at = new Date().toISOString();
      await ensureGroup(tx, { id: GROUP, partner: SCHOOL, name: 'Feed test', mode: 'append', at });
      await applyMembership(tx, GROUP, [ids.alice!, ids.maiden!], 'append', { actor: 'test', at });
    });
    const res = await feed('PUT', q(RED, 'IHERED-m94'), { body: maidenMerged, prefer: 'return=OperationOutcome' });
    expect(res.status).toBe(200);
    expect((await issue(res)).diagnostics).toBe(`Patient/${ids.maiden} merged into Patient/${ids.alice}: its Group memberships moved to the survivor (1 Group: ${GROUP})`);
    expect((await groupMembers(db, GROUP)).map((m) => m.patientId)).toEqual([ids.alice]);
    expect((await groupHistory(db, GROUP)).some((e) => e.patientId === ids.maiden && (e as { action: string }).action === 'merged')).toBe(true);
    // The next export has the survivor, not the subsumed record; the next roster naming her, by her
    // old demographics or by her current ones, gets the survivor.
    expect(await exportedPatients()).toEqual([ids.alice]);
    expect(await rosterFinds('r1,MAIDEN,MOHR,,1958-01-30,F,,,')).toBe(ids.alice);
    expect(await rosterFinds('r2,ALICE,MOHR,,1958-01-30,F,,,')).toBe(ids.alice);
  });

  it('removes Alice (200, an OperationOutcome): she leaves the Group; a second remove finds nobody; return=minimal is a 204', async () => {
    const res = await feed('DELETE', q(RED, 'IHERED-994'));
    expect(res.status).toBe(200);
    expect(await issue(res)).toMatchObject({ severity: 'information', code: 'deleted' });
    expect(await groupMembers(db, GROUP)).toEqual([]);
    // Gone from the next export and from matching.
    expect(await exportedPatients()).toEqual([]);
    expect(await rosterFinds('r3,ALICE,MOHR,,1958-01-30,F,,,')).toBeUndefined();
    const again = await feed('DELETE', q(RED, 'IHERED-994'));
    expect(again.status).toBe(200);
    expect(await issue(again)).toMatchObject({ severity: 'information', code: 'not-found' });
    expect((await feed('DELETE', q(RED, 'IHERED-994'), { prefer: 'return=minimal' })).status).toBe(204);
  });

  it('answers 412 when two Patients hold the identifier, for an update and a delete, and changes nothing', async () => {
    for (const method of ['PUT', 'DELETE'] as const) {
      const res = await feed(method, q(RED, 'IHERED-DUP'), method === 'PUT' ? { body: { ...alissa('X'), identifier: [{ system: RED, value: 'IHERED-DUP' }] } } : {});
      expect(res.status, method).toBe(412);
      expect((await issue(res)).code).toBe('multiple-matches');
    }
  });

  it('refuses a partner\'s token, a token without the feed scope, another domain, and a merge into another domain (403)', async () => {
    // The partner's client cannot even ask for the feed's scope; with the scopes it holds, no write.
    const asked = await requestToken({ tokenEndpoint: `${base}/auth/token`, clientId: 'school', key: keys.school!, scope: 'system/Patient.write' });
    expect(asked.ok).toBe(false);
    const school = await token('school', 'system/*.read system/Group.write');
    for (const method of ['PUT', 'DELETE'] as const) {
      const res = await feed(method, q(RED, 'IHERED-777'), { token: school, ...(method === 'PUT' ? { body: alissa('X') } : {}) });
      expect(res.status, method).toBe(403);
      expect((await issue(res)).code).toBe('forbidden');
    }
    const blue = await token('iis-blue', 'ITI-104');
    const other = await feed('PUT', q(RED, 'IHERED-994'), { token: blue, body: alissa('EVE') });
    expect(other.status).toBe(403);
    expect((await issue(other)).diagnostics).toMatch(new RegExp(`domain ${RED}.*Patient Identity Source of ${BLUE} only`));
    expect((await feed('DELETE', q(RED, 'IHERED-m94'), { token: blue })).status).toBe(403);
    const crossMerge = await feed('PUT', q(BLUE, 'B-1'), { token: blue, body: { ...maidenMerged, identifier: [{ system: BLUE, value: 'B-1' }] } });
    expect(crossMerge.status).toBe(403);
    expect((await feed('PUT', q(RED, 'IHERED-1'), { token: '', body: alissa('X') })).status).toBe(401);
  });

  it('refuses a malformed query (400), another content type (415) and a Patient that does not hold the identifier (422)', async () => {
    for (const query of ['', '?identifier=IHERED-994', `?identifier=${encodeURIComponent(`${RED}|`)}`, `?identifier=${encodeURIComponent('|IHERED-994')}`, `${q(RED, 'IHERED-994')}&name=MOHR`, `${q(RED, 'A')}&identifier=${encodeURIComponent(`${RED}|B`)}`]) {
      const res = await feed('PUT', query, { body: alissa('X') });
      expect(res.status, query).toBe(400);
      expect((await issue(res)).severity).toBe('error');
    }
    expect((await feed('DELETE', '?identifier=IHERED-994')).status).toBe(400);
    expect((await feed('PUT', q(RED, 'IHERED-994'), { body: 'resourceType=Patient', type: 'text/plain' })).status).toBe(415);
    const elsewhere = await feed('PUT', q(RED, 'IHERED-555'), { body: alissa('X') });
    expect(elsewhere.status).toBe(422);
    expect(await issue(elsewhere)).toMatchObject({ code: 'business-rule', expression: ['Patient.identifier'] });
    expect((await feed('PUT', q(RED, 'IHERED-555'), { body: { resourceType: 'Group' } })).status).toBe(400);
  });

  it('audits each transaction, refusals too, and gives them as PIXm manager AuditEvents', async () => {
    const events = await listAuditEvents(db, { actionPrefix: 'feed.', limit: 100 });
    const actions = events.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['feed.create', 'feed.update', 'feed.merge', 'feed.remove', 'feed.remove.absent', 'feed.refused']));
    const bundle = feedAuditBundle(events, { base }) as { entry: { resource: Record<string, unknown> }[] };
    expect(errorsOf(bundle as never)).toEqual([]);
    const created = bundle.entry.map((e) => e.resource).find((r) => r.action === 'C' && JSON.stringify(r).includes(ids.alice!))!;
    expect(created).toMatchObject({
      resourceType: 'AuditEvent',
      meta: { profile: ['https://profiles.ihe.net/ITI/PIXm/StructureDefinition/IHE.PIXm.Feed.Create.Audit.Manager'] },
      type: { code: 'rest' },
      subtype: [{ code: 'create' }, { system: 'urn:ihe:event-type-code', code: 'ITI-104' }],
      outcome: '0',
      agent: [{ who: { identifier: { value: 'iis-red' } } }, { who: { display: base } }],
      entity: [{ what: { reference: `Patient/${ids.alice}`, identifier: { system: RED, value: 'IHERED-994' } }, role: { code: '1' } }, { role: { code: '4' } }, { role: { code: '24' } }],
    });
    const refused = bundle.entry.map((e) => e.resource).find((r) => r.outcome === '4')!;
    expect(refused).toMatchObject({ outcomeDesc: expect.stringMatching(/^HTTP 4\d\d: /) });
  });
});
