/**
 * Where candidates come from: the database's blocking table, or an in-memory copy of the index.
 * The copy costs a build (about 8.5 s and 450 MB per million patients) or, from a snapshot on
 * disk, a read of about a second; it pays for itself on large files and in long-lived processes
 * (serve, workers), which keep it and follow the index's changes (patients written since the
 * copy's version) instead of building it again.
 */
import { keepBlock, type CandidateSource } from '../match/index.ts';
import { CandidateIndex, type IndexChange } from '../match/candidate-index.ts';
import { ensureMatchForm, MATCH_FORM } from '../patient-index/index.ts';
import type { NameFrequencies } from '../model/index.ts';
import {
  countChangedSince,
  candidatePatients,
  countIndex,
  indexState,
  isDb,
  nameFrequencies,
  patientsByBlockKeys,
  patientsChangedSince,
  type IndexState,
  type Queryable,
} from '../store/index.ts';
import { hasSnapshot, readSnapshot, writeSnapshot } from './index-snapshot.ts';

/** memory: always the in-memory copy; database: always the blocking table; auto: by file size. */
export type CandidateMode = 'memory' | 'database' | 'auto';

export interface Candidates {
  source: CandidateSource;
  freq: NameFrequencies;
}

export interface CandidateOptions {
  /** How many rows are about to be matched, for `auto`. */
  rows?: number;
  /** Where the in-memory copy is kept on disk between processes; none: it is built from the database. */
  snapshotDir?: string;
}

/**
 * Above this many rows per patient in the index, a file is worth loading the index for: building
 * it costs about 30 times a row's look-ups in the database, reading a snapshot about 5 times.
 */
const AUTO_ROWS_PER_PATIENT = 0.05;
const AUTO_ROWS_PER_PATIENT_SNAPSHOT = 0.005;
/** Above this share of the index changed, building afresh is cheaper than following the changes. */
const FOLLOW_MAX_SHARE = 0.2;

interface Versioned {
  version: number;
  index: CandidateIndex;
}

const cache = new WeakMap<Queryable, { version: number; index: Promise<CandidateIndex> }>();

async function memoryIndex(db: Queryable, snapshotDir: string | undefined): Promise<CandidateIndex> {
  const state = await indexState(db);
  const hit = cache.get(db);
  // At or past this version already (a caller that read the state later may have moved it on).
  if (hit && hit.version >= state.version) return hit.index;
  const prior = hit && hit.index.then((index) => ({ version: hit.version, index }), () => undefined);
  const index = upToDate(db, state, prior, snapshotDir);
  cache.set(db, { version: state.version, index });
  index.catch(() => {
    if (cache.get(db)?.index === index) cache.delete(db);
  });
  return index;
}

/**
 * The copy at `state`'s version: the one this process holds, or else the snapshot, brought up to
 * date by the patients written since — when it is not older than the last wholesale rewrite and
 * little has changed; otherwise built afresh from the database. A copy that changed is written
 * back as the snapshot, in the background (a snapshot is only a shortcut: when a write fails, the
 * older one stays and is brought up to date or set aside by its next reader).
 */
async function upToDate(db: Queryable, state: IndexState, prior: Promise<Versioned | undefined> | undefined, snapshotDir: string | undefined): Promise<CandidateIndex> {
  const storeId = isDb(db) ? db.storeId : undefined;
  const snapshots = snapshotDir !== undefined && storeId !== undefined ? { dir: snapshotDir, storeId } : undefined;
  const from = (await prior) ?? (snapshots && (await readSnapshot(snapshots.dir, snapshots.storeId, MATCH_FORM)));
  let index: CandidateIndex | undefined;
  if (from && from.version >= state.rewrittenIn && from.version <= state.version) {
    const changed = await countChangedSince(db, from.version);
    if (changed === 0) return from.index;
    if (changed <= FOLLOW_MAX_SHARE * from.index.size) index = from.index.withChanges(await changesSince(db, from.version));
  }
  if (!index) {
    const built = new CandidateIndex();
    for await (const page of candidatePatients(db)) for (const p of page) built.add(p);
    index = built.seal();
  }
  // A layer of changes is not written: the snapshot underneath stays good to follow from, and
  // writing would compact a million patients per feed transaction.
  if (snapshots && !index.layered) void writeSnapshot(snapshots.dir, snapshots.storeId, MATCH_FORM, state.version, index).catch(() => {});
  return index;
}

async function changesSince(db: Queryable, version: number): Promise<IndexChange[]> {
  const changes: IndexChange[] = [];
  for await (const page of patientsChangedSince(db, version)) changes.push(...page);
  return changes;
}

// Name frequencies are a full scan of the index: share them between chunks for a minute.
const FREQ_TTL_MS = 60_000;
const freqCache = new WeakMap<Queryable, { at: number; freq: Promise<NameFrequencies> }>();
function frequencies(db: Queryable): Promise<NameFrequencies> {
  const hit = freqCache.get(db);
  if (hit && Date.now() - hit.at < FREQ_TTL_MS) return hit.freq;
  const freq = nameFrequencies(db);
  freqCache.set(db, { at: Date.now(), freq });
  freq.catch(() => freqCache.delete(db));
  return freq;
}

export async function candidatesFor(db: Queryable, mode: CandidateMode, opts: CandidateOptions = {}): Promise<Candidates> {
  // A store written by an older normalisation or blocking is brought up to date first.
  if (isDb(db)) await ensureMatchForm(db);
  let useMemory = mode === 'memory';
  if (mode === 'auto') useMemory = cache.has(db) || (opts.rows ?? 0) >= (await countIndex(db)).patients * (await autoShare(db, opts.snapshotDir));
  if (useMemory) {
    const idx = await memoryIndex(db, opts.snapshotDir);
    return { source: idx, freq: idx.freq };
  }
  return { source: { byKeys: (keys) => patientsByBlockKeys(db, keys, keepBlock) }, freq: await frequencies(db) };
}

async function autoShare(db: Queryable, snapshotDir: string | undefined): Promise<number> {
  const snapshot = snapshotDir !== undefined && isDb(db) && (await hasSnapshot(snapshotDir, db.storeId));
  return snapshot ? AUTO_ROWS_PER_PATIENT_SNAPSHOT : AUTO_ROWS_PER_PATIENT;
}
