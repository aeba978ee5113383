/**
 * The in-memory candidate index on disk, so a one-shot run or a fresh worker reads it back in a
 * second instead of rebuilding it from the database (about nine seconds per million patients).
 * A snapshot names the store and the index version it holds; whoever reads it brings it up to
 * date from the patients written since (see candidates.ts), or rebuilds when it is too old.
 *
 * It holds patients' demographics, as the database does: written owner-only (0600) into the data
 * folder, replaced atomically (write, then rename), never read across stores.
 *
 * Layout: one JSON header line, the key entries, the bucket starts, then the rows in blocks (NUL-separated: PostgreSQL text cannot
 * hold NUL, so no row contains one), each block at most ROWS_PER_BLOCK rows so no decoded string
 * comes near V8's string length limit.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CandidateIndex, type IndexParts } from '../match/candidate-index.ts';

/**
 * Bump with any change to this layout or to CandidateIndex's hashes or row form.
 * 2: rows carry the mother's maiden name and the birth order (issue 13).
 * 3: rows carry the survivor of a merged-away patient (issue 14).
 */
const FORMAT = 3;
const ROWS_PER_BLOCK = 100_000;

interface Header {
  format: number;
  storeId: string;
  matchForm: number;
  version: number;
  entries: number;
  buckets: number;
  bucketShift: number;
  rowBlocks: number[];
  freq: { total: number; given: [string, number][]; family: [string, number][] };
}

export interface Snapshot {
  version: number;
  index: CandidateIndex;
}

function fileFor(dir: string, storeId: string): string {
  return path.join(dir, `candidate-index-${storeId}.snapshot`);
}

/** Writes `index` as version `version` of store `storeId`'s index. */
export async function writeSnapshot(dir: string, storeId: string, matchForm: number, version: number, index: CandidateIndex): Promise<void> {
  const p = index.parts();
  const blocks: Buffer[] = [];
  for (let i = 0; i < p.rows.length; i += ROWS_PER_BLOCK) blocks.push(Buffer.from(p.rows.slice(i, i + ROWS_PER_BLOCK).join('\0')));
  const header: Header = {
    format: FORMAT,
    storeId,
    matchForm,
    version,
    entries: p.entries.length,
    buckets: p.bucketStart.length,
    bucketShift: p.bucketShift,
    rowBlocks: blocks.map((b) => b.length),
    freq: { total: p.freq.total, given: [...p.freq.given], family: [...p.freq.family] },
  };
  const head = Buffer.from(`${JSON.stringify(header)}\n`);
  await fs.mkdir(dir, { recursive: true });
  const file = fileFor(dir, storeId);
  await removeStaleTemps(dir, path.basename(file));
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const out = await fs.open(temp, 'w', 0o600);
  try {
    for (const b of [head, view(p.entries), view(p.bucketStart), ...blocks]) await out.write(b);
    await out.sync();
  } catch (e) {
    await out.close();
    await fs.rm(temp, { force: true });
    throw e;
  }
  await out.close();
  await fs.rename(temp, file);
}

/**
 * Store `storeId`'s snapshot, if there is one written by this code for `matchForm`; undefined
 * otherwise (none, another format, or unreadable — a snapshot is only ever a shortcut).
 */
export async function readSnapshot(dir: string, storeId: string, matchForm: number): Promise<Snapshot | undefined> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(fileFor(dir, storeId));
  } catch {
    return undefined;
  }
  const nl = buf.indexOf(10);
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 0, nl)) as Header;
  } catch {
    return undefined;
  }
  if (header.format !== FORMAT || header.storeId !== storeId || header.matchForm !== matchForm) return undefined;
  let at = nl + 1;
  // Copies, so the arrays are aligned and the file's buffer can go.
  const words = (n: number) => {
    const a = new Uint32Array(n);
    Buffer.from(a.buffer).set(buf.subarray(at, at + 4 * n));
    at += 4 * n;
    return a;
  };
  const entries = words(header.entries);
  const bucketStart = words(header.buckets);
  const rows: string[] = [];
  for (const len of header.rowBlocks) {
    for (const r of buf.toString('utf8', at, at + len).split('\0')) rows.push(r);
    at += len;
  }
  if (at !== buf.length) return undefined;
  const parts: IndexParts = {
    rows,
    entries,
    bucketStart,
    bucketShift: header.bucketShift,
    freq: { total: header.freq.total, given: new Map(header.freq.given), family: new Map(header.freq.family) },
  };
  return { version: header.version, index: CandidateIndex.fromParts(parts) };
}

function view(a: Uint32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A write older than this was cut short (its process killed): its temporary file goes. */
const STALE_TEMP_MS = 60 * 60_000;

async function removeStaleTemps(dir: string, name: string): Promise<void> {
  for (const f of await fs.readdir(dir)) {
    if (!f.startsWith(`${name}.`) || !f.endsWith('.tmp')) continue;
    const at = path.join(dir, f);
    const stat = await fs.stat(at).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > STALE_TEMP_MS) await fs.rm(at, { force: true });
  }
}

export async function hasSnapshot(dir: string, storeId: string): Promise<boolean> {
  return fs.access(fileFor(dir, storeId)).then(() => true, () => false);
}
