/**
 * The FHIR surface of `serve` over real HTTP, driven by the independent Bulk Data client in
 * test/bulk-client (no code shared with src/): discovery, SMART Backend Services tokens and every
 * refusal the spec names, Group read and search, Group `$export` kick-off by GET and POST,
 * polling, the manifest, downloads, DELETE, and that one partner never reaches another's Group.
 * Real Redis, and the store both embedded (PGlite) and on PostgreSQL.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/config/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { startServe, type Service } from '../src/service/index.ts';
import { addClient, defineGroup, groupHistory, groupMembers, openStore, type Db } from '../src/store/index.ts';
import { errorsOf } from './fhir-validators.ts';
import { cancel, checkSmartConfiguration, kickOff, makeKeyPair, poll, pollOnce, requestToken, runExport, type KeyPair } from './bulk-client/client.ts';
import { fileQueuePrefix, pipelinesDir, REDIS_URL, waitFor } from './daemon-helpers.ts';
import { filePgDatabase, quietLog, seedDataDir, STORES } from './helpers.ts';

const SCHOOL = 'school-district-7';
const SCHOOL_GROUP = 'school-district-7-students';
const PAYER = 'acme-health-plan';
const PAYER_GROUP = 'acme-health-plan-members';
const SCOPE = 'system/*.read';
const DEFINED_GROUP = 'sd7-under-18-local';
const KEEP_MS = 5_000;

/** The characteristic Group's members, worked out from the sample file itself: not the server's SQL. */
async function underEighteenIn(zips: string[]): Promise<Set<string>> {
  const now = new Date();
  const cutoff = `${now.getUTCFullYear() - 18}-${String(now.getUTCMonth() + 1).padStart(2, '0')}-${String(now.getUTCDate()).padStart(2, '0')}`;
  const ids = new Set<string>();
  for (const line of (await fs.readFile('samples/iis/Patient.ndjson', 'utf8')).split('\n')) {
    if (!line) continue;
    const p = JSON.parse(line) as { id: string; birthDate?: string; address?: { postalCode?: string }[] };
    if (zips.includes(p.address?.[0]?.postalCode ?? '') && p.birthDate && p.birthDate.length === 10 && p.birthDate > cutoff) ids.add(p.id);
  }
  return ids;
}

interface World {
  service: Service;
  base: string;
  rsa: KeyPair;
  ec: KeyPair;
  payerKey: KeyPair;
  members: number;
  /** A member of the school's Group, and a person the payer matched but the school never did. */
  schoolMember: string;
  payerOnly: string;
  bulkRoot: string;
  stop(): Promise<void>;
}

/** The samples' index and two partners' Groups, three clients, then serve on a free port. */
async function world(store: (typeof STORES)[number]): Promise<World> {
  // The helpers' temporary folders, databases and prefixes go after each test: these live for the file.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-fhir-'));
  const data = path.join(dir, 'data');
  const pgDb = store === 'postgres' ? await filePgDatabase() : undefined;
  const databaseUrl = pgDb?.url;
  const { prefix, drop: dropQueueKeys } = fileQueuePrefix();
  if (!databaseUrl) await seedDataDir(data); // a copy of the run's migrated template store
  const db: Db = await openStore({ databaseUrl, embeddedDir: path.join(data, 'db') });
  for (const f of ['Patient.ndjson', 'Immunization.ndjson']) await loadIndexFile(db, path.join('samples/iis', f));
  for (const [partner, file] of [
    [SCHOOL, 'district7-fall.csv'],
    [PAYER, 'acme-members-202611.txt'],
  ] as const) {
    await runFile(db, quietLog, { file: path.join('samples/rosters', file), pipeline: await loadPartnerPipeline('pipelines', partner), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'exports') });
  }
  const schoolIds = new Set((await groupMembers(db, SCHOOL_GROUP)).map((m) => m.patientId));
  const [rsa, ec, payerKey] = await Promise.all([makeKeyPair('RS384'), makeKeyPair('ES384'), makeKeyPair('ES384')]);
  await addClient(db, { id: 'school-rs', partner: SCHOOL, jwks: rsa.jwks as never, scopes: 'system/*.read system/*.rs', by: 'test' });
  await addClient(db, { id: 'school-es', partner: SCHOOL, jwks: ec.jwks as never, scopes: 'system/Patient.read system/Group.read', by: 'test' });
  await addClient(db, { id: 'payer', partner: PAYER, jwks: payerKey.jwks as never, scopes: SCOPE, by: 'test' });
  // The school manages its own Group too (the dynamic approach): the same key, a write scope.
  await addClient(db, { id: 'school-manager', partner: SCHOOL, jwks: rsa.jwks as never, scopes: 'system/*.read system/Group.write', by: 'test' });
  // Seed 003's example: everyone living in two ZIP codes under 18, evaluated at export time.
  await defineGroup(db, { id: DEFINED_GROUP, partner: SCHOOL, name: 'Under 18 in 61761 and 61820', characteristics: { zips: ['61761', '61820'], underAge: 18 }, by: 'test', at: new Date().toISOString() });
  const payerOnly = (await groupMembers(db, PAYER_GROUP)).map((m) => m.patientId).filter((id) => !schoolIds.has(id));
  const members = schoolIds.size;
  await db.close();
  const drop = path.join(dir, 'drop');
  await fs.mkdir(drop, { recursive: true });
  const service = await startServe({
    dropRoot: drop,
    dataDir: data,
    pipelinesDir: await pipelinesDir(dir),
    redisUrl: REDIS_URL,
    queuePrefix: prefix,
    databaseUrl,
    port: 0,
    // Short, so that a case sees files expire; every other case downloads at once.
    exportKeepMs: KEEP_MS,
    expiryIntervalMs: 250,
    // The least a client may be asked to wait: the cases poll many exports.
    exportRetryAfterS: 1,
    log: process.env.TEST_LOG ? createLogger(process.env.TEST_LOG) : quietLog,
  });
  return {
    service,
    base: service.fhirBase,
    rsa,
    ec,
    payerKey,
    members,
    schoolMember: [...schoolIds].sort()[0]!,
    payerOnly: payerOnly[0]!,
    bulkRoot: path.join(data, 'bulk'), stop: async () => {
      await service.close();
      await fs.rm(dir, { recursive: true, force: true });
      await pgDb?.drop();
      await dropQueueKeys();
    },
  };
}

const token = async (w: World, clientId = 'school-rs', key = w.rsa, scope = SCOPE) => {
  const t = await requestToken({ tokenEndpoint: `${w.base}/auth/token`, clientId, key, scope });
  if (!t.ok) throw new Error(`token refused: ${JSON.stringify(t.body)}`);
  return t.accessToken;
};

describe.each(STORES)('the FHIR server (%s)', (store) => {
  let w: World;
  beforeAll(async () => {
    w = await world(store);
    return () => w.stop();
  }, 240_000);

  it('serves discovery: a CapabilityStatement that instantiates the Bulk Data server, and the SMART configuration under the base and at the root, not cached', async () => {
    const meta = await fetch(`${w.base}/metadata`);
    expect(meta.status).toBe(200);
    expect(meta.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const cs = (await meta.json()) as Record<string, unknown>;
    expect(cs).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1', instantiates: ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data'] });
    const group = (cs.rest as { resource: { type: string; operation?: { name: string }[] }[] }[])[0]!.resource.find((r) => r.type === 'Group')!;
    expect(group.operation!.map((o) => o.name)).toContain('export');

    for (const url of [`${w.base}/.well-known/smart-configuration`, `${w.service.url}/.well-known/smart-configuration`]) {
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const config = await res.json();
      expect(checkSmartConfiguration(config).problems).toEqual([]);
      expect(config).toMatchObject({ token_endpoint: `${w.base}/auth/token`, token_endpoint_auth_methods_supported: ['private_key_jwt'] });
    }
  });

  it.each([
    ['RS384', 'school-rs', 'GET'],
    ['ES384', 'school-es', 'POST'],
  ] as const)('a Bulk Data client exports its Group end to end: %s token of client %s, kick-off by %s, poll, manifest, downloads', async (_alg, clientId, method) => {
    const key = clientId === 'school-rs' ? w.rsa : w.ec;
    const scope = clientId === 'school-rs' ? SCOPE : 'system/Patient.read system/Group.read';
    const r = await runExport({ fhirBase: w.base, groupId: SCHOOL_GROUP, clientId, key, scope, method, requireCount: true, floorMs: 50 });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    const types = r.manifest!.output.map((o) => o.type).sort();
    // The ES384 client may read Patients and Groups only: its export holds no Immunization file.
    expect(types).toEqual(clientId === 'school-rs' ? ['Group', 'Immunization', 'Patient'] : ['Group', 'Patient']);
    const patients = r.outputs.find((o) => o.item.type === 'Patient')!.download.lines;
    expect(patients.length).toBe(w.members);
    const group = r.outputs.find((o) => o.item.type === 'Group')!.download.lines[0]!;
    expect(group).toMatchObject({ resourceType: 'Group', id: SCHOOL_GROUP, quantity: w.members });
    expect(r.manifest).toMatchObject({ requiresAccessToken: true, error: [] });
    expect(r.manifest!.request).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir\/Group\/school-district-7-students\/\$export/);
  });

  it('refuses a token request as SMART says: wrong aud, expired, replayed jti, unknown client, wrong key, a scope not registered', async () => {
    const tokenEndpoint = `${w.base}/auth/token`;
    const ask = (o: Parameters<typeof requestToken>[0]['assertionOverrides'] = {}, clientId = 'school-rs', scope = SCOPE) => requestToken({ tokenEndpoint, clientId, key: w.rsa, scope, assertionOverrides: o });
    const stranger = await makeKeyPair('RS384');
    const first = await ask();
    expect(first.ok).toBe(true);
    const cases: [string, Awaited<ReturnType<typeof ask>>, number, string][] = [
      ['wrong aud', await ask({ aud: `${w.base}/token` }), 401, 'invalid_client'],
      ['expired', await ask({ expiresInSeconds: -120 }), 401, 'invalid_client'],
      ['exp too far ahead', await ask({ expiresInSeconds: 3600 }), 401, 'invalid_client'],
      ['replayed jti', await ask({ assertion: first.assertion }), 401, 'invalid_client'],
      ['unknown client', await ask({}, 'nobody'), 401, 'invalid_client'],
      ['wrong key', await ask({ signWith: { privateKey: stranger.privateKey, alg: 'RS384' } }), 401, 'invalid_client'],
      ['a jku not registered', await ask({ jku: 'https://evil.example/jwks.json' }), 401, 'invalid_client'],
      ['a scope not registered', await ask({}, 'school-rs', 'system/Patient.write'), 400, 'invalid_scope'],
      ['the ES384 client asking for Immunization', await requestToken({ tokenEndpoint, clientId: 'school-es', key: w.ec, scope: 'system/Immunization.read' }), 400, 'invalid_scope'],
    ];
    for (const [what, res, status, error] of cases) {
      expect({ what, status: res.status, error: (res.body as { error?: string }).error }).toEqual({ what, status, error });
    }
  });

  it('answers a Group of another partner exactly as a Group that does not exist, and 401 without a token', async () => {
    const mine = await token(w);
    const theirs = await token(w, 'payer', w.payerKey);
    for (const url of [`${w.base}/Group/${PAYER_GROUP}`, `${w.base}/Group/${PAYER_GROUP}/$export`]) {
      const other = await fetch(url, { headers: { authorization: `Bearer ${mine}`, prefer: 'respond-async', accept: 'application/fhir+json' } });
      const missing = await fetch(url.replace(PAYER_GROUP, 'no-such-group'), { headers: { authorization: `Bearer ${mine}`, prefer: 'respond-async', accept: 'application/fhir+json' } });
      expect(other.status).toBe(404);
      expect(missing.status).toBe(404);
      const a = (await other.json()) as { issue: { code: string; diagnostics: string }[] };
      const b = (await missing.json()) as { issue: { code: string; diagnostics: string }[] };
      expect(a.issue[0]!.code).toBe(b.issue[0]!.code);
      expect(a.issue[0]!.diagnostics.replace(PAYER_GROUP, 'X')).toBe(b.issue[0]!.diagnostics.replace('no-such-group', 'X'));
      expect((await fetch(url)).status).toBe(401);
    }
    // The payer reads its own.
    expect((await fetch(`${w.base}/Group/${PAYER_GROUP}`, { headers: { authorization: `Bearer ${theirs}` } })).status).toBe(200);
    // A search lists the token's partner's Groups only.
    const bundle = (await (await fetch(`${w.base}/Group?name=school`, { headers: { authorization: `Bearer ${mine}` } })).json()) as { total: number; entry: { resource: { id: string } }[] };
    expect(bundle.entry.map((e) => e.resource.id)).toEqual([SCHOOL_GROUP]);
    const none = (await (await fetch(`${w.base}/Group?name=acme`, { headers: { authorization: `Bearer ${mine}` } })).json()) as { total: number };
    expect(none.total).toBe(0);
    // Another client's job is not found either.
    const k = await kickOff({ fhirBase: w.base, groupId: SCHOOL_GROUP, token: mine, method: 'GET', params: { _type: 'Group' } });
    expect(k.status).toBe(202);
    expect((await pollOnce({ statusUrl: k.contentLocation!, token: theirs })).status).toBe(404);
  });

  it('a Group over FHIR: valid shape with meta, member entity and period', async () => {
    const t = await token(w);
    const res = await fetch(`${w.base}/Group/${SCHOOL_GROUP}`, { headers: { authorization: `Bearer ${t}` } });
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const g = (await res.json()) as { type: string; actual: boolean; quantity: number; meta: { versionId: string; lastUpdated: string }; member: { entity: { reference: string }; period: { start: string } }[] };
    expect(g).toMatchObject({ resourceType: 'Group', id: SCHOOL_GROUP, type: 'person', actual: true, quantity: w.members });
    expect(g.meta.versionId).toMatch(/^\d+$/);
    expect(g.meta.lastUpdated).toMatch(/T.*Z$/);
    expect(g.member[0]!.entity.reference).toMatch(/^Patient\//);
  });

  it('polling faster than Retry-After gets a 429; DELETE of a finished job is 202, then the job and its files are 404', async () => {
    const t = await token(w);
    const k = await kickOff({ fhirBase: w.base, groupId: SCHOOL_GROUP, token: t, method: 'GET', params: { _type: ['Patient', 'Group'] } });
    expect(k.status).toBe(202);
    const first = await pollOnce({ statusUrl: k.contentLocation!, token: t });
    const second = await pollOnce({ statusUrl: k.contentLocation!, token: t });
    if (first.status === 202) {
      expect(first.retryAfter).toMatch(/^\d+$/);
      expect(second.status).toBe(429);
      expect(second.retryAfter).toMatch(/^\d+$/);
    }
    const done = await poll({ statusUrl: k.contentLocation!, token: t, maxWaitMs: 60_000 });
    expect(done.status).toBe(200);
    expect(done.headers['expires']).toBeDefined();
    const fileUrl = done.manifest!.output[0]!.url;
    expect((await fetch(fileUrl, { headers: { authorization: `Bearer ${t}` } })).status).toBe(200);
    expect((await fetch(fileUrl)).status).toBe(401);
    const del = await cancel({ statusUrl: k.contentLocation!, token: t });
    expect(del.status).toBe(202);
    expect(del.problems).toEqual([]);
    expect((await pollOnce({ statusUrl: k.contentLocation!, token: t })).status).toBe(404);
    expect((await fetch(fileUrl, { headers: { authorization: `Bearer ${t}` } })).status).toBe(404);
    expect((await cancel({ statusUrl: k.contentLocation!, token: t })).status).toBe(404);
  });

  it('DELETE of a job still running cancels it: no manifest, no files', async () => {
    const t = await token(w);
    const k = await kickOff({ fhirBase: w.base, groupId: SCHOOL_GROUP, token: t, method: 'GET' });
    expect(k.status).toBe(202);
    expect((await cancel({ statusUrl: k.contentLocation!, token: t })).status).toBe(202);
    const jobId = k.contentLocation!.split('/').pop()!;
    expect((await pollOnce({ statusUrl: k.contentLocation!, token: t })).status).toBe(404);
    // Whatever the worker had written goes once it sees the cancellation.
    await waitFor('the cancelled job\'s files to go', async () => !(await fs.access(path.join(w.bulkRoot, jobId)).then(() => true, () => false)));
  });

  it('kick-off parameters: _since with Z and with +02:00, _type, _typeFilter, _elements; unsupported ones are a 400 or, lenient, an OperationOutcome in the manifest', async () => {
    const t = await token(w);
    const run = async (params: Parameters<typeof kickOff>[0]['params'], extra: Partial<Parameters<typeof kickOff>[0]> = {}) => {
      const k = await kickOff({ fhirBase: w.base, groupId: SCHOOL_GROUP, token: t, method: 'GET', params, ...extra });
      if (k.status !== 202) return { status: k.status, body: k.body, outputs: {} as Record<string, Record<string, unknown>[]>, manifest: undefined };
      const p = await poll({ statusUrl: k.contentLocation!, token: t, maxWaitMs: 60_000, floorMs: 50 });
      const outputs: Record<string, Record<string, unknown>[]> = {};
      for (const f of [...p.manifest!.output, ...p.manifest!.error]) {
        const text = await (await fetch(f.url, { headers: { authorization: `Bearer ${t}` } })).text();
        outputs[f.type] = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      }
      return { status: 200, body: undefined, outputs, manifest: p.manifest };
    };
    const all = await run({ _type: ['Patient', 'Immunization'] });
    expect(all.outputs.Patient!.length).toBe(w.members);
    const lastUpdated = (all.outputs.Patient![0]!.meta as { lastUpdated: string }).lastUpdated;

    // patient (POST): only those members; someone outside the Group is a 400, or left out under lenient.
    const post = async (patient: string[], lenient = false) => {
      const k = await kickOff({ fhirBase: w.base, groupId: SCHOOL_GROUP, token: t, method: 'POST', params: { _type: 'Patient', patient }, lenient });
      if (k.status !== 202) return { status: k.status, ids: [] as string[], manifest: undefined };
      const p = await poll({ statusUrl: k.contentLocation!, token: t, maxWaitMs: 60_000, floorMs: 50 });
      const file = p.manifest!.output.find((o) => o.type === 'Patient');
      const text = file ? await (await fetch(file.url, { headers: { authorization: `Bearer ${t}` } })).text() : '';
      return { status: 200, ids: text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id), manifest: p.manifest };
    };

    // Everything was written before now: a _since of now holds nothing, in either offset form.
    const now = new Date(Date.now() + 1000);
    const plus2 = new Date(now.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    // A _since before the load: everything.
    const before = new Date(new Date(lastUpdated).getTime() - 1000).toISOString().replace('Z', '+00:00');
    const code = ((all.outputs.Immunization![0]!.vaccineCode as { coding: { code: string }[] }).coding[0]!).code;
    const codes = [...new Set(all.outputs.Immunization!.map((i) => (i.vaccineCode as { coding: { code: string }[] }).coding[0]!.code))].slice(0, 2);
    const bads = ['2026-02-30T00:00:00Z', '2026-01-01', 'yesterday'];
    // The exports below are independent of each other: kicked off together (each polled at the
    // server's Retry-After) rather than one after another, then checked one by one.
    const [sinces, sinceBefore, badSinces, elements, completed, one, each, both, single, outsider, nobody, lenientOutsider, observation, lotNumber, lenient, twoSkipped] = await Promise.all([
      Promise.all([now.toISOString(), plus2].map(async (since) => [since, await run({ _type: 'Patient', _since: since })] as const)),
      run({ _type: 'Patient', _since: before }),
      Promise.all(bads.map(async (bad) => [bad, await run({ _since: bad })] as const)),
      run({ _type: 'Patient', _elements: 'birthDate' }),
      run({ _type: 'Immunization', _typeFilter: 'Immunization?status=completed' }),
      run({ _type: 'Immunization', _typeFilter: `Immunization?vaccine-code=${code}` }),
      // Two queries in one _typeFilter value, comma-separated (the IG), hold what each does alone.
      Promise.all(codes.map(async (c) => (await run({ _type: 'Immunization', _typeFilter: `Immunization?vaccine-code=${c}` })).outputs.Immunization!.length)),
      run({ _type: 'Immunization', _typeFilter: codes.map((c) => `Immunization?vaccine-code=${c}`).join(',') }),
      post([`Patient/${w.schoolMember}`]),
      post([`Patient/${w.schoolMember}`, `Patient/${w.payerOnly}`]),
      post([`Patient/${w.schoolMember}`, 'Patient/no-such-patient']),
      post([`Patient/${w.schoolMember}`, `Patient/${w.payerOnly}`], true),
      run({ _type: 'Observation' }),
      run({ _typeFilter: 'Immunization?lot-number=1' }),
      run({ _type: ['Patient', 'Observation'] }, { lenient: true }),
      // One OperationOutcome for each thing skipped.
      run({ _type: ['Patient', 'Observation'], _elements: 'Observation.status' }, { lenient: true }),
    ]);

    for (const [since, r] of sinces) {
      expect(r.status, since).toBe(200);
      expect(r.manifest!.output, since).toEqual([]);
    }
    expect(sinceBefore.outputs.Patient!.length).toBe(w.members);
    // Not an instant, or a day that does not exist: 400.
    for (const [bad, r] of badSinces) expect(r.status, bad).toBe(400);

    const p = elements.outputs.Patient![0]!;
    expect(Object.keys(p).sort()).toEqual(['birthDate', 'id', 'meta', 'resourceType']);
    expect((p.meta as { tag?: { code: string }[] }).tag?.[0]?.code).toBe('SUBSETTED');

    expect(completed.outputs.Immunization!.length).toBe(all.outputs.Immunization!.length);
    expect(one.outputs.Immunization!.length).toBeGreaterThan(0);
    expect(one.outputs.Immunization!.every((i) => (i.vaccineCode as { coding: { code: string }[] }).coding.some((c) => c.code === code))).toBe(true);
    expect(one.outputs.Immunization!.length).toBeLessThan(all.outputs.Immunization!.length);

    expect(both.outputs.Immunization!.length).toBe(each[0]! + each[1]!);

    expect(single.ids).toEqual([w.schoolMember]);
    expect([outsider.status, nobody.status]).toEqual([400, 400]);
    expect(lenientOutsider.ids).toEqual([w.schoolMember]);
    expect(lenientOutsider.manifest!.error.length).toBe(1);

    expect(observation.status).toBe(400);
    expect(lotNumber.status).toBe(400);
    expect(lenient.status).toBe(200);
    expect(lenient.outputs.OperationOutcome![0]!.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(lenient.outputs.OperationOutcome)).toMatch(/Observation/);
    expect(twoSkipped.outputs.OperationOutcome!.length).toBe(2);
    expect(twoSkipped.manifest!.error[0]!.count).toBe(2);
  });

  // Last: it changes the school's Group that the cases above count.
  it('a partner that manages its own Group: $member-remove and $member-add with the client in the history, a refused add without a relationship, inactive members, valid R4', async () => {
    const reader = await token(w);
    const manager = await token(w, 'school-manager', w.rsa, 'system/*.read system/Group.write');
    const op = (name: string, t: string, parameter: unknown[]) =>
      fetch(`${w.base}/Group/${SCHOOL_GROUP}/$${name}`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter }) });
    const ref = (id: string) => ({ name: 'patientReference', valueReference: { reference: `Patient/${id}` } });

    // A read-only token may not change membership.
    expect((await op('member-remove', reader, [ref(w.schoolMember)])).status).toBe(403);
    // Another partner's Group is not found, whatever the scopes.
    const other = await fetch(`${w.base}/Group/${PAYER_GROUP}/$member-remove`, { method: 'POST', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [ref(w.payerOnly)] }) });
    expect(other.status).toBe(404);

    const removed = await op('member-remove', manager, [ref(w.schoolMember)]);
    expect(removed.status).toBe(200);
    const g1 = (await removed.json()) as { quantity: number; member: { entity: { reference: string }; inactive?: boolean; period: { start?: string; end?: string } }[] };
    expect(g1.quantity).toBe(w.members - 1);
    const left = g1.member.find((m) => m.entity.reference === `Patient/${w.schoolMember}`)!;
    expect(left.inactive).toBe(true);
    expect(left.period.end).toMatch(/Z$/);
    expect(errorsOf(g1 as unknown as Record<string, unknown>)).toEqual([]);

    // Back, with the attribution period the partner gives; the history names the client.
    const added = await op('member-add', manager, [ref(w.schoolMember), { name: 'attributionPeriod', valuePeriod: { start: '2026-09-01', end: '2027-06-30' } }]);
    expect(added.status).toBe(200);
    const g2 = (await added.json()) as typeof g1;
    expect(g2.quantity).toBe(w.members);
    const back = g2.member.find((m) => m.entity.reference === `Patient/${w.schoolMember}`)!;
    expect(back.inactive).toBeUndefined();
    expect(back.period).toEqual({ start: '2026-09-01T00:00:00.000Z', end: '2027-06-30T00:00:00.000Z' });
    const history = await groupHistory(w.service.db, SCHOOL_GROUP, 2);
    expect(history.map((e) => [e.action, e.patientId, e.actor, e.runId])).toEqual([
      ['added', w.schoolMember, 'client/school-manager', null],
      ['removed', w.schoolMember, 'client/school-manager', null],
    ]);

    // Someone the IIS matched for the payer only, and an id nobody has: the same refusal.
    const stranger = await op('member-add', manager, [ref(w.payerOnly)]);
    const nobody = await op('member-add', manager, [ref('no-such-patient')]);
    expect([stranger.status, nobody.status]).toEqual([422, 422]);
    const [a, b] = (await Promise.all([stranger.json(), nobody.json()])) as { issue: { code: string; diagnostics: string }[] }[];
    expect(a!.issue[0]!.code).toBe('business-rule');
    expect(a).toEqual(b);
    expect((await groupHistory(w.service.db, SCHOOL_GROUP, 1))[0]!.patientId).toBe(w.schoolMember);

    // A memberId the index holds, resolved to the member it names.
    const patient = (await w.service.db.query<{ identifiers: { system: string; value: string }[] }>('SELECT identifiers FROM patient WHERE id = $1', [w.schoolMember])).rows[0]!;
    const id = patient.identifiers[0]!;
    const bySsn = await op('member-remove', manager, [{ name: 'memberId', valueIdentifier: { system: id.system, value: id.value } }]);
    expect(bySsn.status).toBe(200);
    expect(((await bySsn.json()) as typeof g1).quantity).toBe(w.members - 1);
    expect((await op('member-add', manager, [ref(w.schoolMember)])).status).toBe(200);

    // Malformed: neither or both ways of naming the person, an unknown parameter.
    expect((await op('member-add', manager, [])).status).toBe(400);
    expect((await op('member-add', manager, [ref(w.schoolMember), { name: 'memberId', valueIdentifier: { system: id.system, value: id.value } }])).status).toBe(400);
    expect((await op('member-add', manager, [ref(w.schoolMember), { name: 'colour', valueString: 'blue' }])).status).toBe(400);
  });

  it('a Group defined by characteristics (actual: false) is evaluated when it is exported, reads as valid R4, and takes no membership changes', async () => {
    const t = await token(w);
    const read = await fetch(`${w.base}/Group/${DEFINED_GROUP}`, { headers: { authorization: `Bearer ${t}` } });
    const g = (await read.json()) as Record<string, unknown>;
    expect(g).toMatchObject({ resourceType: 'Group', id: DEFINED_GROUP, actual: false, type: 'person' });
    expect(g).not.toHaveProperty('member');
    expect(errorsOf(g)).toEqual([]);

    const expected = await underEighteenIn(['61761', '61820']);
    expect(expected.size).toBeGreaterThan(10);
    const r = await runExport({ fhirBase: w.base, groupId: DEFINED_GROUP, clientId: 'school-rs', key: w.rsa, scope: SCOPE, requireCount: true, floorMs: 50 });
    expect(r.problems).toEqual([]);
    const patients = r.outputs.find((o) => o.item.type === 'Patient')!.download.lines;
    expect(new Set(patients.map((p) => p.id))).toEqual(expected);
    const immunizations = r.outputs.find((o) => o.item.type === 'Immunization')?.download.lines ?? [];
    expect(immunizations.every((i) => expected.has(((i.patient as { reference: string }).reference).slice('Patient/'.length)))).toBe(true);

    const manager = await token(w, 'school-manager', w.rsa, 'system/*.read system/Group.write');
    const add = await fetch(`${w.base}/Group/${DEFINED_GROUP}/$member-add`, {
      method: 'POST',
      headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'patientReference', valueReference: { reference: `Patient/${w.schoolMember}` } }] }),
    });
    expect(add.status).toBe(422);
    expect(((await add.json()) as { issue: { code: string }[] }).issue[0]!.code).toBe('business-rule');
    // Another partner's client does not see it.
    const payer = await token(w, 'payer', w.payerKey);
    expect((await fetch(`${w.base}/Group/${DEFINED_GROUP}`, { headers: { authorization: `Bearer ${payer}` } })).status).toBe(404);
  });

  it('a finished export expires: its Expires header says when, then its status and files are 404 and the files are gone', async () => {
    const t = await token(w);
    const k = await kickOff({ fhirBase: w.base, groupId: SCHOOL_GROUP, token: t, method: 'GET', params: { _type: 'Group' } });
    const done = await poll({ statusUrl: k.contentLocation!, token: t, maxWaitMs: 60_000, floorMs: 50 });
    expect(done.status).toBe(200);
    const expires = Date.parse(done.headers['expires']!);
    expect(expires - Date.now()).toBeLessThanOrEqual(KEEP_MS);
    const jobId = k.contentLocation!.split('/').pop()!;
    const dir = path.join(w.bulkRoot, jobId);
    expect((await fs.readdir(dir)).length).toBeGreaterThan(0);
    await waitFor('the export to expire', async () => (await pollOnce({ statusUrl: k.contentLocation!, token: t })).status === 404, 30_000, 250);
    expect(Date.now()).toBeGreaterThanOrEqual(expires - 1000);
    expect((await fetch(done.manifest!.output[0]!.url, { headers: { authorization: `Bearer ${t}` } })).status).toBe(404);
    await waitFor('the expired files to go', async () => !(await fs.access(dir).then(() => true, () => false)), 10_000, 100);
  });
});
