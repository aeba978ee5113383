/**
 * The lines of an index file prepared (prepare.ts), in file order, a chunk at a time. On a worker
 * thread for a large file: parsing, checking, hashing and normalising the next lines then overlap
 * the loader's writing of the batch before, where in one thread they took turns. A small file is
 * prepared in this thread, which a worker's start-up would only slow.
 */
import { Worker } from 'node:worker_threads';
import { prepareLine, type PreparedLine, type SourceLine } from './prepare.ts';

/** Lines a worker is sent at a time: a message's fixed cost spread thin, a chunk still small. */
const CHUNK_LINES = 1000;
/** Chunks sent and not yet taken back: the worker never waits for the next, and memory stays bounded. */
const IN_FLIGHT = 8;

export async function* preparedLines(source: AsyncIterable<SourceLine>, o: { normalise: boolean; worker: boolean }): AsyncGenerator<PreparedLine[]> {
  if (!o.worker) {
    for await (const chunk of chunks(source)) yield chunk.map((l) => prepareLine(l, o.normalise));
    return;
  }
  const worker = new Worker(new URL('./prepare-worker.ts', import.meta.url));
  // The worker answers chunks in the order it was sent them.
  const waiting: { resolve: (out: PreparedLine[]) => void; reject: (e: unknown) => void }[] = [];
  let failed: unknown;
  const fail = (e: unknown) => {
    failed ??= e;
    for (const w of waiting.splice(0)) w.reject(failed);
  };
  worker.on('message', (out: PreparedLine[]) => waiting.shift()?.resolve(out));
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the worker preparing index lines exited (code ${code})`)));
  const send = (lines: SourceLine[]): Promise<PreparedLine[]> => {
    const answer =
      failed === undefined
        ? new Promise<PreparedLine[]>((resolve, reject) => {
            waiting.push({ resolve, reject });
            worker.postMessage({ lines, normalise: o.normalise });
          })
        : Promise.reject(failed);
    // Awaited in turn below; until then its failure must not count as unhandled.
    answer.catch(() => {});
    return answer;
  };
  const sent: Promise<PreparedLine[]>[] = [];
  try {
    for await (const chunk of chunks(source)) {
      sent.push(send(chunk));
      if (sent.length >= IN_FLIGHT) yield await sent.shift()!;
    }
    while (sent.length > 0) yield await sent.shift()!;
  } finally {
    worker.removeAllListeners('exit');
    await worker.terminate();
  }
}

async function* chunks(source: AsyncIterable<SourceLine>): AsyncGenerator<SourceLine[]> {
  let chunk: SourceLine[] = [];
  for await (const l of source) {
    chunk.push(l);
    if (chunk.length >= CHUNK_LINES) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}
