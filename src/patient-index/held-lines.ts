/**
 * Lines a load sets aside until its end, in a temporary file of their own (made at the first one
 * held, removed by dispose), so their content never sits in memory however many there are; what
 * stays in memory is one entry per id held (the last line of that id seen since), so that a later
 * line of the same id supersedes a held one. They come back in the order they were held, less
 * those superseded.
 */
import { createReadStream } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

/** Holding lines back failed (the temporary file could not be made or written: a full disk, say); the input file is not at fault. */
export class HeldLinesError extends Error {
  constructor(where: string, cause: unknown) {
    super(`cannot write the lines held back to a temporary file in ${where}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'HeldLinesError';
  }
}

export class HeldLines<T extends { id: string; line: number }> {
  private dir: string | undefined;
  private file: FileHandle | undefined;
  /** Of each id held, the line of the last line of it seen so far (held, or passed to `seen`). */
  private readonly last = new Map<string, number>();

  async hold(lines: readonly T[]): Promise<void> {
    if (lines.length === 0) return;
    this.note(lines);
    try {
      if (this.dir === undefined) {
        this.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-held-'));
        this.file = await fs.open(path.join(this.dir, 'held.ndjson'), 'w', 0o600);
      }
      await this.file!.write(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    } catch (e) {
      throw new HeldLinesError(this.dir ?? os.tmpdir(), e);
    }
  }

  /**
   * Lines read after those held so far (whatever became of them: written, found unchanged, or
   * held next): a held line of one of their ids is superseded, not given back by `read`. Nothing
   * to do while nothing is held.
   */
  seen(lines: readonly { id: string; line: number }[]): void {
    if (this.last.size === 0) return;
    for (const l of lines) if (this.last.has(l.id)) this.note([l]);
  }

  private note(lines: readonly { id: string; line: number }[]): void {
    for (const l of lines) if ((this.last.get(l.id) ?? -1) < l.line) this.last.set(l.id, l.line);
  }

  /** The lines held and not superseded, `size` at a time (at most one per id); holding more after this starts is not supported. */
  async *read(size: number): AsyncGenerator<T[]> {
    if (this.dir === undefined) return;
    await this.file?.close();
    this.file = undefined;
    let batch: T[] = [];
    for await (const text of readline.createInterface({ input: createReadStream(path.join(this.dir, 'held.ndjson'), { encoding: 'utf8' }), crlfDelay: Infinity })) {
      const l = JSON.parse(text) as T;
      if (this.last.get(l.id) !== l.line) continue;
      batch.push(l);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async dispose(): Promise<void> {
    try {
      await this.file?.close();
    } finally {
      this.file = undefined;
      if (this.dir !== undefined) await fs.rm(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
  }
}
