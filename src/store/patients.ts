/** The patient index: upserts by id, candidate look-up by blocking key, name frequencies. */
import type { IndexPatient, NameFrequencies, PersonFields, Sex } from '../model/index.ts';
import { copyField, copyLine, isDb, unlessPresent, type Db, type Queryable } from './db.ts';

export interface PatientWrite {
  patient: IndexPatient;
  /** The FHIR resource as JSON text. */
  resource: string;
  contentHash: string;
  lastUpdated: string;
  /** Each key once, as blockingKeys gives them. */
  blockKeys: string[];
}

/**
 * A patient write whose stamp-free columns are COPY text already (patientText): what a first
 * load's worker thread hands over instead of the patient's objects, which cost more to pass
 * between threads than to write.
 */
export interface RenderedPatientWrite extends Omit<PatientWrite, 'patient' | 'blockKeys'> {
  id: string;
  text: PatientText;
}

/** The columns of a patient's COPY line that the stamp does not change, as COPY text. */
export interface PatientText {
  /** The match view and replaced_by, tab-separated (the line's fields before the resource). */
  view: string;
  /** block_keys, an array literal. */
  keys: string;
  /** The patient's lines of patient_block. */
  keyLines: string;
}

export function patientText(p: IndexPatient, blockKeys: readonly string[]): PatientText {
  const id = copyField(p.id);
  // Thirteen lines a patient: written out directly, without an array and a join for each.
  let keyLines = '';
  for (const k of blockKeys) keyLines += `${copyField(k)}\t${id}\n`;
  return { view: copyLine([...matchView(p), p.replacedBy ?? null]).slice(0, -1), keys: copyField(arrayLiteral(blockKeys)), keyLines };
}

type AnyPatientWrite = PatientWrite | RenderedPatientWrite;
const writeId = (w: AnyPatientWrite) => ('text' in w ? w.id : w.patient.id);
const writeText = (w: AnyPatientWrite) => ('text' in w ? w.text : patientText(w.patient, w.blockKeys));

export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/**
 * Statements of a merge probe the index's large tables by their indexes, whatever statistics
 * the server has (none, on a fresh load with autovacuum off): a probe per written row stays
 * proportional to the batch, where a scan grows with the index and made loads quadratic. The
 * stage tables have no index and are read whole anyway. More sort memory keeps the key sort
 * of a batch off disk.
 */
const MERGE_SETTINGS = "SET LOCAL enable_seqscan = off; SET LOCAL work_mem = '64MB'; SET LOCAL jit = off";

const PATIENT_COLUMNS = [
  'id', 'given', 'middle', 'family', 'suffix', 'birth_date', 'sex', 'street', 'city', 'state', 'zip', 'phone', 'mothers_maiden', 'birth_order',
  'identifiers', 'replaced_by', 'resource', 'content_hash', 'last_updated', 'block_keys',
] as const;

/** The matcher's view of a patient as read for matching, in PersonFields order (see toIndexPatient). */
const MATCH_VIEW_SQL = 'id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, mothers_maiden, birth_order, identifiers';

/**
 * Inserts new patients, rewrites changed ones (by content hash) and leaves identical ones alone,
 * so loading the same extract twice changes nothing — not even last_updated. The batch goes to a
 * stage table by COPY, each patient with its blocking keys, and is merged by a few set-based
 * statements: a statement per thousand rows kept Node and the database waiting on each other.
 */
export async function mergePatients(tx: Queryable, batch: readonly AnyPatientWrite[], opts: { fresh?: boolean } = {}): Promise<UpsertCounts> {
  if (batch.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
  const writes = lastPerId(batch, writeId);
  if (opts.fresh && (await insertFresh(tx, writes, await nextVersion(tx)))) return { inserted: writes.length, updated: 0, unchanged: 0 };
  await tx.exec(`${MERGE_SETTINGS};
    CREATE TEMP TABLE stage_patient (id text, given text, middle text, family text, suffix text, birth_date text, sex text, street text, city text,
      state text, zip text, phone text, mothers_maiden text, birth_order text, identifiers jsonb, replaced_by text, resource jsonb, content_hash text, last_updated timestamptz, block_keys text[]) ON COMMIT DROP`);
  await tx.copyIn('stage_patient', PATIENT_COLUMNS, writes.map((w) => patientLine(w, writeText(w))).join(''));
  const counts = await stageChanges(tx, 'stage_patient', 'patient');
  if (counts.inserted + counts.updated === 0) return counts;
  const version = await nextVersion(tx);
  const set = [...PATIENT_COLUMNS.slice(1), 'changed_in'].map((c) => `${c} = excluded.${c}`).join(', ');
  // The old keys go first: they are found through the block_keys the new rows overwrite.
  await tx.exec(`
    ${deleteKeysOf('ARRAY(SELECT id FROM stage_patient_changed WHERE NOT is_new)')};
    INSERT INTO patient (${PATIENT_COLUMNS.join(', ')}, changed_in) SELECT ${PATIENT_COLUMNS.join(', ')}, ${version} FROM stage_patient_changed
      ON CONFLICT (id) DO UPDATE SET ${set};
    INSERT INTO patient_block (key, patient_id) SELECT unnest(s.block_keys), s.id FROM stage_patient_changed s
      WHERE s.is_new OR NOT EXISTS (SELECT 1 FROM patient p WHERE p.id = s.id AND p.removed_at IS NOT NULL) ON CONFLICT DO NOTHING`);
  return counts;
}

/**
 * A batch of a load into an index that held no patient when the load began goes by COPY straight
 * into patient and patient_block, as the floor it is measured against does: no stage table, no
 * comparison with stored rows. A patient already there (an id repeated from an earlier batch, or
 * written meanwhile by another load) fails the COPY: the savepoint takes the batch back and the
 * merge applies it instead (returns false).
 */
function insertFresh(tx: Queryable, writes: readonly AnyPatientWrite[], version: number): Promise<boolean> {
  const texts = writes.map(writeText);
  return unlessPresent(tx, async () => {
    await tx.copyIn('patient', [...PATIENT_COLUMNS, 'changed_in'], writes.map((w, i) => patientLine(w, texts[i]!, String(version))).join(''));
    await tx.copyIn('patient_block', ['key', 'patient_id'], texts.map((t) => t.keyLines).join(''));
  });
}

/**
 * The index version this transaction writes: patients it writes carry it, so a copy in memory
 * can fetch what changed after its own version. The row stays locked until commit, so versions
 * become visible in order and a copy that saw version v has seen every patient written up to v.
 */
async function nextVersion(tx: Queryable): Promise<number> {
  const { rows } = await tx.query<{ version: string | number }>('UPDATE index_state SET version = version + 1 WHERE id = 1 RETURNING version');
  return Number(rows[0]!.version);
}

/** One COPY line of the patient table's columns, and of any columns after them. */
function patientLine(w: AnyPatientWrite, text: PatientText, ...more: string[]): string {
  return `${text.view}\t${copyLine([w.resource, w.contentHash, w.lastUpdated]).slice(0, -1)}\t${text.keys}${more.map((m) => `\t${copyField(m)}`).join('')}\n`;
}

/**
 * The statement deleting the blocking keys of the patients `ids` (an SQL text[] expression): each
 * a probe of patient_block's primary key, by the keys the patient's row lists (block_keys, a
 * superset of those it holds). The key table has no index by patient: built at the end of a first
 * load, one cost as long again as the primary key (issue 11).
 */
function deleteKeysOf(ids: string): string {
  return `DELETE FROM patient_block b USING (SELECT p.id, k.key FROM patient p, unnest(p.block_keys) AS k (key) WHERE p.id = ANY (${ids})) o
    WHERE b.key = o.key AND b.patient_id = o.id`;
}

/** The last write of each id: a later line for the same id wins, as if the lines were loaded one by one. */
export function lastPerId<W>(batch: readonly W[], id: (w: W) => string): W[] {
  return [...new Map(batch.map((w) => [id(w), w])).values()];
}

/** A text[] literal of `values`, each quoted. */
function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => (/[\\"]/.test(v) ? `"${v.replace(/[\\"]/g, '\\$&')}"` : `"${v}"`)).join(',')}}`;
}

/**
 * From a stage table of one row per id to `<stage>_changed`: the rows (those meeting `where`)
 * that are new or whose content hash differs from the stored one, with `is_new`; and the counts
 * of what the batch does.
 */
async function stageChanges(tx: Queryable, stage: string, table: 'patient' | 'immunization', where = 'true'): Promise<UpsertCounts> {
  await tx.exec(`CREATE TEMP TABLE ${stage}_changed ON COMMIT DROP AS
      SELECT s.*, t.id IS NULL AS is_new FROM ${stage} s LEFT JOIN ${table} t ON t.id = s.id
       WHERE (${where}) AND (t.id IS NULL OR t.content_hash <> s.content_hash)`);
  const { rows } = await tx.query<{ ids: number; inserted: number; changed: number }>(
    `SELECT (SELECT count(*) FROM ${stage} s WHERE ${where})::int AS ids, count(*) FILTER (WHERE is_new)::int AS inserted, count(*)::int AS changed FROM ${stage}_changed`,
  );
  const { ids, inserted, changed } = rows[0]!;
  return { inserted, updated: changed - inserted, unchanged: ids - changed };
}

/** The stored content hash of each of these ids that is in `table`, by id; looked up by primary key whatever the statistics. */
export async function storedHashes(db: Db, table: 'patient' | 'immunization', ids: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await probing(db, (q) => q.query<{ id: string; content_hash: string }>(`SELECT id, content_hash FROM ${table} WHERE id = ANY($1::text[])`, [ids]));
  return new Map(rows.map((r) => [r.id, r.content_hash]));
}

/** In the order of the patient table's person columns; the optional ones are stored as '' when absent. */
const PERSON_COLUMNS = ['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone', 'mothersMaiden', 'birthOrder'] as const satisfies readonly (keyof PersonFields)[];

/** The matcher's view of a patient as column values: id, the person's columns, identifiers (JSON). */
function matchView(p: IndexPatient): string[] {
  return [p.id, ...PERSON_COLUMNS.map((f) => p.person[f] ?? ''), JSON.stringify(p.identifiers)];
}

/** The matcher's view of each patient as query parameters: id, the person's columns, identifiers (JSON). */
function matchViewColumns(writes: readonly Pick<PatientWrite, 'patient'>[]): (string | null)[][] {
  return [
    writes.map((w) => w.patient.id),
    ...PERSON_COLUMNS.map((f) => writes.map((w) => w.patient.person[f] ?? '')),
    writes.map((w) => JSON.stringify(w.patient.identifiers)),
  ];
}

/**
 * Each patient's blocking keys, instead of what it had; none for a patient the identity feed
 * removed, or one merged into a removed patient: it stands for nobody, whatever its resource says.
 */
export async function replaceBlockKeys(tx: Queryable, writes: readonly Pick<PatientWrite, 'patient' | 'blockKeys'>[]): Promise<void> {
  if (writes.length === 0) return;
  const ids = writes.map((w) => w.patient.id);
  await tx.query(deleteKeysOf('$1::text[]'), [ids]);
  await tx.query('UPDATE patient t SET block_keys = u.keys::text[] FROM unnest($1::text[], $2::text[]) AS u (id, keys) WHERE t.id = u.id', [ids, writes.map((w) => arrayLiteral(w.blockKeys))]);
  const nobody = new Set([...(await resolvePatients(tx, ids))].flatMap(([id, to]) => (to === null ? [id] : [])));
  const keys: string[] = [];
  const owners: string[] = [];
  for (const w of writes) {
    if (nobody.has(w.patient.id)) continue;
    for (const k of new Set(w.blockKeys)) {
      keys.push(k);
      owners.push(w.patient.id);
    }
  }
  if (keys.length > 0) await tx.query('INSERT INTO patient_block (key, patient_id) SELECT k, o FROM unnest($1::text[], $2::text[]) AS u(k, o)', [keys, owners]);
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
            sex = u.sex, street = u.street, city = u.city, state = u.state, zip = u.zip, phone = u.phone,
            mothers_maiden = u.mothers_maiden, birth_order = u.birth_order, identifiers = u.identifiers
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                   $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::jsonb[])
            AS u (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, mothers_maiden, birth_order, identifiers)
      WHERE t.id = u.id`,
    matchViewColumns(writes),
  );
  await replaceBlockKeys(tx, writes);
}

/** Records that the whole index is in `form` now (and bumps the version, so in-memory copies reload). */
export async function markMatchForm(tx: Queryable, form: number): Promise<void> {
  await tx.query('UPDATE index_state SET match_form = $1, version = version + 1, rewritten_in = version + 1 WHERE id = 1', [form]);
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

export interface ImmunizationWrite {
  id: string;
  patientId: string;
  /** The FHIR resource as JSON text. */
  resource: string;
  contentHash: string;
  lastUpdated: string;
}

/**
 * Same contract as mergePatients, for Immunizations whose patient is in the index (merge the
 * batch's patients first); returns also the ids of those whose patient is not.
 */
export async function mergeImmunizations(tx: Queryable, batch: readonly ImmunizationWrite[]): Promise<UpsertCounts & { orphans: Set<string> }> {
  if (batch.length === 0) return { inserted: 0, updated: 0, unchanged: 0, orphans: new Set() };
  await tx.exec(`${MERGE_SETTINGS};
    CREATE TEMP TABLE stage_immunization (id text, patient_id text, resource jsonb, content_hash text, last_updated timestamptz) ON COMMIT DROP`);
  const columns = ['id', 'patient_id', 'resource', 'content_hash', 'last_updated'];
  const lines = lastPerId(batch, (w) => w.id).map((w) => copyLine([w.id, w.patientId, w.resource, w.contentHash, w.lastUpdated]));
  await tx.copyIn('stage_immunization', columns, lines.join(''));
  const known = 'EXISTS (SELECT 1 FROM patient p WHERE p.id = s.patient_id)';
  const { rows } = await tx.query<{ id: string }>(`SELECT id FROM stage_immunization s WHERE NOT ${known}`);
  const counts = await stageChanges(tx, 'stage_immunization', 'immunization', known);
  if (counts.inserted + counts.updated > 0) {
    await tx.exec(`
      INSERT INTO immunization (${columns.join(', ')}) SELECT ${columns.join(', ')} FROM stage_immunization_changed
        ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, resource = excluded.resource,
          content_hash = excluded.content_hash, last_updated = excluded.last_updated`);
  }
  return { ...counts, orphans: new Set(rows.map((r) => r.id)) };
}

/**
 * A load into an empty index writes every blocking key at once (thirteen million for a million
 * patients): kept up row by row, patient_block's primary key costs ten times the writing itself,
 * and built once at the end a third of that. So the first load drops it (returns whether it did)
 * and restoreBlockIndexes builds it again; a later load (a delta) keeps it, since it needs it to
 * find the keys it replaces.
 */
export async function dropBlockIndexesIfEmpty(db: Queryable): Promise<boolean> {
  // Keys are written only beside their patient: no patient, no key.
  const { rows } = await db.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM patient) AS empty');
  if (!rows[0]!.empty) return false;
  // patient_changed_in too: only a copy of the index in memory reads it, and only after the load.
  await db.exec('ALTER TABLE patient_block DROP CONSTRAINT IF EXISTS patient_block_pkey; DROP INDEX IF EXISTS patient_changed_in');
  return true;
}

/** Builds the indexes a first load drops where they are missing (after a first load, or one that died midway). */
export async function restoreBlockIndexes(db: Queryable): Promise<void> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname IN ('patient_block_pkey', 'patient_changed_in')");
  if (rows[0]!.n === 2) return;
  await db.exec(`SET maintenance_work_mem = '512MB';
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'patient_block_pkey') THEN
        ALTER TABLE patient_block ADD CONSTRAINT patient_block_pkey PRIMARY KEY (key, patient_id);
      END IF;
    END $$;
    CREATE INDEX IF NOT EXISTS patient_changed_in ON patient (changed_in, id);
    RESET maintenance_work_mem`);
}

/** Statistics for the tables a load changed, so the planner sees their size without autovacuum. */
export async function analyzeIndex(db: Queryable): Promise<void> {
  await db.exec('ANALYZE patient; ANALYZE patient_block; ANALYZE immunization');
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
  mothers_maiden: string;
  birth_order: string;
  identifiers: IndexPatient['identifiers'];
}

function toIndexPatient(r: PatientRow): IndexPatient {
  const person: PersonFields = {
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
  };
  // Present only when known, as patientFromFhir and the in-memory copy give them.
  if (r.mothers_maiden !== '') person.mothersMaiden = r.mothers_maiden;
  if (r.birth_order !== '') person.birthOrder = r.birth_order;
  return { id: r.id, identifiers: r.identifiers, person };
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
  // Without statistics the planner takes a few thousand keys for the whole table and reads it.
  const { rows: found } = await probing(db, (q) => q.query<{ key: string; patient_id: string }>('SELECT key, patient_id FROM patient_block WHERE key = ANY($1::text[])', [keys]));
  const size = new Map<string, number>();
  if (keep) for (const h of found) size.set(h.key, (size.get(h.key) ?? 0) + 1);
  const hits = keep ? found.filter((h) => keep(h.key, size.get(h.key)!)) : found;
  if (hits.length === 0) return out;
  const byId = await candidatesByIds(db, hits.map((h) => h.patient_id));
  for (const h of hits) {
    const patient = byId.get(h.patient_id);
    if (!patient) continue;
    let list = out.get(h.key);
    if (!list) out.set(h.key, (list = []));
    list.push(patient);
  }
  return out;
}

/** Runs `fn` where sequential scans are off: in a transaction of its own when `db` can open one (inside a caller's, as it is). */
function probing<T>(db: Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
  if (!isDb(db)) return fn(db);
  return db.transaction(async (tx) => {
    await tx.exec('SET LOCAL enable_seqscan = off');
    return fn(tx);
  });
}

/**
 * These patients as candidates, by id: a merged-away one carries the live patient it stands for
 * (`survivor`); one merged into a patient since removed is left out, as removed ones are (they
 * have no keys).
 */
async function candidatesByIds(db: Queryable, ids: readonly string[]): Promise<Map<string, IndexPatient>> {
  const { rows } = await db.query<PatientRow & { replaced_by: string | null }>(`SELECT ${MATCH_VIEW_SQL}, replaced_by FROM patient WHERE id = ANY($1::text[])`, [[...new Set(ids)]]);
  return new Map((await asCandidates(db, rows)).map((p) => [p.id, p]));
}

/** Rows of the match view as candidates: merged-away ones resolved to their live survivor, or dropped when there is none. */
async function asCandidates(db: Queryable, rows: readonly (PatientRow & { replaced_by: string | null })[]): Promise<IndexPatient[]> {
  const merged = rows.flatMap((r) => (r.replaced_by === null ? [] : [r.id]));
  const survivors = merged.length > 0 ? await resolvePatients(db, merged) : undefined;
  return rows.flatMap((r) => {
    const p = toIndexPatient(r);
    if (r.replaced_by === null) return [p];
    const survivor = survivors?.get(r.id);
    if (!survivor) return [];
    p.survivor = survivor;
    return [p];
  });
}

/** The patients with these ids (for showing candidates to a person; removed ones too: history names them), by id. */
export async function patientsByIds(db: Queryable, ids: readonly string[]): Promise<Map<string, IndexPatient>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<PatientRow>(
    `SELECT ${MATCH_VIEW_SQL} FROM patient WHERE id = ANY($1::text[])`,
    [[...new Set(ids)]],
  );
  return new Map(rows.map((r) => [r.id, toIndexPatient(r)]));
}

export interface IndexState {
  version: number;
  /** The version of the last wholesale rewrite: a copy older than it must be rebuilt, not updated. */
  rewrittenIn: number;
}

export async function indexState(db: Queryable): Promise<IndexState> {
  const { rows } = await db.query<{ version: string | number; rewritten_in: string | number }>('SELECT version, rewritten_in FROM index_state WHERE id = 1');
  return { version: Number(rows[0]?.version ?? 0), rewrittenIn: Number(rows[0]?.rewritten_in ?? 0) };
}

/** How many patients were written after index version `since`. */
export async function countChangedSince(db: Queryable, since: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM patient WHERE changed_in > $1', [since]);
  return rows[0]!.n;
}

/**
 * The patients written after index version `since`, a page at a time in the order they were
 * written, each as a candidate now (merged-away ones with their survivor), or only its id when it
 * can no longer be matched (removed by the identity feed, or merged into a removed patient).
 * Keyset pages along (changed_in, id), so each page is an index range whatever the statistics say.
 */
export async function* patientsChangedSince(db: Queryable, since: number, page = 5000): AsyncGenerator<{ id: string; patient?: IndexPatient }[]> {
  // Ids are never empty: (since + 1, '') is before every patient written after `since`.
  let after: [number, string] = [since + 1, ''];
  for (;;) {
    const { rows } = await db.query<PatientRow & { changed_in: string | number; replaced_by: string | null; removed: boolean }>(
      `SELECT ${MATCH_VIEW_SQL}, changed_in, replaced_by, removed_at IS NOT NULL AS removed
         FROM patient WHERE (changed_in, id) > ($1, $2) ORDER BY changed_in, id LIMIT $3`,
      [after[0], after[1], page],
    );
    if (rows.length === 0) return;
    const live = new Map((await asCandidates(db, rows.filter((r) => !r.removed))).map((p) => [p.id, p]));
    yield rows.map((r) => {
      const patient = live.get(r.id);
      return patient ? { id: r.id, patient } : { id: r.id };
    });
    const end = rows[rows.length - 1]!;
    after = [Number(end.changed_in), end.id];
  }
}

/**
 * Every live patient, a slice of the table at a time in physical order (TID ranges): a
 * sequential read, where paging by id would jump around the heap. Rows that move during the scan
 * (updated meanwhile) may be seen twice or missed; callers that cache compare index versions.
 */
export async function* matchablePatients(db: Queryable, blocksPerSlice = 4096): AsyncGenerator<IndexPatient[]> {
  const sql = `SELECT ${MATCH_VIEW_SQL}
                 FROM patient WHERE ctid >= $1::tid AND ctid < $2::tid AND replaced_by IS NULL AND removed_at IS NULL`;
  for await (const rows of tidSlices<PatientRow>(db, sql, blocksPerSlice)) yield rows.map(toIndexPatient);
}

/** Every candidate, as matchablePatients reads them: the live patients and those merged into one (with their survivor). */
export async function* candidatePatients(db: Queryable, blocksPerSlice = 4096): AsyncGenerator<IndexPatient[]> {
  const sql = `SELECT ${MATCH_VIEW_SQL}, replaced_by
                 FROM patient WHERE ctid >= $1::tid AND ctid < $2::tid AND removed_at IS NULL`;
  for await (const rows of tidSlices<PatientRow & { replaced_by: string | null }>(db, sql, blocksPerSlice)) yield await asCandidates(db, rows);
}

/** How often each given and family name occurs, for term-frequency-adjusted weights. */
export async function nameFrequencies(db: Queryable): Promise<NameFrequencies> {
  const total = Number((await db.query<{ n: string | number }>('SELECT count(*) AS n FROM patient WHERE replaced_by IS NULL AND removed_at IS NULL')).rows[0]?.n ?? 0);
  const freq = async (col: 'given' | 'family') =>
    new Map(
      (
        await db.query<{ v: string; n: string | number }>(
          `SELECT ${col} AS v, count(*) AS n FROM patient WHERE replaced_by IS NULL AND removed_at IS NULL AND ${col} <> '' GROUP BY ${col}`,
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

/** A patient as the identity feed finds it: live, or merged into `replacedBy`. */
export interface HeldPatient {
  id: string;
  replacedBy: string | null;
}

/**
 * The patients not removed that hold this identifier (value as the index normalises it), merged-
 * away ones too: matchable ones by their identifier key, the others (no keys) by the index of
 * unmatchable identifiers. Ordered by id.
 */
export async function patientsHoldingIdentifier(db: Queryable, system: string, normalisedValue: string): Promise<HeldPatient[]> {
  if (normalisedValue === '') return [];
  const { rows } = await db.query<{ id: string; replaced_by: string | null }>(
    `SELECT p.id, p.replaced_by FROM patient_block b JOIN patient p ON p.id = b.patient_id
      WHERE b.key = $1 AND p.replaced_by IS NULL AND p.removed_at IS NULL
     UNION
     SELECT p.id, p.replaced_by FROM patient p
      WHERE (p.replaced_by IS NOT NULL OR p.removed_at IS NOT NULL) AND p.identifiers @> $2::jsonb AND p.removed_at IS NULL
     ORDER BY 1`,
    [`id:${system}|${normalisedValue}`, JSON.stringify([{ system, value: normalisedValue }])],
  );
  return rows.map((r) => ({ id: r.id, replacedBy: r.replaced_by }));
}

/**
 * The identity feed removed the patient: it keeps its row (Group histories name it) but loses its
 * blocking keys and is written in a new index version, so copies in memory drop it too.
 */
export async function markPatientRemoved(tx: Queryable, id: string, at: string): Promise<void> {
  const version = await nextVersion(tx);
  await tx.query('UPDATE patient SET removed_at = $2, changed_in = $3 WHERE id = $1', [id, at, version]);
  await tx.query(deleteKeysOf('$1::text[]'), [[id]]);
}

/**
 * The patients merged into `id`, along any chain of merges, are written in a new index version:
 * whom they stand for changed with `id` (merged, unmerged or removed), and copies in memory
 * follow only what was written since their own version. When `id` was removed they stand for
 * nobody, and lose their blocking keys as it did; the caller gives them back (replaceBlockKeys)
 * when they stand for somebody again. Returns their ids.
 */
export async function touchMergedInto(tx: Queryable, id: string, opts: { removed?: boolean } = {}): Promise<string[]> {
  const ids: string[] = [];
  // A hop at a time through the partial index of merged-away patients: a recursive join may be
  // planned as a scan of the whole table where there are no statistics.
  for (let hop = [id]; hop.length > 0 && ids.length < 100_000; ) {
    const { rows } = await tx.query<{ id: string }>('SELECT id FROM patient WHERE replaced_by = ANY($1::text[]) AND replaced_by IS NOT NULL', [hop]);
    hop = rows.map((r) => r.id).filter((x) => x !== id && !ids.includes(x));
    ids.push(...hop);
  }
  if (ids.length === 0) return ids;
  const version = await nextVersion(tx);
  await tx.query('UPDATE patient SET changed_in = $2 WHERE id = ANY($1::text[])', [ids, version]);
  if (opts.removed) await tx.query(deleteKeysOf('$1::text[]'), [ids]);
  return ids;
}

/**
 * Who each of these ids stands for now, for those that are no longer live: a merged-away patient
 * its survivor (along a chain of merges), a removed one — or one merged into a removed one —
 * null. Live and unknown ids are absent. Read under the identity lock (src/store/clock.ts), so no
 * merge is half seen.
 */
export async function resolvePatients(db: Queryable, ids: readonly string[]): Promise<Map<string, string | null>> {
  const step = new Map<string, string | null>();
  let ask = [...new Set(ids)];
  // A chain longer than this is a cycle no feed can make (a survivor must be live): it resolves to nobody.
  for (let hop = 0; ask.length > 0 && hop < 32; hop++) {
    // A probe of the primary key per id (a run's tens of thousands): never a scan of the index, whatever the statistics.
    const { rows } = await db.query<{ id: string; replaced_by: string | null; removed: boolean }>(
      `SELECT p.id, p.replaced_by, p.removed_at IS NOT NULL AS removed
         FROM unnest($1::text[]) AS u(id), LATERAL (SELECT * FROM patient p WHERE p.id = u.id OFFSET 0) p
        WHERE p.replaced_by IS NOT NULL OR p.removed_at IS NOT NULL`,
      [ask],
    );
    for (const r of rows) step.set(r.id, r.removed ? null : r.replaced_by);
    ask = rows.flatMap((r) => (!r.removed && r.replaced_by !== null && !step.has(r.replaced_by) ? [r.replaced_by] : []));
  }
  const out = new Map<string, string | null>();
  for (const id of new Set(ids)) {
    if (!step.has(id)) continue;
    let at: string | null = id;
    for (let hop = 0; at !== null && step.has(at); hop++) at = hop < 32 ? step.get(at)! : null;
    out.set(id, at);
  }
  return out;
}

/** One patient as the index stores it, for a FHIR read: its resource, and whether it was merged away or removed. */
export interface StoredPatient {
  /** The FHIR resource as stored (and exported): id and meta.lastUpdated included. */
  resource: Record<string, unknown>;
  replacedBy: string | null;
  /** When the identity feed removed it; null while it is in the index. */
  removedAt: string | null;
  lastUpdated: string;
}

/** The patient `id` whatever its state (live, merged away, removed), or undefined when the index never held it. */
export async function storedPatient(db: Queryable, id: string): Promise<StoredPatient | undefined> {
  const { rows } = await db.query<{ resource: Record<string, unknown> | string; replaced_by: string | null; removed_at: Date | string | null; last_updated: Date | string }>(
    'SELECT resource, replaced_by, removed_at, last_updated FROM patient WHERE id = $1',
    [id],
  );
  const r = rows[0];
  if (!r) return undefined;
  const instant = (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString();
  return {
    resource: typeof r.resource === 'string' ? (JSON.parse(r.resource) as Record<string, unknown>) : r.resource,
    replacedBy: r.replaced_by,
    removedAt: r.removed_at === null ? null : instant(r.removed_at),
    lastUpdated: instant(r.last_updated),
  };
}
