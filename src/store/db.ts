/**
 * One SQL dialect over two engines: PGlite (embedded, a data folder) and a PostgreSQL server.
 * Stages and repositories see only `Queryable`, so the same code runs on both.
 */
import { unlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { RostermatchError } from '../errors/index.ts';
import { MIGRATIONS } from './migrations.ts';

export interface Queryable {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
  /**
   * Bulk-writes `text` — whole lines in COPY's text format (see copyLine) — into `table (columns)`
   * with COPY FROM STDIN: the way PostgreSQL takes rows fastest, on both engines.
   */
  copyIn(table: string, columns: readonly string[], text: string): Promise<void>;
}

/** One line of COPY text format: tab-separated, `\N` for null, backslash, tab and line breaks escaped. */
export function copyLine(values: readonly (string | null)[]): string {
  return `${values.map((v) => (v === null ? '\\N' : copyField(v))).join('\t')}\n`;
}

/** One value as a field of COPY text format. */
export function copyField(v: string): string {
  return COPY_SPECIAL.test(v) ? v.replace(COPY_ESCAPES, (c) => COPY_ESCAPE[c]!) : v;
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPES = /[\\\t\n\r]/g;
const COPY_ESCAPE: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value as an SQL literal, for statements that take no parameters (copyOut); E'' reads the same whatever standard_conforming_strings says. */
export function sqlLiteral(value: string): string {
  return `E'${value.replace(/[\\']/g, (c) => c + c)}'`;
}

/** Whether `q` is a store (which can open transactions), not the Queryable of a transaction already open. */
export function isDb(q: Queryable): q is Db {
  return typeof (q as Partial<Db>).transaction === 'function';
}

/** Runs `fn` in one transaction: a store opens one, the Queryable of a transaction already is one. */
export function inTransaction<T>(on: Queryable, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return isDb(on) ? on.transaction(fn) : fn(on);
}

/**
 * Runs `write` (COPY straight into tables with unique keys) under a savepoint. When a row is
 * already there, the savepoint takes all of `write` back and the answer is false: the caller
 * writes the batch the slower way, by upsert.
 */
export async function unlessPresent(tx: Queryable, write: () => Promise<void>): Promise<boolean> {
  await tx.exec('SAVEPOINT unless_present');
  try {
    await write();
  } catch (e) {
    if ((e as { code?: string }).code !== UNIQUE_VIOLATION) throw e;
    await tx.exec('ROLLBACK TO SAVEPOINT unless_present');
    return false;
  }
  await tx.exec('RELEASE SAVEPOINT unless_present');
  return true;
}

const UNIQUE_VIOLATION = '23505';

const copySql = (table: string, columns: readonly string[], source: string) => `COPY ${table} (${columns.join(', ')}) FROM ${source}`;

/** Rows a PGlite cursor hands over per FETCH: a few hundred kilobytes of resources. */
const CURSOR_BATCH = 2000;

const BACKSLASH = 0x5c;
/** What COPY TO writes after a backslash (CopyAttributeOutText), decoded; any other character stands for itself. */
const UNESCAPED = Uint8Array.from({ length: 256 }, (_, c) => c);
for (const [c, value] of Object.entries({ b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 })) UNESCAPED[c.charCodeAt(0)] = value;

/** Runs `write`, destroying `sink` should it fail, so that no file is left open. */
async function orDestroy<T>(sink: Writable, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    sink.destroy();
    throw e;
  }
}

/**
 * Turns COPY TO's text format back into the values, a line per row. A chunk without a backslash
 * (nearly every chunk of JSON) passes through as it is, without a copy.
 */
class CopyTextDecoder extends Transform {
  /** The last chunk ended in a backslash: the next chunk opens with the character it escapes. */
  #escaping = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let from = this.#escaping ? 1 : 0;
    let next = chunk.indexOf(BACKSLASH, from);
    if (next < 0 && !this.#escaping) return done(null, chunk);
    const out = Buffer.allocUnsafe(chunk.length);
    let o = 0;
    if (this.#escaping) out[o++] = UNESCAPED[chunk[0]!]!;
    this.#escaping = false;
    for (; next >= 0; next = chunk.indexOf(BACKSLASH, from)) {
      o += chunk.copy(out, o, from, next);
      if (next + 1 === chunk.length) {
        this.#escaping = true;
        from = chunk.length;
        break;
      }
      out[o++] = UNESCAPED[chunk[next + 1]!]!;
      from = next + 2;
    }
    o += chunk.copy(out, o, from);
    done(null, out.subarray(0, o));
  }
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * This store's identity, made once when its schema is first created. Queue jobs carry it: a
   * process of another deployment on the same Redis (another store) refuses them.
   */
  readonly storeId: string;
  /** Runs `fn` in one transaction: all of its writes land, or none. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Streams the rows of `select` — one text column, never null, no parameters (COPY takes none:
   * values go in as literals) — into `sink` as lines (`value\n`) and ends it (destroys it on failure). `settings`
   * (`SET LOCAL …` statements) hold for this query alone. Memory stays bounded whatever the size of
   * the result: the server streams COPY TO STDOUT, PGlite a cursor a batch at a time. Resolves
   * with the number of lines.
   */
  copyOut(select: string, sink: Writable, settings?: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens the embedded store in `dir` (created if absent) and brings its schema up to date. One
 * process at a time: two PGlite instances on one folder corrupt it, so the folder is locked
 * (`rostermatch.pid`) until `close`; opening a folder another live process holds throws STORE_BUSY.
 */
export async function openEmbedded(dir: string): Promise<Db> {
  await fs.mkdir(dir, { recursive: true });
  const release = await lockEmbedded(dir);
  let pg: PGlite;
  try {
    pg = await PGlite.create(dir);
  } catch (e) {
    await release();
    throw e;
  }
  let closing: Promise<void> | undefined;
  // PGlite's COPY reads its rows from a Blob standing in for the file /dev/blob.
  const copyIn = (on: Pick<PGlite, 'query'>) => async (table: string, columns: readonly string[], text: string) => {
    await on.query(copySql(table, columns, `'/dev/blob'`), [], { blob: new Blob([text]) });
  };
  // One transaction holds the cursor; PGlite runs one query at a time anyway.
  const copyOut = (select: string, sink: Writable, settings = '') =>
    orDestroy(sink, () =>
      pg.transaction(async (tx) => {
        await tx.exec(`${settings}; DECLARE copy_out NO SCROLL CURSOR FOR ${select}`);
        let count = 0;
        await pipeline(async function* () {
          for (;;) {
            const { rows } = await tx.query<[string]>(`FETCH ${CURSOR_BATCH} FROM copy_out`, [], { rowMode: 'array' });
            if (rows.length === 0) return;
            count += rows.length;
            yield `${rows.map((r) => r[0]).join('\n')}\n`;
          }
        }, sink);
        return count;
      }),
    );
  const db: Opening = {
    kind: 'pglite',
    query: (sql, params) => pg.query(sql, params as unknown[]),
    exec: (sql) => pg.exec(sql),
    copyIn: copyIn(pg),
    copyOut,
    transaction: (fn) => pg.transaction((tx) => fn({ query: (s, p) => tx.query(s, p as unknown[]), exec: (s) => tx.exec(s), copyIn: copyIn(tx) })),
    close: () => (closing ??= pg.close().finally(release)),
  };
  try {
    return await migrate(db);
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
}

/** The embedded store's lock file: the holder's pid, created exclusively. */
export const EMBEDDED_LOCK_FILE = 'rostermatch.pid';

/** Folders this process holds, so a crash-free exit without close() still leaves no lock behind. */
const heldLocks = new Set<string>();
let exitHook = false;

/**
 * Takes `<dir>/rostermatch.pid` with an exclusive create. A lock whose process is gone (killed,
 * crashed) is stale and taken over; so is one naming this process's pid that this process does
 * not hold (a container restarted with the same pid). Resolves with the release function.
 */
async function lockEmbedded(dir: string): Promise<() => Promise<void>> {
  const file = path.join(path.resolve(dir), EMBEDDED_LOCK_FILE);
  if (heldLocks.has(file)) throw storeBusy(dir, process.pid, ' (this process: close it first)');
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (attempt >= 3) throw storeBusy(dir, undefined, '');
    }
    const holder = await readLockHolder(file);
    if (holder === 'gone') continue;
    if (holder !== 'unknown' && holder !== process.pid && isAlive(holder)) throw storeBusy(dir, holder, '');
    if (holder === 'unknown' && Date.now() - (await fs.stat(file).then((s) => s.mtimeMs, () => 0)) < 5000) {
      // Just created by another process that has not written its pid yet.
      throw storeBusy(dir, undefined, '');
    }
    await fs.rm(file, { force: true });
  }
  heldLocks.add(file);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const f of heldLocks) {
        try {
          unlinkSync(f);
        } catch {
          // already gone
        }
      }
    });
  }
  return async () => {
    if (!heldLocks.delete(file)) return;
    if ((await readLockHolder(file)) === process.pid) await fs.rm(file, { force: true });
  };
}

async function readLockHolder(file: string): Promise<number | 'unknown' | 'gone'> {
  try {
    const pid = Number((await fs.readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : 'unknown';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, but another user's process.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function storeBusy(dir: string, pid: number | undefined, note: string): RostermatchError {
  const who = pid === undefined ? 'another process' : `process ${pid}${note}`;
  return new RostermatchError(
    'STORE_BUSY',
    `the embedded store in ${path.resolve(dir)} is held by ${who} (\`rostermatch serve\` holds it while it runs); set DATABASE_URL to a PostgreSQL server to run CLI commands beside serve`,
  );
}

/**
 * Connects to a PostgreSQL server and brings its schema up to date. Several processes may start
 * at once (serve and its workers): an advisory lock lets exactly one of them migrate.
 */
export async function openPostgres(url: string, opts: { max?: number; /** @defaultValue none: wait for the server */ connectTimeoutMs?: number } = {}): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, application_name: 'rostermatch', ...(opts.connectTimeoutMs ? { connectionTimeoutMillis: opts.connectTimeoutMs } : {}) });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const copyInto = async (c: pg.PoolClient, table: string, columns: readonly string[], text: string) => {
    const stream = c.query(copyFrom(copySql(table, columns, 'STDIN')));
    await pipeline(Readable.from([text]), stream);
  };
  const asQueryable = (c: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <T>(sql: string, params?: unknown[]) => ({ rows: (await c.query(sql, params)).rows as T[] }),
    exec: (sql) => c.query(sql),
    copyIn: async (table, columns, text) => {
      if (c instanceof pg.Pool) {
        const client = await c.connect();
        try {
          await copyInto(client, table, columns, text);
        } finally {
          client.release();
        }
      } else await copyInto(c, table, columns, text);
    },
  });
  // SET LOCAL needs a transaction. A client that failed mid-COPY may be mid-protocol: it is closed, not reused.
  const copyOut = (select: string, sink: Writable, settings = '') =>
    orDestroy(sink, async () => {
      const client = await pool.connect();
      try {
        await client.query(`BEGIN; ${settings}`);
        const rows = client.query(copyTo(`COPY (${select}) TO STDOUT`));
        await pipeline(rows, new CopyTextDecoder(), sink);
        await client.query('COMMIT');
        client.release();
        // Known once the server's CommandComplete is read, and COMMIT's reply comes after it.
        return rows.rowCount;
      } catch (e) {
        client.release(e as Error);
        throw e;
      }
    });
  const db: Opening = {
    kind: 'postgres',
    ...asQueryable(pool),
    copyOut,
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
  try {
    return await migrate(db);
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
}

/** The store a process should use: the server named by DATABASE_URL, else the embedded one. */
export function openStore(opts: { databaseUrl?: string | undefined; embeddedDir: string }): Promise<Db> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl) : openEmbedded(opts.embeddedDir);
}

/** Any fixed number; it only has to be the same in every rostermatch process. */
const MIGRATION_LOCK = 7_220_611;

/** A store whose schema is not yet known to be current, so whose identity is not yet read. */
type Opening = Omit<Db, 'storeId'>;

async function migrate(db: Opening): Promise<Db> {
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
  const { rows } = await db.query<{ id: string }>('SELECT id FROM store_identity');
  return { ...db, storeId: rows[0]!.id };
}
