/**
 * Bulk `_since` across exports: an export and the next one with `_since` = its transactionTime
 * hold every change once — a change in the same second as an export, one stamped while an export
 * starts, one committed after it — because every stamp and every transactionTime come from the
 * store's one clock, at the millisecond, under its change lock (src/store/clock.ts).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runBulkJob, type BulkManifest } from '../src/export/bulk-job.ts';
import { exportGroup, type ExportResult } from '../src/export/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import type { Pipeline } from '../src/pipeline/index.ts';
import { confirmHeldRun, runFile } from '../src/run/index.ts';
import {
  acceptReviewItem,
  addPartnerMember,
  applyMembership,
  changeStamp,
  createBulkJob,
  ensureGroup,
  getBulkJob,
  listReviewItems,
  removePartnerMember,
  type Db,
  type Queryable,
} from '../src/store/index.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { fhirPatient, quietLog, tempDb, testPipeline, writeNdjson, writeText, STORES, type StoreKind } from './helpers.ts';

const ava = (family: string) => fhirPatient({ id: 'a', given: 'Ava', family, birthDate: '2015-03-14' });
const ben = fhirPatient({ id: 'b', given: 'Ben', family: 'Okafor', birthDate: '2014-07-02' });

async function setup(store: StoreKind, now?: () => Date) {
  const { db, dir } = await tempDb(store);
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), [ava('Martinez'), ben]), now ? { now } : {});
  await db.transaction(async (tx) => {
    await ensureGroup(tx, { id: 'g1', partner: 'p', name: 'G', mode: 'replace' });
    await applyMembership(tx, 'g1', ['a', 'b'], 'replace', { actor: 'test', at: '2026-01-02T00:00:00.000Z' });
  });
  let n = 0;
  /** Loads `resources` as the next file, on the given clock or the store's. */
  const load = async (resources: unknown[], at?: string) =>
    loadIndexFile(db, await writeNdjson(path.join(dir, `change-${++n}.ndjson`), resources), at ? { now: () => new Date(at) } : {});
  const exportSince = (since?: string, at?: string) =>
    exportGroup(db, { groupId: 'g1', outRoot: path.join(dir, 'exports'), ...(since ? { since } : {}), ...(at ? { now: new Date(at) } : {}) });
  return { db, dir, load, exportSince };
}

/** The Patients an export wrote, by id. */
async function patients(r: ExportResult): Promise<Map<string, { name: { family: string }[]; meta: { lastUpdated: string } }>> {
  if (!r.manifest.output.some((o) => o.type === 'Patient')) return new Map();
  const text = await fs.readFile(path.join(r.dir, 'Patient.ndjson'), 'utf8');
  return new Map(text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).map((p) => [p.id, p]));
}

describe.each(STORES)('Bulk _since from one export to the next (%s)', (store) => {
  it('a change later in the same second as an export is in the next _since export (stamps keep their milliseconds)', async () => {
    const s = await setup(store, () => new Date('2026-03-01T11:00:00.000Z'));
    const first = await s.exportSince(undefined, '2026-03-01T12:00:00.500Z');
    expect((await patients(first)).get('a')!.name[0]!.family).toBe('Martinez');
    await s.load([ava('Lopez')], '2026-03-01T12:00:00.700Z');
    const next = await s.exportSince(first.manifest.transactionTime, '2026-03-01T12:00:05.000Z');
    const a = (await patients(next)).get('a');
    expect(a?.name[0]!.family).toBe('Lopez');
    expect(a?.meta.lastUpdated).toBe('2026-03-01T12:00:00.700Z');
    expect([...(await patients(next)).keys()]).toEqual(['a']);
  });

  it('on the store clock: what changed before an export is in it, what changed after it in the next _since export, once each', async () => {
    const s = await setup(store);
    // At the start of a second, so the change below most likely falls in the export's second.
    while (Date.now() % 1000 > 50) await sleep(5);
    const first = await s.exportSince();
    await s.load([ava('Lopez')]);
    const second = await s.exportSince(first.manifest.transactionTime);
    const third = await s.exportSince(second.manifest.transactionTime);

    const a = (await patients(second)).get('a');
    expect(a?.name[0]!.family).toBe('Lopez');
    expect(a!.meta.lastUpdated > first.manifest.transactionTime).toBe(true);
    expect(a!.meta.lastUpdated <= second.manifest.transactionTime).toBe(true);
    expect([...(await patients(second)).keys()]).toEqual(['a']);
    const inFirst = await patients(first);
    expect(inFirst.get('a')!.name[0]!.family).toBe('Martinez');
    expect(inFirst.get('a')!.meta.lastUpdated <= first.manifest.transactionTime).toBe(true);
    expect(third.manifest.output).toEqual([]);
    // The stamp is the stored one, to the millisecond, in the resource and in the column alike.
    const { rows } = await s.db.query<{ last_updated: Date }>("SELECT last_updated FROM patient WHERE id = 'a'");
    expect(rows[0]!.last_updated.toISOString()).toBe(a!.meta.lastUpdated);
  });
});

describe('an export beside a writer still in its transaction (postgres)', () => {
  /** A change to a, stamped in its own transaction, which commits only when `commit` is called. */
  async function openChange(db: Db, family: string) {
    let commit!: () => void;
    const gate = new Promise<void>((resolve) => (commit = resolve));
    let stamped!: (at: string) => void;
    const stamp = new Promise<string>((resolve) => (stamped = resolve));
    const done = db.transaction(async (tx) => {
      const at = await changeStamp(tx);
      await tx.query(
        `UPDATE patient SET family = $2, last_updated = $3::timestamptz,
                resource = jsonb_set(jsonb_set(resource, '{name,0,family}', to_jsonb($2::text)), '{meta,lastUpdated}', to_jsonb($3::text))
          WHERE id = $1`,
        ['a', family, at],
      );
      stamped(at);
      await gate;
    });
    return { stamp, commit, done };
  }

  it('waits for a change stamped before it to commit, and holds it; the next _since export does not hold it again', async () => {
    const s = await setup('postgres');
    const change = await openChange(s.db, 'Lopez');
    const at = await change.stamp;
    let settled = false;
    const exporting = s.exportSince().finally(() => (settled = true));
    await sleep(300);
    // Its transactionTime would be after the stamp, and the change not yet visible: it waits.
    expect(settled).toBe(false);
    change.commit();
    await change.done;
    const first = await exporting;
    expect(first.manifest.transactionTime >= at).toBe(true);
    expect((await patients(first)).get('a')!.name[0]!.family).toBe('Lopez');
    const next = await s.exportSince(first.manifest.transactionTime);
    expect(next.manifest.output).toEqual([]);
  });

  it('a change stamped after an export read its instant is left to the next _since export', async () => {
    const s = await setup('postgres');
    const first = await s.exportSince();
    const change = await openChange(s.db, 'Lopez');
    expect((await change.stamp) > first.manifest.transactionTime).toBe(true);
    change.commit();
    await change.done;
    expect((await patients(first)).get('a')!.name[0]!.family).toBe('Martinez');
    const next = await s.exportSince(first.manifest.transactionTime);
    expect((await patients(next)).get('a')!.name[0]!.family).toBe('Lopez');
  });
});

// ── Group membership: every writer stamps on the store's clock, under the change lock ─────────

const GID = 'test-school-students';
const pipelineFor = (mode: 'replace' | 'append') => testPipeline({ group: { id: GID, name: 'Test School students', mode } });
/** James Carter Sr: in the index, in no roster of the fall file. */
const CARTER_SR = 'r20,James,Carter,,1980-01-20,M,9 Pine Rd,,2175550299';

/** A school whose fall file made its Group (six members) and left Emma (r6) for review. */
async function school(store: StoreKind) {
  const { db, dir } = await tempDb(store);
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
  let n = 0;
  const run = async (on: Db, text: string, pipeline: Pipeline) =>
    runFile(on, quietLog, { file: await writeText(path.join(dir, `file-${++n}.csv`), text), pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'runs') });
  const fall = await run(db, ROSTER, pipelineFor('replace'));
  if (fall.kind !== 'completed') throw new Error(`expected the fall file completed, got ${fall.kind}`);
  const exportSince = (since?: string) => exportGroup(db, { groupId: GID, outRoot: path.join(dir, 'exports'), ...(since ? { since } : {}) });
  let jobs = 0;
  /** A client's Bulk export of the Group resource (the FHIR surface's job, run here). */
  const bulkGroup = async (since?: string): Promise<{ manifest: BulkManifest; group: { member?: { entity: { reference: string }; inactive?: boolean }[] } | undefined }> => {
    const id = `job-${++jobs}`;
    const root = path.join(dir, 'bulk');
    await createBulkJob(db, { id, clientId: 'c', partner: 'test-school', groupId: GID, request: 'x', params: { types: ['Group'], baseUrl: 'http://iis.test/fhir', ...(since ? { since } : {}) }, transactionTime: new Date().toISOString() });
    expect(await runBulkJob(db, id, { root, keepMs: 60_000 })).toBe('completed');
    const manifest = (await getBulkJob<unknown, BulkManifest>(db, id))!.manifest!;
    const group = manifest.output.length > 0 ? JSON.parse(await fs.readFile(path.join(root, id, 'Group.ndjson'), 'utf8')) : undefined;
    return { manifest, group };
  };
  return { db, dir, run, exportSince, bulkGroup };
}

/**
 * `db`, except that a transaction that writes a Group's membership (group_member, group_event,
 * partner_group) waits, its writes done, before it commits, until `commit()` is called: a writer
 * paused between its change and its commit, as any writer may be under load.
 */
function pausingGroupWrites(db: Db): { db: Db; written: Promise<void>; commit: () => void } {
  let commit!: () => void;
  const gate = new Promise<void>((resolve) => (commit = resolve));
  let wrote!: () => void;
  const written = new Promise<void>((resolve) => (wrote = resolve));
  const writesGroup = /^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(group_member|group_event|partner_group)\b/i;
  const transaction = <T>(fn: (tx: Queryable) => Promise<T>) =>
    db.transaction(async (tx) => {
      let changed = false;
      const watched: Queryable = {
        query: <R>(sql: string, params?: unknown[]) => {
          if (writesGroup.test(sql)) changed = true;
          return tx.query<R>(sql, params);
        },
        exec: (sql) => tx.exec(sql),
        copyIn: (table, columns, text) => tx.copyIn(table, columns, text),
      };
      const r = await fn(watched);
      if (changed) {
        wrote();
        await gate;
      }
      return r;
    });
  const paused = new Proxy(db, {
    get(target, key) {
      if (key === 'transaction') return transaction;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { db: paused, written, commit };
}

/**
 * `write` on a store whose Group writes pause before commit; an export starts once the change is
 * written and its transaction still open; then the change commits. Returns that export, the next
 * one with `_since` = its transactionTime, and whether the first waited for the writer.
 */
async function exportBesideOpenChange<E>(db: Db, write: (db: Db) => Promise<unknown>, exportSince: (since?: string) => Promise<E>, tt: (e: E) => string) {
  const p = pausingGroupWrites(db);
  const writing = write(p.db);
  await Promise.race([p.written, writing.then(() => Promise.reject(new Error('the writer committed without writing a Group change')))]);
  let settled = false;
  const exporting = exportSince().finally(() => (settled = true));
  await sleep(300);
  const waited = !settled;
  p.commit();
  await writing;
  const first = await exporting;
  const next = await exportSince(tt(first));
  return { first, next, waited };
}

describe('a Group change whose transaction is open while an export starts: in that export or the next _since export, once (postgres)', () => {
  const writers: [string, string, (s: Awaited<ReturnType<typeof school>>) => Promise<(db: Db) => Promise<unknown>>][] = [
    ['a run (recordRun)', 'p-jsr', async (s) => (db) => s.run(db, [HEADER, CARTER_SR].join('\n'), pipelineFor('append'))],
    [
      'a review decision (acceptReviewItem)',
      'p-dup1',
      async (s) => {
        const emma = (await listReviewItems(s.db, { state: 'open' })).find((i) => i.recordId === 'r6')!;
        return (db) => db.transaction((tx) => acceptReviewItem(tx, emma.id, 'p-dup1', 'alice'));
      },
    ],
    [
      'a confirmation of a held run (confirmHeldRun)',
      'p-jsr',
      async (s) => {
        const held = await s.run(s.db, [HEADER, CARTER_SR].join('\n'), pipelineFor('replace'));
        if (held.kind !== 'held') throw new Error(`expected a held run, got ${held.kind}`);
        return (db) => confirmHeldRun(db, { runId: held.run.id, by: 'alice', exportsDir: path.join(s.dir, 'runs') });
      },
    ],
    [
      "a partner's $member-add (addPartnerMember)",
      'p-ava',
      async (s) => {
        await removePartnerMember(s.db, { groupId: GID, partner: 'test-school', patientId: 'p-ava', actor: 'client/c' });
        return (db) => addPartnerMember(db, { groupId: GID, partner: 'test-school', patientId: 'p-ava', actor: 'client/c' });
      },
    ],
  ];

  it.each(writers)('%s: the member who joins comes whole in exactly one of them', async (_, joining, prepare) => {
    const s = await school('postgres');
    const write = await prepare(s);
    const { first, next, waited } = await exportBesideOpenChange(s.db, write, s.exportSince, (e) => e.manifest.transactionTime);
    const inFirst = (await patients(first)).has(joining);
    const inNext = (await patients(next)).has(joining);
    expect({ inFirst, inNext }).toEqual({ inFirst: true, inNext: false });
    // It was in the first because that export waited for the writer, whose stamp came before its transactionTime.
    expect(waited).toBe(true);
    const { rows } = await s.db.query<{ added_at: Date }>('SELECT added_at FROM group_member WHERE group_id = $1 AND patient_id = $2', [GID, joining]);
    expect(rows[0]!.added_at.toISOString() <= first.manifest.transactionTime).toBe(true);
  });

  it("a partner's $member-remove: the Group resource saying she left is in the Bulk Group export or the next _since one", async () => {
    const s = await school('postgres');
    const remove = (db: Db) => removePartnerMember(db, { groupId: GID, partner: 'test-school', patientId: 'p-ava', actor: 'client/c' });
    const { first, next, waited } = await exportBesideOpenChange(s.db, remove, s.bulkGroup, (e) => e.manifest.transactionTime);
    const latest = next.group ?? first.group;
    const ava = latest?.member?.find((m) => m.entity.reference === 'Patient/p-ava');
    expect(ava?.inactive).toBe(true);
    // In the first, which waited for the writer; the next has nothing new.
    expect(waited).toBe(true);
    expect(next.group).toBeUndefined();
  });
});

describe.each(STORES)('a Group written by a run is stamped on the store clock (%s)', (store) => {
  it("its created and lastUpdated instants are the run's stamp, at the millisecond, as its members' joining", async () => {
    const s = await school(store);
    const { rows } = await s.db.query<{ whole_ms: boolean; created_at: Date; updated_at: Date; finished_at: Date; added: Date; joinings: number }>(
      `SELECT bool_and(t = date_trunc('milliseconds', t)) AS whole_ms, min(g.created_at) AS created_at, min(g.updated_at) AS updated_at,
              min(r.finished_at) AS finished_at, min(m.added_at) AS added, count(DISTINCT m.added_at)::int AS joinings
         FROM partner_group g JOIN run r ON r.id = g.created_by_run JOIN group_member m ON m.group_id = g.id,
              LATERAL (VALUES (g.created_at), (g.updated_at), (r.finished_at), (m.added_at)) AS i(t)
        WHERE g.id = $1`,
      [GID],
    );
    const g = rows[0]!;
    expect(g.whole_ms).toBe(true);
    expect(g.joinings).toBe(1);
    for (const t of [g.created_at, g.updated_at, g.finished_at]) expect(t.toISOString()).toBe(g.added.toISOString());
  });
});
