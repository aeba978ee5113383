/** Progress of `match`: the real CLI off a terminal prints plain lines on stderr; stdout stays the summary. */
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressReporter } from '../src/cli/progress.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile, type RunProgress } from '../src/run/index.ts';
import { quietLog, runCli as cli, tempDb, tempDir } from './helpers.ts';

const ROSTER = 'samples/rosters/district7-fall.csv'; // 1200 rows, 113453 bytes (a BOM and CRLF lines)


/** A stream that keeps what is written; `tty` makes it look like a terminal to cli-progress. */
function sink(tty = false): { stream: Writable & { isTTY?: boolean }; text: () => string } {
  let out = '';
  const stream = Object.assign(
    new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    }),
    tty ? { isTTY: true, columns: 120 } : {},
  );
  return { stream, text: () => out };
}

describe('match progress', () => {
  it('runFile reports rows and bytes after each chunk', async () => {
    const { db, dir } = await tempDb('postgres');
    const seen: RunProgress[] = [];
    const out = await runFile(db, quietLog, {
      file: ROSTER,
      pipeline: await loadPartnerPipeline('pipelines', 'school-district-7'),
      outDir: path.join(dir, 'out'),
      exportsDir: path.join(dir, 'exports'),
      onProgress: (p) => seen.push(p),
    });
    expect(out.kind).toBe('completed');
    expect(seen.map((p) => p.rows)).toEqual([500, 1000, 1200]);
    expect(seen.every((p) => p.bytesTotal === 113_453)).toBe(true);
    // Bytes grow with the rows and end at the file's end (less its 3-byte BOM).
    expect(seen[0]!.bytesRead).toBeGreaterThan(0.35 * 113_453);
    expect(seen[0]!.bytesRead).toBeLessThan(seen[1]!.bytesRead);
    expect(seen[1]!.bytesRead).toBeLessThan(seen[2]!.bytesRead);
    expect(seen[2]!.bytesRead).toBe(113_453 - 3);
  }, 60_000);

  it('off a terminal, the CLI prints plain progress lines on stderr and keeps stdout for the summary', async () => {
    const dir = await tempDir();
    const env = { ROSTERMATCH_DATA: path.join(dir, 'data') };
    // An empty patient index: every row is no_match, and the progress is the same.
    const args = ['match', ROSTER, '--partner', 'school-district-7', '--out', path.join(dir, 'out')];

    const text = await cli(args, env);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stderr.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^progress: \d{1,2}% (500|1000|1200) rows \d+ rows\/s$/);
    expect(lines[0]).toMatch(/^progress: 4\d% 500 rows /);
    expect(lines.at(-1)).toMatch(/^progress: 100% 1200 rows \d+ rows\/s, done in \d+\.\d s$/);
    expect(text.stdout).toMatch(/^run [0-9a-f-]+: 1200 rows from district7-fall\.csv/);
    expect(text.stdout).not.toMatch(/progress/);

    const json = await cli([...args, '--force', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ rows: 1200, partner: 'school-district-7' });
    expect(json.stderr).toMatch(/^progress: 100% 1200 rows .*, done in /m);

    const quiet = await cli([...args, '--force', '--no-progress'], env);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('');

    // A duplicate has no rows to show: no progress line at all.
    const dup = await cli(args, env);
    expect(dup.stdout).toMatch(/^duplicate of run /);
    expect(dup.stderr).toBe('');
  }, 120_000);

  it('plain lines come at most every 2 s, or when the run crosses a 10% step, then a final line', () => {
    const { stream, text } = sink();
    let t = 0;
    const p = progressReporter({ stream, tty: false, now: () => t });
    const at = (ms: number, pct: number, rows: number) => {
      t = ms;
      p.update({ rows, bytesRead: pct * 10, bytesTotal: 1000 });
    };
    at(500, 3, 30); // under 10%, under 2 s: nothing
    at(1000, 12, 120); // crossed 10%
    at(1500, 15, 150); // nothing
    at(3600, 17, 170); // 2 s since the last line
    at(3700, 18, 180); // nothing
    at(4000, 35, 350); // crossed 20% and 30%: one line
    at(9000, 100, 1000); // the final line says 100%
    t = 10_000;
    p.done();
    p.done();
    expect(text()).toBe(
      ['progress: 12% 120 rows 120 rows/s', 'progress: 17% 170 rows 47 rows/s', 'progress: 35% 350 rows 88 rows/s', 'progress: 100% 1000 rows 100 rows/s, done in 10.0 s', ''].join('\n'),
    );
  });

  it('stop() after a failure prints no final line; on a terminal it is a bar with rows, rate and ETA', () => {
    const plain = sink();
    const p = progressReporter({ stream: plain.stream, tty: false });
    p.stop();
    p.done();
    expect(plain.text()).toBe('');

    const tty = sink(true);
    const bar = progressReporter({ stream: tty.stream, tty: true });
    bar.update({ rows: 500, bytesRead: 400, bytesTotal: 1000 });
    bar.update({ rows: 1000, bytesRead: 990, bytesTotal: 1000 });
    bar.done();
    expect(tty.text()).toMatch(/matching .* 40% \| 500 rows \| \d+ rows\/s \| ETA /);
    expect(tty.text()).toMatch(/matching .* 100% \| 1000 rows \| \d+ rows\/s \| ETA /);
  });
});
