/**
 * What the queues hold and who works them, read from Redis: for `rostermatch status`, the web
 * console and the metrics. Read-only; it opens a Queue per name on the caller's connection and
 * closes them again (the connection stays the caller's).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE } from './names.ts';

/**
 * Every job state BullMQ counts, in the order they are shown. BullMQ 6 has no separate "paused"
 * list: a paused queue keeps its jobs in `waiting` and sets `QueueStatus.paused`.
 */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** One worker connected to a queue (a Redis client BullMQ named for it). */
export interface QueueWorker {
  /** `<hostname>:<pid>` for rostermatch's workers; null when unnamed. */
  name: string | null;
  /** The store (`Db.storeId`) the worker's process holds; null for a worker that does not say. */
  store: string | null;
  /** The client's address as Redis sees it. */
  addr: string;
  /** Seconds since the worker connected. */
  ageSeconds: number;
  /** Seconds since its last command. */
  idleSeconds: number;
}

export interface QueueStatus {
  /** intake, match or finalise. */
  role: keyof typeof QUEUE;
  /** The BullMQ queue name. */
  queue: string;
  /** Paused queues hand out no jobs; their jobs count as waiting. */
  paused: boolean;
  counts: Record<JobState, number>;
  workers: QueueWorker[];
}

/** Job counts and connected workers of every rostermatch queue under `prefix`. */
export async function queueStatus(connection: Redis, prefix: string): Promise<QueueStatus[]> {
  return Promise.all(
    (Object.entries(QUEUE) as [keyof typeof QUEUE, string][]).map(async ([role, name]) => {
      const queue = new Queue(name, { connection, prefix });
      queue.on('error', () => {});
      try {
        const [counts, paused, clients] = await Promise.all([queue.getJobCounts(...JOB_STATES), queue.isPaused(), queue.getWorkers()]);
        return {
          role,
          queue: name,
          paused,
          counts: Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<JobState, number>,
          workers: clients.map(toWorker).sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.addr.localeCompare(b.addr)),
        };
      } finally {
        await queue.close();
      }
    }),
  );
}

/** The BullMQ worker name of a rostermatch process: who it is and which store it holds. */
export const workerName = (workerId: string, storeId: string) => `${workerId}@${storeId}`;

/** A CLIENT LIST entry: BullMQ names a worker's connection `<prefix>:<base64 queue>[:w:<name>]`. */
function toWorker(c: Record<string, string>): QueueWorker {
  const raw = c.rawname ?? c.name ?? '';
  const at = raw.indexOf(':w:');
  const named = at >= 0 ? raw.slice(at + 3) : null;
  const store = named?.match(/@([0-9a-f]{32})$/)?.[1] ?? null;
  return {
    name: named && store ? named.slice(0, -store.length - 1) : named,
    store,
    addr: c.addr ?? '',
    ageSeconds: Number(c.age ?? 0),
    idleSeconds: Number(c.idle ?? 0),
  };
}

/** The workers of one deployment on a Redis: one queue prefix and one store. */
export interface Deployment {
  prefix: string;
  /** null: workers that do not name their store (another version, or not rostermatch's). */
  store: string | null;
  /** Each process once, with the queues it works. */
  workers: { name: string | null; addr: string; queues: (keyof typeof QUEUE)[] }[];
}

const ROLE_OF = new Map<string, keyof typeof QUEUE>(Object.entries(QUEUE).map(([role, name]) => [name, role as keyof typeof QUEUE]));

/**
 * Every rostermatch deployment with a worker connected to this Redis, whatever its prefix, read
 * from CLIENT LIST: the names BullMQ gives worker connections say prefix, queue and worker.
 */
export async function deploymentsOn(connection: Redis): Promise<Deployment[]> {
  const list = (await connection.client('LIST')) as string;
  const byKey = new Map<string, Deployment>();
  for (const line of list.split('\n')) {
    const c = Object.fromEntries(line.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const m = /^(.+):([A-Za-z0-9+/]+={0,2}):w:.+$/.exec(c.name ?? '');
    const role = m && ROLE_OF.get(Buffer.from(m[2]!, 'base64').toString('utf8'));
    if (!m || !role) continue;
    const w = toWorker(c);
    const key = `${m[1]}\u0000${w.store}`;
    const d = byKey.get(key) ?? { prefix: m[1]!, store: w.store, workers: [] };
    byKey.set(key, d);
    const proc = d.workers.find((p) => p.name === w.name && (w.name !== null || p.addr === w.addr));
    if (proc) {
      if (!proc.queues.includes(role)) proc.queues.push(role);
    } else d.workers.push({ name: w.name, addr: w.addr, queues: [role] });
  }
  const order = Object.keys(QUEUE);
  for (const d of byKey.values()) for (const w of d.workers) w.queues.sort((x, y) => order.indexOf(x) - order.indexOf(y));
  return [...byKey.values()].sort((a, b) => a.prefix.localeCompare(b.prefix) || (a.store ?? '').localeCompare(b.store ?? ''));
}

/** Workers on `prefix` that hold another store than `store`: they would take this deployment's jobs. */
export async function foreignWorkers(connection: Redis, prefix: string, store: string): Promise<Deployment[]> {
  return (await deploymentsOn(connection)).filter((d) => d.prefix === prefix && d.store !== store);
}
