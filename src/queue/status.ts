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
  /** The Worker's `name` option: `<hostname>:<pid>` for rostermatch's workers; null when unnamed. */
  name: string | null;
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

/** A CLIENT LIST entry: BullMQ names a worker's connection `<prefix>:<base64 queue>[:w:<name>]`. */
function toWorker(c: Record<string, string>): QueueWorker {
  const raw = c.rawname ?? '';
  const at = raw.indexOf(':w:');
  return {
    name: at >= 0 ? raw.slice(at + 3) : null,
    addr: c.addr ?? '',
    ageSeconds: Number(c.age ?? 0),
    idleSeconds: Number(c.idle ?? 0),
  };
}
