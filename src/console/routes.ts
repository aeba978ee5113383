/**
 * The console's pages and JSON API. Handlers read through the store's read models and render;
 * every answer that shows a person's data (row reasons, candidates' demographics, Group
 * membership) is written to the audit log with who asked and what they saw, by id.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isRostermatchError } from '../errors/index.ts';
import { exportGroup } from '../export/index.ts';
import { confirmHeldRun, discardHeldRun, heldAgainMessage } from '../run/index.ts';
import { OUTCOMES } from '../model/index.ts';
import { outputNames } from '../results/index.ts';
import {
  acceptReviewItem,
  audit,
  chunksDone,
  chunkWorkers,
  countReviewItems,
  findRun,
  getGroup,
  getRun,
  groupHistoryPage,
  knownPartners,
  latestExport,
  listAuditEvents,
  listClients,
  listGroups,
  listReviewItems,
  listRuns,
  patientsByIds,
  rejectReviewItem,
  rowsAt,
  runRowsPage,
  type Db,
  type RunRecord,
  type RunState,
} from '../store/index.ts';
import { page, type Html, type PageMeta } from './html.ts';
import { auditPage } from './pages/audit.ts';
import { feedAuditBundle } from '../fhir/audit-event.ts';
import { clientsPage, clientView } from './pages/clients.ts';
import { EVENTS_PER_PAGE, groupPage, groupsPage } from './pages/groups.ts';
import { ITEMS_PER_PAGE, reviewPage, type ReviewView } from './pages/review.ts';
import { isFinished, ROWS_PER_PAGE, RUN_STATES, runHead, runPage, runRows, runsPage, type RunView } from './pages/runs.ts';

const FLASH_COOKIE = 'rm_flash';

const RunsQuery = z.object({
  partner: z.string().max(100).optional().transform((v) => v || undefined),
  state: z.enum(RUN_STATES as [RunState, ...RunState[]]).or(z.literal('')).optional().transform((v) => v || undefined),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** Runs received before this instant: the next page of older runs. */
  before: z.iso.datetime().optional(),
});
const RowsQuery = z.object({
  outcome: z.enum(OUTCOMES as ['matched']).or(z.literal('')).optional().transform((v) => v || undefined),
  page: z.coerce.number().int().min(1).default(1),
});
const ReviewQuery = z.object({
  partner: z.string().max(100).optional().transform((v) => v || undefined),
  outcome: z.enum(['possible', 'ambiguous']).or(z.literal('')).optional().transform((v) => v || undefined),
  state: z.enum(['open', 'accepted', 'rejected', 'superseded']).default('open'),
  page: z.coerce.number().int().min(1).default(1),
});
const HoldAnswer = z.object({ reason: z.string().max(500).optional() });
const Decision = z.object({ patientId: z.string().min(1).max(200).optional(), returnTo: z.string().optional() });

/** Parses a query or body, answering 400 with the field at fault. */
function parse<T>(schema: z.ZodType<T>, value: unknown, reply: FastifyReply): T | undefined {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  void reply.code(400).send({ error: `${issue.path.join('.') || 'request'}: ${issue.message}` });
  return undefined;
}

async function withProgress(db: Db, runs: readonly RunRecord[]): Promise<RunView[]> {
  const done = await chunksDone(db, runs.filter((r) => r.state === 'matching').map((r) => r.id));
  return runs.map((r) => ({ ...r, chunksDone: done.get(r.id) ?? 0 }));
}

function outputFiles(r: RunRecord): { results?: string; summary?: string } {
  if (!r.resultPath) return {};
  const exists = (f: string) => (fs.existsSync(f) ? f : undefined);
  const results = exists(r.resultPath);
  const summary = exists(path.join(path.dirname(r.resultPath), outputNames(r.fileName).summary));
  return { ...(results ? { results } : {}), ...(summary ? { summary } : {}) };
}

export async function consoleRoutes(app: FastifyInstance, o: { db: Db; exportsDir: string; /** The FHIR API's base, for the export manifest's request. */ fhirBase?: () => string }): Promise<void> {
  const { db } = o;
  const send = (req: FastifyRequest, reply: FastifyReply, meta: Omit<PageMeta, 'operator'>, body: Html) => {
    const flash = req.cookies[FLASH_COOKIE];
    if (flash) void reply.clearCookie(FLASH_COOKIE, { path: '/' });
    return reply.type('text/html; charset=utf-8').send(page({ ...meta, operator: req.operator!, ...(flash ? { flash } : {}) }, body));
  };
  const seen = (req: FastifyRequest, entity: string, detail?: Record<string, unknown>) =>
    audit(db, { actor: req.operator!, action: 'view', entity, ...(detail ? { detail } : {}) });
  const redirectWithFlash = (reply: FastifyReply, to: string, message: string) =>
    reply.setCookie(FLASH_COOKIE, message, { path: '/', httpOnly: true, sameSite: 'strict', maxAge: 60 }).redirect(to, 303);

  app.get('/', async (_req, reply) => reply.redirect('/runs', 303));

  // ── Runs ────────────────────────────────────────────────────────────────────────────────────
  app.get('/runs', async (req, reply) => {
    const q = parse(RunsQuery, req.query, reply);
    if (!q) return;
    const runs = await withProgress(db, await listRuns(db, q));
    return send(req, reply, { title: 'Runs', nav: 'runs' }, runsPage(runs, q, await knownPartners(db), runs.length === q.limit ? runs[runs.length - 1]!.receivedAt : undefined));
  });
  app.get('/runs/rows', async (req, reply) => {
    const q = parse(RunsQuery, req.query, reply);
    if (!q) return;
    return reply.type('text/html; charset=utf-8').send(runRows(await withProgress(db, await listRuns(db, q))).value);
  });
  app.get('/api/runs', async (req, reply) => {
    const q = parse(RunsQuery, req.query, reply);
    if (!q) return;
    return { runs: (await withProgress(db, await listRuns(db, q))).map(({ pipeline: _p, sourcePath: _s, ...r }) => r) };
  });

  const loadRun = async (id: string, reply: FastifyReply): Promise<RunView | undefined> => {
    const run = await getRun(db, id);
    if (!run) {
      void reply.code(404).send({ error: `no run ${id}` });
      return undefined;
    }
    return (await withProgress(db, [run]))[0]!;
  };
  const byWorker = async (id: string) => {
    const m = new Map<string, number>();
    for (const w of await chunkWorkers(db, id)) m.set(w.worker, (m.get(w.worker) ?? 0) + 1);
    return m;
  };

  app.get<{ Params: { id: string } }>('/runs/:id', async (req, reply) => {
    const q = parse(RowsQuery, req.query, reply);
    const run = q && (await loadRun(req.params.id, reply));
    if (!q || !run) return;
    const rows = await runRowsPage(db, run.id, { ...(q.outcome ? { outcome: q.outcome } : {}), offset: (q.page - 1) * ROWS_PER_PAGE, limit: ROWS_PER_PAGE });
    await seen(req, `run/${run.id}`, { outcome: q.outcome ?? 'all', page: q.page, rows: rows.length });
    const files = outputFiles(run);
    return send(req, reply, { title: run.fileName, nav: 'runs' }, runPage(run, rows, q, { results: !!files.results, summary: !!files.summary }, await byWorker(run.id)));
  });
  app.get<{ Params: { id: string } }>('/runs/:id/head', async (req, reply) => {
    const run = await loadRun(req.params.id, reply);
    if (!run) return;
    const files = outputFiles(run);
    return reply
      .header('x-run-state', run.state)
      .header('x-run-finished', isFinished(run.state) ? '1' : '0')
      .type('text/html; charset=utf-8')
      .send(runHead(run, { results: !!files.results, summary: !!files.summary }, await byWorker(run.id)).value);
  });
  app.get<{ Params: { id: string } }>('/api/runs/:id', async (req, reply) => {
    const run = await loadRun(req.params.id, reply);
    if (!run) return;
    const { pipeline: _p, sourcePath: _s, ...rest } = run;
    return { run: rest, chunks: await chunkWorkers(db, run.id) };
  });
  app.get<{ Params: { id: string } }>('/api/runs/:id/rows', async (req, reply) => {
    const q = parse(RowsQuery.extend({ limit: z.coerce.number().int().min(1).max(1000).default(ROWS_PER_PAGE) }), req.query, reply);
    const run = q && (await loadRun(req.params.id, reply));
    if (!q || !run) return;
    const rows = await runRowsPage(db, run.id, { ...(q.outcome ? { outcome: q.outcome } : {}), offset: (q.page - 1) * q.limit, limit: q.limit });
    await seen(req, `run/${run.id}/rows`, { outcome: q.outcome ?? 'all', page: q.page, rows: rows.length });
    return { rows };
  });
  for (const kind of ['results', 'summary'] as const) {
    const ext = kind === 'results' ? 'csv' : 'json';
    app.get<{ Params: { id: string } }>(`/runs/:id/${kind}.${ext}`, async (req, reply) => {
      const run = await loadRun(req.params.id, reply);
      if (!run) return;
      const file = outputFiles(run)[kind];
      if (!file) return reply.code(404).send({ error: `run ${run.id} has no ${kind} file` });
      await audit(db, { actor: req.operator!, action: 'download', entity: `run/${run.id}/${kind}` });
      const name = path.basename(file).replace(/["\\\r\n]/g, '_');
      return reply
        .type(kind === 'results' ? 'text/csv; charset=utf-8' : 'application/json')
        .header('content-disposition', `${kind === 'results' ? 'attachment' : 'inline'}; filename="${name}"`)
        .send(fs.createReadStream(file));
    });
  }

  /**
   * An operator's answer to a held run, as the signed-in operator (audited by the store). The form
   * gets a redirect to the run with a message; the API the run, or 409 with why not.
   */
  const answerHold = (kind: 'confirm' | 'discard', asApi: boolean) => async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const body = parse(HoldAnswer, req.body, reply);
    if (!body) return;
    const id = req.params.id;
    if (kind === 'discard' && !body.reason?.trim()) {
      if (asApi) return reply.code(400).send({ error: 'reason: required to discard' });
      return redirectWithFlash(reply, `/runs/${encodeURIComponent(id)}`, 'Say why the run is discarded.');
    }
    let message: string;
    let failed = false;
    try {
      if (kind === 'confirm') {
        const r = await confirmHeldRun(db, { runId: id, by: req.operator!, exportsDir: o.exportsDir });
        if (r.kind === 'held-again') {
          failed = true;
          message = heldAgainMessage(r).message;
        } else {
          message = `Confirmed: Group ${r.run.groupId} ${r.change.before} → ${r.change.after} members (+${r.change.added} −${r.change.removed})`;
        }
      } else {
        const run = await discardHeldRun(db, { runId: id, by: req.operator!, reason: body.reason! });
        message = `Discarded: Group ${run.groupId} unchanged`;
      }
    } catch (e) {
      if (!isRostermatchError(e)) throw e;
      failed = true;
      message = e.message;
    }
    if (asApi) {
      if (failed) return reply.code(409).send({ error: message });
      const { pipeline: _p, sourcePath: _s, ...run } = (await findRun(db, id))!;
      return { run, message };
    }
    return redirectWithFlash(reply, `/runs/${encodeURIComponent(id)}`, message);
  };
  app.post('/runs/:id/confirm', answerHold('confirm', false));
  app.post('/runs/:id/discard', answerHold('discard', false));
  app.post('/api/runs/:id/confirm', answerHold('confirm', true));
  app.post('/api/runs/:id/discard', answerHold('discard', true));

  // ── Groups ──────────────────────────────────────────────────────────────────────────────────
  app.get('/groups', async (req, reply) => send(req, reply, { title: 'Groups', nav: 'groups' }, groupsPage(await listGroups(db))));
  const loadGroup = async (id: string, reply: FastifyReply) => {
    const g = await getGroup(db, id);
    if (!g) {
      void reply.code(404).send({ error: `no Group ${id}` });
      return undefined;
    }
    return g;
  };
  /** A Group with a page of its history; showing it is audited. */
  const groupView = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const q = parse(z.object({ page: z.coerce.number().int().min(1).default(1) }), req.query, reply);
    const g = q && (await loadGroup(req.params.id, reply));
    if (!q || !g) return undefined;
    const history = await groupHistoryPage(db, g, { offset: (q.page - 1) * EVENTS_PER_PAGE, limit: EVENTS_PER_PAGE });
    await seen(req, `group/${g.id}`, { page: q.page, events: history.events.length });
    return { g, history, page: q.page, latest: await latestExport(db, g.id) };
  };
  app.get<{ Params: { id: string } }>('/groups/:id', async (req, reply) => {
    const v = await groupView(req, reply);
    if (v) return send(req, reply, { title: v.g.name, nav: 'groups' }, groupPage(v.g, v.history, v.page, v.latest));
  });
  app.post<{ Params: { id: string } }>('/groups/:id/export', async (req, reply) => {
    const g = await loadGroup(req.params.id, reply);
    if (!g) return;
    const out = await exportGroup(db, { groupId: g.id, outRoot: o.exportsDir, ...(o.fhirBase ? { fhirBase: o.fhirBase() } : {}) });
    await audit(db, { actor: req.operator!, action: 'export', entity: `group/${g.id}`, detail: { dir: out.dir, counts: Object.fromEntries(out.manifest.output.map((x) => [x.type, x.count])) } });
    // Types with nothing to export are not in the manifest's output.
    const counts = out.manifest.output.map((x) => `${x.count} ${x.type}`).join(', ');
    return redirectWithFlash(reply, `/groups/${g.id}`, counts ? `Exported ${counts}` : 'Exported: the Group has nothing to export');
  });
  app.get('/api/groups', async () => ({ groups: await listGroups(db) }));
  app.get<{ Params: { id: string } }>('/api/groups/:id', async (req, reply) => {
    const v = await groupView(req, reply);
    if (v) return { group: v.g, history: v.history, latestExport: v.latest ?? null };
  });

  // ── Review ──────────────────────────────────────────────────────────────────────────────────
  const reviewViews = async (q: z.infer<typeof ReviewQuery>, limit: number, offset: number): Promise<{ views: ReviewView[]; total: number }> => {
    const filter = { state: q.state, ...(q.partner ? { partner: q.partner } : {}), ...(q.outcome ? { outcome: q.outcome } : {}) };
    const items = await listReviewItems(db, { ...filter, limit, offset });
    const rows = await rowsAt(db, items);
    // The records merged into a candidate that the row was compared with, besides the candidates.
    const via = [...rows.values()].flatMap((r) => r.candidates.flatMap((c) => (c.via === undefined ? [] : [c.via])));
    const patients = await patientsByIds(db, [...items.flatMap((i) => i.candidates), ...via]);
    return { views: items.map((item) => ({ item, row: rows.get(`${item.runId}:${item.rowIndex}`), patients })), total: await countReviewItems(db, filter) };
  };
  app.get('/review', async (req, reply) => {
    const q = parse(ReviewQuery, req.query, reply);
    if (!q) return;
    const { views, total } = await reviewViews(q, ITEMS_PER_PAGE, (q.page - 1) * ITEMS_PER_PAGE);
    await seen(req, 'review', { state: q.state, partner: q.partner ?? 'all', items: views.map((v) => v.item.id) });
    return send(req, reply, { title: 'Review', nav: 'review' }, reviewPage(views, q, total, await knownPartners(db)));
  });
  app.get('/api/review', async (req, reply) => {
    const q = parse(ReviewQuery.extend({ limit: z.coerce.number().int().min(1).max(500).default(ITEMS_PER_PAGE) }), req.query, reply);
    if (!q) return;
    const { views, total } = await reviewViews(q, q.limit, (q.page - 1) * q.limit);
    await seen(req, 'review', { state: q.state, partner: q.partner ?? 'all', items: views.map((v) => v.item.id) });
    return { total, items: views.map((v) => ({ ...v.item, row: v.row ?? null, patients: Object.fromEntries([...v.patients].filter(([id]) => v.item.candidates.includes(id) || v.row?.candidates.some((c) => c.via === id))) })) };
  });

  /** One decision; the HTML form gets a redirect with a message, the API the item as JSON. */
  const decide = (kind: 'accept' | 'reject', asApi: boolean) => async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const body = parse(Decision, req.body, reply);
    if (!body) return;
    const id = Number(req.params.id);
    if (!Number.isInteger(id) || id <= 0) return reply.code(400).send({ error: 'id: expected a review item number' });
    if (kind === 'accept' && !body.patientId) return reply.code(400).send({ error: 'patientId: required to accept' });
    const r = await db.transaction((tx) => (kind === 'accept' ? acceptReviewItem(tx, id, body.patientId!, req.operator!) : rejectReviewItem(tx, id, req.operator!)));
    if (asApi) return r.ok ? { item: r.item } : reply.code(409).send({ error: r.reason, ...(r.error ? { code: r.error.code } : {}) });
    const back = body.returnTo?.startsWith('/review') ? body.returnTo : '/review';
    if (!r.ok) return redirectWithFlash(reply, back, r.reason);
    const msg =
      kind === 'accept'
        ? `#${id}: accepted Patient/${body.patientId}${r.item.groupId ? `; joined Group ${r.item.groupId}` : ''}`
        : `#${id}: none of the candidates; they will not be offered for record ${r.item.recordId} again`;
    return redirectWithFlash(reply, back, msg);
  };
  app.post('/review/:id/accept', decide('accept', false));
  app.post('/review/:id/reject', decide('reject', false));
  app.post('/api/review/:id/accept', decide('accept', true));
  app.post('/api/review/:id/reject', decide('reject', true));

  // ── SMART clients (registered with `rostermatch client add`; no key material beyond kid and alg) ──
  const ClientsQuery = z.object({ partner: z.string().max(100).optional().transform((v) => v || undefined) });
  const clients = async (q: z.infer<typeof ClientsQuery>) => (await listClients(db, q.partner ? { partner: q.partner } : {})).map(clientView);
  app.get('/clients', async (req, reply) => {
    const q = parse(ClientsQuery, req.query, reply);
    if (q) return send(req, reply, { title: 'SMART clients', nav: 'clients' }, clientsPage(await clients(q)));
  });
  app.get('/api/clients', async (req, reply) => {
    const q = parse(ClientsQuery, req.query, reply);
    if (q) return { clients: await clients(q) };
  });

  // ── Audit ───────────────────────────────────────────────────────────────────────────────────
  const AuditQuery = z.object({ actor: z.string().max(100).optional().transform((v) => v || undefined), feed: z.string().max(5).optional().transform((v) => v === '1' || v === 'true') });
  app.get('/audit', async (req, reply) => {
    const q = parse(AuditQuery, req.query, reply);
    if (!q) return;
    const events = await listAuditEvents(db, { ...(q.actor ? { actor: q.actor } : {}), ...(q.feed ? { actionPrefix: 'feed.' } : {}), limit: 200 });
    return send(req, reply, { title: q.feed ? 'Identity feed' : 'Audit', nav: 'audit' }, auditPage(events, q));
  });
  /** The identity feed's transactions as FHIR AuditEvents (IHE PIXm manager audit), newest first; viewing them is audited. */
  app.get('/audit/feed.json', async (req, reply) => {
    const q = parse(AuditQuery, req.query, reply);
    if (!q) return;
    const events = await listAuditEvents(db, { ...(q.actor ? { actor: q.actor } : {}), actionPrefix: 'feed.', limit: 1000 });
    await seen(req, 'audit/feed', { count: events.length });
    return reply.type('application/fhir+json; charset=utf-8').send(feedAuditBundle(events, { base: o.fhirBase?.() ?? '' }));
  });
}
