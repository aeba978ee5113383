/** Redis for the queues. Redis holds queue state only: losing it loses no data (DESIGN.md). */
import { Redis } from 'ioredis';
import type { Logger } from '../config/index.ts';

/** @defaultValue redis://127.0.0.1:6379 */
export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/**
 * BullMQ needs maxRetriesPerRequest: null so a blocked worker waits out a Redis restart instead
 * of failing its commands; ioredis then reconnects by itself.
 */
export function connectRedis(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
  // Connection errors are retried by ioredis; an unhandled 'error' event would kill the process.
  redis.on('error', () => {});
  return redis;
}

/** BullMQ loses jobs if Redis evicts keys under memory pressure: say so at start-up. */
export async function warnUnlessNoEviction(redis: Redis, log: Logger): Promise<void> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy !== 'noeviction') log.warn({ policy }, 'Redis maxmemory-policy is not noeviction: queued jobs may be evicted under memory pressure');
  } catch {
    log.warn('could not read Redis maxmemory-policy (CONFIG may be disabled); it should be noeviction');
  }
}
