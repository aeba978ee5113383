/**
 * Unit tests of the independent Bulk Data client: no product server. The few HTTP cases run against
 * a stub on loopback that only echoes what the test scripts, to show the client sends and reads
 * what the specs say.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  CLIENT_ASSERTION_TYPE,
  buildClientAssertion,
  buildKickOff,
  checkManifest,
  checkSmartConfiguration,
  download,
  kickOff,
  makeKeyPair,
  parseRetryAfter,
  poll,
  requestToken,
} from './client.ts';
import type { KeyPair, Manifest } from './client.ts';

const TOKEN_URL = 'https://auth.example.org/token';

describe('makeKeyPair', () => {
  it.each(['RS384', 'ES384'] as const)('%s: a bare public JWK with kty, kid, alg, use', async (alg) => {
    const k = await makeKeyPair(alg);
    expect(k.publicJwk).toMatchObject({ kid: k.kid, alg, use: 'sig' });
    expect(k.publicJwk.key_ops).toBeUndefined();
    expect(k.publicJwk).not.toHaveProperty('d');
    expect(k.publicJwk).not.toHaveProperty('ext');
    if (alg === 'RS384') expect(k.publicJwk).toMatchObject({ kty: 'RSA', e: expect.any(String), n: expect.any(String) });
    else expect(k.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-384', x: expect.any(String), y: expect.any(String) });
    expect(k.jwks).toEqual({ keys: [k.publicJwk] });
  });

  it('takes a kid, and key_ops on request', async () => {
    const k = await makeKeyPair('ES384', 'my-kid', { keyOps: true });
    expect(k.kid).toBe('my-kid');
    expect(k.publicJwk.key_ops).toEqual(['verify']);
  });
});

describe('buildClientAssertion', () => {
  let rsa: KeyPair;
  let ec: KeyPair;
  beforeAll(async () => {
    rsa = await makeKeyPair('RS384');
    ec = await makeKeyPair('ES384');
  });

  it.each(['rsa', 'ec'] as const)('%s: header alg/kid/typ and claims iss=sub=client_id, aud=token URL, exp ≤ 5 min, jti', async (which) => {
    const key = which === 'rsa' ? rsa : ec;
    const before = Math.floor(Date.now() / 1000);
    const { jwt } = await buildClientAssertion({ clientId: 'client-1', tokenEndpoint: TOKEN_URL, key });
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: key.alg, kid: key.kid, typ: 'JWT' });
    const claims = decodeJwt(jwt);
    expect(Object.keys(claims).sort()).toEqual(['aud', 'exp', 'iss', 'jti', 'sub']);
    expect(claims).toMatchObject({ iss: 'client-1', sub: 'client-1', aud: TOKEN_URL });
    expect(claims.exp! - before).toBeGreaterThan(0);
    expect(claims.exp! - before).toBeLessThanOrEqual(300);
    // Verifies against the registered JWK Set, found by kid (the server's step 3).
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(key.jwks), { audience: TOKEN_URL, issuer: 'client-1', subject: 'client-1' });
    expect(payload.jti).toBe(claims.jti);
  });

  it('a fresh jti each time', async () => {
    const a = decodeJwt((await buildClientAssertion({ clientId: 'c', tokenEndpoint: TOKEN_URL, key: ec })).jwt);
    const b = decodeJwt((await buildClientAssertion({ clientId: 'c', tokenEndpoint: TOKEN_URL, key: ec })).jwt);
    expect(a.jti).toEqual(expect.any(String));
    expect(a.jti).not.toBe(b.jti);
  });

  it('overrides: wrong aud, expired exp, fixed jti, other iss/sub, jku', async () => {
    const { jwt } = await buildClientAssertion({
      clientId: 'c',
      tokenEndpoint: TOKEN_URL,
      key: rsa,
      overrides: { aud: 'https://elsewhere/token', expiresInSeconds: -60, jti: 'fixed', iss: 'x', sub: 'y', jku: 'https://client.example.org/jwks.json' },
    });
    expect(decodeProtectedHeader(jwt)).toMatchObject({ jku: 'https://client.example.org/jwks.json', kid: rsa.kid });
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({ aud: 'https://elsewhere/token', jti: 'fixed', iss: 'x', sub: 'y' });
    expect(claims.exp!).toBeLessThan(Date.now() / 1000);
  });

  it('overrides: omit claims and headers, extra claims', async () => {
    const { jwt } = await buildClientAssertion({ clientId: 'c', tokenEndpoint: TOKEN_URL, key: ec, overrides: { omitClaims: ['jti', 'exp'], omitHeader: ['kid'], extraClaims: { iat: 1 } } });
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES384', typ: 'JWT' });
    expect(decodeJwt(jwt)).toEqual({ iss: 'c', sub: 'c', aud: TOKEN_URL, iat: 1 });
  });

  it('signWith another key keeps the registered kid, so verification against the JWKS fails', async () => {
    const other = await makeKeyPair('ES384', ec.kid);
    const { jwt } = await buildClientAssertion({ clientId: 'c', tokenEndpoint: TOKEN_URL, key: ec, overrides: { signWith: other } });
    expect(decodeProtectedHeader(jwt).kid).toBe(ec.kid);
    await expect(jwtVerify(jwt, createLocalJWKSet(ec.jwks))).rejects.toThrow();
    await expect(jwtVerify(jwt, createLocalJWKSet(other.jwks))).resolves.toBeTruthy();
  });

  it('signWith a key of the other algorithm sets the header alg to it', async () => {
    const { jwt } = await buildClientAssertion({ clientId: 'c', tokenEndpoint: TOKEN_URL, key: rsa, overrides: { signWith: ec } });
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'ES384', kid: rsa.kid });
  });
});

describe('buildKickOff', () => {
  it('GET: the parameters in the query string, arrays repeated, Accept and Prefer set', () => {
    const b = buildKickOff({
      fhirBase: 'https://fhir.example.org/fhir/',
      groupId: 'g1',
      token: 'tok',
      method: 'GET',
      params: { _type: ['Patient', 'Immunization'], _since: '2024-01-01T00:00:00Z', _outputFormat: 'application/fhir+ndjson', _elements: 'id', _typeFilter: ['Immunization?date=gt2020-01-01', 'Patient?active=true'] },
      lenient: true,
    });
    const url = new URL(b.url);
    expect(url.origin + url.pathname).toBe('https://fhir.example.org/fhir/Group/g1/$export');
    expect(url.searchParams.getAll('_type')).toEqual(['Patient', 'Immunization']);
    expect(url.searchParams.get('_since')).toBe('2024-01-01T00:00:00Z');
    expect(url.searchParams.getAll('_typeFilter')).toEqual(['Immunization?date=gt2020-01-01', 'Patient?active=true']);
    expect(b.headers).toMatchObject({ accept: 'application/fhir+json', prefer: 'respond-async, handling=lenient', authorization: 'Bearer tok' });
    expect(b.body).toBeUndefined();
  });

  it('GET refuses patient (POST only), unless sent raw', () => {
    expect(() => buildKickOff({ fhirBase: 'http://h', groupId: 'g', method: 'GET', params: { patient: ['Patient/1'] } })).toThrow(TypeError);
    const b = buildKickOff({ fhirBase: 'http://h', groupId: 'g', method: 'GET', extraQuery: [['patient', 'Patient/1']] });
    expect(new URL(b.url).searchParams.get('patient')).toBe('Patient/1');
  });

  it('POST: a Parameters resource with valueString / valueInstant / valueReference', () => {
    const b = buildKickOff({
      fhirBase: 'http://h/fhir',
      groupId: 'g',
      method: 'POST',
      params: { _type: 'Patient,Immunization', _since: '2024-01-01T00:00:00Z', patient: ['Patient/1', 'Patient/2'], _typeFilter: 'Immunization?status=completed' },
      headers: { Prefer: 'handling=lenient', 'X-Extra': '1' },
    });
    expect(b.url).toBe('http://h/fhir/Group/g/$export');
    expect(b.headers).toMatchObject({ 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'respond-async, handling=lenient', 'x-extra': '1' });
    expect(b.headers).not.toHaveProperty('authorization');
    expect(JSON.parse(b.body!)).toEqual({
      resourceType: 'Parameters',
      parameter: [
        { name: '_since', valueInstant: '2024-01-01T00:00:00Z' },
        { name: '_type', valueString: 'Patient,Immunization' },
        { name: 'patient', valueReference: { reference: 'Patient/1' } },
        { name: 'patient', valueReference: { reference: 'Patient/2' } },
        { name: '_typeFilter', valueString: 'Immunization?status=completed' },
      ],
    });
  });

  it('POST with no parameters sends no empty array; headers can be left out', () => {
    const b = buildKickOff({ fhirBase: 'http://h', groupId: 'g', method: 'POST', omitHeaders: ['Prefer'] });
    expect(JSON.parse(b.body!)).toEqual({ resourceType: 'Parameters' });
    expect(b.headers).not.toHaveProperty('prefer');
  });
});

const goodManifest = (): Manifest => ({
  transactionTime: '2024-05-01T12:00:00.123+00:00',
  request: 'https://fhir.example.org/fhir/Group/g1/$export?_type=Patient',
  requiresAccessToken: true,
  output: [{ type: 'Patient', url: 'https://fhir.example.org/files/1.ndjson', count: 2 }],
  error: [],
});

describe('checkManifest', () => {
  it('a good manifest has no violations', () => {
    expect(checkManifest(goodManifest())).toEqual([]);
    expect(checkManifest({ ...goodManifest(), deleted: [{ type: 'Bundle', url: 'https://h/d.ndjson' }], extension: { x: 1 } })).toEqual([]);
    expect(checkManifest(goodManifest(), { kickOff: { url: 'https://fhir.example.org/fhir/Group/g1/$export?_type=Patient', method: 'GET' } })).toEqual([]);
  });

  it('count is optional unless asked for', () => {
    const m = goodManifest();
    delete m.output[0]!.count;
    expect(checkManifest(m)).toEqual([]);
    expect(checkManifest(m, { requireCount: true })).toEqual(['output[0].count is missing']);
  });

  it('reports each violation', () => {
    const bad = {
      transactionTime: '2024-05-01',
      request: '/fhir/Group/g1/$export',
      requiresAccessToken: 'true',
      output: [{ type: 'Patient', url: '/files/1.ndjson', count: '2' }, { url: 'https://h/x' }],
      error: [{ type: 'Patient', url: 'https://h/e.ndjson' }],
    };
    const v = checkManifest(bad);
    expect(v).toHaveLength(7);
    expect(v.join('\n')).toMatch(/transactionTime/);
    expect(v.join('\n')).toMatch(/request is not a full URL/);
    expect(v.join('\n')).toMatch(/requiresAccessToken/);
    expect(v.join('\n')).toMatch(/output\[0\]\.url is not absolute/);
    expect(v.join('\n')).toMatch(/output\[0\]\.count/);
    expect(v.join('\n')).toMatch(/output\[1\]\.type/);
    expect(v.join('\n')).toMatch(/error\[0\]\.type is Patient/);
  });

  it('missing output and error; not an object', () => {
    const { output: _o, error: _e, ...rest } = goodManifest();
    expect(checkManifest(rest)).toEqual(['output (required) is missing', 'error (required) is missing']);
    expect(checkManifest([])).toEqual(['the body is not a JSON object']);
  });

  it('request: POST without parameters, GET with them', () => {
    const m = goodManifest();
    expect(checkManifest(m, { kickOff: { url: 'https://fhir.example.org/fhir/Group/g1/$export', method: 'POST' } })).toHaveLength(1);
    expect(checkManifest(m, { kickOff: { url: 'https://fhir.example.org/fhir/Group/g1/$export?_type=Immunization', method: 'GET' } })).toHaveLength(1);
    expect(checkManifest(m, { kickOff: { url: 'https://fhir.example.org/fhir/Group/g2/$export?_type=Patient', method: 'GET' } })).toHaveLength(1);
  });
});

describe('parseRetryAfter and checkSmartConfiguration', () => {
  it('delay-seconds, HTTP-date, malformed', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('Fri, 31 Dec 1999 23:59:59 GMT', Date.parse('Fri, 31 Dec 1999 23:59:49 GMT'))).toBe(10_000);
    expect(parseRetryAfter('1.5')).toBeNaN();
    expect(parseRetryAfter('soon')).toBeNaN();
  });

  it('a Backend Services configuration', () => {
    const good = {
      token_endpoint: 'https://h/token',
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      scopes_supported: ['system/*.rs'],
      capabilities: ['client-confidential-asymmetric'],
      code_challenge_methods_supported: ['S256'],
    };
    expect(checkSmartConfiguration(good)).toEqual({ problems: [], warnings: [] });
    expect(checkSmartConfiguration({ ...good, token_endpoint: '/token', capabilities: [] }).problems).toHaveLength(2);
  });
});

// ───────────── against a scripted loopback stub ─────────────

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let base: string;
let handler: Handler = (_q, _b, res) => res.end();

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('HTTP, against a stub', () => {
  it('requestToken posts the form SMART Backend Services lists, and reads a grant', async () => {
    const key = await makeKeyPair('ES384');
    let seen: URLSearchParams | undefined;
    let contentType: string | undefined;
    handler = (req, body, res) => {
      seen = new URLSearchParams(body);
      contentType = req.headers['content-type'];
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
      res.end(JSON.stringify({ access_token: 'abc', token_type: 'bearer', expires_in: 300, scope: 'system/Patient.rs' }));
    };
    const r = await requestToken({ tokenEndpoint: `${base}/token`, clientId: 'c1', key, scope: 'system/Patient.rs' });
    expect(contentType).toMatch(/^application\/x-www-form-urlencoded/);
    expect([...seen!.keys()].sort()).toEqual(['client_assertion', 'client_assertion_type', 'grant_type', 'scope']);
    expect(seen!.get('grant_type')).toBe('client_credentials');
    expect(seen!.get('client_assertion_type')).toBe(CLIENT_ASSERTION_TYPE);
    expect(decodeJwt(seen!.get('client_assertion')!)).toMatchObject({ iss: 'c1', sub: 'c1', aud: `${base}/token` });
    expect(r).toMatchObject({ ok: true, accessToken: 'abc', expiresIn: 300, scope: 'system/Patient.rs', tokenType: 'bearer', problems: [], warnings: [] });
  });

  it('requestToken returns a refusal rather than throwing', async () => {
    const key = await makeKeyPair('RS384');
    handler = (_q, _b, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_client', error_description: 'replayed jti' }));
    };
    const r = await requestToken({ tokenEndpoint: `${base}/token`, clientId: 'c1', key, scope: 's', assertionOverrides: { jti: 'same' } });
    expect(r).toMatchObject({ ok: false, status: 400, error: 'invalid_client', errorDescription: 'replayed jti', problems: [] });
  });

  it('kickOff reports a relative Content-Location', async () => {
    handler = (_q, _b, res) => {
      res.writeHead(202, { 'content-location': '/status/1' });
      res.end();
    };
    const r = await kickOff({ fhirBase: base, groupId: 'g', token: 't', method: 'GET' });
    expect(r.status).toBe(202);
    expect(r.contentLocation).toBe('/status/1');
    expect(r.problems).toEqual(['Content-Location is not an absolute URL: /status/1']);
  });

  it('poll sleeps the Retry-After it is given, records X-Progress and a 429, then reads the manifest', async () => {
    const times: number[] = [];
    handler = (req, _b, res) => {
      times.push(Date.now());
      expect(req.headers['authorization']).toBe('Bearer t');
      expect(req.headers['accept']).toBe('application/json');
      if (times.length === 1) {
        res.writeHead(202, { 'x-progress': '10%', 'retry-after': '1' });
        res.end();
      } else if (times.length === 2) {
        res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/fhir+json' });
        res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'throttled' }] }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json', expires: new Date(Date.now() + 3600_000).toUTCString() });
        res.end(JSON.stringify(goodManifest()));
      }
    };
    const r = await poll({ statusUrl: `${base}/status/1`, token: 't', maxWaitMs: 10_000 });
    expect(r).toMatchObject({ status: 200, progress: ['10%'], saw429: true, polls: 3, waits: [1000, 50], timedOut: false, problems: [], warnings: [] });
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(990);
    expect(r.manifest).toEqual(goodManifest());
  });

  it('poll stops, without polling early, when the next Retry-After passes maxWaitMs', async () => {
    handler = (_q, _b, res) => {
      res.writeHead(202, { 'retry-after': '60' });
      res.end();
    };
    const r = await poll({ statusUrl: `${base}/status/2`, maxWaitMs: 1000 });
    expect(r).toMatchObject({ status: 202, polls: 1, timedOut: true, waits: [] });
  });

  it('download parses ndjson, sends the token only when required, reports a wrong Content-Type', async () => {
    let auth: string | undefined;
    handler = (req, _b, res) => {
      auth = req.headers['authorization'];
      res.writeHead(200, { 'content-type': req.url === '/bad' ? 'application/json' : 'application/fhir+ndjson' });
      res.end('{"resourceType":"Patient","id":"1"}\n{"resourceType":"Patient","id":"2"}\n');
    };
    const a = await download({ url: `${base}/f`, token: 't', requiresAccessToken: true });
    expect(auth).toBe('Bearer t');
    expect(a).toMatchObject({ status: 200, contentType: 'application/fhir+ndjson', problems: [] });
    expect(a.lines.map((l) => l.id)).toEqual(['1', '2']);
    const b = await download({ url: `${base}/bad`, token: 't', requiresAccessToken: false });
    expect(auth).toBeUndefined();
    expect(b.problems).toHaveLength(1);
  });
});
