/**
 * A small, independent FHIR Bulk Data client, written from the specifications alone:
 *
 * - HL7 FHIR Bulk Data Access IG 2.0.0 (STU2), export.md and the group-export OperationDefinition
 * - SMART App Launch 2.2.0, backend-services.md, client-confidential-asymmetric.md, conformance.md
 * - RFC 6749 §5.1/§5.2 (token responses), RFC 7240 (Prefer), RFC 9110 (Retry-After)
 *
 * It shares no code with the server (JWTs: `jose`; HTTP: global `fetch`), so a misreading of the
 * spec in the server cannot be hidden by the same misreading in shared code.
 *
 * Every call returns what the server actually sent plus two lists:
 * - `problems`: the server broke a SHALL / required rule (a conformant server gives none);
 * - `warnings`: the server departed from a SHOULD / RECOMMENDED rule.
 * Nothing is thrown for a refusal the spec allows; only `discover` throws (on a non-2xx or non-JSON
 * answer), as its callers cannot go on without a configuration.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTHeaderParameters, JWTPayload } from 'jose';

// ───────────────────────────── shared bits ─────────────────────────────

export type Alg = 'RS384' | 'ES384';
export type HeaderMap = Record<string, string>;
export type FhirResource = { resourceType: string; id?: string; [key: string]: unknown };

/** Thrown by `discover` when the server does not answer 2xx with a JSON object. */
export class BulkHttpError extends Error {
  readonly status: number;
  readonly body: string;
  readonly url: string;
  constructor(message: string, status: number, body: string, url: string) {
    super(`${message}: HTTP ${status} from ${url}: ${body.slice(0, 500)}`);
    this.name = 'BulkHttpError';
    this.status = status;
    this.body = body;
    this.url = url;
  }
}

/** The media type of a Content-Type value, lower-cased, without parameters (`; charset=...`). */
export function mediaType(contentType: string | null | undefined): string | undefined {
  if (!contentType) return undefined;
  return contentType.split(';')[0]!.trim().toLowerCase();
}

/** True for an absolute http(s) URL (the spec's "absolute URL" / "absolute path to the file"). */
export function isAbsoluteUrl(value: unknown): value is string {
  if (typeof value !== 'string' || value === '') return false;
  try {
    const url = new URL(value); // no base: throws on a relative reference
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** FHIR R4 `instant` (datatypes: "The time SHALL specified at least to the second and SHALL include a time zone"). */
const FHIR_INSTANT =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
export function isFhirInstant(value: unknown): value is string {
  return typeof value === 'string' && FHIR_INSTANT.test(value);
}

const RESOURCE_TYPE = /^[A-Z][A-Za-z]+$/;

function headersOf(res: Response): HeaderMap {
  const out: HeaderMap = {};
  res.headers.forEach((value, key) => {
    out[key.toLowerCase()] = value;
  });
  return out;
}

function bearer(token: string | undefined): HeaderMap {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** Reads the body once: parsed JSON when it parses, the text otherwise, null when empty. */
async function readBody(res: Response): Promise<{ text: string; json: unknown }> {
  const text = await res.text();
  if (text.trim() === '') return { text, json: null };
  try {
    return { text, json: JSON.parse(text) as unknown };
  } catch {
    return { text, json: undefined };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isOperationOutcome(value: unknown): boolean {
  return isObject(value) && value['resourceType'] === 'OperationOutcome';
}

function trimBase(fhirBase: string): string {
  return fhirBase.replace(/\/+$/, '');
}

// ───────────────────────────── keys ─────────────────────────────

export interface PublicJwk extends JWK {
  kty: 'RSA' | 'EC';
  kid: string;
  alg: Alg;
  use?: 'sig';
  key_ops?: ['verify'];
}

export interface KeyPair {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: PublicJwk;
  jwks: { keys: PublicJwk[] };
}

export interface MakeKeyPairOptions {
  /** Put `use: "sig"` in the public JWK (default true). */
  use?: boolean;
  /**
   * Put `key_ops: ["verify"]` in the public JWK, as SMART's sample JWKS do (default false:
   * RFC 7517 §4.3 says `use` and `key_ops` SHOULD NOT be used together).
   */
  keyOps?: boolean;
}

/**
 * A key pair for `private_key_jwt`. SMART (client-confidential-asymmetric): "each JWK SHALL represent
 * an asymmetric key by including `kty` and `kid` properties, with content conveyed using 'bare key'
 * properties": `n`/`e` for RSA, `crv`/`x`/`y` for EC. The kid defaults to the key's RFC 7638
 * thumbprint, which is unique within any JWK Set.
 */
export async function makeKeyPair(alg: Alg, kid?: string, options: MakeKeyPairOptions = {}): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const bare = await exportJWK(publicKey);
  const keyId = kid ?? (await calculateJwkThumbprint(bare, 'sha256'));
  // Only the bare key material from the export (no ext / key_ops / use from WebCrypto).
  const { use: _use, key_ops: _ops, ext: _ext, ...material } = bare;
  const publicJwk: PublicJwk = { ...material, kty: bare.kty as 'RSA' | 'EC', kid: keyId, alg };
  if (options.use !== false) publicJwk.use = 'sig';
  if (options.keyOps === true) publicJwk.key_ops = ['verify'];
  return { alg, kid: keyId, privateKey, publicKey, publicJwk, jwks: { keys: [publicJwk] } };
}

// ───────────────────────────── discovery ─────────────────────────────

export interface SmartConfiguration {
  token_endpoint: string;
  grant_types_supported?: string[];
  token_endpoint_auth_methods_supported?: string[];
  token_endpoint_auth_signing_alg_values_supported?: string[];
  scopes_supported?: string[];
  capabilities?: string[];
  code_challenge_methods_supported?: string[];
  [key: string]: unknown;
}

export interface SmartConfigurationResponse {
  url: string;
  status: number;
  contentType: string | undefined;
  headers: HeaderMap;
  config: SmartConfiguration;
  problems: string[];
  warnings: string[];
}

/** GET `${fhirBase}/.well-known/smart-configuration`; throws BulkHttpError on non-2xx or non-JSON. */
export async function fetchSmartConfiguration(fhirBase: string): Promise<SmartConfigurationResponse> {
  const url = `${trimBase(fhirBase)}/.well-known/smart-configuration`;
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  const { text, json } = await readBody(res);
  if (!res.ok) throw new BulkHttpError('smart-configuration request failed', res.status, text, url);
  if (!isObject(json)) throw new BulkHttpError('smart-configuration is not a JSON object', res.status, text, url);
  const contentType = mediaType(res.headers.get('content-type'));
  const config = json as SmartConfiguration;
  const { problems, warnings } = checkSmartConfiguration(config);
  if (contentType !== 'application/json') {
    problems.unshift(`smart-configuration Content-Type is ${contentType ?? '(none)'}; conformance: "servers SHALL respond with application/json"`);
  }
  return { url, status: res.status, contentType, headers: headersOf(res), config, problems, warnings };
}

/** The parsed `.well-known/smart-configuration` of a FHIR base. */
export async function discover(fhirBase: string): Promise<SmartConfiguration> {
  return (await fetchSmartConfiguration(fhirBase)).config;
}

/** What SMART 2.2 (conformance + client-confidential-asymmetric) makes a Backend Services server advertise. */
export function checkSmartConfiguration(config: unknown): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!isObject(config)) return { problems: ['smart-configuration is not a JSON object'], warnings };
  const list = (name: string): string[] | undefined => {
    const v = config[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      problems.push(`${name} is not an array of strings`);
      return undefined;
    }
    return v as string[];
  };
  if (typeof config['token_endpoint'] !== 'string') problems.push('token_endpoint (REQUIRED) is missing');
  for (const [key, value] of Object.entries(config)) {
    if (key.endsWith('_endpoint') && typeof value === 'string' && !isAbsoluteUrl(value)) {
      problems.push(`${key} is not an absolute URL ("All endpoint URLs in the response document SHALL be absolute URLs"): ${value}`);
    }
  }
  const grants = list('grant_types_supported');
  if (grants === undefined) problems.push('grant_types_supported (REQUIRED) is missing');
  else if (!grants.includes('client_credentials')) problems.push('grant_types_supported lacks "client_credentials" (needed for SMART Backend Services)');
  const capabilities = list('capabilities');
  if (capabilities === undefined) problems.push('capabilities (REQUIRED) is missing');
  else if (!capabilities.includes('client-confidential-asymmetric')) problems.push('capabilities lacks "client-confidential-asymmetric"');
  const methods = list('token_endpoint_auth_methods_supported');
  if (methods === undefined || !methods.includes('private_key_jwt')) {
    problems.push('token_endpoint_auth_methods_supported must include "private_key_jwt" (client-confidential-asymmetric discovery requirements)');
  }
  const algs = list('token_endpoint_auth_signing_alg_values_supported');
  if (algs === undefined || !(algs.includes('RS384') || algs.includes('ES384'))) {
    problems.push('token_endpoint_auth_signing_alg_values_supported must include at least one of RS384, ES384');
  }
  if (list('scopes_supported') === undefined) warnings.push('scopes_supported (RECOMMENDED) is missing');
  const pkce = list('code_challenge_methods_supported');
  // REQUIRED in conformance.md, but PKCE is meaningless to a Backend-Services-only server: a warning.
  if (pkce === undefined) warnings.push('code_challenge_methods_supported (REQUIRED by conformance.md, though only App Launch uses it) is missing');
  else if (!pkce.includes('S256') || pkce.includes('plain')) problems.push('code_challenge_methods_supported SHALL include S256 and SHALL NOT include plain');
  return { problems, warnings };
}

// ───────────────────────────── client assertion + token ─────────────────────────────

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Default assertion lifetime: "This time SHALL be no more than five minutes in the future." */
export const DEFAULT_ASSERTION_LIFETIME_S = 240;

type ClaimName = 'iss' | 'sub' | 'aud' | 'exp' | 'jti';
type HeaderName = 'kid' | 'typ';

/** Everything a test may bend to drive a refusal. Absent fields take the spec's value. */
export interface AssertionOverrides {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  /** Absolute `exp` (seconds since the epoch); wins over `expiresInSeconds`. */
  exp?: number;
  /** `exp` = now + this many seconds (default 240); negative for an expired assertion. */
  expiresInSeconds?: number;
  jti?: string;
  /** Any further claims (e.g. `iat`, `nbf`), merged over the spec's. */
  extraClaims?: Record<string, unknown>;
  omitClaims?: ClaimName[];
  kid?: string;
  typ?: string;
  jku?: string;
  /** Header `alg` and signing algorithm (defaults to the signing key's alg). */
  alg?: string;
  extraHeader?: Record<string, unknown>;
  omitHeader?: HeaderName[];
  /** Sign with another key (e.g. one not registered) while the header keeps `key`'s kid. */
  signWith?: { privateKey: CryptoKey; alg: Alg | string };
  /** Send this exact string as client_assertion (e.g. to replay a whole earlier assertion). */
  assertion?: string;
  /** Form fields: override grant_type / client_assertion_type, add any (e.g. client_id), or drop some. */
  form?: Record<string, string>;
  omitForm?: string[];
}

export interface BuiltAssertion {
  jwt: string;
  header: JWTHeaderParameters;
  claims: JWTPayload;
}

/**
 * The authentication JWT of client-confidential-asymmetric: header { alg, kid, typ: "JWT" } (jku only
 * when asked), claims { iss = sub = client_id, aud = token URL, exp ≤ 5 min ahead, jti random }.
 * No `iat`: the spec does not list it (a server must not require it).
 */
export async function buildClientAssertion(args: {
  clientId: string;
  tokenEndpoint: string;
  key: KeyPair;
  overrides?: AssertionOverrides;
  now?: number;
}): Promise<BuiltAssertion> {
  const o = args.overrides ?? {};
  const nowS = Math.floor((args.now ?? Date.now()) / 1000);
  const claims: JWTPayload = {
    iss: o.iss ?? args.clientId,
    sub: o.sub ?? args.clientId,
    aud: o.aud ?? args.tokenEndpoint,
    exp: o.exp ?? nowS + (o.expiresInSeconds ?? DEFAULT_ASSERTION_LIFETIME_S),
    jti: o.jti ?? randomUUID(),
    ...o.extraClaims,
  };
  for (const name of o.omitClaims ?? []) delete claims[name];
  const signingKey = o.signWith?.privateKey ?? args.key.privateKey;
  const alg = o.alg ?? o.signWith?.alg ?? args.key.alg;
  const header: JWTHeaderParameters = { alg, kid: o.kid ?? args.key.kid, typ: o.typ ?? 'JWT', ...o.extraHeader };
  if (o.jku !== undefined) header.jku = o.jku;
  for (const name of o.omitHeader ?? []) delete header[name];
  const jwt = await new SignJWT(claims).setProtectedHeader(header).sign(signingKey);
  return { jwt, header, claims };
}

export interface TokenRequest {
  tokenEndpoint: string;
  clientId: string;
  key: KeyPair;
  scope: string;
  assertionOverrides?: AssertionOverrides;
}

interface TokenCommon {
  status: number;
  headers: HeaderMap;
  body: unknown;
  /** The client_assertion sent (replay it with `assertionOverrides.assertion`). */
  assertion: string;
  problems: string[];
  warnings: string[];
}
export interface TokenGranted extends TokenCommon {
  ok: true;
  accessToken: string;
  expiresIn: number;
  scope: string;
  tokenType: string;
}
export interface TokenRefused extends TokenCommon {
  ok: false;
  error: string | undefined;
  errorDescription: string | undefined;
}
export type TokenResult = TokenGranted | TokenRefused;

/** RFC 6749 §5.2 error codes. */
export const OAUTH_ERRORS = ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope'] as const;

/** POST the client_credentials token request of SMART Backend Services; never throws on a refusal. */
export async function requestToken(req: TokenRequest): Promise<TokenResult> {
  const o = req.assertionOverrides ?? {};
  const assertion = o.assertion ?? (await buildClientAssertion({ clientId: req.clientId, tokenEndpoint: req.tokenEndpoint, key: req.key, overrides: o })).jwt;
  const form: Record<string, string> = {
    grant_type: 'client_credentials',
    scope: req.scope,
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: assertion,
    ...o.form,
  };
  for (const name of o.omitForm ?? []) delete form[name];
  const res = await fetch(req.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
  });
  const { json } = await readBody(res);
  const headers = headersOf(res);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (mediaType(headers['content-type']) !== 'application/json') {
    problems.push(`token response Content-Type is ${headers['content-type'] ?? '(none)'}; RFC 6749 §5.1/§5.2 use application/json`);
  }
  const body = isObject(json) ? json : {};
  if (res.status === 200 && typeof body['access_token'] === 'string') {
    const tokenType = body['token_type'];
    const expiresIn = body['expires_in'];
    const scope = body['scope'];
    if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') problems.push(`token_type is ${JSON.stringify(tokenType)}; backend-services: "Fixed value: bearer"`);
    if (typeof expiresIn !== 'number') problems.push('expires_in (required) is missing or not a number');
    else if (expiresIn > 300) warnings.push(`expires_in is ${expiresIn}; backend-services: "the expires_in value SHOULD NOT exceed 300"`);
    if (typeof scope !== 'string') problems.push('scope (required in the access token response) is missing');
    if (!/\bno-store\b/i.test(headers['cache-control'] ?? '')) problems.push('token response lacks Cache-Control: no-store (RFC 6749 §5.1 MUST)');
    if (!/\bno-cache\b/i.test(headers['pragma'] ?? '')) warnings.push('token response lacks Pragma: no-cache (RFC 6749 §5.1; dropped by OAuth 2.1)');
    if ('refresh_token' in body) warnings.push('a refresh_token was issued; backend-services: "Refresh tokens SHOULD NOT be issued"');
    return {
      ok: true,
      status: res.status,
      headers,
      body: json,
      assertion,
      problems,
      warnings,
      accessToken: body['access_token'] as string,
      expiresIn: typeof expiresIn === 'number' ? expiresIn : NaN,
      scope: typeof scope === 'string' ? scope : '',
      tokenType: typeof tokenType === 'string' ? tokenType : '',
    };
  }
  const error = typeof body['error'] === 'string' ? body['error'] : undefined;
  const errorDescription = typeof body['error_description'] === 'string' ? body['error_description'] : undefined;
  if (res.status === 200) problems.push('HTTP 200 without an access_token');
  else if (res.status !== 400 && res.status !== 401) problems.push(`refusal with HTTP ${res.status}; RFC 6749 §5.2: 400 (or 401 for invalid_client)`);
  if (res.status === 401 && error !== 'invalid_client') problems.push(`HTTP 401 with error ${error}; only invalid_client may use 401 (RFC 6749 §5.2)`);
  if (error === undefined) problems.push('refusal without an "error" member (RFC 6749 §5.2 REQUIRED)');
  else if (!(OAUTH_ERRORS as readonly string[]).includes(error)) problems.push(`error "${error}" is not an RFC 6749 §5.2 code`);
  if (errorDescription === undefined && typeof body['error_uri'] !== 'string') warnings.push('refusal without error_description or error_uri (backend-services SHOULD)');
  return { ok: false, status: res.status, headers, body: json, assertion, problems, warnings, error, errorDescription };
}

// ───────────────────────────── kick-off ─────────────────────────────

/** One value, or several: an array is sent as repeated parameters (export.md allows repeating). */
type Many = string | string[];

export interface KickOffParams {
  _type?: Many;
  _since?: string;
  _outputFormat?: string;
  _elements?: Many;
  _typeFilter?: Many;
  includeAssociatedData?: Many;
  /** POST only: patient references, e.g. "Patient/123" (sent as valueReference). */
  patient?: string[];
}

export interface KickOffRequest {
  fhirBase: string;
  groupId: string;
  token?: string;
  method: 'GET' | 'POST';
  params?: KickOffParams;
  /** Extra headers; a `Prefer` is added to `respond-async` (RFC 7240 allows several preferences). */
  headers?: HeaderMap;
  /** Shorthand for `Prefer: handling=lenient`. */
  lenient?: boolean;
  /** Header names to leave out (e.g. "prefer", "accept") to test the server without them. */
  omitHeaders?: string[];
  /** GET: raw query pairs appended as they are (unsupported parameters, patient in a GET, ...). */
  extraQuery?: Array<[string, string]>;
  /** POST: raw Parameters.parameter entries appended as they are. */
  extraParameters?: Record<string, unknown>[];
}

export interface BuiltKickOff {
  url: string;
  method: 'GET' | 'POST';
  headers: HeaderMap;
  body?: string;
}

const many = (v: Many | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The kick-off request (pure, for unit tests): GET with a query string, or POST of a Parameters resource. */
export function buildKickOff(req: KickOffRequest): BuiltKickOff {
  const p = req.params ?? {};
  const base = `${trimBase(req.fhirBase)}/Group/${encodeURIComponent(req.groupId)}/$export`;
  const headers: HeaderMap = { accept: 'application/fhir+json', prefer: 'respond-async', ...bearer(req.token) };
  const prefer = ['respond-async'];
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (name.toLowerCase() === 'prefer') prefer.push(...value.split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'respond-async'));
    else headers[name.toLowerCase()] = value;
  }
  if (req.lenient && !prefer.includes('handling=lenient')) prefer.push('handling=lenient');
  headers['prefer'] = prefer.join(', ');
  for (const name of req.omitHeaders ?? []) delete headers[name.toLowerCase()];

  if (req.method === 'GET') {
    if (p.patient !== undefined) throw new TypeError('patient is a POST-only kick-off parameter (use extraQuery to send it in a GET on purpose)');
    const q = new URLSearchParams();
    for (const v of many(p._type)) q.append('_type', v);
    if (p._since !== undefined) q.append('_since', p._since);
    if (p._outputFormat !== undefined) q.append('_outputFormat', p._outputFormat);
    for (const v of many(p._elements)) q.append('_elements', v);
    for (const v of many(p._typeFilter)) q.append('_typeFilter', v);
    for (const v of many(p.includeAssociatedData)) q.append('includeAssociatedData', v);
    for (const [k, v] of req.extraQuery ?? []) q.append(k, v);
    const qs = q.toString();
    return { url: qs === '' ? base : `${base}?${qs}`, method: 'GET', headers };
  }

  // POST: a Parameters resource; each parameter's value[x] follows its OperationDefinition type:
  // _outputFormat, _type, _elements, _typeFilter: string; _since: instant; patient: Reference;
  // includeAssociatedData: code.
  const parameter: Record<string, unknown>[] = [];
  if (p._outputFormat !== undefined) parameter.push({ name: '_outputFormat', valueString: p._outputFormat });
  if (p._since !== undefined) parameter.push({ name: '_since', valueInstant: p._since });
  for (const v of many(p._type)) parameter.push({ name: '_type', valueString: v });
  for (const v of many(p._elements)) parameter.push({ name: '_elements', valueString: v });
  for (const ref of p.patient ?? []) parameter.push({ name: 'patient', valueReference: { reference: ref } });
  for (const v of many(p.includeAssociatedData)) parameter.push({ name: 'includeAssociatedData', valueCode: v });
  for (const v of many(p._typeFilter)) parameter.push({ name: '_typeFilter', valueString: v });
  parameter.push(...(req.extraParameters ?? []));
  // FHIR JSON has no empty arrays: no parameters means no `parameter` element.
  const resource = parameter.length === 0 ? { resourceType: 'Parameters' } : { resourceType: 'Parameters', parameter };
  headers['content-type'] = 'application/fhir+json';
  return { url: base, method: 'POST', headers, body: JSON.stringify(resource) };
}

export interface KickOffResult {
  url: string;
  method: 'GET' | 'POST';
  status: number;
  contentLocation: string | undefined;
  body: unknown;
  headers: HeaderMap;
  problems: string[];
  warnings: string[];
}

/** Group/[id]/$export kick-off. */
export async function kickOff(req: KickOffRequest): Promise<KickOffResult> {
  const built = buildKickOff(req);
  const init: RequestInit = { method: built.method, headers: built.headers };
  if (built.body !== undefined) init.body = built.body;
  const res = await fetch(built.url, init);
  const { text, json } = await readBody(res);
  const headers = headersOf(res);
  const contentLocation = headers['content-location'];
  const problems: string[] = [];
  const warnings: string[] = [];
  if (res.status === 202) {
    if (contentLocation === undefined) problems.push('202 without Content-Location ("Content-Location header with the absolute URL of an endpoint for subsequent status requests")');
    else if (!isAbsoluteUrl(contentLocation)) problems.push(`Content-Location is not an absolute URL: ${contentLocation}`);
    if (json !== null && !isOperationOutcome(json)) problems.push('202 body is neither empty nor an OperationOutcome ("Optionally, a FHIR OperationOutcome resource in the body")');
  } else if (res.status >= 400 && res.status < 600) {
    if (!isOperationOutcome(json)) problems.push(`HTTP ${res.status} body is not a FHIR OperationOutcome in JSON ("The body SHALL be a FHIR OperationOutcome resource in JSON format")`);
    if (res.status === 429 && headers['retry-after'] === undefined) warnings.push('429 without Retry-After (export.md SHOULD)');
  } else {
    problems.push(`kick-off answered HTTP ${res.status}; export.md allows 202 Accepted or 4XX/5XX`);
  }
  return { url: built.url, method: built.method, status: res.status, contentLocation, body: json === undefined ? text : json, headers, problems, warnings };
}

// ───────────────────────────── status polling ─────────────────────────────

export interface ManifestFile {
  type: string;
  url: string;
  count?: number;
  extension?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: ManifestFile[];
  error: ManifestFile[];
  deleted?: ManifestFile[];
  extension?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * Retry-After (RFC 9110 §10.2.3) in milliseconds: `delay-seconds` (a non-negative integer) or an
 * HTTP-date. undefined when absent; NaN when malformed.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at) || !/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v)) return NaN;
  return Math.max(0, at - now);
}

/** IssueType codes under `transient` (http://hl7.org/fhir/issue-type): the client should retry. */
const TRANSIENT_CODES = new Set(['transient', 'lock-error', 'no-store', 'exception', 'timeout', 'incomplete', 'throttled']);
function isTransientOutcome(body: unknown): boolean {
  if (!isOperationOutcome(body)) return false;
  const issues = (body as { issue?: unknown }).issue;
  return Array.isArray(issues) && issues.length > 0 && issues.every((i) => isObject(i) && TRANSIENT_CODES.has(String(i['code'])));
}

export interface PollOnceResult {
  status: number;
  headers: HeaderMap;
  contentType: string | undefined;
  body: unknown;
  manifest: Manifest | undefined;
  progress: string | undefined;
  retryAfter: string | undefined;
  retryAfterMs: number | undefined;
  /** A 4XX/5XX whose OperationOutcome carries only transient codes: the job goes on. */
  transient: boolean;
  problems: string[];
  warnings: string[];
}

/** One status request, with no waiting (tests that poll too fast on purpose use this). */
export async function pollOnce(args: { statusUrl: string; token?: string; accept?: string }): Promise<PollOnceResult> {
  const res = await fetch(args.statusUrl, { headers: { accept: args.accept ?? 'application/json', ...bearer(args.token) } });
  const { text, json } = await readBody(res);
  const headers = headersOf(res);
  const contentType = mediaType(headers['content-type']);
  const progress = headers['x-progress'];
  const retryAfter = headers['retry-after'];
  const retryAfterMs = parseRetryAfter(retryAfter);
  const problems: string[] = [];
  const warnings: string[] = [];
  let manifest: Manifest | undefined;
  if (retryAfter !== undefined && Number.isNaN(retryAfterMs)) problems.push(`Retry-After "${retryAfter}" is neither delay-seconds nor an HTTP-date`);
  if (res.status === 202) {
    if (progress !== undefined && progress.length >= 100) problems.push(`X-Progress is ${progress.length} characters; export.md: "less than 100 characters"`);
    if (retryAfter === undefined) warnings.push('202 in-progress without Retry-After (export.md SHOULD)');
  } else if (res.status === 429) {
    if (retryAfter === undefined) warnings.push('429 without Retry-After (export.md: "SHOULD respond with a 429 ... in addition to a Retry-After header")');
  } else if (res.status === 200) {
    if (contentType !== 'application/json') problems.push(`complete status Content-Type is ${headers['content-type'] ?? '(none)'}; export.md: "Content-Type header of application/json"`);
    if (headers['expires'] === undefined) warnings.push('complete status without Expires (export.md SHOULD)');
    const violations = checkManifest(json);
    problems.push(...violations.map((v) => `manifest: ${v}`));
    if (isObject(json)) manifest = json as Manifest;
  } else if (res.status >= 400 && res.status < 600) {
    if (isOperationOutcome(json)) {
      if (contentType !== 'application/fhir+json') problems.push(`error status carries an OperationOutcome with Content-Type ${headers['content-type'] ?? '(none)'}; export.md: application/fhir+json`);
    } else warnings.push(`HTTP ${res.status} body is not an OperationOutcome (export.md SHOULD)`);
  } else {
    problems.push(`status request answered HTTP ${res.status}; export.md allows 202, 200 or 4XX/5XX`);
  }
  const transient = res.status >= 400 && isTransientOutcome(json);
  return { status: res.status, headers, contentType, body: json === undefined ? text : json, manifest, progress, retryAfter, retryAfterMs, transient, problems, warnings };
}

export interface PollResult {
  /** The last status seen: 200 complete, 4XX/5XX failed, 202/429 when it timed out. */
  status: number;
  manifest: Manifest | undefined;
  body: unknown;
  headers: HeaderMap;
  /** Every X-Progress value seen, in order. */
  progress: string[];
  saw429: boolean;
  polls: number;
  /** The milliseconds slept between polls (each = Retry-After, or backoff when none, floored). */
  waits: number[];
  timedOut: boolean;
  problems: string[];
  warnings: string[];
}

export interface PollOptions {
  statusUrl: string;
  token?: string;
  maxWaitMs: number;
  /** Smallest sleep between two polls, e.g. for `Retry-After: 0` (default 50 ms). */
  floorMs?: number;
  /** First backoff when the server gives no Retry-After; doubles up to 10 s (default 250 ms). */
  initialBackoffMs?: number;
}

/**
 * Polls until complete or failed. Sleeps exactly the server's Retry-After (floored at `floorMs`);
 * without one, exponential backoff ("Clients SHOULD follow an exponential backoff approach").
 * Stops without polling early when the next wait would pass `maxWaitMs`.
 */
export async function poll(opts: PollOptions): Promise<PollResult> {
  const floor = opts.floorMs ?? 50;
  let backoff = opts.initialBackoffMs ?? 250;
  const deadline = Date.now() + opts.maxWaitMs;
  const progress: string[] = [];
  const waits: number[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  let saw429 = false;
  let polls = 0;
  for (;;) {
    const r = await pollOnce({ statusUrl: opts.statusUrl, ...(opts.token === undefined ? {} : { token: opts.token }) });
    polls++;
    for (const p of r.problems) if (!problems.includes(p)) problems.push(p);
    for (const w of r.warnings) if (!warnings.includes(w)) warnings.push(w);
    if (r.progress !== undefined) progress.push(r.progress);
    if (r.status === 429) saw429 = true;
    const again = r.status === 202 || r.status === 429 || r.transient;
    if (again) {
      let wait: number;
      if (r.retryAfterMs !== undefined && !Number.isNaN(r.retryAfterMs)) wait = r.retryAfterMs;
      else {
        wait = backoff;
        backoff = Math.min(backoff * 2, 10_000);
      }
      wait = Math.max(wait, floor);
      if (Date.now() + wait <= deadline) {
        waits.push(wait);
        await sleep(wait);
        continue;
      }
    }
    return { status: r.status, manifest: r.manifest, body: r.body, headers: r.headers, progress, saw429, polls, waits, timedOut: again, problems, warnings };
  }
}

// ───────────────────────────── manifest ─────────────────────────────

export interface CheckManifestOptions {
  /** Also require `count` on every file item (export.md makes it optional: "MAY optionally contain"). */
  requireCount?: boolean;
  /** The kick-off: `request` must be its URL (without the parameters when it was a POST). */
  kickOff?: { url: string; method: 'GET' | 'POST' };
}

function sameParams(a: URLSearchParams, b: URLSearchParams): boolean {
  const norm = (q: URLSearchParams) => [...q.entries()].map(([k, v]) => `${k}=${v}`).sort().join('&');
  return norm(a) === norm(b);
}

/** The SHALL/required rules export.md sets for the Complete Status body; [] when it keeps them all. */
export function checkManifest(manifest: unknown, options: CheckManifestOptions = {}): string[] {
  const v: string[] = [];
  if (!isObject(manifest)) return ['the body is not a JSON object'];
  const m = manifest;
  if (!isFhirInstant(m['transactionTime'])) v.push(`transactionTime (required) is not a FHIR instant: ${JSON.stringify(m['transactionTime'])}`);
  if (typeof m['request'] !== 'string') v.push('request (required) is missing or not a string');
  else if (!isAbsoluteUrl(m['request'])) v.push(`request is not a full URL: ${m['request']}`);
  else if (options.kickOff !== undefined) {
    const got = new URL(m['request']);
    const sent = new URL(options.kickOff.url);
    if (got.pathname !== sent.pathname) v.push(`request ${m['request']} is not the kick-off URL ${options.kickOff.url}`);
    else if (options.kickOff.method === 'POST' && got.search !== '') v.push(`request of a POST kick-off includes parameters ("this URL will not include the request parameters"): ${m['request']}`);
    else if (options.kickOff.method === 'GET' && !sameParams(got.searchParams, sent.searchParams)) v.push(`request ${m['request']} does not carry the kick-off's parameters (${sent.search})`);
  }
  if (typeof m['requiresAccessToken'] !== 'boolean') v.push('requiresAccessToken (required) is missing or not a boolean');
  const files = (name: 'output' | 'error' | 'deleted', required: boolean, onlyType?: string) => {
    const list = m[name];
    if (list === undefined) {
      if (required) v.push(`${name} (required) is missing`);
      return;
    }
    if (!Array.isArray(list)) {
      v.push(`${name} is not an array`);
      return;
    }
    list.forEach((item: unknown, i) => {
      const at = `${name}[${i}]`;
      if (!isObject(item)) {
        v.push(`${at} is not an object`);
        return;
      }
      if (typeof item['type'] !== 'string' || !RESOURCE_TYPE.test(item['type'])) v.push(`${at}.type is not a FHIR resource type: ${JSON.stringify(item['type'])}`);
      else if (onlyType !== undefined && item['type'] !== onlyType) v.push(`${at}.type is ${item['type']}; ${name} files hold only ${onlyType} resources`);
      if (!isAbsoluteUrl(item['url'])) v.push(`${at}.url is not absolute ("the absolute path to the file"): ${JSON.stringify(item['url'])}`);
      const count = item['count'];
      if (count === undefined) {
        if (options.requireCount) v.push(`${at}.count is missing`);
      } else if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) v.push(`${at}.count is not a non-negative JSON number: ${JSON.stringify(count)}`);
      if (item['extension'] !== undefined && !isObject(item['extension'])) v.push(`${at}.extension is not a JSON object`);
    });
  };
  files('output', true);
  files('error', true, 'OperationOutcome');
  files('deleted', false, 'Bundle');
  if (m['extension'] !== undefined && !isObject(m['extension'])) v.push('extension is not a JSON object ("SHALL be a pre-coordinated JSON object")');
  return v;
}

// ───────────────────────────── files ─────────────────────────────

export interface DownloadResult {
  url: string;
  status: number;
  contentType: string | undefined;
  headers: HeaderMap;
  /** Each line of the ndjson body, parsed (lines that do not parse are left out and reported). */
  lines: FhirResource[];
  text: string;
  problems: string[];
}

/** GET one output (or error, or deleted) file; the bearer token goes only when the manifest requires it. */
export async function download(args: { url: string; token?: string; requiresAccessToken: boolean; accept?: string }): Promise<DownloadResult> {
  const auth = args.requiresAccessToken ? bearer(args.token) : {};
  const res = await fetch(args.url, { headers: { accept: args.accept ?? 'application/fhir+ndjson', ...auth } });
  const text = await res.text();
  const headers = headersOf(res);
  const contentType = mediaType(headers['content-type']);
  const problems: string[] = [];
  const lines: FhirResource[] = [];
  if (res.status === 200) {
    if (contentType !== 'application/fhir+ndjson') problems.push(`Content-Type is ${headers['content-type'] ?? '(none)'}; export.md: "For files in ndjson format, SHALL be application/fhir+ndjson"`);
    const raw = text.split('\n');
    if (raw[raw.length - 1] === '') raw.pop(); // a final newline ends the last line
    raw.forEach((line, i) => {
      try {
        const value = JSON.parse(line) as unknown;
        if (isObject(value) && typeof value['resourceType'] === 'string') lines.push(value as FhirResource);
        else problems.push(`line ${i + 1} is not a FHIR resource`);
      } catch {
        problems.push(`line ${i + 1} is not JSON: ${line.slice(0, 80)}`);
      }
    });
  } else if (res.status < 400) {
    problems.push(`file request answered HTTP ${res.status}; export.md: 200 OK or 4XX/5XX`);
  }
  return { url: args.url, status: res.status, contentType, headers, lines, text, problems };
}

// ───────────────────────────── cancel ─────────────────────────────

export interface CancelResult {
  status: number;
  body: unknown;
  headers: HeaderMap;
  problems: string[];
}

/** DELETE the polling location ("Bulk Data Delete Request"). */
export async function cancel(args: { statusUrl: string; token?: string }): Promise<CancelResult> {
  const res = await fetch(args.statusUrl, { method: 'DELETE', headers: { accept: 'application/fhir+json', ...bearer(args.token) } });
  const { text, json } = await readBody(res);
  const problems: string[] = [];
  if (res.status === 202) {
    if (json !== null && !isOperationOutcome(json)) problems.push('202 body is neither empty nor an OperationOutcome');
  } else if (res.status >= 400 && res.status < 600) {
    if (!isOperationOutcome(json)) problems.push(`HTTP ${res.status} body is not an OperationOutcome ("The body SHALL be a FHIR OperationOutcome resource in JSON format")`);
  } else {
    problems.push(`delete answered HTTP ${res.status}; export.md: 202 Accepted or 4XX/5XX`);
  }
  return { status: res.status, body: json === undefined ? text : json, headers: headersOf(res), problems };
}

// ───────────────────────────── the whole flow ─────────────────────────────

export interface RunExportOptions {
  fhirBase: string;
  groupId: string;
  clientId: string;
  key: KeyPair;
  scope: string;
  method?: 'GET' | 'POST';
  params?: KickOffParams;
  headers?: HeaderMap;
  lenient?: boolean;
  maxWaitMs?: number;
  floorMs?: number;
  /** Passed to checkManifest. */
  requireCount?: boolean;
}

export interface FileResult {
  item: ManifestFile;
  download: DownloadResult;
}

export interface RunExportResult {
  /** True when every step got its success status (problems may still be listed). */
  ok: boolean;
  smart?: SmartConfigurationResponse;
  token?: TokenResult;
  kickOff?: KickOffResult;
  poll?: PollResult;
  manifest?: Manifest;
  outputs: FileResult[];
  errors: FileResult[];
  deleted: FileResult[];
  /** Every step's SHALL violations, prefixed with the step. */
  problems: string[];
  warnings: string[];
}

/** discover → token → kick-off → poll → download every output, error and deleted file. */
export async function runExport(opts: RunExportOptions): Promise<RunExportResult> {
  const out: RunExportResult = { ok: false, outputs: [], errors: [], deleted: [], problems: [], warnings: [] };
  const note = (step: string, r: { problems: string[]; warnings?: string[] }) => {
    out.problems.push(...r.problems.map((p) => `${step}: ${p}`));
    out.warnings.push(...(r.warnings ?? []).map((w) => `${step}: ${w}`));
  };

  out.smart = await fetchSmartConfiguration(opts.fhirBase);
  note('discover', out.smart);

  out.token = await requestToken({ tokenEndpoint: out.smart.config.token_endpoint, clientId: opts.clientId, key: opts.key, scope: opts.scope });
  note('token', out.token);
  if (!out.token.ok) return out;
  const token = out.token.accessToken;

  const kick: KickOffRequest = { fhirBase: opts.fhirBase, groupId: opts.groupId, token, method: opts.method ?? 'GET' };
  if (opts.params !== undefined) kick.params = opts.params;
  if (opts.headers !== undefined) kick.headers = opts.headers;
  if (opts.lenient !== undefined) kick.lenient = opts.lenient;
  out.kickOff = await kickOff(kick);
  note('kick-off', out.kickOff);
  if (out.kickOff.status !== 202 || !isAbsoluteUrl(out.kickOff.contentLocation)) return out;

  const pollOpts: PollOptions = { statusUrl: out.kickOff.contentLocation, token, maxWaitMs: opts.maxWaitMs ?? 120_000 };
  if (opts.floorMs !== undefined) pollOpts.floorMs = opts.floorMs;
  out.poll = await poll(pollOpts);
  note('poll', out.poll);
  if (out.poll.status !== 200 || out.poll.manifest === undefined) return out;
  const manifest = out.poll.manifest;
  out.manifest = manifest;
  const extra = checkManifest(manifest, { kickOff: { url: out.kickOff.url, method: out.kickOff.method }, ...(opts.requireCount ? { requireCount: true } : {}) });
  for (const p of extra) if (!out.problems.includes(`poll: manifest: ${p}`)) out.problems.push(`manifest: ${p}`);

  const fetchAll = async (items: unknown, into: FileResult[], kind: string, check: (r: FhirResource, item: ManifestFile) => string | undefined) => {
    if (!Array.isArray(items)) return;
    for (const [i, item] of (items as ManifestFile[]).entries()) {
      if (!isAbsoluteUrl(item.url)) continue;
      const d = await download({ url: item.url, token, requiresAccessToken: manifest.requiresAccessToken !== false });
      into.push({ item, download: d });
      const step = `${kind}[${i}]`;
      note(step, d);
      if (d.status !== 200) {
        out.problems.push(`${step}: HTTP ${d.status} for ${item.url} ("The files SHALL be accessible to the client at the URLs advertised")`);
        continue;
      }
      if (typeof item.count === 'number' && item.count !== d.lines.length) out.problems.push(`${step}: count is ${item.count} but the file holds ${d.lines.length} resources`);
      const seen = new Set<string>();
      for (const r of d.lines) {
        const p = check(r, item);
        if (p !== undefined && !seen.has(p)) {
          seen.add(p);
          out.problems.push(`${step}: ${p}`);
        }
      }
    }
  };
  await fetchAll(manifest.output, out.outputs, 'output', (r, item) =>
    r.resourceType === item.type ? undefined : `holds a ${r.resourceType} in a ${item.type} file ("Each file SHALL contain resources of only one type")`,
  );
  await fetchAll(manifest.error, out.errors, 'error', (r) => (r.resourceType === 'OperationOutcome' ? undefined : `holds a ${r.resourceType}; error files hold OperationOutcome resources`));
  await fetchAll(manifest.deleted, out.deleted, 'deleted', (r) => {
    if (r.resourceType !== 'Bundle' || r['type'] !== 'transaction') return 'a line is not a transaction Bundle ("Each line ... SHALL contain a FHIR Bundle with a type of transaction")';
    const entries = r['entry'];
    if (!Array.isArray(entries) || entries.length === 0) return 'a deleted Bundle has no entry ("SHALL contain one or more entry items")';
    const bad = entries.some((e: unknown) => {
      const request = isObject(e) ? e['request'] : undefined;
      return !isObject(request) || request['method'] !== 'DELETE' || typeof request['url'] !== 'string';
    });
    return bad ? 'a deleted entry lacks request.method DELETE or request.url' : undefined;
  });

  out.ok = out.outputs.every((f) => f.download.status === 200) && out.errors.every((f) => f.download.status === 200) && out.deleted.every((f) => f.download.status === 200);
  return out;
}
