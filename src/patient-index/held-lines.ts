/**
 * Lines a load sets aside until its end, in a temporary file of their own (made at the first one
 * held, removed by dispose), so however many there are a load streams in constant memory. They
 * come back in the order they were held.
 */
import { createReadStream } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export class HeldLines<T> {
  private dir: string | undefined;
  private file: FileHandle | undefined;

  async hold(lines: readonly T[]): Promise<void> {
    if (lines.length === 0) return;
    if (this.dir === undefined) {
      this.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-held-'));
      this.file = await fs.open(path.join(this.dir, 'held.ndjson'), 'w', 0o600);
    }
    await this.file!.write(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  }

  /** The lines held, `size` at a time; holding more after this starts is not supported. */
  async *read(size: number): AsyncGenerator<T[]> {
    if (this.dir === undefined) return;
    await this.file?.close();
    this.file = undefined;
    let batch: T[] = [];
    for await (const text of readline.createInterface({ input: createReadStream(path.join(this.dir, 'held.ndjson'), { encoding: 'utf8' }), crlfDelay: Infinity })) {
      batch.push(JSON.parse(text) as T);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async dispose(): Promise<void> {
    await this.file?.close();
    this.file = undefined;
    if (this.dir !== undefined) await fs.rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}
