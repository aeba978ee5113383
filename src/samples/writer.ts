/**
 * A line writer over a file write stream that batches lines into chunks of about 64 kB and waits
 * for 'drain' when the stream's buffer is full, so a multi-gigabyte file is written with bounded
 * memory and never exists as one string.
 */
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import iconv from 'iconv-lite';

export type TextEncoding = 'utf-8' | 'windows-1252';

export interface LineWriterOptions {
  encoding: TextEncoding;
  /** Line terminator written after every line. */
  eol: '\n' | '\r\n';
  /** Start the file with a UTF-8 byte order mark (as Excel does). */
  bom?: boolean;
}

/** Characters gathered before a chunk is handed to the stream. */
const CHUNK_CHARS = 64 * 1024;

export class LineWriter {
  readonly #stream: WriteStream;
  readonly #opts: LineWriterOptions;
  #pending = '';
  #error: Error | undefined;
  lines = 0;

  constructor(path: string, opts: LineWriterOptions) {
    this.#opts = opts;
    this.#stream = createWriteStream(path);
    this.#stream.on('error', (err) => {
      this.#error = err;
    });
    if (opts.bom) this.#pending = '\uFEFF';
  }

  /**
   * Adds one line. Returns a promise only when the caller must wait (the stream is full), so the
   * hot loop can skip an await per line: `const wait = w.line(s); if (wait) await wait;`.
   */
  line(text: string): Promise<void> | undefined {
    this.#pending += text + this.#opts.eol;
    this.lines++;
    if (this.#pending.length < CHUNK_CHARS) return undefined;
    return this.#flush();
  }

  #flush(): Promise<void> | undefined {
    if (this.#error) throw this.#error;
    const chunk = this.#opts.encoding === 'utf-8' ? Buffer.from(this.#pending, 'utf8') : iconv.encode(this.#pending, 'windows-1252');
    this.#pending = '';
    if (this.#stream.write(chunk)) return undefined;
    return this.#drain();
  }

  #drain(): Promise<void> {
    const stream = this.#stream;
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        stream.off('drain', onDrain);
        stream.off('error', onError);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onError = (err: Error): void => done(err);
      stream.on('drain', onDrain);
      stream.on('error', onError);
    });
  }

  /** Writes what is left and closes the file. */
  async close(): Promise<void> {
    if (this.#pending.length > 0) {
      const wait = this.#flush();
      if (wait) await wait;
    }
    await new Promise<void>((resolve, reject) => {
      this.#stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
    if (this.#error) throw this.#error;
  }
}

/** One RFC 4180 field: quoted when it holds the delimiter, a quote, CR or LF. */
export function csvField(value: string, delimiter: string): string {
  if (value.includes(delimiter) || value.includes('"') || value.includes('\n') || value.includes('\r')) {
    return `"${value.replaceAll('"', '""')}"`;
  }
  return value;
}

export function csvLine(values: readonly string[], delimiter = ','): string {
  return values.map((v) => csvField(v, delimiter)).join(delimiter);
}
