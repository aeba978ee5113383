/**
 * SMART Backend Services (SMART App Launch 2.2, client-confidential-asymmetric): a registered
 * client proves itself with a JWT signed by a key of its JWKS and gets a short-lived bearer token.
 * Every refusal of the assertion is `invalid_client`, as the spec prescribes; only the scope and
 * the form of the request have answers of their own. Nothing of an assertion or a token is
 * logged: the client id and the reason only.
 */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../config/index.ts';
import { findAccessToken, getClient, storeAccessToken, useAssertion, type AccessGrant, type Db } from '../store/index.ts';
import { FhirError } from './outcome.ts';
import { grantScopes } from './scopes.ts';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const SIGNING_ALGS = ['RS384', 'ES384'] as const;
/** Token lifetime; the spec asks for at most five minutes. */
export const TOKEN_SECONDS = 300;
/** How far ahead an assertion may expire (five minutes), and the clock skew forgiven either way. */
const ASSERTION_MAX_SECONDS = 300;
const SKEW_SECONDS = 30;

export interface TokenForm {
  grant_type?: string;
  scope?: string;
  client_assertion_type?: string;
  client_assertion?: string;
}

export type TokenAnswer =
  | { status: 200; body: { access_token: string; token_type: 'bearer'; expires_in: number; scope: string } }
  | { status: 400 | 401; body: { error: string; error_description: string } };

/** Remote key sets, one per registered URL. */
const remoteSets = new Map<string, JWTVerifyGetKey>();

export async function issueToken(db: Db, form: TokenForm, o: { tokenUrl: string; log: Logger; now?: () => Date }): Promise<TokenAnswer> {
  const now = o.now?.() ?? new Date();
  const refuse = (status: 400 | 401, error: string, description: string, clientId?: string): TokenAnswer => {
    o.log.warn({ clientId: clientId ?? null, error, reason: description }, 'token request refused');
    return { status, body: { error, error_description: description } };
  };
  const unauthenticated = (why: string, clientId?: string) => refuse(401, 'invalid_client', why, clientId);
  if (form.grant_type !== 'client_credentials') return refuse(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
  if (form.client_assertion_type !== ASSERTION_TYPE) return refuse(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
  if (!form.client_assertion) return refuse(400, 'invalid_request', 'client_assertion is missing');
  if (!form.scope?.trim()) return refuse(400, 'invalid_scope', 'scope is missing');

  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(form.client_assertion);
    claims = decodeJwt(form.client_assertion);
  } catch {
    return unauthenticated('client_assertion is not a JWT');
  }
  const clientId = typeof claims.iss === 'string' ? claims.iss : undefined;
  if (!clientId || claims.sub !== clientId) return unauthenticated('the assertion\'s iss and sub must both be the client id');
  if (!(SIGNING_ALGS as readonly string[]).includes(header.alg ?? '')) return unauthenticated(`the assertion must be signed with ${SIGNING_ALGS.join(' or ')}`, clientId);
  if (!header.kid) return unauthenticated('the assertion\'s header has no kid', clientId);
  const client = await getClient(db, clientId);
  if (!client) return unauthenticated('the client is not registered', clientId);
  // A jku is only followed when it is the URL registered for this client.
  if (header.jku !== undefined && header.jku !== client.jwksUrl) return unauthenticated('the assertion\'s jku is not the JWKS URL registered for this client', clientId);

  const keys = client.jwks ? createLocalJWKSet(client.jwks as Parameters<typeof createLocalJWKSet>[0]) : remoteSet(client.jwksUrl!);
  let verified: Awaited<ReturnType<typeof jwtVerify>>;
  try {
    verified = await jwtVerify(form.client_assertion, keys, {
      algorithms: [header.alg!],
      audience: o.tokenUrl,
      issuer: clientId,
      subject: clientId,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: SKEW_SECONDS,
      currentDate: now,
    });
  } catch (e) {
    return unauthenticated(`the assertion does not verify: ${(e as { code?: string }).code ?? 'invalid'}`, clientId);
  }
  const exp = verified.payload.exp!;
  if (exp > now.getTime() / 1000 + ASSERTION_MAX_SECONDS + SKEW_SECONDS) return unauthenticated('the assertion expires more than five minutes ahead', clientId);
  const jti = verified.payload.jti;
  if (typeof jti !== 'string' || jti === '') return unauthenticated('the assertion has no jti', clientId);
  if (!(await useAssertion(db, clientId, jti, new Date(exp * 1000), now))) return unauthenticated('the assertion\'s jti was used before', clientId);

  const granted = grantScopes(form.scope, client.scopes.split(/\s+/));
  if (granted.length === 0) return refuse(400, 'invalid_scope', 'none of the requested scopes may be granted to this client', clientId);
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + TOKEN_SECONDS * 1000).toISOString();
  await storeAccessToken(db, token, { clientId, partner: client.partner, scopes: granted, expiresAt }, now);
  o.log.info({ clientId, partner: client.partner, scopes: granted }, 'access token issued');
  return { status: 200, body: { access_token: token, token_type: 'bearer', expires_in: TOKEN_SECONDS, scope: granted.join(' ') } };
}

function remoteSet(url: string): JWTVerifyGetKey {
  let set = remoteSets.get(url);
  // SMART: a JWKS is not cached longer than its Cache-Control allows, and jose does not read that
  // header: fetched afresh for each token request (one every few minutes per client), so a key the
  // partner withdraws stops working at once.
  if (!set) remoteSets.set(url, (set = createRemoteJWKSet(new URL(url), { timeoutDuration: 5000, cacheMaxAge: 0, cooldownDuration: 0 })));
  return set;
}

/** The grant behind a request's bearer token; a 401 without one, or with one that is not live. */
export async function authorise(db: Db, authorization: string | undefined, now = new Date()): Promise<AccessGrant> {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!m) throw new FhirError(401, 'login', 'an access token is required (Authorization: Bearer …)', { 'www-authenticate': 'Bearer realm="rostermatch"' });
  const grant = await findAccessToken(db, m[1]!, now);
  if (!grant) throw new FhirError(401, 'login', 'the access token is not valid or has expired', { 'www-authenticate': 'Bearer realm="rostermatch", error="invalid_token"' });
  return grant;
}
