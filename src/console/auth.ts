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

/** Only paths on this site may be sign-in's destination, so the form cannot redirect elsewhere. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/runs';
}

const wantsHtml = (req: FastifyRequest) => req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');

function sameOrigin(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export function requireOperator(app: FastifyInstance, o: { db: Db; operators: OperatorDirectory; limits: SessionLimits }): void {
  app.decorateRequest('operator', undefined);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    if (PUBLIC.some((p) => p.test(path))) return;
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
    if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req)) {
      return reply.code(403).send({ error: 'changes must come from the console itself' });
    }
  });
}
