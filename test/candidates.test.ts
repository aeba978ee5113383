import path from 'node:path';
import fs from 'node:fs/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { blockingKeys, CandidateIndex, type CandidateSource } from '../src/match/index.ts';
import type { IndexPatient } from '../src/model/index.ts';
import { loadIndexFile, MATCH_FORM } from '../src/patient-index/index.ts';
import { candidatePatients, openPostgres, storedMatchForm, type Db, type Queryable } from '../src/store/index.ts';
import { readRoster } from '../src/parse/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { matchAll } from '../src/run/index.ts';
import { candidatesFor } from '../src/run/index.ts';
import { fhirPatient, tempDb, tempDir, tempPgDatabase, writeNdjson } from './helpers.ts';

describe('candidates from memory and from the database', () => {
  it('give exactly the same results on the sample roster', async () => {
    const { db } = await tempDb();
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
    const { rows } = await readRoster('samples/rosters/district7-fall.csv', pipeline, '2026-11-01');
    const fromDb = await matchAll(db, rows, pipeline, 'database');
    const fromMemory = await matchAll(db, rows, pipeline, 'memory');
    expect(fromMemory).toEqual(fromDb);
    expect(fromMemory.filter((r) => r.outcome === 'matched').length).toBeGreaterThan(1000);
  });

  it('reloads the in-memory copy when the index changes', async () => {
    const { db, dir } = await tempDb();
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'a.ndjson'), [fhirPatient({ id: 'a', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' })]));
    const first = await candidatesFor(db, 'memory');
    expect(first.freq.total).toBe(1);
    expect(await candidatesFor(db, 'memory')).toMatchObject({ freq: { total: 1 } });
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'b.ndjson'), [fhirPatient({ id: 'b', given: 'Liam', family: 'Wilson', birthDate: '2016-07-02' })]));
    const second = await candidatesFor(db, 'memory');
    expect(second.freq.total).toBe(2);
    const hits = await second.source.byKeys(['df:2016-07-02|ALSN']);
    expect(hits.get('df:2016-07-02|ALSN')?.map((p) => p.id)).toEqual(['b']);
  });
});

describe('a store written by an older version of normalisation and blocking', () => {
  it('is rewritten from its stored resources before it is matched against, so both candidate sources agree', async () => {
    const { db } = await tempDb();
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
    const { rows } = await readRoster('samples/rosters/district7-fall.csv', pipeline, '2026-11-01');
    const current = await matchAll(db, rows, pipeline, 'database');
    // What a store from before looked like: first-round keys only, an older form recorded.
    await db.query("DELETE FROM patient_block WHERE left(key, 3) NOT IN ('df:', 'dg:', 'ny:', 'nm:', 'id:')");
    await db.query("UPDATE patient SET street = upper(street) || ' OLD'");
    await db.query('UPDATE index_state SET match_form = 1');
    expect(await matchAll(db, rows, pipeline, 'database')).toEqual(current);
    expect(await storedMatchForm(db)).toBe(MATCH_FORM);
    expect(await matchAll(db, rows, pipeline, 'memory')).toEqual(current);
  });

  it('drops a broad block too big to say anything in the database as in memory', async () => {
    const { db, dir } = await tempDb();
    const smiths = Array.from({ length: 8 }, (_, i) => fhirPatient({ id: `s${i}`, given: 'John', family: 'Smith', birthDate: `19${50 + i}-01-01` }));
    await loadIndexFile(db, await writeNdjson(path.join(dir, 's.ndjson'), smiths));
    const key = blockingKeys({ given: 'JOHN', middle: '', family: 'SMITH', suffix: '', birthDate: '', sex: '', street: '', city: '', state: '', zip: '', phone: '' }, []).find((k) => k.startsWith('nn:'))!;
    const fromDb = await candidatesFor(db, 'database');
    const fromMemory = await candidatesFor(db, 'memory');
    expect((await db.query('SELECT count(*)::int AS n FROM patient_block WHERE key = $1', [key])).rows).toEqual([{ n: 8 }]);
    expect((await fromDb.source.byKeys([key])).size).toBe(0);
    expect((await fromMemory.source.byKeys([key])).size).toBe(0);
  });
});

/** Every key's patients from both sources, order aside (classification does not depend on it). */
async function expectSameCandidates(a: CandidateSource, b: CandidateSource, keys: readonly string[]): Promise<void> {
  const view = async (s: CandidateSource) =>
    [...(await s.byKeys([...keys]))].map(([k, ps]) => [k, ps.map((p) => JSON.stringify(p)).sort()] as const).sort((x, y) => (x[0] < y[0] ? -1 : 1));
  expect(await view(a)).toEqual(await view(b));
}

/** A copy built afresh from the database, to compare a followed or snapshot copy with. */
async function freshCopy(db: Queryable): Promise<CandidateIndex> {
  const idx = new CandidateIndex();
  for await (const page of candidatePatients(db)) for (const p of page) idx.add(p);
  return idx.seal();
}

async function allKeys(db: Queryable): Promise<string[]> {
  return (await db.query<{ key: string }>('SELECT DISTINCT key FROM patient_block')).rows.map((r) => r.key);
}

/** The sample index's first patients changed, two new ones, one merged away. */
async function writeDelta(dir: string): Promise<string> {
  const lines = (await fs.readFile('samples/iis/Patient.ndjson', 'utf8')).split('\n').slice(0, 3).map((l) => JSON.parse(l) as Record<string, unknown>);
  const [moved, renamed, merged] = lines as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
  return writeNdjson(path.join(dir, `delta-${Math.random()}.ndjson`), [
    { ...moved, birthDate: '2001-02-03' },
    { ...renamed, name: [{ family: 'Quintero', given: ['Anneliese'] }] },
    { ...merged, link: [{ type: 'replaced-by', other: { reference: 'Patient/new-1' } }] },
    fhirPatient({ id: 'new-1', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' }),
    fhirPatient({ id: 'new-2', given: 'Liam', family: 'Wilson', birthDate: '2016-07-02' }),
  ]);
}

/** A PostgreSQL store another handle (another process, as far as caches go) can open too. */
async function pgDb(): Promise<{ db: Db; dir: string; url: string }> {
  const url = await tempPgDatabase();
  const db = await openPostgres(url);
  onTestFinished(() => db.close());
  return { db, dir: await tempDir(), url };
}

/** An unchanged patient's given name rewritten behind the index's back (no new version): only a copy built afresh reads it. */
async function markBehindIndex(db: Queryable): Promise<{ id: string; given: string }> {
  const { rows } = await db.query<{ id: string; given: string }>(
    "UPDATE patient p SET given = 'NOT-RE-READ' FROM (SELECT id, given FROM patient WHERE changed_in = (SELECT min(changed_in) FROM patient) ORDER BY id LIMIT 1) o WHERE p.id = o.id RETURNING o.id, o.given",
  );
  return rows[0]!;
}

async function unmark(db: Queryable, m: { id: string; given: string }): Promise<void> {
  await db.query('UPDATE patient SET given = $2 WHERE id = $1', [m.id, m.given]);
}

async function patientIn(source: CandidateSource, keys: readonly string[], id: string): Promise<IndexPatient | undefined> {
  return [...(await source.byKeys([...keys])).values()].flat().find((p) => p.id === id);
}

async function waitForFile(file: string): Promise<void> {
  for (let i = 0; i < 200 && !(await fs.access(file).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
}

describe('the in-memory copy follows the index', () => {
  it('applies a delta load as the patients written since, ending equal to a copy built afresh', async () => {
    const { db, dir } = await tempDb();
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const before = await candidatesFor(db, 'memory');
    const oldKeys = await allKeys(db);
    await loadIndexFile(db, await writeDelta(dir));
    const marked = await markBehindIndex(db);
    const after = await candidatesFor(db, 'memory');
    const keys = [...new Set([...oldKeys, ...(await allKeys(db))])];
    // Followed, not rebuilt: the row written behind the index's back is not read again.
    expect((await patientIn(after.source, keys, marked.id))?.person.given).toBe(marked.given);
    await unmark(db, marked);
    await expectSameCandidates(after.source, await freshCopy(db), keys);
    expect(after.freq).toEqual((await freshCopy(db)).freq);
    expect((await patientIn(after.source, keys, 'new-2'))?.person.family).toBe('WILSON');
    // The copy a chunk already holds stays as it was.
    expect(await patientIn(before.source, keys, 'new-2')).toBeUndefined();
  });

  it('is read back from its snapshot by another process and brought up to date, not rebuilt', async () => {
    const { db, dir, url } = await pgDb();
    const snapshotDir = path.join(dir, 'cache');
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    await candidatesFor(db, 'memory', { snapshotDir });
    await waitForFile(path.join(snapshotDir, `candidate-index-${db.storeId}.snapshot`));
    const oldKeys = await allKeys(db);
    await loadIndexFile(db, await writeDelta(dir));
    const marked = await markBehindIndex(db);
    const other = await openPostgres(url);
    try {
      const c = await candidatesFor(other, 'memory', { snapshotDir });
      const keys = [...new Set([...oldKeys, ...(await allKeys(db))])];
      expect((await patientIn(c.source, keys, marked.id))?.person.given).toBe(marked.given);
      await unmark(db, marked);
      await expectSameCandidates(c.source, await freshCopy(db), keys);
    } finally {
      await other.close();
    }
  });

  it('removes what a write cut short left behind, once it is an hour old', async () => {
    const { db, dir } = await tempDb();
    const snapshotDir = path.join(dir, 'cache');
    const file = path.join(snapshotDir, `candidate-index-${db.storeId}.snapshot`);
    await fs.mkdir(snapshotDir, { recursive: true });
    await fs.writeFile(`${file}.dead.tmp`, 'cut short');
    await fs.utimes(`${file}.dead.tmp`, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    await fs.writeFile(`${file}.busy.tmp`, 'being written');
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'a.ndjson'), [fhirPatient({ id: 'a', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14' })]));
    await candidatesFor(db, 'memory', { snapshotDir });
    await waitForFile(file);
    expect((await fs.readdir(snapshotDir)).sort()).toEqual([path.basename(file), `${path.basename(file)}.busy.tmp`]);
  });

  it('sets a snapshot aside when it is unreadable or older than a rewrite of the whole index', async () => {
    const { db, dir, url } = await pgDb();
    const snapshotDir = path.join(dir, 'cache');
    const file = path.join(snapshotDir, `candidate-index-${db.storeId}.snapshot`);
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    await candidatesFor(db, 'memory', { snapshotDir });
    await waitForFile(file);
    const keys = await allKeys(db);
    // A rewrite (a new match form) moves every row; the snapshot predates it.
    await db.query("UPDATE patient SET given = 'REWRITTEN'");
    await db.query('UPDATE index_state SET version = version + 1, rewritten_in = version + 1');
    const other = await openPostgres(url);
    try {
      const c = await candidatesFor(other, 'memory', { snapshotDir });
      await expectSameCandidates(c.source, await freshCopy(db), keys);
    } finally {
      await other.close();
    }
    await fs.truncate(file, 1000);
    const third = await openPostgres(url);
    try {
      await expectSameCandidates((await candidatesFor(third, 'memory', { snapshotDir })).source, await freshCopy(db), keys);
    } finally {
      await third.close();
    }
  });
});
