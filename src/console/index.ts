/**
 * The operators' console, served by `rostermatch serve`: runs, Groups and the review queue as
 * pages and as a JSON API, Bull Board at /admin/queues, /metrics for Prometheus and /healthz for
 * the orchestrator. Everything but /healthz and sign-in needs an operator (see auth.ts).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifyRateLimit from '@fastify/rate-limit';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { audit, createSession, DEFAULT_SESSION_LIMITS, endSession, purgeSessions, type Db } from '../store/index.ts';
import { fromThisSite, requireOperator, safeNext, SESSION_COOKIE } from './auth.ts';
import { escape, page } from './html.ts';
import type { OperatorDirectory } from './operators.ts';
import { loginPage } from './pages/login.ts';
import { consoleRoutes } from './routes.ts';
import { fhirRoutes, smartConfigurationRoute, type FhirOptions } from '../fhir/index.ts';

export { formatDuration } from './html.ts';
export { OperatorDirectory, hashPassword, newToken, operatorsFile, readOperators, sha256Hex, validOperatorName, writeOperators } from './operators.ts';

export type Check = () => Promise<boolean>;

export interface ConsoleOptions {
  host: string;
  port: number;
  db: Db;
  log: Logger;
  operators: OperatorDirectory;
  /** Where "Export now" writes a Group's export. */
  exportsDir: string;
  /** Shown in Bull Board. */
  queues: readonly Queue[];
  /** /healthz: each checked for real, 503 when any is down. */
  checks: Record<string, Check>;
  /** /healthz: facts an operator should see that do not make the service unhealthy. */
  notes?: () => Promise<Record<string, unknown>>;
  metrics?: { contentType: string; render(): Promise<string> };
  /** Mark the session cookie Secure: set when the console is reached over HTTPS (a proxy). @defaultValue false */
  secureCookies?: boolean;
  /** Sign-in attempts per client address per minute. @defaultValue 10 */
  loginAttemptsPerMinute?: number;
  /** The FHIR surface for partners' Bulk Data clients, under `path`: its own auth (SMART tokens), not the console's. */
  fhir?: Omit<FhirOptions, 'db' | 'log'> & { path: string };
}

const ASSETS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');

export async function startConsole(o: ConsoleOptions): Promise<{ server: FastifyInstance; url: string }> {
  const limits = DEFAULT_SESSION_LIMITS;
  // Closing ends every connection, a download or a page still being read included: otherwise one
  // client that stops reading keeps a shutdown (and with it serve's) waiting for ever.
  const app = Fastify({ logger: false, forceCloseConnections: true });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  await app.register(fastifyRateLimit, { global: false });

  app.get('/healthz', async (_req, reply) => {
    const results = Object.fromEntries(
      await Promise.all(
        Object.entries(o.checks).map(async ([name, check]) => {
          const ok = await Promise.race([check().catch(() => false), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
          return [name, ok ? 'ok' : 'down'] as const;
        }),
      ),
    );
    const healthy = Object.values(results).every((v) => v === 'ok');
    const notes = o.notes ? await Promise.race([o.notes().catch(() => ({})), new Promise<Record<string, unknown>>((r) => setTimeout(() => r({}), 2000))]) : {};
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', ...results, ...notes });
  });

  const assets = new Map<string, { body: string; type: string }>([
    ['console.css', { body: await fs.readFile(path.join(ASSETS, 'console.css'), 'utf8'), type: 'text/css; charset=utf-8' }],
    ['console.js', { body: await fs.readFile(path.join(ASSETS, 'console.js'), 'utf8'), type: 'text/javascript; charset=utf-8' }],
  ]);
  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const a = assets.get(req.params.name);
    if (!a) return reply.code(404).send({ error: 'not found' });
    return reply.type(a.type).header('cache-control', 'max-age=300').send(a.body);
  });

  // Pages and API answers carry patient data: never cached, never framed by another site.
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    if (!req.url.startsWith('/assets/')) {
      reply.header('cache-control', 'no-store');
      reply.header('x-frame-options', 'DENY');
    }
  });

  const cookie = (value: string, maxAgeS: number) => ({ path: '/', httpOnly: true, sameSite: 'strict' as const, secure: !!o.secureCookies, maxAge: maxAgeS, value });
  app.get<{ Querystring: { next?: string } }>('/login', async (req, reply) =>
    reply.type('text/html; charset=utf-8').send(page({ title: 'Sign in' }, loginPage({ next: safeNext(req.query.next), configured: await o.operators.configured(), operatorsFile: o.operators.file }))),
  );
  app.post<{ Body: { name?: string; password?: string; next?: string } }>(
    '/login',
    { config: { rateLimit: { max: o.loginAttemptsPerMinute ?? 10, timeWindow: 60_000 } } },
    async (req, reply) => {
      // Login CSRF: another site must not sign this browser in (as an operator of its choosing).
      if (!fromThisSite(req)) {
        o.log.warn({ ip: req.ip }, 'console sign-in posted from another site refused');
        return reply.code(403).send({ error: 'sign-in must come from the console\'s own page' });
      }
      const name = String(req.body?.name ?? '').slice(0, 64);
      const who = name && (await o.operators.login(name, String(req.body?.password ?? '')));
      if (!who) {
        await audit(o.db, { actor: name || '(blank)', action: 'login.failed', entity: 'console', detail: { ip: req.ip } });
        o.log.warn({ ip: req.ip }, 'console sign-in failed');
        const body = loginPage({ next: safeNext(req.body?.next), configured: await o.operators.configured(), operatorsFile: o.operators.file, error: 'That operator name and password do not match.' });
        return reply.code(401).type('text/html; charset=utf-8').send(page({ title: 'Sign in' }, body));
      }
      const sid = await createSession(o.db, who, limits);
      await audit(o.db, { actor: who, action: 'login', entity: 'console', detail: { ip: req.ip } });
      const c = cookie(sid, Math.floor(limits.absoluteMs / 1000));
      return reply.setCookie(SESSION_COOKIE, c.value, c).redirect(safeNext(req.body?.next), 303);
    },
  );

  if (o.fhir) {
    const { path: base, ...fhir } = o.fhir;
    // Encapsulated: its own error and not-found answers (OperationOutcomes) and body parsers.
    await app.register(fhirRoutes, { prefix: base, db: o.db, log: o.log, ...fhir });
    // Widely used clients look for the SMART configuration at the origin too.
    smartConfigurationRoute(app, fhir.base);
  }

  requireOperator(app, { db: o.db, operators: o.operators, limits, ...(o.fhir ? { publicPrefixes: [o.fhir.path, '/.well-known/'] } : {}) });

  app.post('/logout', async (req, reply) => {
    const sid = req.cookies[SESSION_COOKIE];
    if (sid) await endSession(o.db, sid);
    await audit(o.db, { actor: req.operator!, action: 'logout', entity: 'console' });
    return reply.clearCookie(SESSION_COOKIE, { path: '/' }).redirect('/login', 303);
  });

  if (o.metrics) {
    const m = o.metrics;
    app.get('/metrics', async (_req, reply) => reply.type(m.contentType).send(await m.render()));
  }

  // Bull Board's retry, clean, promote and remove change the queues: who did which is kept.
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'GET' || !req.url.startsWith('/admin/queues/api/') || !req.operator || reply.statusCode >= 400) return;
    await audit(o.db, { actor: req.operator, action: `queues.${req.method.toLowerCase()}`, entity: req.url.split('?')[0]!.slice('/admin/queues/api/'.length) }).catch(() => {});
  });

  const board = new FastifyAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({ queues: o.queues.map((q) => new BullMQAdapter(q)), serverAdapter: board, options: { uiConfig: { boardTitle: 'rostermatch queues', hideDocsLink: true, miscLinks: [{ text: 'Back to the console', url: '/runs' }] } } });
  await app.register(board.registerPlugin(), { prefix: '/admin/queues' });

  // "Export now" names the FHIR base partners reach in its manifest's request, when this service serves one.
  await app.register(consoleRoutes, { db: o.db, exportsDir: o.exportsDir, ...(o.fhir ? { fhirBase: o.fhir.base } : {}) });

  app.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
    const status = isRostermatchError(err) ? 400 : (err.statusCode ?? 500);
    if (status >= 500) o.log.error({ url: req.routeOptions.url, err: err.message }, 'console request failed');
    const message = status >= 500 ? 'internal error' : err.message;
    if (req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')) {
      return reply.code(status).type('text/html; charset=utf-8').send(`<!doctype html><title>Error</title><p>${escape(message)}</p><p><a href="/runs">Back to runs</a></p>`);
    }
    return reply.code(status).send({ error: message, ...(isRostermatchError(err) ? { code: err.code } : {}) });
  });

  const purge = setInterval(() => void purgeSessions(o.db, limits).catch(() => {}), 10 * 60_000);
  app.addHook('onClose', async () => clearInterval(purge));
  const url = await app.listen({ host: o.host, port: o.port });
  return { server: app, url };
}
