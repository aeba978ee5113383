/**
 * Groups an operator defines by characteristics (seed 003: "all individuals residing in a
 * specific zip code under a specified age"): `actual: false`, no stored members; an export
 * evaluates the definition against the index as it is then (src/export/characteristics.ts).
 */
import { RostermatchError } from '../errors/index.ts';
import { audit } from './audit.ts';
import { changeStamp } from './clock.ts';
import { inTransaction, type Queryable } from './db.ts';
import { assertGroupOwner, type GroupCharacteristics, type GroupRecord } from './groups.ts';

/** Checks a definition: at least one five-digit ZIP, sensible whole ages, CVX codes. */
export function checkCharacteristics(c: GroupCharacteristics): GroupCharacteristics {
  const bad = (field: string, why: string) => new RostermatchError('USAGE', `${field} ${why}`, { field });
  const zips = [...new Set(c.zips)];
  if (zips.length === 0) throw bad('zips', 'must name at least one ZIP code');
  for (const z of zips) if (!/^\d{5}$/.test(z)) throw bad('zips', `must be five-digit ZIP codes ("${z}" is not)`);
  const age = (field: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 130)) throw bad(field, 'must be a whole number of years from 0 to 130');
  };
  age('underAge', c.underAge);
  age('minAge', c.minAge);
  if (c.underAge === 0) throw bad('underAge', 'must be at least 1: nobody is under 0');
  if (c.underAge !== undefined && c.minAge !== undefined && c.minAge >= c.underAge) throw bad('minAge', 'must be below underAge');
  const vaccines = c.vaccines ? [...new Set(c.vaccines)] : undefined;
  for (const v of vaccines ?? []) if (!/^\d{1,3}$/.test(v)) throw bad('vaccines', `must be CVX codes ("${v}" is not)`);
  return { zips, ...(c.underAge !== undefined ? { underAge: c.underAge } : {}), ...(c.minAge !== undefined ? { minAge: c.minAge } : {}), ...(vaccines && vaccines.length > 0 ? { vaccines } : {}) };
}

/**
 * Creates a characteristic Group for a partner, or changes the definition of one it owns. A Group
 * with members (made by files or messages) is never turned into one, nor the other way round.
 * Its lastUpdated is the store's clock, read under the change lock first thing in the
 * transaction (src/store/clock.ts); `at` fixes it (tests). Given a store, it opens the
 * transaction; given one, call it first in it.
 */
export async function defineGroup(
  on: Queryable,
  def: { id: string; partner: string; name: string; characteristics: GroupCharacteristics; by: string; at?: string },
): Promise<GroupRecord> {
  const c = checkCharacteristics(def.characteristics);
  return inTransaction(on, async (tx) => {
    const d = { ...def, at: await changeStamp(tx, def.at === undefined ? undefined : () => new Date(def.at!)) };
    return defineIn(tx, d, c);
  });
}

async function defineIn(tx: Queryable, d: { id: string; partner: string; name: string; by: string; at: string }, c: GroupCharacteristics): Promise<GroupRecord> {
  const existing = await assertGroupOwner(tx, d.partner, d.id, { lock: true });
  if (existing && existing.actual) {
    throw new RostermatchError('USAGE', `Group "${d.id}" holds members of its own (made by files, messages or membership operations); a characteristic Group needs an id of its own`, { field: 'id' });
  }
  await tx.query(
    `INSERT INTO partner_group (id, partner, name, mode, actual, characteristics, created_at, updated_at) VALUES ($1, $2, $3, 'append', false, $4, $5, $5)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, characteristics = EXCLUDED.characteristics, version = partner_group.version + 1, updated_at = EXCLUDED.updated_at`,
    [d.id, d.partner, d.name, JSON.stringify(c), d.at],
  );
  await audit(tx, { at: d.at, actor: d.by, action: existing ? 'group.redefine' : 'group.define', entity: `group/${d.id}`, detail: { partner: d.partner, ...c } });
  return (await assertGroupOwner(tx, d.partner, d.id))!;
}
