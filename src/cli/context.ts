/** What every command needs: resolved paths, a logger and the open store, closed on the way out. */
import { createLogger, resolvePaths, type Logger, type Paths } from '../config/index.ts';
import { openStore, type Db } from '../store/index.ts';

export interface GlobalOptions {
  dataDir?: string;
  pipelines: string;
}

export interface Context {
  paths: Paths;
  log: Logger;
  db: Db;
  pipelinesDir: string;
}

export async function withContext<T>(opts: GlobalOptions, fn: (ctx: Context) => Promise<T>): Promise<T> {
  const paths = resolvePaths(opts.dataDir);
  const log = createLogger();
  // With DATABASE_URL set, every command works on that PostgreSQL server instead of the embedded store.
  const db = await openStore({ databaseUrl: process.env.DATABASE_URL, embeddedDir: paths.dbDir });
  try {
    return await fn({ paths, log, db, pipelinesDir: opts.pipelines });
  } finally {
    await db.close();
  }
}
