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
import { exportGroup, type ExportResult } from '../src/export/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { applyMembership, changeStamp, ensureGroup, type Db } from '../src/store/index.ts';
import { fhirPatient, tempDb, writeNdjson, STORES, type StoreKind } from './helpers.ts';

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
