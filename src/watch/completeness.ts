/**
 * When is an upload complete? Clients that rename on completion write under a temporary name
 * (.filepart, .part, .tmp): those wait for the rename. OpenSSH writes in place: such a file is
 * complete once its size and mtime have stayed the same for a quiet period. Pure: the caller
 * supplies the observations and the clock.
 */

const TEMPORARY_SUFFIXES = ['.filepart', '.part', '.partial', '.tmp', '.crdownload', '.upload'];

export function isTemporaryName(name: string): boolean {
  const lower = name.toLowerCase();
  return TEMPORARY_SUFFIXES.some((s) => lower.endsWith(s));
}

interface Observation {
  size: number;
  mtimeMs: number;
  /** When this size and mtime were first seen. */
  since: number;
}

/** `a.csv` for `a.csv.part`: the name an upload under a temporary name will be renamed to. */
export function finalName(file: string): string {
  const lower = file.toLowerCase();
  const suffix = TEMPORARY_SUFFIXES.find((s) => lower.endsWith(s));
  return suffix ? file.slice(0, -suffix.length) : file;
}

export class CompletenessTracker {
  readonly #quietMs: number;
  readonly #seen = new Map<string, Observation>();
  /** Final names of uploads last seen under a temporary name. */
  readonly #uploading = new Set<string>();

  /** @param quietMs how long size and mtime must stay still. */
  constructor(quietMs: number) {
    this.#quietMs = quietMs;
  }

  /**
   * Records what a listing saw; true when the file is now complete. mtime is the last write, so
   * a file whose mtime is already a quiet period old has been still that long — a finished
   * upload renamed into place, or one waiting since before start-up — and need not wait again.
   */
  observe(file: string, size: number, mtimeMs: number, now: number): boolean {
    if (isTemporaryName(file)) {
      this.#uploading.add(finalName(file));
      return false;
    }
    const prev = this.#seen.get(file);
    if (!prev || prev.size !== size || prev.mtimeMs !== mtimeMs) {
      this.#seen.set(file, { size, mtimeMs, since: now });
      // The client renamed its finished upload into place: that rename is its "complete".
      if (!prev && this.#uploading.delete(file)) return true;
      return now - mtimeMs >= this.#quietMs;
    }
    return now - Math.min(prev.since, mtimeMs) >= this.#quietMs;
  }

  /** Forgets files that are gone (claimed, renamed or deleted) so memory tracks the folders. */
  retain(present: ReadonlySet<string>): void {
    for (const file of this.#seen.keys()) if (!present.has(file)) this.#seen.delete(file);
    for (const file of this.#uploading) {
      if (!present.has(file) && !TEMPORARY_SUFFIXES.some((s) => present.has(file + s))) this.#uploading.delete(file);
    }
  }

  forget(file: string): void {
    this.#seen.delete(file);
  }
}
