/**
 * One SQL dialect over two engines: PGlite (embedded, a data folder) and a PostgreSQL server.
 * Stages and repositories see only `Queryable`, so the same code runs on both.
 */
import fs from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
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

async function migrate(db: Db): Promise<void> {
  await db.exec('CREATE TABLE IF NOT EXISTS schema_migration (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  const { rows } = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migration');
  const current = rows[0]?.v ?? 0;
  for (const [i, sql] of MIGRATIONS.entries()) {
    const version = i + 1;
    if (version <= current) continue;
    await db.transaction(async (tx) => {
      await tx.exec(sql);
      await tx.query('INSERT INTO schema_migration (version) VALUES ($1)', [version]);
    });
  }
}
