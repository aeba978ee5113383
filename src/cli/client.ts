/**
 * `rostermatch client …`: the SMART Backend Services clients that may ask for Bulk Data tokens,
 * one partner each. Every check a key or URL needs happens here, at registration, so a partner
 * whose key cannot work hears it from the operator today rather than as `invalid_client` later.
 * Only public keys are ever registered; `client keys` makes a pair for a partner that has none.
 */
import { createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { RostermatchError } from '../errors/index.ts';
import { loadPartnerPipeline } from '../pipeline/index.ts';
import { FEED_SCOPES, isFeedScope, SUPPORTED_SCOPES } from '../fhir/scopes.ts';
import { addClient, FEED_PARTNER, getClient, listClients, removeClient, type SmartClient } from '../store/index.ts';
import { withContext, type GlobalOptions } from './context.ts';

/** The signing algorithms the token endpoint accepts (SMART Backend Services: RS384 and ES384). */
export const CLIENT_ALGS = ['RS384', 'ES384'] as const;
export type ClientAlg = (typeof CLIENT_ALGS)[number];
const KTY_OF: Record<ClientAlg, string> = { RS384: 'RSA', ES384: 'EC' };
const ALG_OF_KTY: Record<string, ClientAlg> = { RSA: 'RS384', EC: 'ES384' };

/** Members that only a private (or symmetric) JWK has: RFC 7518 §6.2.2, §6.3.2 and §6.4.1. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** Below this a verifier refuses RS384 (jose does, at every token request). */
const MIN_RSA_BITS = 2048;
/** What `client keys` makes: NIST SP 800-57's 128-bit strength, good beyond 2030. */
const NEW_RSA_BITS = 3072;

/** SMART: an assertion expires no more than five minutes ahead. */
const MAX_ASSERTION_SECONDS = 300;

export const DEFAULT_SCOPES = 'system/*.read';
/** A Patient Identity Source's scope when none is given: add, revise, merge and remove (SMART v1). */
export const DEFAULT_FEED_SCOPES = 'system/Patient.write';

/** The scopes as stored: space-separated, each once, in the order given; any unknown one refused by name. */
export function checkScopes(text: string): string {
  const scopes = [...new Set(text.split(/\s+/).filter(Boolean))];
  if (scopes.length === 0) throw new RostermatchError('USAGE', 'give at least one scope', { field: 'scopes' });
  const unknown = scopes.filter((s) => !SUPPORTED_SCOPES.includes(s));
  if (unknown.length > 0) {
    throw new RostermatchError('USAGE', `scope${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')} not offered (allowed: system/{*,Patient,Immunization,Group}.{read,rs,r,s}, and system/Group.write or system/Group.u for a partner that manages its own Group)`, { field: 'scopes' });
  }
  return scopes.join(' ');
}

/**
 * A feed client holds feed scopes only, at least one; a partner's client none: a partner's token
 * can never write Patients, and a feed's token reads nothing.
 */
export function checkFeedScopes(scopes: string, feed: boolean): void {
  const list = scopes.split(' ');
  const writes = list.filter(isFeedScope);
  if (feed && writes.length < list.length) {
    throw new RostermatchError('USAGE', `a Patient Identity Source (--domain) holds the feed's scopes only (${FEED_SCOPES.join(', ')}), not ${list.filter((s) => !isFeedScope(s)).join(', ')}`, { field: 'scopes' });
  }
  if (!feed && writes.length > 0) {
    throw new RostermatchError('USAGE', `scope${writes.length > 1 ? 's' : ''} ${writes.join(', ')} ${writes.length > 1 ? 'are' : 'is'} for a Patient Identity Source: register it with --domain SYSTEM instead of --partner`, { field: 'scopes' });
  }
}

/** An identifier domain as a PIXm query names it (`identifier=<system>|<value>`): an absolute URI, no `|`, no spaces. */
export function checkDomain(text: string): string {
  let ok = /^[\x21-\x7e]{1,1024}$/.test(text) && !text.includes('|');
  try {
    new URL(text);
  } catch {
    ok = false;
  }
  if (!ok) throw new RostermatchError('USAGE', `--domain "${text}" is not an identifier system (an absolute URI such as urn:oid:1.3.6.1.4.1.21367.13.20.1000, without "|" or spaces)`, { field: 'domain' });
  return text;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A JWKS URL the token endpoint may fetch: https, or http to this machine only (tests, a local proxy). */
export function checkJwksUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RostermatchError('USAGE', `--jwks-url "${text}" is not a URL`, { field: 'jwks-url' });
  }
  const loopback = LOOPBACK.has(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new RostermatchError('USAGE', `--jwks-url must be https (http only for 127.0.0.1 or localhost): "${text}"`, { field: 'jwks-url' });
  }
  // Stored and shown on the console: a password in the URL would be too.
  if (url.username || url.password) throw new RostermatchError('USAGE', '--jwks-url must not carry a user name or password', { field: 'jwks-url' });
  return url.href;
}

const keyName = (i: number, kid: unknown) => `key ${i}${typeof kid === 'string' && kid ? ` (kid "${kid}")` : ''}`;

/**
 * A JSON Web Key Set of public signing keys the token endpoint can use: each key RSA (RS384, at
 * least 2048 bits) or EC P-384 (ES384), with a kid of its own, imported by jose to prove it is a
 * real key. A private member anywhere refuses the whole set: the private key has then left the
 * partner, and the partner must make a new pair. Errors name the file and the key (index from 0).
 */
export async function checkJwks(raw: unknown, file: string): Promise<{ keys: Record<string, unknown>[] }> {
  const fail = (detail: string): never => {
    throw new RostermatchError('USAGE', detail, { file });
  };
  if (typeof raw === 'object' && raw !== null && 'kty' in raw && !('keys' in raw)) {
    // The likeliest slip: the private key file given where its public key set belongs.
    const secret = PRIVATE_MEMBERS.filter((m) => m in raw);
    fail(secret.length > 0 ? `this is a private key (${secret.join(', ')}), not a public key set: register the public JWKS (jwks.json from \`client keys\`)` : 'a single JWK, not a key set: expected {"keys": [...]}');
  }
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { keys?: unknown }).keys)) fail('not a JSON Web Key Set: expected {"keys": [...]}');
  const keys = (raw as { keys: unknown[] }).keys;
  if (keys.length === 0) fail('the key set has no keys');
  const kids = new Set<string>();
  for (const [i, k] of keys.entries()) {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) fail(`key ${i} is not a JSON object`);
    const jwk = k as Record<string, unknown>;
    const name = keyName(i, jwk.kid);
    const secret = PRIVATE_MEMBERS.filter((m) => m in jwk);
    if (secret.length > 0) fail(`${name} holds private key material (${secret.join(', ')}): register the public keys only, and make a new key pair — this one has left its owner`);
    if (typeof jwk.kid !== 'string' || !jwk.kid) fail(`${name} has no kid: the client's assertions name their key by kid`);
    const kid = jwk.kid as string;
    if (kids.has(kid)) fail(`${name}: two keys have this kid; an assertion could not say which one it used`);
    kids.add(kid);
    const alg = ALG_OF_KTY[String(jwk.kty)];
    if (!alg) fail(`${name} is kty "${String(jwk.kty)}": only RSA (RS384) and EC P-384 (ES384) keys are accepted`);
    if (jwk.alg !== undefined && jwk.alg !== alg) fail(`${name} is ${String(jwk.kty)} with alg "${String(jwk.alg)}": it must be ${alg}`);
    if (jwk.kty === 'EC' && jwk.crv !== 'P-384') fail(`${name} is on curve "${String(jwk.crv)}": ES384 needs P-384`);
    if (jwk.use !== undefined && jwk.use !== 'sig') fail(`${name} has use "${String(jwk.use)}": a client's key is for signatures ("sig")`);
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) fail(`${name} has key_ops without "verify"`);
    let key: CryptoKey | Uint8Array | undefined;
    try {
      key = await importJWK(jwk as JWK, alg);
    } catch (e) {
      fail(`${name} is not a usable ${alg} key: ${(e as Error).message}`);
    }
    if (!key || key instanceof Uint8Array || key.type !== 'public') fail(`${name} is not a public key`);
    const algorithm = (key as CryptoKey).algorithm as { modulusLength?: number };
    if (alg === 'RS384' && (algorithm.modulusLength ?? 0) < MIN_RSA_BITS) fail(`${name} is a ${algorithm.modulusLength ?? 0}-bit RSA key: RS384 needs at least ${MIN_RSA_BITS} bits`);
  }
  return { keys: keys as Record<string, unknown>[] };
}

async function readJwksFile(file: string): Promise<{ keys: Record<string, unknown>[] }> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new RostermatchError('USAGE', 'cannot read the JWKS file', { file }, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new RostermatchError('USAGE', 'the JWKS file is not JSON', { file }, { cause: e });
  }
  return checkJwks(raw, file);
}

/**
 * A client is for a partner the IIS has an agreement with, which here means a pipeline file.
 * Without any pipeline file (a deployment whose partners only use the FHIR API) the name cannot
 * be checked: that is said, not refused.
 */
async function checkPartner(pipelinesDir: string, partner: string): Promise<void> {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(partner)) throw new RostermatchError('USAGE', `--partner "${partner}" is not a partner id (lower-case letters, digits and hyphens)`, { field: 'partner' });
  const names = await fs.readdir(pipelinesDir).then(
    (ns) => ns.filter((n) => n.endsWith('.yaml')).map((n) => n.slice(0, -'.yaml'.length)).sort(),
    () => [] as string[],
  );
  if (names.length === 0) {
    process.stderr.write(`rostermatch: warning: no pipeline files in ${pipelinesDir}: partner "${partner}" is not checked\n`);
    return;
  }
  if (!names.includes(partner)) {
    const shown = names.length > 10 ? `${names.slice(0, 10).join(', ')}, …` : names.join(', ');
    throw new RostermatchError('PIPELINE_NOT_FOUND', `no pipeline is for partner "${partner}" (partners: ${shown})`, { file: path.join(pipelinesDir, `${partner}.yaml`), field: 'partner' });
  }
  await loadPartnerPipeline(pipelinesDir, partner);
}

/** What a client is shown as, on the terminal and as JSON: kids and algs of its keys, never the keys. */
export function describeClient(c: SmartClient) {
  return {
    id: c.id,
    partner: c.partner,
    keys: c.jwks
      ? { source: 'inline' as const, keys: c.jwks.keys.map((k) => ({ kid: String(k.kid ?? ''), alg: String(k.alg ?? ALG_OF_KTY[String(k.kty)] ?? '') })) }
      : { source: 'url' as const, url: c.jwksUrl! },
    scopes: c.scopes.split(' '),
    ...(c.domains.length > 0 ? { domains: c.domains } : {}),
    createdAt: c.createdAt,
    createdBy: c.createdBy,
  };
}

const keySource = (d: ReturnType<typeof describeClient>['keys']) =>
  d.source === 'url' ? `jwks-url ${d.url}` : `jwks ${d.keys.map((k) => `${k.kid} (${k.alg})`).join(', ')}`;

/** A word for a copy-pasted shell command: quoted when it holds anything but safe characters. */
const shellWord = (s: string) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Who is recorded in the audit log, as for the other operator commands. */
const operator = () => process.env.ROSTERMATCH_OPERATOR ?? os.userInfo().username;

/** Writes a new file only (never over an existing one), readable by its owner alone when private. */
async function writeNew(file: string, text: string, mode: number): Promise<void> {
  const fh = await fs.open(file, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.chmod(mode); // the umask may have narrowed it; never widened
  } finally {
    await fh.close();
  }
}

/**
 * The private key of a client, from a JWK file (`private.jwk.json`) or a PEM file (PKCS#8, or
 * PKCS#1 / SEC1), with the algorithm it signs with, its kid — the JWK's own, else that of the same
 * key in a jwks.json beside the file (a PEM has none) — and its JWK thumbprint, the kid `client keys`
 * gives when not told one. Public keys and key sets are refused by name: an assertion is signed
 * with the private key.
 */
export async function readPrivateKey(file: string): Promise<{ key: CryptoKey; alg: ClientAlg; kid?: string; thumbprint: string }> {
  const fail = (detail: string, cause?: unknown): never => {
    throw new RostermatchError('USAGE', detail, { file }, cause === undefined ? undefined : { cause });
  };
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    fail('cannot read the key file', e);
  }
  let jwk: Record<string, unknown> = {};
  if (/^\s*\{/.test(text)) {
    try {
      jwk = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      fail('the key file is not JSON', e);
    }
    if (Array.isArray(jwk.keys)) fail('this is a key set (jwks.json, the public keys to register): give the private key, private.jwk.json or private.pem');
  } else if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    try {
      jwk = createPrivateKey(text).export({ format: 'jwk' }) as Record<string, unknown>;
    } catch (e) {
      fail(`not a usable private key in PEM form: ${(e as Error).message}`, e);
    }
  } else if (/-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(text)) {
    fail('this is a public key: an assertion is signed with the private key (private.jwk.json or private.pem)');
  } else fail('neither a JWK (JSON) nor a PEM private key');
  const alg = ALG_OF_KTY[String(jwk.kty)];
  if (!alg) fail(`a key of kty "${String(jwk.kty)}": only RSA (RS384) and EC P-384 (ES384) keys sign assertions here`);
  if (jwk.kty === 'EC' && jwk.crv !== 'P-384') fail(`a key on curve "${String(jwk.crv)}": ES384 needs P-384`);
  if (jwk.alg !== undefined && jwk.alg !== alg) fail(`an ${String(jwk.kty)} key with alg "${String(jwk.alg)}": it must be ${alg}`);
  if (!('d' in jwk)) fail('this is a public key: an assertion is signed with the private key (private.jwk.json or private.pem)');
  let key: CryptoKey | Uint8Array | undefined;
  try {
    // Only the members a key needs: use, key_ops and the like could forbid signing.
    const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, ext: _ext, ...material } = jwk;
    key = await importJWK(material as JWK, alg);
  } catch (e) {
    fail(`not a usable ${alg} private key: ${(e as Error).message}`, e);
  }
  if (!key || key instanceof Uint8Array || key.type !== 'private') return fail('not a private key');
  const bits = (key.algorithm as { modulusLength?: number }).modulusLength;
  if (alg === 'RS384' && (bits ?? 0) < MIN_RSA_BITS) fail(`a ${bits ?? 0}-bit RSA key: RS384 needs at least ${MIN_RSA_BITS} bits`);
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = jwk;
  const thumbprint = await calculateJwkThumbprint(pub as JWK);
  const kid = typeof jwk.kid === 'string' && jwk.kid ? jwk.kid : await siblingKid(file, thumbprint);
  return { key, alg, ...(kid ? { kid } : {}), thumbprint };
}

/** A PEM holds no kid: the one of the same key in the jwks.json beside it (as `client keys` writes them), if any. */
async function siblingKid(file: string, thumbprint: string): Promise<string | undefined> {
  try {
    const set = JSON.parse(await fs.readFile(path.join(path.dirname(file), 'jwks.json'), 'utf8')) as { keys?: JWK[] };
    for (const k of set.keys ?? []) if (typeof k.kid === 'string' && (await calculateJwkThumbprint(k).catch(() => '')) === thumbprint) return k.kid;
  } catch {
    // none beside it, or not a key set: the thumbprint stands
  }
  return undefined;
}

/**
 * A SMART Backend Services client assertion (client-confidential-asymmetric): header alg, kid and
 * typ JWT; claims iss = sub = the client id, aud = the token URL, exp at most five minutes ahead,
 * a random jti (one use only), and iat.
 */
export async function clientAssertion(o: { key: CryptoKey; alg: ClientAlg; kid: string; clientId: string; tokenUrl: string; expiresInSeconds?: number; now?: Date }): Promise<string> {
  const now = Math.floor((o.now ?? new Date()).getTime() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: o.alg, kid: o.kid, typ: 'JWT' })
    .setIssuer(o.clientId)
    .setSubject(o.clientId)
    .setAudience(o.tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expiresInSeconds ?? MAX_ASSERTION_SECONDS))
    .sign(o.key);
}

export function registerClientCommands(program: Command, globals: () => GlobalOptions): void {
  const client = program.command('client').description('SMART Backend Services clients: who may request Bulk Data tokens, for which partner, and the Patient Identity Sources that feed the index');

  client
    .command('add')
    .description('register a client with its public keys (a JWKS file or URL): for a partner, or — with --domain — a Patient Identity Source (IHE PIXm ITI-104) for its identifier domains; audited')
    .option('--partner <id>', 'the partner the client acts for (its pipeline is <pipelines>/<id>.yaml)')
    .option('--domain <system>', 'instead of --partner: an identifier domain (Identifier.system) this Patient Identity Source feeds; repeat for several; one source per domain', (v: string, acc: string[] = []) => [...acc, v])
    .option('--jwks-url <url>', 'where the client publishes its public keys (https)')
    .option('--jwks <file>', 'a JSON Web Key Set of the client\'s public keys (RS384 or ES384, each with a kid)')
    .option('--id <id>', 'the client id (default: a new random one, printed)')
    .option('--scopes <scopes>', `space-separated scopes the client may be granted (default: ${DEFAULT_SCOPES}; with --domain, ${DEFAULT_FEED_SCOPES})`)
    .option('--by <name>', 'who registers it (default: $ROSTERMATCH_OPERATOR or the login name)')
    .action(async (o: { partner?: string; domain?: string[]; jwksUrl?: string; jwks?: string; id?: string; scopes?: string; by?: string }) => {
      if ((o.partner === undefined) === (o.domain === undefined)) throw new RostermatchError('USAGE', 'give --partner ID (a partner\'s client) or --domain SYSTEM (a Patient Identity Source), not both');
      if ((o.jwks === undefined) === (o.jwksUrl === undefined)) throw new RostermatchError('USAGE', 'give exactly one of --jwks FILE or --jwks-url URL');
      // Visible ASCII: SMART's own examples use URLs as client ids; spaces and controls would break the form post.
      if (o.id !== undefined && !/^[\x21-\x7e]{1,255}$/.test(o.id)) throw new RostermatchError('USAGE', '--id: visible ASCII characters only, at most 255', { field: 'id' });
      const domains = o.domain?.map(checkDomain);
      const scopes = checkScopes(o.scopes ?? (domains ? DEFAULT_FEED_SCOPES : DEFAULT_SCOPES));
      checkFeedScopes(scopes, domains !== undefined);
      const keys = o.jwks !== undefined ? { jwks: await readJwksFile(o.jwks) } : { jwksUrl: checkJwksUrl(o.jwksUrl!) };
      const g = globals();
      if (o.partner !== undefined) await checkPartner(g.pipelines, o.partner);
      const id = o.id ?? randomBytes(16).toString('base64url');
      await withContext(g, async ({ db }) => {
        const c = await db.transaction((tx) => addClient(tx, { id, partner: o.partner ?? FEED_PARTNER, ...(domains ? { domains } : {}), ...keys, scopes, by: o.by ?? operator() }));
        const forWhom = c.domains.length > 0 ? `as the Patient Identity Source of ${c.domains.join(', ')}` : `for partner ${c.partner}`;
        console.log(`client ${c.id} registered ${forWhom}: ${keySource(describeClient(c).keys)}; scopes ${c.scopes}`);
      });
    });

  client
    .command('list')
    .description('registered clients: id, partner, key source (kids and algs, or the URL), scopes, created')
    .option('--partner <id>', 'only this partner\'s clients')
    .option('--json', 'print as JSON')
    .action(async (o: { partner?: string; json?: boolean }) => {
      await withContext(globals(), async ({ db }) => {
        const clients = (await listClients(db, o.partner ? { partner: o.partner } : {})).map(describeClient);
        if (o.json) return console.log(JSON.stringify(clients, null, 2));
        for (const c of clients) console.log(`${c.id}\t${c.domains ? `domains ${c.domains.join(' ')}` : c.partner}\t${keySource(c.keys)}\tscopes ${c.scopes.join(' ')}\tcreated ${c.createdAt} by ${c.createdBy}`);
        if (clients.length === 0) console.log('no clients');
      });
    });

  client
    .command('remove')
    .description('remove a client; its access tokens stop working at once; audited')
    .argument('<id>', 'the client id')
    .option('--by <name>', 'who removes it (default: $ROSTERMATCH_OPERATOR or the login name)')
    .action(async (id: string, o: { by?: string }) => {
      await withContext(globals(), async ({ db }) => {
        const c = await getClient(db, id);
        if (!c) throw new RostermatchError('USAGE', `no client with id "${id}"`);
        await db.transaction((tx) => removeClient(tx, id, o.by ?? operator()));
        console.log(`client ${id} (partner ${c.partner}) removed; its access tokens are revoked`);
      });
    });

  client
    .command('keys')
    .description('make a key pair for a client: private.jwk.json and private.pem (mode 0600), and jwks.json to register')
    .addOption(new Option('--alg <alg>', 'the signing algorithm').choices([...CLIENT_ALGS]).makeOptionMandatory())
    .option('--kid <kid>', 'the key id (default: the key\'s JWK thumbprint)')
    .option('--partner <id>', 'the partner, to fill in the `client add` command printed')
    .requiredOption('--out <dir>', 'folder for the three files (none may exist yet)')
    .action(async (o: { alg: ClientAlg; kid?: string; partner?: string; out: string }) => {
      if (o.kid !== undefined && !/^[\x21-\x7e]{1,128}$/.test(o.kid)) throw new RostermatchError('USAGE', '--kid: visible ASCII characters only, at most 128', { field: 'kid' });
      const dir = path.resolve(o.out);
      const files = { jwk: path.join(dir, 'private.jwk.json'), pem: path.join(dir, 'private.pem'), jwks: path.join(dir, 'jwks.json') };
      for (const f of Object.values(files)) {
        if (await fs.lstat(f).then(() => true, () => false)) throw new RostermatchError('USAGE', 'already exists; not overwritten (choose another --out)', { file: f });
      }
      const { privateKey, publicKey } = await generateKeyPair(o.alg, { extractable: true, ...(o.alg === 'RS384' ? { modulusLength: NEW_RSA_BITS } : {}) });
      const pub = await exportJWK(publicKey);
      const kid = o.kid ?? (await calculateJwkThumbprint(pub));
      const meta = { kid, alg: o.alg, use: 'sig' };
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await writeNew(files.jwk, `${JSON.stringify({ ...(await exportJWK(privateKey)), ...meta }, null, 2)}\n`, 0o600);
      await writeNew(files.pem, await exportPKCS8(privateKey), 0o600);
      await writeNew(files.jwks, `${JSON.stringify({ keys: [{ ...pub, ...meta }] }, null, 2)}\n`, 0o644);
      console.log(`made a key pair for ${o.alg} (${KTY_OF[o.alg]}${o.alg === 'RS384' ? ` ${NEW_RSA_BITS} bits` : ' P-384'}), kid ${kid}:`);
      console.log(`  ${files.jwk}  private key as a JWK (0600): for the client only`);
      console.log(`  ${files.pem}  the same private key as PKCS#8 PEM (0600)`);
      console.log(`  ${files.jwks}  public key set: register it`);
      console.log('register the client with:');
      console.log(`  npx rostermatch client add --partner ${o.partner ? shellWord(o.partner) : '<partner>'} --jwks ${shellWord(files.jwks)}`);
    });

  client
    .command('assertion')
    .description('print a fresh signed client assertion (JWT) for a token request: for trying the FHIR server with curl, on the partner\'s side; opens no store')
    .requiredOption('--key <file>', 'the client\'s private key: private.jwk.json or private.pem from `client keys` (RSA for RS384, EC P-384 for ES384)')
    .requiredOption('--client-id <id>', 'the client id it was registered under (iss and sub)')
    .requiredOption('--token-url <url>', 'the token endpoint, exactly as the server names it (aud): <FHIR base>/auth/token')
    .option('--kid <kid>', 'the key id registered (default: the JWK\'s kid; for a PEM, the kid of the same key in the jwks.json beside it, else the key\'s JWK thumbprint, as `client keys` names keys)')
    .option('--expires-in <seconds>', `seconds until it expires (1 to ${MAX_ASSERTION_SECONDS})`, String(MAX_ASSERTION_SECONDS))
    .action(async (o: { key: string; clientId: string; tokenUrl: string; kid?: string; expiresIn: string }) => {
      if (!/^[\x21-\x7e]{1,255}$/.test(o.clientId)) throw new RostermatchError('USAGE', '--client-id: visible ASCII characters only, at most 255', { field: 'client-id' });
      if (o.kid !== undefined && !/^[\x21-\x7e]{1,128}$/.test(o.kid)) throw new RostermatchError('USAGE', '--kid: visible ASCII characters only, at most 128', { field: 'kid' });
      const expiresIn = Number(o.expiresIn);
      if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_ASSERTION_SECONDS) throw new RostermatchError('USAGE', `--expires-in must be a whole number of seconds from 1 to ${MAX_ASSERTION_SECONDS} (SMART: at most five minutes)`, { field: 'expires-in' });
      let url: URL | undefined;
      try {
        url = new URL(o.tokenUrl);
      } catch {
        // said below
      }
      if (!url || !/^https?:$/.test(url.protocol)) throw new RostermatchError('USAGE', `--token-url "${o.tokenUrl}" is not an http or https URL`, { field: 'token-url' });
      const k = await readPrivateKey(path.resolve(o.key));
      // The URL as given, not normalised: the server compares aud with its token URL character for character.
      console.log(await clientAssertion({ key: k.key, alg: k.alg, kid: o.kid ?? k.kid ?? k.thumbprint, clientId: o.clientId, tokenUrl: o.tokenUrl, expiresInSeconds: expiresIn }));
    });
}
