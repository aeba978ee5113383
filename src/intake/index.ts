/**
 * Intake: fingerprint a dropped file and turn its bytes into text in the encoding its pipeline
 * declares. A UTF-8 file with bytes that are not UTF-8 is refused with the line they are on,
 * rather than matched with mangled names.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline, Transform, type Readable } from 'node:stream';
import { pipeline as pump } from 'node:stream/promises';
import iconv from 'iconv-lite';
import { RostermatchError } from '../errors/index.ts';

export type Encoding = 'utf-8' | 'windows-1252';

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

/** A stream of the file's text, BOM removed. Errors are RostermatchErrors naming file and line. */
export function openText(file: string, encoding: Encoding, label = file): Readable {
  const decoder = encoding === 'windows-1252' ? (iconv.decodeStream('win1252') as unknown as Transform) : strictUtf8(file, label);
  return chain(createReadStream(file), decoder);
}

function strictUtf8(file: string, label: string): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const fail = (cb: (e: Error) => void) => {
    // Find the line only on this rare path: TextDecoder does not say where it failed.
    void firstInvalidUtf8Line(file).then(
      (line) => cb(new RostermatchError('FILE_ENCODING', 'bytes that are not UTF-8; was it saved as Windows-1252 or Latin-1?', { file: label, ...(line ? { line } : {}) })),
      (e: unknown) => cb(e as Error),
    );
  };
  return new Transform({
    readableObjectMode: false,
    decodeStrings: true,
    transform(chunk: Buffer, _enc, cb) {
      try {
        cb(null, decoder.decode(chunk, { stream: true }));
      } catch {
        fail(cb);
      }
    },
    flush(cb) {
      try {
        const rest = decoder.decode();
        if (rest) this.push(rest);
        cb();
      } catch {
        fail(cb);
      }
    },
  });
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
