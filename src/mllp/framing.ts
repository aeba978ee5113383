/**
 * MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): a message travels as
 * 0x0B <message bytes> 0x1C 0x0D. The decoder takes TCP chunks as they come — a frame split over
 * many chunks, several frames in one — and hands back whole frames only. Bytes outside a frame
 * (keep-alive newlines, noise) are ignored. Pure: no sockets.
 */

export const START_BLOCK = 0x0b;
export const END_BLOCK = 0x1c;
export const CARRIAGE_RETURN = 0x0d;

/** A frame longer than the decoder takes: the connection is closed, the partial frame dropped. */
export class FrameTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`an MLLP frame is longer than ${limit} bytes`);
    this.name = 'FrameTooLargeError';
    this.limit = limit;
  }
}

/** One message framed for the wire. */
export function frame(message: Buffer | string): Buffer {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return Buffer.concat([Buffer.of(START_BLOCK), body, Buffer.of(END_BLOCK, CARRIAGE_RETURN)]);
}

/**
 * Splits a byte stream into frames. A frame ends at 0x1C; the 0x0D after it (which may arrive in
 * the next chunk) is outside any frame and so ignored like any other byte there. A 0x0B inside a
 * frame starts it again: the sender gave up on the message it was writing.
 */
export class FrameDecoder {
  readonly #maxBytes: number;
  /** The current frame's chunks, while inside one. */
  #parts: Buffer[] | undefined;
  #length = 0;
  /** Frames started again by a 0x0B before their end (for the log). */
  restarted = 0;

  /** @param maxBytes the longest message taken. @defaultValue 1 MiB */
  constructor(maxBytes = 1024 * 1024) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of a frame begun and not ended (a connection that drops now loses them). */
  get partialBytes(): number {
    return this.#parts ? this.#length : 0;
  }

  /** The frames this chunk completes, in order. Throws FrameTooLargeError past the limit. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (!this.#parts) {
        const start = chunk.indexOf(START_BLOCK, i);
        if (start < 0) break;
        this.#parts = [];
        this.#length = 0;
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(END_BLOCK, i);
      const restart = chunk.indexOf(START_BLOCK, i);
      if (restart >= 0 && (end < 0 || restart < end)) {
        this.restarted++;
        this.#parts = [];
        this.#length = 0;
        i = restart + 1;
        continue;
      }
      const stop = end < 0 ? chunk.length : end;
      this.#take(chunk.subarray(i, stop));
      if (end < 0) break;
      out.push(Buffer.concat(this.#parts, this.#length));
      this.#parts = undefined;
      this.#length = 0;
      i = end + 1;
    }
    return out;
  }

  #take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#length += bytes.length;
    if (this.#length > this.#maxBytes) {
      this.#parts = undefined;
      this.#length = 0;
      throw new FrameTooLargeError(this.#maxBytes);
    }
    this.#parts!.push(bytes);
  }
}
