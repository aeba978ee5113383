/**
 * Where candidates come from: the database's blocking table, or an in-memory copy of the index.
 * The copy costs a load (about 8.5 s and 450 MB per million patients) and pays for itself on large files and
 * in long-lived workers; it is rebuilt when the index changes (index_state.version).
 */
import { CandidateIndex, keepBlock, type CandidateSource } from '../match/index.ts';
import { ensureMatchForm } from '../patient-index/index.ts';
import type { NameFrequencies } from '../model/index.ts';
import { countIndex, indexVersion, matchablePatients, nameFrequencies, patientsByBlockKeys, type Db, type Queryable } from '../store/index.ts';

function isDb(q: Queryable): q is Db {
  return typeof (q as Partial<Db>).transaction === 'function';
}

/** memory: always the in-memory copy; database: always the blocking table; auto: by file size. */
export type CandidateMode = 'memory' | 'database' | 'auto';

export interface Candidates {
  source: CandidateSource;
  freq: NameFrequencies;
}

/** Above this many rows per patient in the index, a file is worth loading the index for. */
const AUTO_ROWS_PER_PATIENT = 0.05;

const cache = new WeakMap<Queryable, { version: number; index: Promise<CandidateIndex> }>();

async function memoryIndex(db: Queryable): Promise<CandidateIndex> {
  const version = await indexVersion(db);
  const hit = cache.get(db);
  if (hit && hit.version === version) return hit.index;
  const index = (async () => {
    const idx = new CandidateIndex();
    for await (const page of matchablePatients(db)) for (const p of page) idx.add(p);
    return idx.seal();
  })();
  cache.set(db, { version, index });
  index.catch(() => cache.delete(db));
  return index;
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

/** @param rows how many rows are about to be matched, for `auto`. */
export async function candidatesFor(db: Queryable, mode: CandidateMode, rows = 0): Promise<Candidates> {
  // A store written by an older normalisation or blocking is brought up to date first.
  if (isDb(db)) await ensureMatchForm(db);
  let useMemory = mode === 'memory';
  if (mode === 'auto') useMemory = cache.has(db) || rows >= (await countIndex(db)).patients * AUTO_ROWS_PER_PATIENT;
  if (useMemory) {
    const idx = await memoryIndex(db);
    return { source: idx, freq: idx.freq };
  }
  return { source: { byKeys: (keys) => patientsByBlockKeys(db, keys, keepBlock) }, freq: await frequencies(db) };
}
