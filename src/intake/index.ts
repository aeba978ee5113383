/**
 * Intake: fingerprint a dropped file and turn its bytes into text. A byte-order mark says what a
 * file is whatever its pipeline declares (Excel's "Unicode text" is UTF-16LE with one); without
 * one the pipeline's `file.encoding` is used. Bytes that are not in that encoding, a UTF-16 file
 * without its mark, and a UTF-8 file under a Windows-1252 pipeline (every accented name would be
 * garbled) are refused with the line they are on, rather than matched with mangled names.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline, Transform, type Readable } from 'node:stream';
import { pipeline as pump } from 'node:stream/promises';
import iconv from 'iconv-lite';
import { RostermatchError } from '../errors/index.ts';

export type Encoding = 'utf-8' | 'windows-1252' | 'utf-16le' | 'utf-16be';

/** sha256 of the file's bytes, hex. The same bytes from the same partner are one run. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    await pump(createReadStream(file), hash);
  } catch (e) {
    throw new RostermatchError('FILE_UNREADABLE', 'cannot read the file', { file }, { cause: e });
  }
  return hash.digest('hex');
}

/** What the first bytes say the file is: a byte-order mark, or NULs where text has none. */
export type Sniffed = { encoding: Encoding; bom: number } | { refuse: string };

export function sniffEncoding(head: Buffer, declared: Encoding): Sniffed {
  const [a, b, c, d] = [head[0], head[1], head[2], head[3]];
  if (a === 0xff && b === 0xfe && c === 0 && d === 0) return { refuse: 'the file is UTF-32 (little-endian, by its byte-order mark); save it as UTF-8 or UTF-16' };
  if (a === 0 && b === 0 && c === 0xfe && d === 0xff) return { refuse: 'the file is UTF-32 (big-endian, by its byte-order mark); save it as UTF-8 or UTF-16' };
  if (a === 0xef && b === 0xbb && c === 0xbf) return { encoding: 'utf-8', bom: 3 };
  if (a === 0xff && b === 0xfe) return { encoding: 'utf-16le', bom: 2 };
  if (a === 0xfe && b === 0xff) return { encoding: 'utf-16be', bom: 2 };
  if (declared === 'utf-8' || declared === 'windows-1252') {
    // Text in these encodings has no NULs; UTF-16 and UTF-32 of Latin text are full of them.
    const n = Math.min(head.length, 512) & ~3;
    let even = 0;
    let odd = 0;
    for (let i = 0; i < n; i++) if (head[i] === 0) i % 2 === 0 ? even++ : odd++;
    if (n >= 8 && even + odd >= (n * 5) / 8) return { refuse: 'the file looks like UTF-32 without a byte-order mark; save it as UTF-8' };
    if (n >= 8 && odd >= n / 4 && even === 0) return { refuse: 'the file looks like UTF-16LE without a byte-order mark; set file.encoding: utf-16le in the pipeline, or save it as UTF-8' };
    if (n >= 8 && even >= n / 4 && odd === 0) return { refuse: 'the file looks like UTF-16BE without a byte-order mark; set file.encoding: utf-16be in the pipeline, or save it as UTF-8' };
  }
  return { encoding: declared, bom: 0 };
}

/** A stream of the file's text, BOM removed. Errors are RostermatchErrors naming file and line. */
export function openText(file: string, encoding: Encoding, label = file): Readable {
  return chain(createReadStream(file), decodeText(file, encoding, label));
}

/** Counts LF bytes (the line) up to where a decoder stopped; UTF-16 counts 16-bit units. */
function linesIn(buf: Buffer, unit: 1 | 2, bigEndian: boolean, upTo = buf.length): number {
  let n = 0;
  for (let i = 0; i + unit <= upTo; i += unit) {
    const lf = unit === 1 ? buf[i] === 0x0a : bigEndian ? buf[i] === 0 && buf[i + 1] === 0x0a : buf[i] === 0x0a && buf[i + 1] === 0;
    if (lf) n++;
  }
  return n;
}

function decodeText(file: string, declared: Encoding, label: string): Transform {
  let head: Buffer | undefined = Buffer.alloc(0);
  let step: ((chunk: Buffer) => string) | undefined;
  let end: (() => string) | undefined;
  const encodingError = (detail: string, line?: number) => new RostermatchError('FILE_ENCODING', detail, { file: label, ...(line ? { line } : {}) });

  const start = (first: Buffer): Buffer => {
    const sniffed = sniffEncoding(first, declared);
    if ('refuse' in sniffed) throw encodingError(sniffed.refuse, 1);
    const enc = sniffed.encoding;
    if (enc === 'windows-1252') ({ step, end } = windows1252());
    else {
      const decoder = new TextDecoder(enc, { fatal: true, ignoreBOM: true });
      const unit = enc === 'utf-8' ? 1 : 2;
      let line = 1;
      step = (chunk) => {
        try {
          const text = decoder.decode(chunk, { stream: true });
          line += linesIn(chunk, unit, enc === 'utf-16be');
          return text;
        } catch {
          throw new BadBytes(enc, line);
        }
      };
      end = () => {
        try {
          return decoder.decode();
        } catch {
          throw new BadBytes(enc, line);
        }
      };
    }
    return first.subarray(sniffed.bom);
  };

  const fail = (e: unknown, cb: (e: Error) => void) => {
    if (!(e instanceof BadBytes)) return cb(e as Error);
    if (e.encoding === 'utf-8') {
      // Find the exact line only on this rare path: TextDecoder does not say where it failed.
      void firstInvalidUtf8Line(file).then(
        (line) => cb(encodingError('bytes that are not UTF-8; was it saved as Windows-1252 or Latin-1?', line)),
        (err: unknown) => cb(err as Error),
      );
      return;
    }
    cb(encodingError(`bytes that are not ${e.encoding === 'utf-16le' ? 'UTF-16LE' : 'UTF-16BE'} (an odd number of bytes, or half of a character pair)`, e.line));
  };

  return new Transform({
    decodeStrings: true,
    transform(chunk: Buffer, _enc, cb) {
      try {
        if (head) {
          // The mark may arrive split across reads: wait for four bytes.
          head = Buffer.concat([head, chunk]);
          if (head.length < 4) return cb();
          chunk = start(head);
          head = undefined;
        }
        cb(null, step!(chunk));
      } catch (e) {
        fail(e, cb);
      }
    },
    flush(cb) {
      try {
        if (head) {
          const rest = start(head);
          head = undefined;
          const text = step!(rest);
          if (text) this.push(text);
        }
        const rest = end!();
        if (rest) this.push(rest);
        cb();
      } catch (e) {
        fail(e, cb);
      }
    },
  });

  /**
   * Windows-1252 decodes any bytes, so a UTF-8 file under this pipeline would be read as
   * "ZoÃ«" without complaint. Valid UTF-8 with multi-byte sequences is, in practice, never a
   * 1252 file (that needs an accented capital followed by the right symbol, every time): refuse.
   */
  function windows1252(): { step: (chunk: Buffer) => string; end: () => string } {
    const decoder = iconv.getDecoder('win1252');
    const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    let stillUtf8 = true;
    let firstHighLine: number | undefined;
    let line = 1;
    return {
      step(chunk) {
        if (stillUtf8) {
          try {
            utf8.decode(chunk, { stream: true });
          } catch {
            stillUtf8 = false;
          }
          if (firstHighLine === undefined) {
            const i = chunk.findIndex((b) => b >= 0x80);
            if (i >= 0) firstHighLine = line + linesIn(chunk, 1, false, i);
          }
          line += linesIn(chunk, 1, false);
        }
        return decoder.write(chunk);
      },
      end() {
        if (stillUtf8) {
          try {
            utf8.decode();
          } catch {
            stillUtf8 = false;
          }
        }
        if (stillUtf8 && firstHighLine !== undefined) {
          throw encodingError(
            'the file is UTF-8 (letters written as multi-byte sequences), but the pipeline says windows-1252: read that way its names would be garbled; set file.encoding: utf-8, or save the file as Windows-1252',
            firstHighLine,
          );
        }
        return decoder.end() ?? '';
      },
    };
  }
}

class BadBytes extends Error {
  readonly encoding: Encoding;
  readonly line: number;
  constructor(encoding: Encoding, line: number) {
    super('bad bytes');
    this.encoding = encoding;
    this.line = line;
  }
}

const STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** 1-based line of the first byte sequence that is not valid UTF-8, or undefined. */
export async function firstInvalidUtf8Line(file: string): Promise<number | undefined> {
  const buf = await fs.readFile(file);
  let line = 1;
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!;
    if (b === 0x0a) line++;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 0) return line;
    for (let k = 1; k < len; k++) if (((buf[i + k] ?? 0) & 0xc0) !== 0x80) return line;
    if (len > 1) {
      try {
        STRICT.decode(buf.subarray(i, i + len));
      } catch {
        return line; // overlong form or surrogate
      }
    }
    i += len;
  }
  return undefined;
}

/**
 * `a` piped into `b`, returning `b`. Unlike `pipe`, an error in either stream destroys both and
 * surfaces on `b`, so whoever consumes `b` sees a read or decode failure instead of hanging.
 */
export function chain<T extends NodeJS.ReadWriteStream>(a: NodeJS.ReadableStream, b: T): T {
  pipeline(a, b, () => {
    // Errors are delivered to b's consumer; nothing more to do here.
  });
  return b;
}
