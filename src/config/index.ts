/** Where things live and how the process logs. Read once at the edge and passed down. */
import path from 'node:path';
import { pino, type Logger } from 'pino';

export interface Paths {
  /** Everything the service owns: the embedded database, archives, exports, default outputs. */
  dataDir: string;
  dbDir: string;
  exportsDir: string;
  /** The in-memory candidate index's snapshot (it holds demographics, as the database does). */
  snapshotDir: string;
  /** Where `match` writes results when no --out is given, per partner: <outboundRoot>/<partner>/outbound. */
  dropRoot: string;
}

/** @defaultValue `./.rostermatch`, or `$ROSTERMATCH_DATA` */
export function resolvePaths(dataDir?: string): Paths {
  const root = path.resolve(dataDir ?? process.env.ROSTERMATCH_DATA ?? '.rostermatch');
  return {
    dataDir: root,
    dbDir: path.join(root, 'db'),
    exportsDir: path.join(root, 'exports'),
    snapshotDir: path.join(root, 'cache'),
    dropRoot: path.join(root, 'drop'),
  };
}

/**
 * Structured JSON logs on stderr, so stdout stays for the command's own answer. Callers log ids,
 * counts and hashes only — never names, birth dates or other cell values.
 */
export function createLogger(level = process.env.LOG_LEVEL ?? 'warn'): Logger {
  return pino({ level, base: { svc: 'rostermatch' } }, pino.destination(2));
}
export type { Logger };
