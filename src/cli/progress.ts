/**
 * Progress of an inline run on stderr, so stdout stays the run summary (and `--json` stays
 * parseable): a bar on a terminal, plain lines otherwise (CI logs, pipes), at most one every
 * couple of seconds or per 10% step, and a final line.
 */
import cliProgress from 'cli-progress';
import type { RunProgress } from '../run/index.ts';

export interface ProgressReporter {
  /** After each chunk of rows. */
  update(p: RunProgress): void;
  /** The run is through: the bar at 100%, or the final line. Nothing when there was no progress. */
  done(): void;
  /** Stops without a final line (the run failed); idempotent, and harmless after done(). */
  stop(): void;
}

export interface ProgressOptions {
  /** @defaultValue process.stderr */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** A bar (true) or plain lines (false). @defaultValue whether the stream is a terminal */
  tty?: boolean;
  /** Plain lines: one at most this often, unless the run crosses a 10% step. @defaultValue 2000 */
  everyMs?: number;
  /** @defaultValue performance.now */
  now?: () => number;
}

/** Percent of the file's bytes read, 0–100. */
const percent = (p: RunProgress) => (p.bytesTotal > 0 ? Math.min(100, Math.floor((100 * p.bytesRead) / p.bytesTotal)) : 0);

export function progressReporter(o: ProgressOptions = {}): ProgressReporter {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? (() => performance.now());
  const start = now();
  const rate = (rows: number) => {
    const s = (now() - start) / 1000;
    return s > 0 ? Math.round(rows / s) : 0;
  };
  return (o.tty ?? !!stream.isTTY) ? barReporter(stream, rate) : lineReporter(stream, rate, now, start, o.everyMs ?? 2000);
}

function barReporter(stream: NodeJS.WritableStream, rate: (rows: number) => number): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  let last: RunProgress | undefined;
  let stopped = false;
  const payload = (p: RunProgress) => ({ rows: p.rows, rate: rate(p.rows) });
  const stop = () => {
    if (stopped) return;
    stopped = true;
    bar?.stop();
  };
  return {
    update(p) {
      if (stopped) return;
      last = p;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { stream, format: 'matching {bar} {percentage}% | {rows} rows | {rate} rows/s | ETA {eta_formatted}', barsize: 30, hideCursor: null, etaBuffer: 20 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.bytesTotal, p.bytesRead, payload(p));
      } else bar.update(p.bytesRead, payload(p));
    },
    done() {
      if (bar && last && !stopped) bar.update(last.bytesTotal, payload(last));
      stop();
    },
    stop,
  };
}

function lineReporter(stream: NodeJS.WritableStream, rate: (rows: number) => number, now: () => number, start: number, everyMs: number): ProgressReporter {
  let last: RunProgress | undefined;
  let lastAt = start;
  let lastStep = 0;
  let stopped = false;
  const line = (pct: number, p: RunProgress, tail = '') => stream.write(`progress: ${pct}% ${p.rows} rows ${rate(p.rows)} rows/s${tail}\n`);
  return {
    update(p) {
      if (stopped) return;
      last = p;
      const pct = percent(p);
      const step = Math.floor(pct / 10);
      const t = now();
      // The final line says 100%: do not say it twice.
      if (pct < 100 && (step > lastStep || t - lastAt >= everyMs)) {
        line(pct, p);
        lastAt = t;
        lastStep = step;
      }
    },
    done() {
      if (!stopped && last) line(100, last, `, done in ${((now() - start) / 1000).toFixed(1)} s`);
      stopped = true;
    },
    stop() {
      stopped = true;
    },
  };
}
