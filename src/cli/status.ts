/**
 * `rostermatch status`: what the queues hold and who works them (Redis), and the last runs (the
 * database). Each half is reported even when the other cannot be read: Redis down still shows
 * the runs; the embedded store held by `serve` still shows the queues.
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { isRostermatchError } from '../errors/index.ts';
import { OUTCOMES, type Outcome } from '../model/index.ts';
import { deploymentsOn, JOB_STATES, queuePrefix, queueStatus, type Deployment, type QueueStatus } from '../queue/index.ts';
import { chunksDone, listRuns, openEmbedded, openPostgres, type Db, type RunHold, type RunRecord, type RunState } from '../store/index.ts';
import { formatDuration } from '../console/html.ts';

export interface StatusOptions {
  redisUrl: string;
  /** @defaultValue queuePrefix(): $ROSTERMATCH_QUEUE_PREFIX, else the one serve derives from the store */
  prefix?: string;
  /** A PostgreSQL server; else the embedded store in `embeddedDir`. */
  databaseUrl?: string | undefined;
  embeddedDir: string;
  /** Runs to list. @defaultValue 10 */
  limit?: number;
  partner?: string | undefined;
  /** How long to wait for Redis to answer before saying it is unreachable. @defaultValue 2000 */
  redisTimeoutMs?: number;
  now?: () => Date;
}

export interface RunStatus {
  id: string;
  partner: string;
  fileName: string;
  state: RunState;
  receivedAt: string;
  finishedAt: string | null;
  /** Rows per outcome, once the run is through. */
  counts: Partial<Record<Outcome, number>> | null;
  rowCount: number | null;
  /** Queued runs while matching: chunks matched so far of `chunkCount`. */
  chunksDone: number | null;
  chunkCount: number | null;
  /** Received to finished, or to now for a run still in progress. */
  durationMs: number;
  error: { code: string; message: string } | null;
  /** A held run: the Group change waiting for an operator (rostermatch run confirm|discard). */
  hold: RunHold | null;
}

export type StatusReport = {
  at: string;
  /**
   * `prefix` is this store's queue prefix; null when it is derived from a PostgreSQL store that
   * could not be read. `deployments` are all the deployments with workers on this Redis.
   */
  redis: { url: string; prefix: string | null } & ({ ok: true; queues: QueueStatus[] | null; deployments: Deployment[] } | { ok: false; error: string });
  store: { kind: 'pglite' | 'postgres'; where: string } & ({ ok: true; storeId: string | null; runs: RunStatus[] } | { ok: false; error: { code: string; message: string } });
};

export async function gatherStatus(o: StatusOptions): Promise<StatusReport> {
  const now = o.now ?? (() => new Date());
  const explicit = o.prefix ?? process.env.ROSTERMATCH_QUEUE_PREFIX;
  if (explicit || !o.databaseUrl) {
    // Known without the store, which serve may hold: read both halves at once.
    const prefix = explicit ?? queuePrefix({ kind: 'pglite', embeddedDir: o.embeddedDir });
    const [redis, store] = await Promise.all([redisPart(o, prefix), storePart(o, now)]);
    return { at: now().toISOString(), redis, store };
  }
  // A PostgreSQL store's prefix comes from its identity.
  const store = await storePart(o, now);
  const redis = await redisPart(o, store.ok && store.storeId ? queuePrefix({ kind: 'postgres', storeId: store.storeId }) : null);
  return { at: now().toISOString(), redis, store };
}

async function redisPart(o: StatusOptions, prefix: string | null): Promise<StatusReport['redis']> {
  const where = { url: redactUrl(o.redisUrl), prefix };
  const timeout = o.redisTimeoutMs ?? 2000;
  // Fail fast: no reconnecting, no offline queue, a short connect and command timeout.
  const redis = new Redis(o.redisUrl, { lazyConnect: true, connectTimeout: timeout, commandTimeout: timeout * 2, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  // connect() rejects with "Connection is closed."; the cause (ECONNREFUSED, a timeout) comes as an event.
  let cause: Error | undefined;
  redis.on('error', (e: Error) => (cause ??= e));
  try {
    await redis.connect();
    const [queues, deployments] = await Promise.all([prefix === null ? null : queueStatus(redis, prefix), deploymentsOn(redis)]);
    return { ...where, ok: true, queues, deployments };
  } catch (e) {
    return { ...where, ok: false, error: (cause ?? (e as Error)).message || String(e) };
  } finally {
    redis.disconnect();
  }
}

async function storePart(o: StatusOptions, now: () => Date): Promise<StatusReport['store']> {
  const where = o.databaseUrl ? { kind: 'postgres' as const, where: redactUrl(o.databaseUrl) } : { kind: 'pglite' as const, where: o.embeddedDir };
  // status does not create an embedded store that is not there.
  if (!o.databaseUrl && !existsSync(o.embeddedDir)) return { ...where, ok: true, storeId: null, runs: [] };
  let db: Db | undefined;
  try {
    db = o.databaseUrl ? await openPostgres(o.databaseUrl, { max: 2, connectTimeoutMs: 5000 }) : await openEmbedded(o.embeddedDir);
    const runs = await listRuns(db, { limit: o.limit ?? 10, ...(o.partner ? { partner: o.partner } : {}) });
    const done = await chunksDone(
      db,
      runs.filter((r) => r.state === 'matching').map((r) => r.id),
    );
    return { ...where, ok: true, storeId: db.storeId, runs: runs.map((r) => runStatus(r, done.get(r.id), now())) };
  } catch (e) {
    return { ...where, ok: false, error: isRostermatchError(e) ? { code: e.code, message: e.message } : { code: 'UNAVAILABLE', message: (e as Error).message || String(e) } };
  } finally {
    await db?.close();
  }
}

function runStatus(r: RunRecord, done: number | undefined, now: Date): RunStatus {
  const end = r.finishedAt ? Date.parse(r.finishedAt) : now.getTime();
  return {
    id: r.id,
    partner: r.partner,
    fileName: r.fileName,
    state: r.state,
    receivedAt: r.receivedAt,
    finishedAt: r.finishedAt,
    counts: r.counts,
    rowCount: r.rowCount,
    chunksDone: r.state === 'matching' ? (done ?? 0) : null,
    chunkCount: r.chunkCount,
    durationMs: Math.max(0, end - Date.parse(r.receivedAt)),
    error: r.error,
    hold: r.state === 'held' ? r.hold : null,
  };
}

/** A URL as safe to print: the password replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '(unparseable URL)';
  }
}

/** Whether the report shows something wrong (exit 1): a store that is only busy with serve is not. */
export function statusFailed(r: StatusReport): boolean {
  return !r.redis.ok || (!r.store.ok && r.store.error.code !== 'STORE_BUSY');
}

export function printStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push(`queues (${r.redis.url}, prefix ${r.redis.prefix ?? 'unknown'})`);
  if (!r.redis.ok) {
    out.push(`  Redis unreachable: ${r.redis.error}`);
  } else if (r.redis.queues === null) {
    out.push('  unknown: the prefix comes from the store, which could not be read (or set ROSTERMATCH_QUEUE_PREFIX)');
  } else {
    out.push(
      ...table(
        [['queue', ...JOB_STATES], ...r.redis.queues.map((q) => [q.paused ? `${q.role} (paused)` : q.role, ...JOB_STATES.map((s) => String(q.counts[s]))])],
        (i) => i > 0,
      ),
    );
    out.push('', 'workers');
    const workers = r.redis.queues.flatMap((q) => q.workers.map((w) => [q.role, w.name ?? '(unnamed)', w.addr, `connected ${formatDuration(w.ageSeconds * 1000)}`]));
    out.push(...(workers.length > 0 ? table(workers, () => false) : ['  none connected']));
  }
  if (r.redis.ok) out.push('', ...printDeployments(r.redis.deployments, r.redis.prefix, r.store.ok ? r.store.storeId : null));
  out.push('');
  if (!r.store.ok) {
    out.push(`runs unavailable: ${r.store.error.message}`);
  } else {
    out.push(`last runs (${r.store.kind === 'pglite' ? `embedded store ${r.store.where}` : r.store.where})`);
    if (r.store.runs.length === 0) out.push('  no runs');
    else {
      const head = ['run', 'partner', 'file', 'state', 'received', ...OUTCOMES, 'progress', 'duration', 'error'];
      const rows = r.store.runs.map((x) => [
        x.id.slice(0, 8),
        x.partner,
        x.fileName,
        x.state,
        x.receivedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        ...OUTCOMES.map((o) => (x.counts ? String(x.counts[o] ?? 0) : '')),
        progress(x),
        `${formatDuration(x.durationMs)}${x.finishedAt ? '' : '…'}`,
        x.error?.code ?? '',
      ]);
      const numeric = new Set([5, 6, 7, 8, 9, 11]);
      out.push(...table([head, ...rows], (i) => numeric.has(i)));
      for (const x of r.store.runs.filter((x) => x.hold)) out.push(`  held ${x.id}: Group change waiting — rostermatch run confirm ${x.id.slice(0, 8)} --by NAME, or run discard ${x.id.slice(0, 8)} --by NAME --reason TEXT`);
    }
  }
  return out.join('\n');
}

/**
 * Every deployment with workers on this Redis, this one marked; another deployment's workers on
 * this prefix are called out, since they hand this deployment's jobs back and delay its runs.
 */
function printDeployments(all: Deployment[], prefix: string | null, store: string | null): string[] {
  const out = ['deployments on this Redis'];
  if (all.length === 0) return [...out, '  none with workers connected'];
  const rows = all.map((d) => {
    const here = d.prefix === prefix && (store === null || d.store === store);
    const clash = d.prefix === prefix && store !== null && d.store !== store;
    const names = d.workers.map((w) => `${w.name ?? w.addr} (${w.queues.join(', ')})`).join('; ');
    return [here ? '*' : clash ? '!' : ' ', d.prefix, d.store ? d.store.slice(0, 12) : '(store not named)', names];
  });
  out.push(...table([[' ', 'prefix', 'store', 'workers'], ...rows], () => false));
  if (rows.some((r) => r[0] === '!')) out.push('  ! another deployment on this prefix: its workers hand this one\'s jobs back; give each its own ROSTERMATCH_QUEUE_PREFIX');
  return out;
}

function progress(x: RunStatus): string {
  if (x.hold) return `held: ${x.hold.before} members, +${x.hold.wouldAdd} −${x.hold.wouldRemove} (${(100 * x.hold.share).toFixed(1)} %)`;
  if (x.chunksDone === null || !x.chunkCount) return '';
  return `${x.chunksDone}/${x.chunkCount} chunks (${Math.floor((100 * x.chunksDone) / x.chunkCount)}%)`;
}

/** Columns padded to their widest cell, indented two spaces; `right(i)` right-aligns column i. */
function table(rows: string[][], right: (i: number) => boolean): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((row) => `  ${row.map((c, i) => (right(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')}`.trimEnd());
}
