/**
 * `rostermatch serve`: the production daemon. It watches every partner's inbound folder, claims
 * complete files into runs, runs the queues' workers, re-derives lost queue state from the
 * database, and answers /healthz. `rostermatch worker` is the matching part alone, for more
 * machines. Shutdown is idempotent and runs every step even when one fails.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { resolvePaths, type Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { claimFile, recoverSpool, type ClaimOutcome } from '../intake/claim.ts';
import {
  addMatchFlow,
  connectRedis,
  exportJobId,
  finaliseJobId,
  foreignWorkers,
  intakeJobId,
  QUEUE,
  queuePrefix,
  RETRY,
  startWorkers,
  storeKey,
  warmCandidates,
  warnUnlessNoEviction,
  type JobContext,
  type WorkerSet,
} from '../queue/index.ts';
import { pipelineGroupWarnings } from '../run/index.ts';
import { bulkJobDir } from '../export/bulk-job.ts';
import { chunkWorkers, expireBulkJobs, openStore, unfinishedBulkJobs, unfinishedRuns, type Db } from '../store/index.ts';
import { DropWatcher } from '../watch/index.ts';
import { OperatorDirectory, operatorsFile, startConsole } from '../console/index.ts';
import { startMllpListener, type MllpListener, type MllpOptions } from '../mllp/index.ts';
import { createMetrics } from './metrics.ts';

export interface ServeOptions {
  dropRoot: string;
  dataDir: string;
  pipelinesDir: string;
  redisUrl: string;
  /** @defaultValue queuePrefix(): $ROSTERMATCH_QUEUE_PREFIX, else derived from the store */
  queuePrefix?: string;
  /** Unset: the embedded store in <dataDir>/db. */
  databaseUrl?: string | undefined;
  /** @defaultValue 127.0.0.1: the console shows patient data, so it is not on the network unless asked. */
  host?: string;
  /** Who may sign in to the console. @defaultValue operatorsFile(dataDir) */
  operatorsFile?: string;
  /** Mark the console's session cookie Secure (behind an HTTPS proxy). @defaultValue false */
  secureCookies?: boolean;
  /** 0 picks a free port. @defaultValue 8080 */
  port?: number;
  /** Match jobs at once in this process; 0 leaves matching to `worker` processes. @defaultValue 2 */
  concurrency?: number;
  /** Rows per match job. @defaultValue CHUNK_ROWS */
  chunkRows?: number;
  quietMs?: number;
  scanIntervalMs?: number;
  /** How often unfinished runs are checked against the queues. @defaultValue 30000 */
  reconcileIntervalMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /**
   * How long to wait for the embedded store while another process holds it (an operator's CLI
   * command when serve restarts). @defaultValue 30000
   */
  storeWaitMs?: number;
  /** How long shutdown waits for running jobs. @defaultValue 20000 */
  shutdownGraceMs?: number;
  chunkDelayMs?: number;
  finaliseDelayMs?: number;
  /**
   * The origin partners' Bulk Data clients reach this service by (behind a proxy, its public
   * https URL): the FHIR base is <publicUrl>/fhir, the token audience and every URL handed out.
   * @defaultValue the address it listens on
   */
  publicUrl?: string;
  /** How long a finished export's files are kept for download. @defaultValue 24 hours */
  exportKeepMs?: number;
  /** Exports written at once. @defaultValue 2 */
  exportConcurrency?: number;
  /** How often expired exports are removed. @defaultValue 60000 */
  expiryIntervalMs?: number;
  /** The Retry-After (whole seconds) an export's status answers with while it runs. @defaultValue 2 */
  exportRetryAfterS?: number;
  /**
   * An MLLP listener for HL7 v2 partners' messages (src/mllp): port (0 picks one), host
   * (@defaultValue `host`), TLS, reply timeout, largest message. @defaultValue none
   */
  mllp?: Pick<MllpOptions, 'port' | 'host' | 'tls' | 'replyTimeoutMs' | 'maxMessageBytes'>;
  log: Logger;
}

const SERVICE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The FHIR surface's base path under the service's origin. */
export const FHIR_PATH = '/fhir';

export interface Service {
  url: string;
  /** The FHIR base partners' clients use. */
  fhirBase: string;
  db: Db;
  /** The MLLP listener's address, when one was asked for. */
  mllp?: { host: string; port: number; tls: boolean };
  /** Idempotent; resolves with the problems met on the way down (empty when clean). */
  close(): Promise<string[]>;
  /** One reconciliation pass now (tests and start-up). */
  reconcile(): Promise<void>;
}

export function workerId(): string {
  return `${os.hostname()}:${process.pid}`;
}

export async function startServe(o: ServeOptions): Promise<Service> {
  const log = o.log;
  const db = await openStoreWaiting(() => openStore({ databaseUrl: o.databaseUrl, embeddedDir: path.join(o.dataDir, 'db') }), o.storeWaitMs ?? 30_000, log);
  const redis: Redis = connectRedis(o.redisUrl);
  await warnUnlessNoEviction(redis, log);
  const prefix = o.queuePrefix ?? queuePrefix(storeKey(db, path.join(o.dataDir, 'db')));
  const intakeQueue = new Queue(QUEUE.intake, { connection: redis, prefix });
  const finaliseQueue = new Queue(QUEUE.finalise, { connection: redis, prefix });
  const matchQueue = new Queue(QUEUE.match, { connection: redis, prefix });
  const exportQueue = new Queue(QUEUE.export, { connection: redis, prefix });
  const flows = new FlowProducer({ connection: redis, prefix });
  // Without listeners BullMQ prints every reconnection failure; ioredis retries by itself.
  intakeQueue.on('error', () => {});
  finaliseQueue.on('error', () => {});
  matchQueue.on('error', () => {});
  exportQueue.on('error', () => {});
  flows.on('error', () => {});
  const ctx: JobContext = {
    db,
    log,
    workerId: workerId(),
    dropRoot: o.dropRoot,
    dataDir: o.dataDir,
    exportsDir: path.join(o.dataDir, 'exports'),
    snapshotDir: resolvePaths(o.dataDir).snapshotDir,
    flows,
    finaliseQueue,
    ...(o.chunkDelayMs ? { chunkDelayMs: o.chunkDelayMs } : {}),
    ...(o.finaliseDelayMs ? { finaliseDelayMs: o.finaliseDelayMs } : {}),
    ...(o.chunkRows ? { chunkRows: o.chunkRows } : {}),
  };
  const dirs = { dropRoot: o.dropRoot, dataDir: o.dataDir, pipelinesDir: o.pipelinesDir };
  for (const w of await pipelineGroupWarnings(db, o.pipelinesDir)) log.warn({ groupId: w.groupId, files: w.files, partners: w.partners, owner: w.owner }, w.message);

  const enqueueIntake = async (c: ClaimOutcome) => {
    if (c.kind !== 'claimed') return;
    const jobId = intakeJobId(db.storeId, c.partner, c.sha256);
    // A finished job with this id (an earlier run of these bytes that failed) would swallow the add.
    const old = await intakeQueue.getJob(jobId);
    if (old && ((await old.isFailed()) || (await old.isCompleted()))) await old.remove();
    await intakeQueue.add('intake', { runId: c.runId, store: db.storeId }, { jobId, ...RETRY });
  };

  const bulkRoot = path.join(o.dataDir, 'bulk');
  const exportKeepMs = o.exportKeepMs ?? 24 * 3600_000;
  const enqueueExport = async (bulkJobId: string) => {
    await exportQueue.add('export', { bulkJobId, store: db.storeId }, { jobId: exportJobId(bulkJobId), ...RETRY });
  };

  /** Re-derives queue state from the database: Redis may have lost it (a restart without persistence). */
  const reconcile = async () => {
    for (const id of await unfinishedBulkJobs(db)) {
      if (!(await exportQueue.getJob(exportJobId(id)))) {
        log.warn({ bulkJobId: id }, 'export job missing from Redis; re-adding');
        await enqueueExport(id);
      }
    }
    for (const run of await unfinishedRuns(db)) {
      if (run.state === 'received' || run.state === 'parsing') {
        if (!(await intakeQueue.getJob(intakeJobId(db.storeId, run.partner, run.fileSha256)))) {
          log.warn({ runId: run.id }, 'intake job missing from Redis; re-adding');
          await enqueueIntake({ kind: 'claimed', runId: run.id, partner: run.partner, sha256: run.fileSha256 });
        }
      } else if (run.state === 'matching' && run.rowCount !== null) {
        const done = new Set((await chunkWorkers(db, run.id)).map((c) => c.chunk));
        if (!(await finaliseQueue.getJob(finaliseJobId(run.id)))) log.warn({ runId: run.id, chunksDone: done.size }, 'flow missing from Redis; re-adding');
        await addMatchFlow(ctx, run.id, run.rowCount, run.chunkCount ?? 1, done);
      }
    }
  };

  for (const c of await recoverSpool(db, log, dirs)) await enqueueIntake(c);
  const workers: WorkerSet = startWorkers(ctx, {
    redisUrl: o.redisUrl,
    prefix,
    roles: o.concurrency === 0 ? ['intake', 'finalise', 'export'] : ['intake', 'match', 'finalise', 'export'],
    concurrency: o.concurrency ?? 2,
    exports: { root: bulkRoot, keepMs: exportKeepMs, concurrency: o.exportConcurrency ?? 2 },
    ...(o.lockDurationMs ? { lockDurationMs: o.lockDurationMs } : {}),
    ...(o.stalledIntervalMs ? { stalledIntervalMs: o.stalledIntervalMs } : {}),
  });
  if (o.concurrency !== 0) warmCandidates(ctx);
  await reconcile();
  const sharing = await warnOfOtherDeployments(redis, prefix, db.storeId, log);

  const watcher = new DropWatcher({
    dropRoot: o.dropRoot,
    log,
    ...(o.quietMs !== undefined ? { quietMs: o.quietMs } : {}),
    ...(o.scanIntervalMs !== undefined ? { scanIntervalMs: o.scanIntervalMs } : {}),
    onReady: async (f) => enqueueIntake(await claimFile(db, log, dirs, f.partner, f.file, f.isSymlink, f.links)),
  });
  await watcher.start();

  // Messages over MLLP become files in inbound, taken at once by the watcher's own intake.
  let mllp: MllpListener | undefined;
  if (o.mllp) {
    mllp = await startMllpListener({
      ...o.mllp,
      host: o.mllp.host ?? o.host ?? '127.0.0.1',
      dropRoot: o.dropRoot,
      pipelinesDir: o.pipelinesDir,
      exportsDir: ctx.exportsDir,
      db,
      log,
      claim: async (partner, file) => {
        const c = await claimFile(db, log, dirs, partner, file, false);
        await enqueueIntake(c);
        return c;
      },
    });
  }

  let reconciling = false;
  const reconcileTimer = setInterval(() => {
    if (reconciling) return;
    reconciling = true;
    reconcile()
      .catch((e: unknown) => log.warn({ err: (e as Error).message }, 'reconcile failed; will retry'))
      .finally(() => (reconciling = false));
  }, o.reconcileIntervalMs ?? 30_000);

  // Expired exports: the rows say so (the status URL answers 404), then the files go.
  const expire = async () => {
    for (const id of await expireBulkJobs(db, new Date().toISOString())) await fs.rm(bulkJobDir(bulkRoot, id), { recursive: true, force: true });
  };
  const expiryTimer = setInterval(() => void expire().catch((e: Error) => log.warn({ err: e.message }, 'export expiry failed; will retry')), o.expiryIntervalMs ?? 60_000);

  const scanInterval = o.scanIntervalMs ?? 2000;
  const metrics = await createMetrics({ db, connection: redis, prefix });
  const operators = new OperatorDirectory(o.operatorsFile ?? operatorsFile(o.dataDir));
  if (!(await operators.configured())) log.warn({ file: operators.file }, 'no console operators configured; add one with `rostermatch operator add NAME`');
  let listening = '';
  const fhirBase = () => `${(o.publicUrl ?? listening).replace(/\/+$/, '')}${FHIR_PATH}`;
  const health = await startConsole({
    // Each list only while it is not empty.
    notes: async () => {
      const [others, refused] = [await sharing(), watcher.refusedFolders()];
      return { queuePrefix: prefix, ...(others.length > 0 ? { otherDeploymentsOnPrefix: others } : {}), ...(refused.length > 0 ? { refusedFolders: refused } : {}) };
    },
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 8080,
    db,
    log,
    operators,
    exportsDir: ctx.exportsDir,
    queues: [intakeQueue, matchQueue, finaliseQueue, exportQueue],
    fhir: {
      path: FHIR_PATH,
      // Known once listening (port 0 picks one): read when a request needs it.
      base: () => fhirBase(),
      enqueue: enqueueExport,
      bulkRoot,
      version: SERVICE_VERSION,
      ...(o.exportRetryAfterS ? { retryAfterS: o.exportRetryAfterS } : {}),
    },
    metrics,
    ...(o.secureCookies ? { secureCookies: true } : {}),
    checks: {
      redis: async () => (await redis.ping()) === 'PONG',
      database: async () => (await db.query('SELECT 1')).rows.length === 1,
      watcher: async () => Date.now() - watcher.lastScanAt < Math.max(3 * scanInterval, 10_000),
    },
  });
  listening = health.url;
  log.info({ url: health.url, dropRoot: o.dropRoot, store: db.kind, storeId: db.storeId, queuePrefix: prefix, pid: process.pid }, 'serving');

  let closing: Promise<string[]> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const problems: string[] = [];
      const step = async (name: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (e) {
          problems.push(`${name}: ${(e as Error).message}`);
        }
      };
      clearInterval(reconcileTimer);
      clearInterval(expiryTimer);
      if (mllp) problems.push(...(await mllp.close()));
      await step('console', () => health.server.close());
      await step('metrics', () => metrics.close());
      await step('watcher', () => watcher.close());
      problems.push(...(await workers.close(o.shutdownGraceMs ?? 20_000)));
      await step('queues', () => Promise.race([Promise.all([intakeQueue.close(), matchQueue.close(), finaliseQueue.close(), exportQueue.close(), flows.close()]), sleep(2000)]));
      await step('redis', async () => redis.disconnect());
      await step('database', () => db.close());
      return problems;
    })());
  return { url: health.url, fhirBase: fhirBase(), db, ...(mllp ? { mllp: { host: mllp.host, port: mllp.port, tls: mllp.tls } } : {}), close, reconcile };
}

/**
 * Another deployment's workers on this prefix would take this deployment's jobs (they hand them
 * back, but every run waits on it): say so loudly at start-up. The returned function re-reads it,
 * for /healthz.
 */
async function warnOfOtherDeployments(redis: Redis, prefix: string, store: string, log: Logger): Promise<() => Promise<{ store: string | null; workers: string[] }[]>> {
  const read = async () =>
    (await foreignWorkers(redis, prefix, store)).map((d) => ({ store: d.store, workers: d.workers.map((w) => w.name ?? w.addr) }));
  try {
    const others = await read();
    if (others.length > 0) {
      log.error(
        { queuePrefix: prefix, store, others },
        'workers of another deployment (another store) are on this queue prefix: they hand this deployment\'s jobs back, delaying every run; give each deployment its own ROSTERMATCH_QUEUE_PREFIX',
      );
    }
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'could not list the workers on this Redis (CLIENT LIST may be disabled)');
  }
  return read;
}

export interface RemoteWorkerOptions {
  redisUrl: string;
  queuePrefix?: string;
  databaseUrl: string;
  concurrency: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  shutdownGraceMs?: number;
  chunkDelayMs?: number;
  /** Where the in-memory candidate index is kept between processes. */
  snapshotDir?: string;
  log: Logger;
}

/** Matching only: serve keeps the drop folders, intake and finalise. */
export async function startRemoteWorker(o: RemoteWorkerOptions): Promise<{ prefix: string; close(): Promise<string[]> }> {
  const db = await openStore({ databaseUrl: o.databaseUrl, embeddedDir: '' });
  const prefix = o.queuePrefix ?? queuePrefix(storeKey(db, ''));
  const redis = connectRedis(o.redisUrl);
  await warnOfOtherDeployments(redis, prefix, db.storeId, o.log);
  redis.disconnect();
  const workers = startWorkers(
    { db, log: o.log, workerId: workerId(), ...(o.chunkDelayMs ? { chunkDelayMs: o.chunkDelayMs } : {}), ...(o.snapshotDir ? { snapshotDir: o.snapshotDir } : {}) },
    {
      redisUrl: o.redisUrl,
      prefix,
      roles: ['match'],
      concurrency: o.concurrency,
      ...(o.lockDurationMs ? { lockDurationMs: o.lockDurationMs } : {}),
      ...(o.stalledIntervalMs ? { stalledIntervalMs: o.stalledIntervalMs } : {}),
    },
  );
  warmCandidates({ db, log: o.log, ...(o.snapshotDir ? { snapshotDir: o.snapshotDir } : {}) });
  o.log.info({ worker: workerId(), concurrency: o.concurrency, storeId: db.storeId, queuePrefix: prefix }, 'worker started');
  let closing: Promise<string[]> | undefined;
  return {
    prefix,
    close: () =>
      (closing ??= (async () => {
        const problems = await workers.close(o.shutdownGraceMs ?? 20_000);
        await db.close().catch((e: Error) => problems.push(`database: ${e.message}`));
        return problems;
      })()),
  };
}

/** Opens the store, waiting while another process holds the embedded one; any other failure is at once. */
async function openStoreWaiting(open: () => Promise<Db>, waitMs: number, log: Logger): Promise<Db> {
  const until = Date.now() + waitMs;
  for (let warned = false; ; ) {
    try {
      return await open();
    } catch (e) {
      if (!isRostermatchError(e) || e.code !== 'STORE_BUSY' || Date.now() >= until) throw e;
      if (!warned) log.warn({ waitMs }, 'the embedded store is held by another process; waiting for it');
      warned = true;
      await sleep(500);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
