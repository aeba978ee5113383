/**
 * Drop folders that are links, files with several names, and names too long to keep: the daemon
 * in-process on real folders with real symbolic and hard links, real Redis and real PostgreSQL.
 * No partner's files may become another partner's runs, and nothing outside a partner's own
 * folders is moved.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { moveInto } from '../src/intake/drop.ts';
import { startServe, type Service } from '../src/service/index.ts';
import { openStore } from '../src/store/index.ts';
import { INDEX, ROSTER } from './fixtures.ts';
import { tempDir, tempPgDatabase, writeNdjson } from './helpers.ts';
import { onCleanup, pipelinesDir, REDIS_URL, runState, testPrefix, waitFor } from './daemon-helpers.ts';

const PANEL = 'mrn,first_name,last_name,dob\nM1,Ava,Martinez,2015-03-14\n';

interface Setup {
  service: Service;
  dir: string;
  drop: string;
  data: string;
  logged: () => string;
  folder: (partner: string, which: 'inbound' | 'outbound') => string;
}

async function serve(before?: (drop: string, dir: string) => Promise<void>): Promise<Setup> {
  const dir = await tempDir();
  const drop = path.join(dir, 'drop');
  const data = path.join(dir, 'data');
  await fs.mkdir(drop, { recursive: true });
  await before?.(drop, dir);
  const databaseUrl = await tempPgDatabase();
  const db = await openStore({ databaseUrl, embeddedDir: '' });
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
  await db.close();
  let logged = '';
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, cb) => ((logged += chunk.toString()), cb()) }));
  const service = await startServe({
    dropRoot: drop,
    dataDir: data,
    pipelinesDir: await pipelinesDir(dir),
    redisUrl: REDIS_URL,
    queuePrefix: testPrefix(),
    databaseUrl,
    port: 0,
    quietMs: 300,
    scanIntervalMs: 150,
    reconcileIntervalMs: 1000,
    log,
  });
  onCleanup(async () => {
    await service.close();
  });
  return { service, dir, drop, data, logged: () => logged, folder: (partner, which) => path.join(drop, partner, which) };
}

const exists = (f: string) => fs.access(f).then(() => true, () => false);
const listing = (d: string) => fs.readdir(d).catch(() => [] as string[]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const runs = async (s: Setup) => (await s.service.db.query<{ partner: string; file_name: string }>('SELECT partner, file_name FROM run ORDER BY file_name')).rows;
const completed = (s: Setup, name: string, partner: string) =>
  waitFor(`${name} to complete`, async () => (await runState(s.service.db, name))?.state === 'completed' && (await exists(path.join(s.folder(partner, 'outbound'), name.replace(/\.[^.]+$/, '.results.csv')))));
/** The warnings serve logged for a refused partner folder, as { partner, problem }. */
const refusals = (s: Setup) =>
  s
    .logged()
    .split('\n')
    .filter((l) => l.includes('partner folder refused'))
    .map((l) => JSON.parse(l) as { partner: string; problem: string; level: number })
    .map((l) => ({ partner: l.partner, problem: l.problem, warn: l.level === 40 }));
const health = async (s: Setup) => {
  const res = await fetch(`${s.service.url}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('drop folders that are symbolic links', () => {
  it('never follows an inbound folder linked outside the drop root: nothing there is moved, the operator is told, and it is taken once it is a real folder', async () => {
    const s = await serve(async (drop, dir) => {
      const outside = path.join(dir, 'outside');
      await fs.mkdir(outside);
      await fs.writeFile(path.join(outside, 'a.csv'), ROSTER);
      await fs.writeFile(path.join(outside, 'b.csv'), 'not a roster');
      await fs.mkdir(path.join(drop, 'test-school'));
      await fs.symlink(outside, path.join(drop, 'test-school', 'inbound'));
    });
    const outside = path.join(s.dir, 'outside');
    await waitFor('the refusal', async () => refusals(s).length > 0);
    await sleep(1500); // ten listings
    expect(refusals(s)).toEqual([{ partner: 'test-school', problem: 'its inbound folder is a symbolic link', warn: true }]); // once, not per listing
    expect((await listing(outside)).sort()).toEqual(['a.csv', 'b.csv']);
    expect(await fs.readFile(path.join(outside, 'a.csv'), 'utf8')).toBe(ROSTER);
    expect(await exists(path.join(s.data, 'quarantine'))).toBe(false);
    expect(await exists(path.join(s.data, 'spool', 'test-school'))).toBe(false);
    expect(await listing(s.folder('test-school', 'outbound'))).toEqual([]);
    expect(await runs(s)).toEqual([]);
    expect(await health(s)).toEqual({
      status: 200,
      body: { status: 'ok', redis: 'ok', database: 'ok', watcher: 'ok', queuePrefix: expect.any(String), refusedFolders: [{ partner: 'test-school', problem: 'its inbound folder is a symbolic link' }] },
    });

    // The operator replaces the link with a real folder: the partner's drops are taken again.
    await fs.unlink(s.folder('test-school', 'inbound'));
    await fs.mkdir(s.folder('test-school', 'inbound'));
    await fs.writeFile(path.join(s.folder('test-school', 'inbound'), 'fall.csv'), ROSTER);
    await completed(s, 'fall.csv', 'test-school');
    expect((await health(s)).body).toEqual({ status: 'ok', redis: 'ok', database: 'ok', watcher: 'ok', queuePrefix: expect.any(String) });
    expect(s.logged()).toMatch(/"partner":"test-school".*partner folder usable again/);
    expect((await listing(outside)).sort()).toEqual(['a.csv', 'b.csv']);
  });

  it('never makes another partner\'s files runs of the partner whose inbound, outbound or partner folder links to them', async () => {
    const s = await serve(async (drop) => {
      // The victim: a real partner with a file waiting.
      await fs.mkdir(path.join(drop, 'riverside-clinic', 'inbound'), { recursive: true });
      await fs.mkdir(path.join(drop, 'riverside-clinic', 'outbound'), { recursive: true });
      await fs.writeFile(path.join(drop, 'riverside-clinic', 'inbound', 'panel.csv'), PANEL);
      // test-school's inbound is riverside's; evil-clinic's whole folder is riverside's.
      await fs.mkdir(path.join(drop, 'test-school'));
      await fs.symlink(path.join(drop, 'riverside-clinic', 'inbound'), path.join(drop, 'test-school', 'inbound'));
      await fs.symlink(path.join(drop, 'riverside-clinic'), path.join(drop, 'evil-clinic'));
      // school-district-7 would have its results written into riverside's outbound.
      await fs.mkdir(path.join(drop, 'school-district-7', 'inbound'), { recursive: true });
      await fs.writeFile(path.join(drop, 'school-district-7', 'inbound', 'district.csv'), ROSTER);
      await fs.symlink(path.join(drop, 'riverside-clinic', 'outbound'), path.join(drop, 'school-district-7', 'outbound'));
    });
    await completed(s, 'panel.csv', 'riverside-clinic');
    await waitFor('three refusals', async () => refusals(s).length >= 3);
    await sleep(1000);
    expect(await runs(s)).toEqual([{ partner: 'riverside-clinic', file_name: 'panel.csv' }]);
    expect(refusals(s).sort((a, b) => a.partner.localeCompare(b.partner))).toEqual([
      { partner: 'evil-clinic', problem: 'the partner folder is a symbolic link', warn: true },
      { partner: 'school-district-7', problem: 'its outbound folder is a symbolic link', warn: true },
      { partner: 'test-school', problem: 'its inbound folder is a symbolic link', warn: true },
    ]);
    expect((await listing(s.folder('riverside-clinic', 'outbound'))).sort()).toEqual(['panel.results.csv', 'panel.summary.json']);
    expect(await listing(s.folder('school-district-7', 'inbound'))).toEqual(['district.csv']);
    expect((await health(s)).body.refusedFolders).toHaveLength(3);
  });
});

describe('files with other names', () => {
  it('refuses a file hard-linked from outside the drop root with a note, moving only its own name: the other keeps its place and bytes', async () => {
    const s = await serve();
    const outside = path.join(s.dir, 'outside.csv');
    await fs.writeFile(outside, ROSTER);
    const inbound = s.folder('test-school', 'inbound');
    await fs.mkdir(inbound, { recursive: true });
    await fs.link(outside, path.join(inbound, 'linked.csv'));
    const note = path.join(s.folder('test-school', 'outbound'), 'linked.csv.rejected.txt');
    await waitFor('the note', () => exists(note));
    expect(await fs.readFile(note, 'utf8')).toBe('linked.csv: not processed: the file has other names on the server (hard links); upload the file itself.\n');
    expect(await listing(inbound)).toEqual([]);
    expect(await fs.readFile(outside, 'utf8')).toBe(ROSTER);
    // The quarantine holds this partner's name for the file; the other name is where it was.
    const quarantined = await listing(path.join(s.data, 'quarantine', 'test-school'));
    expect(quarantined).toEqual([expect.stringMatching(/-linked\.csv$/)]);
    const [q, o] = await Promise.all([fs.stat(path.join(s.data, 'quarantine', 'test-school', quarantined[0]!)), fs.stat(outside)]);
    expect({ same: q.ino === o.ino, links: o.nlink }).toEqual({ same: true, links: 2 });
    expect(await runs(s)).toEqual([]);
    expect(s.logged()).not.toContain('intake of a dropped file failed');
  });

  it('refuses both names of a file hard-linked into two partners\' inbound folders, so neither becomes the other\'s run', async () => {
    const s = await serve();
    const school = s.folder('test-school', 'inbound');
    const clinic = s.folder('riverside-clinic', 'inbound');
    await fs.mkdir(school, { recursive: true });
    await fs.mkdir(clinic, { recursive: true });
    // Every listing sees two or more names: the file is linked in from a staging name, which goes last.
    const staging = path.join(s.dir, 'staging.csv');
    await fs.writeFile(staging, PANEL);
    await fs.link(staging, path.join(clinic, 'panel.csv'));
    await fs.link(staging, path.join(school, 'panel.csv'));
    await fs.unlink(staging);
    const notes = [path.join(s.folder('test-school', 'outbound'), 'panel.csv.rejected.txt'), path.join(s.folder('riverside-clinic', 'outbound'), 'panel.csv.rejected.txt')];
    await waitFor('both notes', async () => (await Promise.all(notes.map(exists))).every(Boolean));
    for (const note of notes) expect(await fs.readFile(note, 'utf8')).toMatch(/hard links/);
    expect(await runs(s)).toEqual([]);
    expect(await listing(school)).toEqual([]);
    expect(await listing(clinic)).toEqual([]);
    // The clinic uploads its file again (one name): it is the clinic's run.
    await fs.writeFile(path.join(clinic, 'panel.csv'), PANEL);
    await completed(s, 'panel.csv', 'riverside-clinic');
    expect(await runs(s)).toEqual([{ partner: 'riverside-clinic', file_name: 'panel.csv' }]);
  });
});

describe('file names too long to keep', () => {
  it('quarantines a name too long for the spool with a note, once, and takes a name at the limit', async () => {
    const s = await serve();
    const inbound = s.folder('test-school', 'inbound');
    await fs.mkdir(inbound, { recursive: true });
    const long = `${'a'.repeat(236)}.csv`; // 240 bytes: with the spool's prefix, more than a folder holds
    const longest = `${'b'.repeat(251)}.csv`; // 255 bytes, the most a folder holds
    const accented = `${'é'.repeat(100)}.csv`; // 100 characters, 204 bytes
    const atLimit = `${'c'.repeat(196)}.csv`; // 200 bytes
    for (const name of [long, longest, accented, atLimit]) await fs.writeFile(path.join(inbound, name), name === atLimit ? ROSTER : 'id\n1\n');
    const outbound = s.folder('test-school', 'outbound');
    await waitFor('three notes', async () => (await listing(outbound)).filter((n) => n.endsWith('.rejected.txt')).length === 3);
    await completed(s, atLimit, 'test-school');
    await sleep(1000); // several listings: a refused name is not tried again
    const notes = (await listing(outbound)).filter((n) => n.endsWith('.rejected.txt'));
    for (const [name, bytes] of [[long, 240], [longest, 255], [accented, 204]] as const) {
      const text = (await Promise.all(notes.map((n) => fs.readFile(path.join(outbound, n), 'utf8')))).find((t) => t.startsWith(`${name}:`));
      expect(text).toBe(`${name}: not processed: the file name is ${bytes} bytes long; names of up to 200 bytes are processed, so rename it and upload it again.\n`);
    }
    for (const n of notes) expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
    expect(await listing(inbound)).toEqual([]);
    expect(await listing(path.join(s.data, 'quarantine', 'test-school'))).toHaveLength(3);
    expect(await runs(s)).toEqual([{ partner: 'test-school', file_name: atLimit }]);
    expect(s.logged()).not.toContain('intake of a dropped file failed');
    expect(s.logged().match(/"msg":"file rejected"/g)).toHaveLength(3);
  });
});

describe('moving a refused file to another filesystem', () => {
  it('moves a symbolic link as a link, never reading its target, and a hard link by its own name only', async () => {
    // The quarantine may be on another filesystem than the drop folders: rename fails (EXDEV).
    const shm = await fs.mkdtemp('/dev/shm/rostermatch-');
    onCleanup(() => fs.rm(shm, { recursive: true, force: true }));
    const quarantine = path.join(await tempDir(), 'quarantine');
    await fs.mkdir(quarantine);
    expect((await fs.stat(shm)).dev).not.toBe((await fs.stat(quarantine)).dev);
    await fs.writeFile(path.join(shm, 'secret.csv'), ROSTER);
    await fs.symlink(path.join(shm, 'secret.csv'), path.join(shm, 'link.csv'));
    const moved = await moveInto(path.join(shm, 'link.csv'), quarantine);
    expect((await fs.lstat(moved)).isSymbolicLink()).toBe(true);
    expect(await fs.readlink(moved)).toBe(path.join(shm, 'secret.csv'));
    expect((await listing(shm)).sort()).toEqual(['secret.csv']);

    await fs.link(path.join(shm, 'secret.csv'), path.join(shm, 'other-name.csv'));
    const copied = await moveInto(path.join(shm, 'other-name.csv'), quarantine);
    expect(await fs.readFile(copied, 'utf8')).toBe(ROSTER);
    expect((await listing(shm)).sort()).toEqual(['secret.csv']);
    const left = await fs.stat(path.join(shm, 'secret.csv'));
    expect({ links: left.nlink, bytes: left.size }).toEqual({ links: 1, bytes: Buffer.byteLength(ROSTER) });
  });
});
