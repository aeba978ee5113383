/** The PostgreSQL server benchmarks create their databases on (BENCH_DATABASE_URL). */
import os from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? `postgres://${os.userInfo().username}@127.0.0.1:5432/postgres`;

/** One statement on the server's admin database (CREATE / DROP DATABASE). */
export async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The URL of database `name` on the same server. */
export function databaseUrl(name: string): string {
  return Object.assign(new URL(ADMIN_URL), { pathname: `/${name}` }).href;
}

/** The Redis the benchmarks' queues live on. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Leaves Redis as it was found: a benchmark's queue prefix's keys go. */
export async function dropQueueKeys(prefix: string, redisUrl = REDIS_URL): Promise<void> {
  // Fails fast where Redis is gone (bench:faults stops it) instead of queueing commands for ever.
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
