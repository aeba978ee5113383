/** The template store of test/setup/pglite-template.ts: its copies are distinct, working stores. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { openEmbedded } from '../../src/store/index.ts';
import { seedDataDir, tempDb, tempDir } from '../helpers.ts';

/** migrations.ts: replace(gen_random_uuid()::text, '-', ''). */
const STORE_ID = /^[0-9a-f]{32}$/;

describe('fresh embedded stores in tests', () => {
  it('are copies of this run’s template', () => {
    expect(inject('pgliteTemplate')).not.toBe('');
  });

  it('each have an identity of their own, in the product’s format, kept when reopened', async () => {
    const a = await tempDb('pglite');
    const b = await tempDb('pglite');
    expect(a.db.storeId).toMatch(STORE_ID);
    expect(b.db.storeId).toMatch(STORE_ID);
    expect(a.db.storeId).not.toBe(b.db.storeId);
    const { rows } = await a.db.query<{ id: string }>('SELECT id FROM store_identity');
    expect(rows).toEqual([{ id: a.db.storeId }]);
    await a.db.close();
    const again = await openEmbedded(path.join(a.dir, 'db'));
    try {
      expect(again.storeId).toBe(a.db.storeId);
    } finally {
      await again.close();
    }
  });

  it('seed a CLI data folder with a distinct store, and leave one already there alone', async () => {
    const { db } = await tempDb('pglite');
    const data = path.join(await tempDir(), 'data');
    await seedDataDir(data);
    const seeded = await openEmbedded(path.join(data, 'db'));
    const id = seeded.storeId;
    try {
      expect(id).toMatch(STORE_ID);
      expect(id).not.toBe(db.storeId);
      await seeded.exec('CREATE TABLE written_here (x int)');
    } finally {
      await seeded.close();
    }
    expect(await fs.readdir(path.join(data, 'db'))).not.toContain('rostermatch.pid');
    await seedDataDir(data);
    const kept = await openEmbedded(path.join(data, 'db'));
    try {
      expect(kept.storeId).toBe(id);
      expect((await kept.query("SELECT to_regclass('written_here') IS NOT NULL AS there")).rows).toEqual([{ there: true }]);
    } finally {
      await kept.close();
    }
  });
});
