/**
 * The faults behind the README's daemon promises, each in real processes on real Redis and
 * PostgreSQL: serve killed with SIGKILL while matching and between recording and publishing a
 * run, PostgreSQL restarted mid-run (and down when a file arrives, and away for longer than a
 * blip), the same bytes dropped again while the first run is still in progress, uploads renamed
 * on completion (.part, .tmp), in-place uploads with pauses shorter and longer than the quiet
 * period, and ten partners dropping at once. Each run must end exactly like an uninterrupted one:
 * the same result file byte for byte, the same Group member for member, changed once, every row
 * recorded once. (A worker killed mid-run, Redis restarted empty and SIGTERM are in
 * processes.test.ts; slower and more disruptive variants are in bench/faults.ts.)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { connectRedis, QUEUE, RETRY, retryDelayMs, startWorkers } from '../src/queue/index.ts';
import { openPostgres } from '../src/store/index.ts';
import {
  chunksDone,
  deployment,
  expectSameAsUninterrupted as sameAs,
  onCleanup,
  ownPostgres,
  REDIS_URL,
  runState,
  SAMPLE,
  testPrefix,
  uninterrupted,
  waitFor,
  type Deployment,
  type Proc,
  type Reference,
} from './daemon-helpers.ts';
import { quietLog, runCli, tempDir, tempPgDatabase } from './helpers.ts';

const FILE = path.basename(SAMPLE.roster);
let reference: Reference;
beforeAll(async () => {
  [reference] = (await uninterrupted([{ file: SAMPLE.roster, pipelineFile: `pipelines/${SAMPLE.partner}.yaml` }])) as [Reference];
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (f: string) => fs.access(f).then(() => true, () => false);
const completed = (d: Deployment, name = FILE, timeoutMs = 120_000) =>
  waitFor(`${name} to complete`, async () => (await runState(d.db, name))?.state === 'completed', timeoutMs);
const healthUrl = (p: Proc) => /health at (\S+)\)/.exec(p.output())?.[1];
const runCount = async (d: Deployment) => (await d.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run')).rows[0]!.n;

describe('serve killed with SIGKILL', () => {
  it('while chunks are matching: a new serve takes over the chunks and finishes the run as if nothing happened', async () => {
    const d = await deployment();
    const first = d.serve(['--concurrency', '2']);
    await first.waitForOutput(/health at/);
    await d.drop_();
    await waitFor('some chunks', async () => (await chunksDone(d.db)) >= 4);
    first.child.kill('SIGKILL');
    await first.exited;
    expect((await runState(d.db, FILE))?.state).toBe('matching');
    const second = d.serve(['--concurrency', '2']);
    await second.waitForOutput(/health at/);
    await completed(d);
    await sameAs(d, reference);
    expect(await chunksDone(d.db)).toBe(SAMPLE.chunks);
  });

  it('after recording the run and before publishing it: a new serve writes the result file, summary and export from the record', async () => {
    const d = await deployment({ chunkDelayMs: 0, env: { ROSTERMATCH_TEST_FINALISE_DELAY_MS: '60000' } });
    const first = d.serve(['--concurrency', '2']);
    await first.waitForOutput(/health at/);
    await d.drop_();
    // Recorded (Group changed, run completed) but nothing published yet: the worst moment to die.
    await completed(d);
    expect(await exists(path.join(d.outbound(), 'district7-fall.results.csv'))).toBe(false);
    first.child.kill('SIGKILL');
    await first.exited;
    d.env.ROSTERMATCH_TEST_FINALISE_DELAY_MS = '0';
    const second = d.serve(['--concurrency', '2']);
    await second.waitForOutput(/health at/);
    await sameAs(d, reference);
    const { rows } = await d.db.query<{ n: number }>('SELECT count(*)::int AS n FROM export WHERE group_id = $1', [SAMPLE.group]);
    expect(rows[0]!.n).toBe(1);
    await waitFor('the original archived', async () => (await fs.readdir(path.join(d.env.ROSTERMATCH_DATA!, 'archive', SAMPLE.partner)).catch(() => [])).length === 1);
    expect(await fs.readdir(d.inbound())).toEqual([]);
    // The roster rows kept for the workers are gone once the run is done, as after any run.
    const input = await waitFor('run_input cleared', async () => (await d.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_input')).rows[0]!.n === 0, 10_000).catch(() => false);
    expect(input).toBe(true);
  });
});

describe('PostgreSQL restarted mid-run', () => {
  it('serve and a worker wait for it, /healthz says the database is down meanwhile, and the run completes identically', async () => {
    const server = await ownPostgres();
    const d = await deployment({ databaseUrl: server.url });
    const serve = d.serve(['--concurrency', '0']);
    await serve.waitForOutput(/health at/);
    const worker = d.worker(['--concurrency', '2']);
    await worker.waitForOutput(/taking match jobs/);
    await d.drop_();
    await waitFor('some chunks', async () => (await chunksDone(d.db)) >= 4);
    await server.stop('fast');
    const health = healthUrl(serve)!;
    const down = await waitFor('/healthz to report the database', async () => {
      const res = await fetch(health);
      const body = (await res.json()) as { database: string };
      return body.database !== 'ok' && { status: res.status, body };
    });
    expect(down).toMatchObject({ status: 503, body: { status: 'degraded', database: 'down', redis: 'ok', watcher: 'ok' } });
    await sleep(3000);
    expect(serve.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
    await server.start();
    await completed(d);
    await sameAs(d, reference);
    expect((await fetch(health)).status).toBe(200);
  });
});

describe('a file dropped while PostgreSQL is down', () => {
  it('waits in inbound and is taken, once, when the database is back', async () => {
    const server = await ownPostgres();
    const d = await deployment({ databaseUrl: server.url, chunkDelayMs: 0 });
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    await server.stop('fast');
    await d.drop_();
    await serve.waitForOutput(/intake of a dropped file failed/, 10_000);
    await sleep(1000);
    expect(await fs.readdir(d.inbound())).toEqual([FILE]);
    await server.start();
    await completed(d);
    await sameAs(d, reference);
  });
});

describe('a database that stays away', () => {
  it('keeps a chunk waiting, retried at most 30 s apart for over 15 minutes, instead of failing the run', async () => {
    const delays = Array.from({ length: RETRY.attempts - 1 }, (_, i) => retryDelayMs(i + 1));
    expect(Math.max(...delays)).toBe(30_000);
    expect(delays.reduce((a, b) => a + b, 0)).toBeGreaterThan(15 * 60_000);
    // A real worker whose database is gone (its pool closed): the job is delayed for another attempt, not failed.
    const db = await openPostgres(await tempPgDatabase());
    await db.close();
    const prefix = testPrefix();
    const workers = startWorkers({ db, log: quietLog, workerId: 'test:1' }, { redisUrl: REDIS_URL, prefix, roles: ['match'] });
    const connection = connectRedis(REDIS_URL);
    const queue = new Queue(QUEUE.match, { connection, prefix });
    onCleanup(async () => {
      await workers.close(1000);
      await queue.close();
      connection.disconnect();
    });
    const job = await queue.add('match', { runId: 'r', chunk: 0, from: 0, to: 1 }, { jobId: 'chunk.r.0', ...RETRY });
    const seen = await waitFor('a retry', async () => {
      const j = await queue.getJob(job.id!);
      return j && j.attemptsMade >= 2 && (await j.getState()) === 'delayed' && j;
    }, 20_000);
    expect(seen.opts.attempts).toBe(RETRY.attempts);
    expect(seen.failedReason).toMatch(/pool/i);
  });
});

describe('the same bytes dropped again while the first run is in progress', () => {
  it('under the same name and under another name: one run, a duplicate note for each, the run finishes as if dropped once', async () => {
    const d = await deployment();
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    await d.drop_();
    await waitFor('the run to be matching', async () => (await runState(d.db, FILE))?.state === 'matching');
    const run = (await runState(d.db, FILE))!;
    await d.drop_();
    await d.drop_({ as: 'district7-fall-copy.csv' });
    for (const note of ['district7-fall.csv.duplicate.txt', 'district7-fall-copy.csv.duplicate.txt']) {
      const file = path.join(d.outbound(), note);
      await waitFor(note, () => exists(file));
      expect(await fs.readFile(file, 'utf8')).toMatch(new RegExp(`duplicate of run ${run.id}[^]*That run is matching`));
    }
    expect((await runState(d.db, FILE))?.state).toBe('matching');
    await completed(d);
    await sameAs(d, reference);
    expect(await runCount(d)).toBe(1);
    expect(await exists(path.join(d.outbound(), 'district7-fall-copy.results.csv'))).toBe(false);
    expect(await fs.readdir(d.inbound())).toEqual([]);
  });
});

describe('uploads', () => {
  it.each(['.part', '.tmp'])('a %s upload waits for its rename, then is taken once, whole', async (suffix) => {
    const d = await deployment({ chunkDelayMs: 0 });
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    const temp = path.join(d.inbound(), `${FILE}${suffix}`);
    const text = await fs.readFile(SAMPLE.roster);
    await fs.writeFile(temp, text.subarray(0, text.length >> 1));
    // Still longer than the quiet period (300 ms here) and several listings.
    await sleep(1500);
    await fs.appendFile(temp, text.subarray(text.length >> 1));
    await sleep(1000);
    expect(await fs.readdir(d.inbound())).toEqual([`${FILE}${suffix}`]);
    expect(await runCount(d)).toBe(0);
    await fs.rename(temp, path.join(d.inbound(), FILE));
    await completed(d);
    await sameAs(d, reference);
  });

  it('serve waits 30 s of stillness by default before taking a file written in place', async () => {
    const help = await runCli(['serve', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/--quiet-ms <n> +a file written in place is complete after its size and mtime stay still this long .*\(default: 30000\)/);
  });

  it('a file written in place with 3 s pauses is taken once, whole, when the quiet period is longer than the pauses', async () => {
    const d = await deployment({ chunkDelayMs: 0, quietMs: 5000 });
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    const text = await fs.readFile(SAMPLE.roster);
    // OpenSSH style: the final name from the first byte, the rest arriving in pieces.
    const h = await fs.open(path.join(d.inbound(), FILE), 'w');
    const pieces = 3;
    for (let i = 0; i < pieces; i++) {
      await h.write(text.subarray(Math.floor((i * text.length) / pieces), Math.floor(((i + 1) * text.length) / pieces)));
      await h.sync();
      if (i < pieces - 1) {
        await sleep(3000);
        expect(await runCount(d), 'nothing taken during a 3 s pause').toBe(0);
      }
    }
    await h.close();
    await completed(d);
    await sameAs(d, reference);
  });

  it('a file written in place that pauses longer than the quiet period is taken half-written, but never applied: it is handed back and taken again whole', async () => {
    // A 1 s quiet period; the writer resumes just after the half file was taken, before its run (0.4 s a chunk) would be recorded.
    const d = await deployment({ quietMs: 1000 });
    const serve = d.serve(['--concurrency', '2']);
    await serve.waitForOutput(/health at/);
    const lines = (await fs.readFile(SAMPLE.roster, 'utf8')).split(/(?<=\n)/);
    // The pause falls on a line boundary: the half file parses cleanly, the worst case.
    const h = await fs.open(path.join(d.inbound(), FILE), 'w');
    await h.write(lines.slice(0, 400).join(''));
    await h.sync();
    await waitFor('the half file to be taken', async () => (await runCount(d)) === 1, 10_000);
    await sleep(300);
    await h.write(lines.slice(400).join(''));
    await h.close();
    await waitFor('the half file\'s run to be failed', async () => (await d.db.query<{ error: { code: string } | null }>(`SELECT error FROM run WHERE state = 'failed'`)).rows[0]?.error?.code === 'FILE_CHANGED', 30_000);
    await completed(d);
    await sameAs(d, reference, { failedRuns: 1 });
    expect(serve.output()).toMatch(/file changed after it was taken; handed back to inbound/);
  });
});

describe('ten partners dropping at once', () => {
  const N = 10;
  const partners = Array.from({ length: N }, (_, i) => `partner-${String(i + 1).padStart(2, '0')}`);
  const fileOf = (p: string) => `${p}-roster.csv`;
  const groupOf = (p: string) => `${p}-students`;

  /** Ten partners, each with its own pipeline, Group and a tenth of the sample roster. */
  async function tenPartners(dir: string): Promise<{ rosters: string; pipelines: string }> {
    const rosters = path.join(dir, 'rosters');
    const pipelines = path.join(dir, 'pipelines');
    await fs.mkdir(rosters, { recursive: true });
    await fs.mkdir(pipelines, { recursive: true });
    const [header, ...lines] = (await fs.readFile(SAMPLE.roster, 'utf8')).trimEnd().split('\n');
    const base = parse(await fs.readFile(`pipelines/${SAMPLE.partner}.yaml`, 'utf8')) as Record<string, any>;
    const per = Math.ceil(lines.length / N);
    for (const [i, p] of partners.entries()) {
      await fs.writeFile(path.join(rosters, fileOf(p)), `${[header, ...lines.slice(i * per, (i + 1) * per)].join('\n')}\n`);
      const pipeline = { ...base, partner: p, displayName: `Partner ${i + 1}`, group: { ...base.group, id: groupOf(p), name: `Partner ${i + 1} students` } };
      await fs.writeFile(path.join(pipelines, `${p}.yaml`), stringify(pipeline));
    }
    return { rosters, pipelines };
  }

  it('each partner gets its own result file and Group, identical to its file run alone inline, with no row of another partner', async () => {
    const { rosters, pipelines } = await tenPartners(await tempDir());
    const refs = await uninterrupted(partners.map((p) => ({ file: path.join(rosters, fileOf(p)), pipelineFile: path.join(pipelines, `${p}.yaml`) })));
    const d = await deployment({ chunkDelayMs: 0 });
    for (const p of partners) await fs.copyFile(path.join(pipelines, `${p}.yaml`), path.join(d.pipelines, `${p}.yaml`));
    for (const p of partners) await fs.mkdir(d.inbound(p), { recursive: true });
    const serve = d.serve(['--concurrency', '2']);
    const worker = d.worker(['--concurrency', '2']);
    await Promise.all([serve.waitForOutput(/health at/), worker.waitForOutput(/taking match jobs/)]);
    await Promise.all(partners.map((p) => d.drop_({ file: path.join(rosters, fileOf(p)), partner: p })));
    await waitFor('every run to complete', async () => {
      const { rows } = await d.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM run WHERE state = 'completed'`);
      return rows[0]!.n === N;
    }, 120_000);
    for (const [i, p] of partners.entries()) await sameAs(d, refs[i]!, { fileName: fileOf(p), partner: p, group: groupOf(p) });
    // No row or Group change crossed partners: every run's rows, and every Group's events, are its own partner's.
    const { rows: crossed } = await d.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM group_event e JOIN run r ON r.id = e.run_id JOIN partner_group g ON g.id = e.group_id WHERE g.partner <> r.partner OR r.group_id <> e.group_id`,
    );
    expect(crossed[0]!.n).toBe(0);
    const { rows: total } = await d.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_row');
    expect(total[0]!.n).toBe(SAMPLE.rows);
    for (const p of partners) expect((await fs.readdir(d.outbound(p))).sort()).toEqual([`${p}-roster.results.csv`, `${p}-roster.summary.json`]);
  });
});
