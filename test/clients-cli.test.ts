/**
 * `rostermatch client …` as an operator runs it — the real CLI in its own process on a real
 * embedded store — and the console's page of clients over real HTTP. The keys `client keys` makes
 * are proved to work: an assertion signed with the private files verifies against what was
 * registered. What must be refused is refused before anything is stored, naming the file and key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, importPKCS8, jwtVerify, SignJWT, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashPassword, OperatorDirectory, startConsole } from '../src/console/index.ts';
import { issueToken } from '../src/fhir/auth.ts';
import { findAccessToken, getClient, listAuditEvents, openPostgres, storeAccessToken, type Db } from '../src/store/index.ts';
import { quietLog, runCli, tempDir, tempPgDatabase, writeText } from './helpers.ts';

const PARTNER = 'riverside-clinic';
const PASSWORD = 'a long enough password';

interface Setup {
  dir: string;
  dataDir: string;
  pipelines: string;
  cli(args: string[], env?: Record<string, string>): ReturnType<typeof runCli>;
  databaseUrl: string;
  /** The store the CLI wrote, opened here between CLI calls. */
  withStore<T>(fn: (db: Db) => Promise<T>): Promise<T>;
}

async function setup(): Promise<Setup> {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  const pipelines = path.join(dir, 'pipelines');
  await fs.mkdir(pipelines);
  await fs.copyFile(path.resolve('pipelines', `${PARTNER}.yaml`), path.join(pipelines, `${PARTNER}.yaml`));
  // On PostgreSQL: each command is a process of its own, and opening the embedded store (PGlite's
  // WASM) costs each one a second or two; the commands' SQL is the same on both stores.
  const databaseUrl = await tempPgDatabase();
  return {
    dir,
    dataDir,
    pipelines,
    databaseUrl,
    cli: (args, env = {}) => runCli([...args, '--pipelines', pipelines], { ROSTERMATCH_DATA: dataDir, DATABASE_URL: databaseUrl, ROSTERMATCH_OPERATOR: 'alice', ...env }),
    withStore: async (fn) => {
      const db = await openPostgres(databaseUrl);
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
  };
}

const readJson = async (f: string) => JSON.parse(await fs.readFile(f, 'utf8')) as Record<string, unknown>;
const registeredId = (stdout: string) => /^client (\S+) registered for partner /m.exec(stdout)?.[1];

describe('rostermatch client', () => {
  it('makes key pairs that work, registers them, lists them and refuses to overwrite them', async () => {
    const s = await setup();
    for (const alg of ['RS384', 'ES384'] as const) {
      const out = path.join(s.dir, alg);
      const keys = await s.cli(['client', 'keys', '--alg', alg, '--kid', `${alg.toLowerCase()}-1`, '--partner', PARTNER, '--out', out]);
      expect(keys.code, keys.stderr).toBe(0);
      for (const f of ['private.jwk.json', 'private.pem', 'jwks.json']) expect(keys.stdout).toContain(path.join(out, f));
      expect(keys.stdout).toContain(`npx rostermatch client add --partner ${PARTNER} --jwks ${path.join(out, 'jwks.json')}`);
      expect((await fs.stat(path.join(out, 'private.jwk.json'))).mode & 0o777).toBe(0o600);
      expect((await fs.stat(path.join(out, 'private.pem'))).mode & 0o777).toBe(0o600);
      const jwks = (await readJson(path.join(out, 'jwks.json'))) as { keys: JWK[] };
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({ kid: `${alg.toLowerCase()}-1`, alg, use: 'sig', kty: alg === 'RS384' ? 'RSA' : 'EC' });
      expect(jwks.keys[0]).not.toHaveProperty('d');
      expect(await fs.readFile(path.join(out, 'private.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

      // Both private files sign assertions that the public set verifies, as the token endpoint will.
      const verify = createLocalJWKSet(jwks);
      const claims = { iss: 'c', sub: 'c', aud: 'https://iis.example/fhir/auth/token', jti: crypto.randomUUID() };
      const privateKeys = [await importJWK((await readJson(path.join(out, 'private.jwk.json'))) as JWK, alg), await importPKCS8(await fs.readFile(path.join(out, 'private.pem'), 'utf8'), alg)];
      for (const key of privateKeys) {
        const jwt = await new SignJWT(claims).setProtectedHeader({ alg, kid: `${alg.toLowerCase()}-1`, typ: 'JWT' }).setExpirationTime('5m').sign(key);
        expect((await jwtVerify(jwt, verify, { algorithms: [alg] })).payload.jti).toBe(claims.jti);
      }

      const again = await s.cli(['client', 'keys', '--alg', alg, '--out', out]);
      expect(again.code).toBe(1);
      expect(again.stderr).toBe(`rostermatch: USAGE: already exists; not overwritten (choose another --out) (${path.join(out, 'private.jwk.json')})\n`);
    }

    const rsa = await s.cli(['client', 'add', '--partner', PARTNER, '--jwks', path.join(s.dir, 'RS384', 'jwks.json')]);
    expect(rsa.code, rsa.stderr).toBe(0);
    const rsaId = registeredId(rsa.stdout)!;
    expect(rsaId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const ec = await s.cli(['client', 'add', '--partner', PARTNER, '--id', 'clinic-ehr', '--jwks', path.join(s.dir, 'ES384', 'jwks.json'), '--scopes', 'system/Patient.rs system/Immunization.rs system/Group.read']);
    expect(ec.stdout).toBe(`client clinic-ehr registered for partner ${PARTNER}: jwks es384-1 (ES384); scopes system/Patient.rs system/Immunization.rs system/Group.read\n`);
    const byUrl = await s.cli(['client', 'add', '--partner', PARTNER, '--id', 'by-url', '--jwks-url', 'http://127.0.0.1:9999/jwks.json']);
    expect(byUrl.code, byUrl.stderr).toBe(0);
    const taken = await s.cli(['client', 'add', '--partner', PARTNER, '--id', 'clinic-ehr', '--jwks-url', 'https://ehr.example/jwks.json']);
    expect(taken.stderr).toBe('rostermatch: USAGE: a client with id "clinic-ehr" is already registered\n');

    const list = await s.cli(['client', 'list']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.find((l) => l.startsWith('by-url\t'))).toMatch(/^by-url\triverside-clinic\tjwks-url http:\/\/127\.0\.0\.1:9999\/jwks\.json\tscopes system\/\*\.read\tcreated \S+Z by alice$/);
    expect(lines.find((l) => l.startsWith(`${rsaId}\t`))).toContain('\tjwks rs384-1 (RS384)\t');
    const json = JSON.parse((await s.cli(['client', 'list', '--json', '--partner', PARTNER])).stdout) as Record<string, unknown>[];
    expect(json.find((c) => c.id === 'clinic-ehr')).toEqual({
      id: 'clinic-ehr',
      partner: PARTNER,
      keys: { source: 'inline', keys: [{ kid: 'es384-1', alg: 'ES384' }] },
      scopes: ['system/Patient.rs', 'system/Immunization.rs', 'system/Group.read'],
      createdAt: expect.stringMatching(/Z$/),
      createdBy: 'alice',
    });
    expect(JSON.stringify(json)).not.toMatch(/"(n|e|x|y)":/);
    expect((await s.cli(['client', 'list', '--partner', 'acme-health-plan'])).stdout).toBe('no clients\n');

    await s.withStore(async (db) => {
      expect((await getClient(db, 'clinic-ehr'))!.jwks!.keys[0]).toMatchObject({ kid: 'es384-1', crv: 'P-384' });
      const added = (await listAuditEvents(db, { action: 'client.add' })).map((e) => [e.actor, e.entity]);
      expect(added).toHaveLength(3);
      expect(added).toContainEqual(['alice', 'client/clinic-ehr']);
    });
   }, 120_000); // a dozen CLI processes, each opening the embedded store

  it('refuses a key set with a private key, naming the file and key, and keys the token endpoint could not use', async () => {
    const s = await setup();
    const rsa = await generateKeyPair('RS384', { extractable: true });
    const pub = { ...(await exportJWK(rsa.publicKey)), kid: 'good' };
    const priv = { ...(await exportJWK(rsa.privateKey)), kid: 'leaked' };
    const p256 = { ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid: 'p256' };
    const small = { ...(crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK), kid: 'small' };
    const cases: [string, unknown, RegExp | string][] = [
      ['private.json', { keys: [pub, priv] }, `rostermatch: USAGE: key 1 (kid "leaked") holds private key material (d, p, q, dp, dq, qi): register the public keys only, and make a new key pair — this one has left its owner (${path.join(s.dir, 'private.json')})\n`],
      ['secret.json', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] }, /key 0 \(kid "hmac"\) holds private key material \(k\)/],
      ['single.json', priv, /USAGE: this is a private key \(d, p, q, dp, dq, qi\), not a public key set/],
      ['nokid.json', { keys: [{ ...pub, kid: undefined }] }, /key 0 has no kid/],
      ['twice.json', { keys: [pub, pub] }, /key 1 \(kid "good"\): two keys have this kid/],
      ['p256.json', { keys: [p256] }, /key 0 \(kid "p256"\) is on curve "P-256": ES384 needs P-384/],
      ['small.json', { keys: [small] }, /key 0 \(kid "small"\) is a 1024-bit RSA key: RS384 needs at least 2048 bits/],
      ['badalg.json', { keys: [{ ...pub, alg: 'RS256' }] }, /with alg "RS256": it must be RS384/],
      ['broken.json', { keys: [{ ...p256, crv: 'P-384', kid: 'broken' }] }, /key 0 \(kid "broken"\) is not a usable ES384 key/],
      ['ed.json', { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'ed' }] }, /is kty "OKP": only RSA \(RS384\) and EC P-384 \(ES384\)/],
      ['empty.json', { keys: [] }, /the key set has no keys/],
    ];
    // Refused before the store is opened, so the processes may run side by side.
    const results = await Promise.all(
      cases.map(async ([name, content]) => s.cli(['client', 'add', '--partner', PARTNER, '--jwks', await writeText(path.join(s.dir, name), JSON.stringify(content))])),
    );
    for (const [i, [name, , expected]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, name).toBe(1);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toContain(`(${path.join(s.dir, name)})`);
      if (typeof expected === 'string') expect(r.stderr, name).toBe(expected);
      else expect(r.stderr, name).toMatch(expected);
    }
    expect((await s.cli(['client', 'list'])).stdout).toBe('no clients\n');
  });

  it('refuses a JWKS URL that is not https, a scope not offered and a partner without a pipeline', async () => {
    const s = await setup();
    const add = (...args: string[]) => s.cli(['client', 'add', '--partner', PARTNER, ...args]);
    const urls = ['http://partner.example/jwks.json', 'ftp://partner.example/jwks.json', 'not a url'];
    for (const [i, r] of (await Promise.all(urls.map((url) => add('--jwks-url', url)))).entries()) {
      const url = urls[i]!;
      expect(r.code, url).toBe(1);
      expect(r.stderr, url).toMatch(/^rostermatch: USAGE: --jwks-url (must be https \(http only for 127\.0\.0\.1 or localhost\)|"not a url" is not a URL)/);
    }
    expect((await add('--jwks-url', 'https://user:pw@partner.example/jwks.json')).stderr).toMatch(/must not carry a user name or password/);
    const scope = await add('--jwks-url', 'https://partner.example/jwks.json', '--scopes', 'system/Patient.read system/*.write patient/*.read');
    expect(scope.code).toBe(1);
    expect(scope.stderr).toBe('rostermatch: USAGE: scopes "system/*.write", "patient/*.read" not offered (allowed: system/{*,Patient,Immunization,Group}.{read,rs,r,s}, and system/Group.write or system/Group.u for a partner that manages its own Group) (field "scopes")\n');
    // The membership scope is offered for Groups only.
    expect((await add('--jwks-url', 'https://partner.example/jwks.json', '--scopes', 'system/Patient.write')).code).toBe(1);
    expect((await add('--jwks-url', 'https://partner.example/jwks.json', '--jwks', 'x.json')).stderr).toMatch(/give exactly one of --jwks FILE or --jwks-url URL/);
    const stranger = await s.cli(['client', 'add', '--partner', 'school-district-7', '--jwks-url', 'https://partner.example/jwks.json']);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toBe(`rostermatch: PIPELINE_NOT_FOUND: no pipeline is for partner "school-district-7" (partners: ${PARTNER}) (${path.join(s.pipelines, 'school-district-7.yaml')}, field "partner")\n`);
    expect((await s.cli(['client', 'list'])).stdout).toBe('no clients\n');
    // The membership scope, for a partner that manages its own Group.
    expect((await add('--jwks-url', 'https://partner.example/jwks.json', '--scopes', 'system/*.read system/Group.write')).code).toBe(0);

    // A deployment without pipeline files cannot check the name: it says so and registers.
    const empty = path.join(s.dir, 'no-pipelines');
    await fs.mkdir(empty);
    const unchecked = await runCli(['client', 'add', '--partner', 'api-only-partner', '--id', 'api', '--jwks-url', 'https://partner.example/jwks.json', '--pipelines', empty], { ROSTERMATCH_DATA: s.dataDir, DATABASE_URL: s.databaseUrl });
    expect(unchecked.code, unchecked.stderr).toBe(0);
    expect(unchecked.stderr).toBe(`rostermatch: warning: no pipeline files in ${empty}: partner "api-only-partner" is not checked\n`);
  });

  it('client assertion prints a fresh SMART assertion from private.jwk.json or private.pem that verifies against jwks.json, and the token endpoint takes it once', async () => {
    const s = await setup();
    const tokenUrl = 'http://127.0.0.1:18480/fhir/auth/token';
    const assertion = (args: string[]) => s.cli(['client', 'assertion', '--client-id', 'clinic-ehr', '--token-url', tokenUrl, ...args]);
    const seen = new Set<string>();
    const issued: string[] = [];
    for (const [alg, kidArgs] of [['RS384', ['--kid', 'rs-2026']], ['ES384', []]] as const) {
      const out = path.join(s.dir, alg);
      expect((await s.cli(['client', 'keys', '--alg', alg, ...kidArgs, '--out', out])).code).toBe(0);
      const jwks = (await readJson(path.join(out, 'jwks.json'))) as { keys: JWK[] };
      const kid = jwks.keys[0]!.kid!;
      if (alg === 'RS384') expect(kid).toBe('rs-2026');
      // A PEM holds no kid: the one of the jwks.json beside it.
      for (const file of ['private.jwk.json', 'private.pem']) {
        const before = Math.floor(Date.now() / 1000);
        const r = await assertion(['--key', path.join(out, file)]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
        const jwt = r.stdout.trim();
        // As the token endpoint checks it: signature by the registered key, alg, aud, iss = sub = client id.
        const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(jwks), { algorithms: [alg], audience: tokenUrl, issuer: 'clinic-ehr', subject: 'clinic-ehr', requiredClaims: ['exp', 'jti'] });
        expect(protectedHeader, file).toEqual({ alg, kid, typ: 'JWT' });
        expect(payload.aud).toBe(tokenUrl);
        expect(payload.exp! - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(300);
        expect(payload.exp!).toBeGreaterThanOrEqual(before + 300);
        expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
        expect(seen.has(payload.jti!)).toBe(false);
        seen.add(payload.jti!);
        issued.push(jwt);
      }
      // Shorter-lived on request; never more than five minutes.
      const short = decodeJwt((await assertion(['--key', path.join(out, 'private.jwk.json'), '--expires-in', '60'])).stdout.trim());
      expect(short.exp! - short.iat!).toBe(60);
      // A PEM away from its jwks.json is named by its JWK thumbprint (`client keys`' default kid) unless --kid says otherwise.
      const alone = path.join(s.dir, `${alg}-alone.pem`);
      await fs.copyFile(path.join(out, 'private.pem'), alone);
      const thumb = decodeProtectedHeader((await assertion(['--key', alone])).stdout.trim()).kid;
      expect(thumb).toBe(await calculateJwkThumbprint(jwks.keys[0]!));
      if (alg === 'ES384') expect(kid).toBe(thumb);
      expect(decodeProtectedHeader((await assertion(['--key', alone, '--kid', 'other'])).stdout.trim()).kid).toBe('other');
    }

    // The token endpoint, as serve runs it, takes each assertion of the registered (RS384) key once.
    expect((await s.cli(['client', 'add', '--partner', PARTNER, '--id', 'clinic-ehr', '--jwks', path.join(s.dir, 'RS384', 'jwks.json')])).code).toBe(0);
    await s.withStore(async (db) => {
      const form = (a: string) => ({ grant_type: 'client_credentials', scope: 'system/*.read', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a });
      for (const jwt of issued.slice(0, 2)) {
        const first = await issueToken(db, form(jwt), { tokenUrl, log: quietLog });
        expect(first.status, JSON.stringify(first.body)).toBe(200);
        expect(first.body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/*.read' });
        expect((await issueToken(db, form(jwt), { tokenUrl, log: quietLog })).body).toMatchObject({ error: 'invalid_client', error_description: 'the assertion\'s jti was used before' });
      }
      // Signed by the ES384 key, which is not registered for this client.
      expect((await issueToken(db, form(issued[2]!), { tokenUrl, log: quietLog })).status).toBe(401);
    });

    const refused: [string[], RegExp][] = [
      [['--key', path.join(s.dir, 'ES384', 'jwks.json')], /USAGE: this is a key set \(jwks\.json, the public keys to register\): give the private key/],
      [['--key', await writeText(path.join(s.dir, 'public.pem'), crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }) as string)], /USAGE: this is a public key/],
      [['--key', await writeText(path.join(s.dir, 'p256.pem'), crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)], /USAGE: a key on curve "P-256": ES384 needs P-384/],
      [['--key', await writeText(path.join(s.dir, 'small.pem'), crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string)], /USAGE: a 1024-bit RSA key: RS384 needs at least 2048 bits/],
      [['--key', path.join(s.dir, 'missing.json')], /USAGE: cannot read the key file/],
      [['--key', path.join(s.dir, 'ES384', 'private.pem'), '--expires-in', '301'], /USAGE: --expires-in must be a whole number of seconds from 1 to 300/],
    ];
    // No store is opened: the processes may run side by side.
    const answers = await Promise.all(refused.map(([args]) => assertion(args)));
    for (const [i, [args, expected]] of refused.entries()) {
      const r = answers[i]!;
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(expected);
    }
    expect((await s.cli(['client', 'assertion', '--key', path.join(s.dir, 'ES384', 'private.pem'), '--client-id', 'c', '--token-url', 'auth/token'])).stderr).toMatch(/--token-url "auth\/token" is not an http or https URL/);
  }, 240_000); // some twenty CLI processes

  it('removes a client and revokes its tokens at once', async () => {
    const s = await setup();
    expect((await s.cli(['client', 'add', '--partner', PARTNER, '--id', 'gone', '--jwks-url', 'https://partner.example/jwks.json'])).code).toBe(0);
    const now = new Date();
    await s.withStore(async (db) => {
      await storeAccessToken(db, 'live-token', { clientId: 'gone', partner: PARTNER, scopes: ['system/*.read'], expiresAt: new Date(now.getTime() + 300_000).toISOString() }, now);
      expect(await findAccessToken(db, 'live-token', now)).toMatchObject({ clientId: 'gone', partner: PARTNER });
    });
    const r = await s.cli(['client', 'remove', 'gone']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`client gone (partner ${PARTNER}) removed; its access tokens are revoked\n`);
    await s.withStore(async (db) => {
      expect(await findAccessToken(db, 'live-token', now)).toBeUndefined();
      expect(await getClient(db, 'gone')).toBeUndefined();
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM access_token WHERE client_id = $1', ['gone']);
      expect(rows[0]!.n).toBe(0);
      expect((await listAuditEvents(db, { action: 'client.remove' })).map((e) => [e.actor, e.entity, e.detail])).toEqual([['alice', 'client/gone', { partner: PARTNER }]]);
    });
    const again = await s.cli(['client', 'remove', 'gone']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('rostermatch: USAGE: no client with id "gone"\n');
  });
});

describe('the console\'s clients', () => {
  let aliceHash: string;
  beforeAll(async () => {
    aliceHash = await hashPassword(PASSWORD);
  });

  it('lists the registered clients to a signed-in operator, with kid and alg but no key material', async () => {
    const s = await setup();
    const keys = path.join(s.dir, 'keys');
    expect((await s.cli(['client', 'keys', '--alg', 'ES384', '--kid', 'ehr-2026', '--out', keys])).code).toBe(0);
    expect((await s.cli(['client', 'add', '--partner', PARTNER, '--id', 'clinic-ehr', '--jwks', path.join(keys, 'jwks.json')])).code).toBe(0);
    expect((await s.cli(['client', 'add', '--partner', PARTNER, '--id', '<b>by-url</b>', '--jwks-url', 'https://ehr.example/jwks.json', '--scopes', 'system/Group.rs'])).code).toBe(0);
    const jwk = ((await readJson(path.join(keys, 'jwks.json'))) as { keys: { x: string; y: string }[] }).keys[0]!;

    const operators = await writeText(path.join(s.dir, 'operators.yaml'), stringify({ operators: [{ name: 'alice', password: aliceHash }] }));
    const db = await openPostgres(s.databaseUrl);
    const { server, url } = await startConsole({ host: '127.0.0.1', port: 0, db, log: quietLog, operators: new OperatorDirectory(operators), exportsDir: path.join(s.dir, 'ex'), queues: [], checks: {} });
    try {
      const anonymous = await fetch(`${url}/clients`, { redirect: 'manual', headers: { accept: 'text/html' } });
      expect(anonymous.status).toBe(303);
      expect(anonymous.headers.get('location')).toBe('/login?next=%2Fclients');
      expect((await fetch(`${url}/api/clients`)).status).toBe(401);

      const login = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'alice', password: PASSWORD, next: '/clients' }) });
      expect(login.status).toBe(303);
      expect(login.headers.get('location')).toBe('/clients');
      const cookie = login.headers.getSetCookie().find((c) => c.startsWith('rm_session='))!.split(';')[0]!;

      const res = await fetch(`${url}/clients`, { headers: { cookie, accept: 'text/html' } });
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toContain('<a href="/clients" aria-current="page">Clients</a>');
      expect(body).toContain('2 registered');
      expect(body).toMatch(/<tr data-client="clinic-ehr"><td><code>clinic-ehr<\/code><\/td><td>riverside-clinic<\/td><td>inline: <code>ehr-2026<\/code> <span class="muted">ES384<\/span><\/td><td><code>system\/\*\.read<\/code><\/td><td><time datetime="[^"]+Z"/);
      expect(body).toContain('URL <code>https://ehr.example/jwks.json</code>');
      expect(body).toContain('<code>&lt;b&gt;by-url&lt;/b&gt;</code>');
      expect(body).not.toContain(jwk.x);
      expect(body).not.toContain(jwk.y);
      // Every other page links to it too.
      expect(await (await fetch(`${url}/groups`, { headers: { cookie } })).text()).toContain('<a href="/clients">Clients</a>');

      const api = await fetch(`${url}/api/clients?partner=${PARTNER}`, { headers: { cookie } });
      expect(api.status).toBe(200);
      const { clients } = (await api.json()) as { clients: Record<string, unknown>[] };
      expect(clients.map((c) => c.id).sort()).toEqual(['<b>by-url</b>', 'clinic-ehr']);
      expect(clients.find((c) => c.id === 'clinic-ehr')).toMatchObject({ partner: PARTNER, keys: { source: 'inline', keys: [{ kid: 'ehr-2026', alg: 'ES384' }] }, scopes: ['system/*.read'], createdBy: expect.any(String) });
      expect(clients.find((c) => c.id === '<b>by-url</b>')).toMatchObject({ keys: { source: 'url', url: 'https://ehr.example/jwks.json' }, scopes: ['system/Group.rs'] });
      expect(JSON.stringify(clients)).not.toContain(jwk.x);
      expect(((await (await fetch(`${url}/api/clients?partner=acme-health-plan`, { headers: { cookie } })).json()) as { clients: unknown[] }).clients).toEqual([]);
    } finally {
      await server.close();
      await db.close();
    }
  });
});
