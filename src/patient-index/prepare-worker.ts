/** The worker thread of prepared-lines.ts: prepares each chunk of lines it is sent, and sends it back. */
import { parentPort } from 'node:worker_threads';
import { prepareLine, type SourceLine } from './prepare.ts';

parentPort!.on('message', ({ lines, normalise }: { lines: SourceLine[]; normalise: boolean }) => {
  parentPort!.postMessage(lines.map((l) => prepareLine(l, normalise)));
});
