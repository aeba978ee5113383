/**
 * Who is asking: an operator's session cookie (the browser) or an API token (scripts, Prometheus).
 * Every route but sign-in, health and static assets needs one. Changes (POST, PUT, DELETE) made
 * with a cookie must come from the console's own pages: SameSite=Strict keeps the cookie off
 * other sites' requests, and the Origin check refuses what a browser marks as cross-site.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { touchSession, type Db, type SessionLimits } from '../store/index.ts';
import type { OperatorDirectory } from './operators.ts';

export const SESSION_COOKIE = 'rm_session';
/** Sent by the pages' background refresh (console.js), which must not count as the operator's activity. */
export const POLL_HEADER = 'x-rostermatch-poll';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in operator, or `token:<name>` for an API token. */
    operator?: string;
  }
}

const PUBLIC = [/^\/healthz$/, /^\/login$/, /^\/assets\//];

/** Where sign-in sends an operator when `next` is missing or not a path on this site. */
export const DEFAULT_NEXT = '/runs';

/** A path on this site: one leading slash, then printable ASCII only (no whitespace, no controls). */
const SITE_PATH = /^\/(?![/\\])[\x21-\x7e]*$/;

/**
 * Only paths on this site may be sign-in's destination, so the form cannot redirect elsewhere.
 * Browsers drop tabs and newlines from a Location and read `\` as `/`, so `/\t/evil.example`
 * would be `//evil.example`: anything but printable ASCII is refused, and so is a value that
 * turns into something refused when decoded once more (a proxy or a page may decode it again).
 * Refusing non-ASCII also keeps the Location header valid (it was a 500).
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > 2048 || !SITE_PATH.test(next)) return DEFAULT_NEXT;
  let decoded: string;
  try {
    decoded = decodeURIComponent(next);
  } catch {
    return DEFAULT_NEXT; // a stray `%`: not a path the console ever sends
  }
  return SITE_PATH.test(decoded) ? next : DEFAULT_NEXT;
}

const wantsHtml = (req: FastifyRequest) => req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');

const hostOf = (url: string): string | undefined => {
  try {
    return new URL(url).host;
  } catch {
    return undefined; // includes `Origin: null` (sandboxed frames, some redirects)
  }
};

/**
 * False when a browser says the request came from another site: Sec-Fetch-Site, else Origin, else
 * Referer. A request that carries none of them (curl, scripts) is not a browser being tricked.
 */
export function fromThisSite(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (origin !== undefined) return hostOf(origin) === req.headers.host;
  const referer = req.headers.referer;
  if (referer !== undefined) return hostOf(referer) === req.headers.host;
  return true;
}

export function requireOperator(app: FastifyInstance, o: { db: Db; operators: OperatorDirectory; limits: SessionLimits; publicPrefixes?: readonly string[] }): void {
  app.decorateRequest('operator', undefined);
  // Paths with an authorisation of their own (the FHIR surface's SMART tokens).
  const own = (o.publicPrefixes ?? []).map((p) => (p.endsWith('/') ? p : `${p}/`));
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    if (PUBLIC.some((p) => p.test(path)) || own.some((p) => path.startsWith(p))) return;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      req.operator = await o.operators.byToken(auth.slice('Bearer '.length).trim());
      if (!req.operator) return reply.code(401).send({ error: 'unknown token' });
      return;
    }
    const sid = req.cookies[SESSION_COOKIE];
    if (sid) req.operator = await touchSession(o.db, sid, o.limits, { activity: !req.headers[POLL_HEADER] });
    if (!req.operator) {
      if (wantsHtml(req)) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      return reply.code(401).send({ error: 'sign in first (or send an API token as Authorization: Bearer …)' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && !fromThisSite(req)) {
      return reply.code(403).send({ error: 'changes must come from the console itself' });
    }
  });
}
