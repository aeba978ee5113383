/**
 * The daemon in-process: watched drop folders, complete files only, claim and dedupe, failures,
 * health, and what Redis gets to see. Real folders, real Redis, real PGlite/PostgreSQL.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { startServe, type Service } from '../src/service/index.ts';
import { groupMembers, openStore } from '../src/store/index.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { quietLog, seedDataDir, STORES, tempDir, tempPgDatabase, writeNdjson, type StoreKind } from './helpers.ts';
import { onCleanup, ownRedis, pipelinesDir, REDIS_URL, runState, testPrefix, waitFor } from './daemon-helpers.ts';

interface Setup {
  service: Service;
  drop: string;
  data: string;
  inbound: (partner?: string) => Promise<string>;
  outbound: (partner?: string) => string;
}

async function serve(opts: { store?: StoreKind; before?: (drop: string) => Promise<void>; redisUrl?: string; log?: typeof quietLog; quietMs?: number } = {}): Promise<Setup> {
  const dir = await tempDir();
  const drop = path.join(dir, 'drop');
  const data = path.join(dir, 'data');
  const inbound = async (partner = 'test-school') => {
    const d = path.join(drop, partner, 'inbound');
    await fs.mkdir(d, { recursive: true });
    return d;
  };
  await opts.before?.(drop);
  // The index is loaded before serve starts, as an operator would: files waiting are taken at once.
  const databaseUrl = opts.store === 'postgres' ? await tempPgDatabase() : undefined;
  // The embedded store starts as a copy of the run's migrated template (seedDataDir), not from nothing.
  if (!databaseUrl) await seedDataDir(data);
  const db = await openStore({ databaseUrl, embeddedDir: path.join(data, 'db') });
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
  await db.close();
  const service = await startServe({
    dropRoot: drop,
    dataDir: data,
    pipelinesDir: await pipelinesDir(dir),
    redisUrl: opts.redisUrl ?? REDIS_URL,
    queuePrefix: testPrefix(opts.redisUrl),
    databaseUrl,
    port: 0,
    quietMs: opts.quietMs ?? 300,
    scanIntervalMs: 150,
    reconcileIntervalMs: 1000,
    log: opts.log ?? quietLog,
  });
  onCleanup(async () => {
    await service.close();
  });
  return { service, drop, data, inbound, outbound: (partner = 'test-school') => path.join(drop, partner, 'outbound') };
}

const exists = (f: string) => fs.access(f).then(() => true, () => false);
/** Recorded, and published: the result file follows the commit that completes the run. */
const completed = (s: Setup, name: string, partner = 'test-school') =>
  waitFor(`${name} to complete`, async () => (await runState(s.service.db, name))?.state === 'completed' && (await exists(path.join(s.outbound(partner), name.replace(/\.[^.]+$/, '.results.csv')))));

describe.each(STORES)('serve (%s)', (store) => {
  it('takes files that were waiting at start-up, and files in a partner folder created later', async () => {
    const s = await serve({
      store,
      before: async (drop) => {
        await fs.mkdir(path.join(drop, 'test-school', 'inbound'), { recursive: true });
        await fs.writeFile(path.join(drop, 'test-school', 'inbound', 'waiting.csv'), ROSTER);
      },
    });
    await completed(s, 'waiting.csv');
    expect(await exists(path.join(s.outbound(), 'waiting.results.csv'))).toBe(true);
    expect(await fs.readdir(await s.inbound())).toEqual([]);
    expect((await groupMembers(s.service.db, 'test-school-students')).length).toBe(6);

    const later = await s.inbound('riverside-clinic');
    await fs.writeFile(path.join(later, 'panel.csv'), 'mrn,first_name,last_name,dob\nM1,Ava,Martinez,2015-03-14\n');
    await completed(s, 'panel.csv', 'riverside-clinic');
    expect(await fs.readFile(path.join(s.outbound('riverside-clinic'), 'panel.results.csv'), 'utf8')).toMatch(/M1,matched,p-ava,/);
    // The original is archived just after the result file is published.
    const archived = await waitFor('the archived original', async () => {
      const files = await fs.readdir(path.join(s.data, 'archive', 'riverside-clinic')).catch(() => []);
      return files.length > 0 && files;
    });
    expect(archived).toHaveLength(1);
    expect(archived[0]).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{8}-panel\.csv$/);
  });
});

describe('serve', () => {
  it('rejects hidden files, symbolic links and names the pipeline does not accept, with a note, moving them out of reach', async () => {
    const s = await serve();
    const inbound = await s.inbound();
    await fs.writeFile(path.join(inbound, '.profile'), 'x');
    await fs.writeFile(path.join(inbound, 'roster.xlsx'), 'x');
    await fs.writeFile(path.join(s.drop, 'elsewhere.csv'), ROSTER);
    await fs.symlink(path.join(s.drop, 'elsewhere.csv'), path.join(inbound, 'link.csv'));
    const notes = ['.profile.rejected.txt', 'link.csv.rejected.txt', 'roster.xlsx.rejected.txt'];
    // A note is written to a temporary name and renamed: three entries may include one half written.
    await waitFor('notes', async () => (await fs.readdir(s.outbound()).catch(() => [])).filter((n) => notes.includes(n)).length === 3);
    expect((await fs.readdir(s.outbound())).sort()).toEqual(notes);
    expect(await fs.readFile(path.join(s.outbound(), 'roster.xlsx.rejected.txt'), 'utf8')).toMatch(/does not match the agreed pattern "\*\.csv"/);
    expect(await fs.readFile(path.join(s.outbound(), 'link.csv.rejected.txt'), 'utf8')).toMatch(/symbolic links are not processed/);
    expect(await fs.readdir(inbound)).toEqual([]);
    expect(await exists(path.join(s.drop, 'elsewhere.csv'))).toBe(true); // the link's target is not touched
    const { rows } = await s.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run');
    expect(rows[0]!.n).toBe(0);
  });

  it('waits for a .filepart upload to be renamed, and takes a file written slowly in place once, whole', async () => {
    const s = await serve({ quietMs: 800 });
    const inbound = await s.inbound();
    await fs.writeFile(path.join(inbound, 'a.csv.filepart'), ROSTER);
    await new Promise((r) => setTimeout(r, 1200));
    expect(await fs.readdir(inbound)).toEqual(['a.csv.filepart']);
    await fs.rename(path.join(inbound, 'a.csv.filepart'), path.join(inbound, 'a.csv'));
    await completed(s, 'a.csv');

    // OpenSSH style: the final name from the first byte, the rest arriving in pieces.
    // Five of the Group's six children, over and over: a replace file that is not held for removing most of the Group.
    const people = ROSTER.split('\r\n').slice(1, 6).map((l) => l.slice(l.indexOf(',') + 1));
    const lines = [HEADER, ...Array.from({ length: 5000 }, (_, i) => `s${i},${people[i % people.length]}`)];
    const text = `${lines.join('\n')}\n`;
    const h = await fs.open(path.join(inbound, 'slow.csv'), 'w');
    const pieces = 8;
    for (let i = 0; i < pieces; i++) {
      await h.write(text.slice(Math.floor((i * text.length) / pieces), Math.floor(((i + 1) * text.length) / pieces)));
      await h.sync();
      await new Promise((r) => setTimeout(r, 300));
    }
    await h.close();
    await completed(s, 'slow.csv');
    const { rows } = await s.service.db.query<{ n: number; row_count: number }>(`SELECT count(*)::int AS n, max(row_count) AS row_count FROM run WHERE file_name = 'slow.csv'`);
    expect(rows[0]).toEqual({ n: 1, row_count: 5000 });
    const results = (await fs.readFile(path.join(s.outbound(), 'slow.results.csv'), 'utf8')).trim().split('\r\n');
    expect(results).toHaveLength(5001);
  });

  it('treats the same bytes dropped twice as one run and tells the partner so', async () => {
    const s = await serve();
    const inbound = await s.inbound();
    await fs.writeFile(path.join(inbound, 'first.csv'), ROSTER);
    await completed(s, 'first.csv');
    const first = (await runState(s.service.db, 'first.csv'))!;
    await fs.writeFile(path.join(inbound, 'second.csv'), ROSTER);
    const note = path.join(s.outbound(), 'second.csv.duplicate.txt');
    await waitFor('duplicate note', () => exists(note));
    expect(await fs.readFile(note, 'utf8')).toMatch(new RegExp(`duplicate of run ${first.id}`));
    const { rows } = await s.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM run');
    expect(rows[0]!.n).toBe(1);
    expect(await exists(path.join(s.outbound(), 'second.results.csv'))).toBe(false);
  });

  it('fails a malformed file for good: run failed, original quarantined, an error note, the Group untouched', async () => {
    const s = await serve();
    const inbound = await s.inbound();
    await fs.writeFile(path.join(inbound, 'good.csv'), ROSTER);
    await completed(s, 'good.csv');
    await fs.writeFile(path.join(inbound, 'bad.csv'), `${HEADER}\nr1,Ava,Martinez,,2015-03-14,F,,,\nr2,"Liam,Wilson,,2016-07-02,M,,,\n`);
    const note = path.join(s.outbound(), 'bad.csv.error.txt');
    await waitFor('error note', () => exists(note));
    expect(await fs.readFile(note, 'utf8')).toMatch(/FILE_MALFORMED_CSV: a quoted cell is never closed.*\(bad\.csv, line 3, field "given"\)/);
    expect((await runState(s.service.db, 'bad.csv'))?.state).toBe('failed');
    expect(await fs.readdir(path.join(s.data, 'quarantine', 'test-school'))).toEqual([expect.stringMatching(/-bad\.csv$/)]);
    expect((await groupMembers(s.service.db, 'test-school-students')).length).toBe(6);
    expect(await exists(path.join(s.outbound(), 'bad.results.csv'))).toBe(false);
  });

  it('has the candidate index ready before the first file comes: built at start-up and kept as a snapshot', async () => {
    const s = await serve();
    await waitFor('the candidate index snapshot', () => exists(path.join(s.data, 'cache', `candidate-index-${s.service.db.storeId}.snapshot`)));
  });

  it('answers /healthz with the state of Redis, the database and the watcher, and its queue prefix', async () => {
    const s = await serve();
    const res = await fetch(`${s.service.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', redis: 'ok', database: 'ok', watcher: 'ok', queuePrefix: expect.stringMatching(/^rmtest-/) });
    expect(new URL(s.service.url).hostname).toBe('127.0.0.1');
  });

  it('keeps roster rows out of Redis: job data carries ids only', async () => {
    const s = await serve();
    await fs.writeFile(path.join(await s.inbound(), 'r.csv'), ROSTER);
    await completed(s, 'r.csv');
    const redis = new Redis(REDIS_URL);
    onCleanup(async () => redis.disconnect());
    let dump = '';
    let cursor = '0';
    const prefixes = new Set<string>();
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'rmtest-*', 'COUNT', 1000);
      cursor = next;
      for (const k of keys) {
        prefixes.add(k.split(':')[0]!);
        const type = await redis.type(k);
        if (type === 'hash') dump += JSON.stringify(await redis.hgetall(k));
        else if (type === 'string') dump += await redis.get(k);
        else if (type === 'list') dump += JSON.stringify(await redis.lrange(k, 0, -1));
        else if (type === 'zset') dump += JSON.stringify(await redis.zrange(k, '0', '-1'));
        else if (type === 'set') dump += JSON.stringify(await redis.smembers(k));
        else if (type === 'stream') dump += JSON.stringify(await redis.xrange(k, '-', '+'));
      }
    } while (cursor !== '0');
    expect(dump).toMatch(/runId/);
    for (const phi of ['Martinez', 'MARTINEZ', 'Wilson', 'WILSON', '2015-03-14', 'Quintanilla']) expect(dump).not.toContain(phi);
  });

  it('warns at start-up when Redis may evict queue keys', async () => {
    const redis = await ownRedis(['--maxmemory-policy', 'allkeys-lru']);
    let logged = '';
    const log = pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _e, cb) => ((logged += chunk.toString()), cb()) }));
    await serve({ redisUrl: redis.url, log });
    expect(logged).toMatch(/"policy":"allkeys-lru".*maxmemory-policy is not noeviction/);
  });
});
