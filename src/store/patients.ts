/** The patient index: upserts by id, candidate look-up by blocking key, name frequencies. */
import type { IndexPatient, NameFrequencies, PersonFields, Sex } from '../model/index.ts';
import type { Queryable } from './db.ts';

export interface PatientWrite {
  patient: IndexPatient;
  resource: unknown;
  contentHash: string;
  lastUpdated: string;
  blockKeys: string[];
}

export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/**
 * Inserts new patients, rewrites changed ones (by content hash) and leaves identical ones alone,
 * so loading the same extract twice changes nothing — not even last_updated.
 */
export async function upsertPatients(tx: Queryable, batch: PatientWrite[]): Promise<UpsertCounts> {
  const counts: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0 };
  if (batch.length === 0) return counts;
  const changed = await changedByHash(tx, 'patient', batch, (w) => w.patient.id, counts);
  if (changed.length === 0) return counts;

  const col = <T>(f: (w: PatientWrite) => T) => changed.map(f);
  await tx.query(
    `INSERT INTO patient (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone,
                          identifiers, replaced_by, resource, content_hash, last_updated)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                          $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::jsonb[], $14::text[],
                          $15::jsonb[], $16::text[], $17::timestamptz[])
     ON CONFLICT (id) DO UPDATE SET
       given = excluded.given, middle = excluded.middle, family = excluded.family, suffix = excluded.suffix,
       birth_date = excluded.birth_date, sex = excluded.sex, street = excluded.street, city = excluded.city,
       state = excluded.state, zip = excluded.zip, phone = excluded.phone, identifiers = excluded.identifiers,
       replaced_by = excluded.replaced_by, resource = excluded.resource, content_hash = excluded.content_hash,
       last_updated = excluded.last_updated`,
    [
      ...matchViewColumns(changed),
      col((w) => w.patient.replacedBy ?? null),
      col((w) => JSON.stringify(w.resource)),
      col((w) => w.contentHash),
      col((w) => w.lastUpdated),
    ],
  );
  await tx.query('UPDATE index_state SET version = version + 1 WHERE id = 1');
  await replaceBlocks(tx, changed);
  return counts;
}

const PERSON_COLUMNS = ['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone'] as const satisfies readonly (keyof PersonFields)[];

/** The matcher's view of each patient as query parameters: id, the person's columns, identifiers (JSON). */
function matchViewColumns(writes: readonly Pick<PatientWrite, 'patient'>[]): (string | null)[][] {
  return [
    writes.map((w) => w.patient.id),
    ...PERSON_COLUMNS.map((f) => writes.map((w) => w.patient.person[f])),
    writes.map((w) => JSON.stringify(w.patient.identifiers)),
  ];
}

/** Each patient's blocking keys, instead of what it had. */
async function replaceBlocks(tx: Queryable, writes: readonly Pick<PatientWrite, 'patient' | 'blockKeys'>[]): Promise<void> {
  await tx.query('DELETE FROM patient_block WHERE patient_id = ANY($1::text[])', [writes.map((w) => w.patient.id)]);
  const keys: string[] = [];
  const owners: string[] = [];
  for (const w of writes) {
    // A merged-away patient is kept for export history but can no longer be matched.
    if (w.patient.replacedBy) continue;
    for (const k of new Set(w.blockKeys)) {
      keys.push(k);
      owners.push(w.patient.id);
    }
  }
  if (keys.length > 0) {
    await tx.query('INSERT INTO patient_block (key, patient_id) SELECT * FROM unnest($1::text[], $2::text[])', [keys, owners]);
  }
}

/** The version of normalisation and blocking the stored index was computed with. */
export async function storedMatchForm(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ match_form: number }>('SELECT match_form FROM index_state WHERE id = 1');
  return Number(rows[0]?.match_form ?? 1);
}

/**
 * Rewrites the matcher's view of these patients (person columns, identifiers, blocking keys),
 * computed again from their stored resources; the resources themselves and their hashes stay.
 */
export async function rewriteMatchView(tx: Queryable, writes: readonly Pick<PatientWrite, 'patient' | 'blockKeys'>[]): Promise<void> {
  if (writes.length === 0) return;
  await tx.query(
    `UPDATE patient t SET given = u.given, middle = u.middle, family = u.family, suffix = u.suffix, birth_date = u.birth_date,
            sex = u.sex, street = u.street, city = u.city, state = u.state, zip = u.zip, phone = u.phone, identifiers = u.identifiers
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                   $10::text[], $11::text[], $12::text[], $13::jsonb[])
            AS u (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers)
      WHERE t.id = u.id`,
    matchViewColumns(writes),
  );
  await replaceBlocks(tx, writes);
}

/** Records that the whole index is in `form` now (and bumps the version, so in-memory copies reload). */
export async function markMatchForm(tx: Queryable, form: number): Promise<void> {
  await tx.query('UPDATE index_state SET match_form = $1, version = version + 1 WHERE id = 1', [form]);
}

/** Every patient's stored resource, a slice of the table at a time in physical order. */
export async function* patientResources(db: Queryable, blocksPerSlice = 4096): AsyncGenerator<unknown[]> {
  for await (const rows of tidSlices<{ resource: unknown }>(db, 'SELECT resource FROM patient WHERE ctid >= $1::tid AND ctid < $2::tid', blocksPerSlice)) {
    yield rows.map((r) => (typeof r.resource === 'string' ? JSON.parse(r.resource) : r.resource));
  }
}

async function* tidSlices<R>(db: Queryable, sql: string, blocksPerSlice: number): AsyncGenerator<R[]> {
  const { rows: size } = await db.query<{ blocks: string | number }>(`SELECT (pg_relation_size('patient') / current_setting('block_size')::int) AS blocks`);
  const blocks = Number(size[0]?.blocks ?? 0);
  for (let from = 0; from <= blocks; from += blocksPerSlice) {
    const { rows } = await db.query<R & object>(sql, [`(${from},0)`, `(${from + blocksPerSlice},0)`]);
    if (rows.length > 0) yield rows;
  }
}

/**
 * The writes in `batch` whose content differs from what is stored, counting each as inserted,
 * updated or unchanged. A later line for the same id wins, as if the lines were loaded one by one.
 */
async function changedByHash<W extends { contentHash: string }>(
  tx: Queryable,
  table: 'patient' | 'immunization',
  batch: readonly W[],
  idOf: (w: W) => string,
  counts: UpsertCounts,
): Promise<W[]> {
  const byId = new Map(batch.map((w) => [idOf(w), w]));
  const { rows } = await tx.query<{ id: string; content_hash: string }>(`SELECT id, content_hash FROM ${table} WHERE id = ANY($1::text[])`, [
    [...byId.keys()],
  ]);
  const stored = new Map(rows.map((r) => [r.id, r.content_hash]));
  const changed: W[] = [];
  for (const [id, w] of byId) {
    const hash = stored.get(id);
    if (hash === w.contentHash) {
      counts.unchanged++;
      continue;
    }
    if (hash === undefined) counts.inserted++;
    else counts.updated++;
    changed.push(w);
  }
  return changed;
}

export interface ImmunizationWrite {
  id: string;
  patientId: string;
  resource: unknown;
  contentHash: string;
  lastUpdated: string;
}

/** Same contract as upsertPatients. Returns also the ids whose patient is not in the index. */
export async function upsertImmunizations(
  tx: Queryable,
  batch: ImmunizationWrite[],
): Promise<UpsertCounts & { orphans: Set<string> }> {
  const counts = { inserted: 0, updated: 0, unchanged: 0, orphans: new Set<string>() };
  if (batch.length === 0) return counts;
  const known = new Set(
    (await tx.query<{ id: string }>('SELECT id FROM patient WHERE id = ANY($1::text[])', [[...new Set(batch.map((w) => w.patientId))]])).rows.map(
      (r) => r.id,
    ),
  );
  for (const w of batch) if (!known.has(w.patientId)) counts.orphans.add(w.id);
  const changed = await changedByHash(tx, 'immunization', batch.filter((w) => known.has(w.patientId)), (w) => w.id, counts);
  if (changed.length > 0) {
    await tx.query(
      `INSERT INTO immunization (id, patient_id, resource, content_hash, last_updated)
       SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::timestamptz[])
       ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, resource = excluded.resource,
         content_hash = excluded.content_hash, last_updated = excluded.last_updated`,
      [
        changed.map((w) => w.id),
        changed.map((w) => w.patientId),
        changed.map((w) => JSON.stringify(w.resource)),
        changed.map((w) => w.contentHash),
        changed.map((w) => w.lastUpdated),
      ],
    );
  }
  return counts;
}

interface PatientRow {
  id: string;
  given: string;
  middle: string;
  family: string;
  suffix: string;
  birth_date: string;
  sex: string;
  street: string;
  city: string;
  state: string;
  zip: string;
  phone: string;
  identifiers: IndexPatient['identifiers'];
}

function toIndexPatient(r: PatientRow): IndexPatient {
  return {
    id: r.id,
    identifiers: r.identifiers,
    person: {
      given: r.given,
      middle: r.middle,
      family: r.family,
      suffix: r.suffix,
      birthDate: r.birth_date,
      sex: r.sex as Sex,
      street: r.street,
      city: r.city,
      state: r.state,
      zip: r.zip,
      phone: r.phone,
    },
  };
}

/**
 * Every patient reachable by any of `keys`, by key. Two index look-ups rather than one join: a
 * join of a few thousand keys tempts the planner into hashing the whole patient table, which
 * grows with the index, while these stay proportional to the candidates. `keep` may drop a whole
 * block by its key and size before its patients are read.
 */
export async function patientsByBlockKeys(db: Queryable, keys: string[], keep?: (key: string, size: number) => boolean): Promise<Map<string, IndexPatient[]>> {
  const out = new Map<string, IndexPatient[]>();
  if (keys.length === 0) return out;
  const { rows: found } = await db.query<{ key: string; patient_id: string }>('SELECT key, patient_id FROM patient_block WHERE key = ANY($1::text[])', [keys]);
  const size = new Map<string, number>();
  if (keep) for (const h of found) size.set(h.key, (size.get(h.key) ?? 0) + 1);
  const hits = keep ? found.filter((h) => keep(h.key, size.get(h.key)!)) : found;
  if (hits.length === 0) return out;
  const byId = await patientsByIds(db, hits.map((h) => h.patient_id));
  for (const h of hits) {
    const patient = byId.get(h.patient_id);
    if (!patient) continue;
    let list = out.get(h.key);
    if (!list) out.set(h.key, (list = []));
    list.push(patient);
  }
  return out;
}

/** The patients with these ids (for showing candidates to a person), by id. */
export async function patientsByIds(db: Queryable, ids: readonly string[]): Promise<Map<string, IndexPatient>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<PatientRow>(
    `SELECT id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers
       FROM patient WHERE id = ANY($1::text[])`,
    [[...new Set(ids)]],
  );
  return new Map(rows.map((r) => [r.id, toIndexPatient(r)]));
}

export async function indexVersion(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ version: string | number }>('SELECT version FROM index_state WHERE id = 1');
  return Number(rows[0]?.version ?? 0);
}

/**
 * Every matchable patient, a slice of the table at a time in physical order (TID ranges): a
 * sequential read, where paging by id would jump around the heap. Rows that move during the scan
 * (updated meanwhile) may be seen twice or missed; callers that cache compare index versions.
 */
export async function* matchablePatients(db: Queryable, blocksPerSlice = 4096): AsyncGenerator<IndexPatient[]> {
  const sql = `SELECT id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers
                 FROM patient WHERE ctid >= $1::tid AND ctid < $2::tid AND replaced_by IS NULL`;
  for await (const rows of tidSlices<PatientRow>(db, sql, blocksPerSlice)) yield rows.map(toIndexPatient);
}

/** How often each given and family name occurs, for term-frequency-adjusted weights. */
export async function nameFrequencies(db: Queryable): Promise<NameFrequencies> {
  const total = Number((await db.query<{ n: string | number }>('SELECT count(*) AS n FROM patient WHERE replaced_by IS NULL')).rows[0]?.n ?? 0);
  const freq = async (col: 'given' | 'family') =>
    new Map(
      (
        await db.query<{ v: string; n: string | number }>(
          `SELECT ${col} AS v, count(*) AS n FROM patient WHERE replaced_by IS NULL AND ${col} <> '' GROUP BY ${col}`,
        )
      ).rows.map((r) => [r.v, Number(r.n)]),
    );
  return { total, given: await freq('given'), family: await freq('family') };
}

export async function countIndex(db: Queryable): Promise<{ patients: number; immunizations: number }> {
  const { rows } = await db.query<{ p: string | number; i: string | number }>(
    'SELECT (SELECT count(*) FROM patient) AS p, (SELECT count(*) FROM immunization) AS i',
  );
  return { patients: Number(rows[0]?.p ?? 0), immunizations: Number(rows[0]?.i ?? 0) };
}
