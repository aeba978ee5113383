/**
 * One SQL dialect over two engines: PGlite (embedded, a data folder) and a PostgreSQL server.
 * Stages and repositories see only `Queryable`, so the same code runs on both.
 */
import fs from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { MIGRATIONS } from './migrations.ts';

export interface Queryable {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction: all of its writes land, or none. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Opens the embedded store in `dir` (created if absent) and brings its schema up to date. */
export async function openEmbedded(dir: string): Promise<Db> {
  await fs.mkdir(dir, { recursive: true });
  const pg = await PGlite.create(dir);
  const db: Db = {
    kind: 'pglite',
    query: (sql, params) => pg.query(sql, params as unknown[]),
    exec: (sql) => pg.exec(sql),
    transaction: (fn) => pg.transaction((tx) => fn({ query: (s, p) => tx.query(s, p as unknown[]), exec: (s) => tx.exec(s) })),
    close: () => pg.close(),
  };
  await migrate(db);
  return db;
}

/**
 * Connects to a PostgreSQL server and brings its schema up to date. Several processes may start
 * at once (serve and its workers): an advisory lock lets exactly one of them migrate.
 */
export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, application_name: 'rostermatch' });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const asQueryable = (c: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <T>(sql: string, params?: unknown[]) => ({ rows: (await c.query(sql, params)).rows as T[] }),
    exec: (sql) => c.query(sql),
  });
  const db: Db = {
    kind: 'postgres',
    ...asQueryable(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(asQueryable(client));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
  await migrate(db);
  return db;
}

/** The store a process should use: the server named by DATABASE_URL, else the embedded one. */
export function openStore(opts: { databaseUrl?: string | undefined; embeddedDir: string }): Promise<Db> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl) : openEmbedded(opts.embeddedDir);
}

/** Any fixed number; it only has to be the same in every rostermatch process. */
const MIGRATION_LOCK = 7_220_611;

async function migrate(db: Db): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec('CREATE TABLE IF NOT EXISTS schema_migration (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await tx.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migration');
    const current = rows[0]?.v ?? 0;
    for (const [i, sql] of MIGRATIONS.entries()) {
      const version = i + 1;
      if (version <= current) continue;
      await tx.exec(sql);
      await tx.query('INSERT INTO schema_migration (version) VALUES ($1)', [version]);
    }
  });
}
