/**
 * The patient index in memory, for candidate look-up at matching speed. Measured against the
 * database's blocking table, a look-up here costs microseconds where two index probes per chunk
 * cost hundreds of milliseconds on a million patients (see the bench figures in the README).
 *
 * Compact on purpose, so a million patients fit well inside a worker's memory budget: each
 * patient is one tab-joined string, parsed only when it becomes a candidate, and each blocking
 * key is three 32-bit words side by side in one flat array — a hash of the key, the patient's
 * ordinal and a second, independent hash — 12 bytes a key, where a Map cost ten times that. The keys are laid out
 * by hash bucket (a counting sort when the index is sealed), so a look-up reads one bucket of a
 * key or two instead of binary-searching thirteen million: at a dozen keys a row, those cache
 * misses were the largest cost of matching. Both hashes must agree before a patient is handed
 * out, so that a collision neither adds work nor makes the in-memory copy answer differently
 * from the database's blocking table; a collision can never hide a patient.
 *
 * A sealed index is never changed: `withChanges` makes the next one (sharing the row strings), so
 * a chunk matching against the old one meanwhile sees one version of the index throughout.
 */
import type { IndexPatient, NameFrequencies, PersonFields, Sex } from '../model/index.ts';
import { blockingKeys, keepBlock } from './blocking.ts';

/** Room made for a new patient's keys (they grow as needed; thirteen is usual). */
const KEYS_PER_PATIENT = 16;

/** The person's fields in a row, in this order; the optional ones (the last two) are '' when absent. */
const FIELDS = ['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone', 'mothersMaiden', 'birthOrder'] as const;

/** Where a row holds the survivor of a merged-away patient. */
const SURVIVOR = FIELDS.length + 2;

/** A patient written to the index since a copy was made: its new view, or gone from matching. */
export interface IndexChange {
  id: string;
  /** Absent when the patient can no longer be matched (removed, or merged into a removed patient). */
  patient?: IndexPatient;
}

/** A sealed index's contents as typed arrays and strings, for a snapshot on disk. */
export interface IndexParts {
  rows: string[];
  entries: Uint32Array;
  bucketStart: Uint32Array;
  bucketShift: number;
  freq: NameFrequencies;
}

export class CandidateIndex {
  /** id, the person's fields, identifiers, then the survivor ('' for a live patient), tab-joined; shared, append-only, with the indexes made from this one by withChanges. */
  #rows: string[] = [];
  /** Rows of this index from #rows[0] to #rows[#end - 1]; those marked in #dead were replaced or removed. */
  #end = 0;
  #dead = new Uint8Array(0);
  #live = 0;
  /** Per key of every patient, side by side (one cache line): its hash, the patient's ordinal, its check hash; after seal, grouped by bucket. */
  #entries = new Uint32Array(3 << 16);
  #count = 0;
  /** After seal: bucket b's keys are [#bucketStart[b], #bucketStart[b + 1]); a bucket is the hash's top #bucketBits bits. */
  #bucketStart = new Uint32Array(0);
  #bucketShift = 32;
  #sealed = false;
  readonly freq: NameFrequencies = { total: 0, given: new Map(), family: new Map() };

  /** Patients that can be found. */
  get size(): number {
    return this.#live;
  }

  add(p: IndexPatient): void {
    if (this.#sealed) throw new Error('CandidateIndex is sealed; build a new one');
    this.#append(p);
  }

  #append(p: IndexPatient): void {
    const ordinal = this.#end++;
    this.#live++;
    const f = p.person;
    // One join, so the string is flat: a concatenated one is flattened (copied) on its first split.
    this.#rows[ordinal] = [p.id, ...FIELDS.map((k) => f[k] ?? ''), p.identifiers.map((i) => `${i.system}\u0001${i.value}`).join('\u0002'), p.survivor ?? ''].join('\t');
    for (const key of blockingKeys(f, p.identifiers)) {
      if (3 * this.#count === this.#entries.length) this.#entries = grow(this.#entries);
      const at = 3 * this.#count++;
      hashKey(key);
      this.#entries[at] = HASHES[0]!;
      this.#entries[at + 1] = ordinal;
      this.#entries[at + 2] = HASHES[1]!;
    }
    // Name frequencies are of live patients, as the database counts them.
    if (p.survivor === undefined) countNames(this.freq, f.given, f.family, 1);
  }

  /**
   * The next index: this one with `changes` applied — each changed patient's old row dropped,
   * its new view (if any) added at the end. A patient listed twice takes its last change.
   */
  withChanges(changes: readonly IndexChange[]): CandidateIndex {
    this.seal();
    const last = new Map(changes.map((c) => [c.id, c]));
    const next = new CandidateIndex();
    next.#rows = this.#rows;
    next.#end = this.#end;
    next.#live = this.#live;
    next.#dead = new Uint8Array(this.#end + last.size);
    next.#dead.set(this.#dead.subarray(0, this.#end));
    next.freq.total = this.freq.total;
    for (const [k, v] of this.freq.given) next.freq.given.set(k, v);
    for (const [k, v] of this.freq.family) next.freq.family.set(k, v);
    for (let o = 0; o < this.#end; o++) {
      if (next.#dead[o]) continue;
      const row = this.#rows[o]!;
      if (!last.has(row.slice(0, row.indexOf('\t')))) continue;
      next.#dead[o] = 1;
      next.#live--;
      const c = row.split('\t');
      if (c[SURVIVOR] === '') countNames(next.freq, c[1]!, c[3]!, -1);
    }
    // The live keys, still in bucket order, then the new patients' keys; seal groups them again.
    const e = this.#entries;
    next.#entries = new Uint32Array(3 * this.#count + 3 * KEYS_PER_PATIENT * last.size);
    for (let i = 0; i < 3 * this.#count; i += 3) {
      if (next.#dead[e[i + 1]!]) continue;
      next.#entries.set(e.subarray(i, i + 3), 3 * next.#count++);
    }
    for (const c of last.values()) if (c.patient) next.#append(c.patient);
    return next.seal();
  }

  /** The live contents, renumbered from 0, for a snapshot on disk. */
  parts(): IndexParts {
    this.seal();
    const renumber = new Uint32Array(this.#end);
    const rows: string[] = [];
    for (let o = 0; o < this.#end; o++) {
      if (this.#dead[o]) continue;
      renumber[o] = rows.length;
      rows.push(this.#rows[o]!);
    }
    const entries = new Uint32Array(3 * this.#count);
    let n = 0;
    for (let i = 0; i < 3 * this.#count; i += 3) {
      const o = this.#entries[i + 1]!;
      if (this.#dead[o]) continue;
      entries[n++] = this.#entries[i]!;
      entries[n++] = renumber[o]!;
      entries[n++] = this.#entries[i + 2]!;
    }
    return { rows, entries: entries.subarray(0, n), bucketStart: this.#recount(entries.subarray(0, n)), bucketShift: this.#bucketShift, freq: this.freq };
  }

  /** Bucket starts of bucket-ordered `entries`. */
  #recount(entries: Uint32Array): Uint32Array {
    const start = new Uint32Array(this.#bucketStart.length);
    for (let i = 0; i < entries.length; i += 3) start[(entries[i]! >>> this.#bucketShift) + 1]!++;
    for (let b = 1; b < start.length; b++) start[b]! += start[b - 1]!;
    return start;
  }

  /** An index from a snapshot's parts (sealed). */
  static fromParts(p: IndexParts): CandidateIndex {
    const idx = new CandidateIndex();
    idx.#rows = p.rows;
    idx.#end = idx.#live = p.rows.length;
    idx.#dead = new Uint8Array(p.rows.length);
    idx.#entries = p.entries as Uint32Array<ArrayBuffer>;
    idx.#count = p.entries.length / 3;
    idx.#bucketStart = p.bucketStart as Uint32Array<ArrayBuffer>;
    idx.#bucketShift = p.bucketShift;
    idx.freq.total = p.freq.total;
    for (const [k, v] of p.freq.given) idx.freq.given.set(k, v);
    for (const [k, v] of p.freq.family) idx.freq.family.set(k, v);
    idx.#sealed = true;
    return idx;
  }

  /**
   * Ends building: groups the keys by bucket, about one key a bucket. The sort is stable, so a
   * key's patients stay in the order they were added, as the database returns them.
   */
  seal(): this {
    if (this.#sealed) return this;
    const n = this.#count;
    const from = this.#entries;
    if (this.#dead.length < this.#end) {
      const dead = new Uint8Array(this.#end);
      dead.set(this.#dead);
      this.#dead = dead;
    }
    const bits = Math.max(4, Math.min(30, Math.ceil(Math.log2(n + 1)) - 2));
    const shift = 32 - bits;
    const start = new Uint32Array((1 << bits) + 1);
    for (let i = 0; i < n; i++) start[(from[3 * i]! >>> shift) + 1]!++;
    for (let b = 1; b < start.length; b++) start[b]! += start[b - 1]!;
    const next = start.slice(0, -1);
    const entries = new Uint32Array(3 * n);
    for (let i = 0; i < 3 * n; i += 3) {
      const at = 3 * next[from[i]! >>> shift]!++;
      entries[at] = from[i]!;
      entries[at + 1] = from[i + 1]!;
      entries[at + 2] = from[i + 2]!;
    }
    this.#entries = entries;
    this.#bucketStart = start;
    this.#bucketShift = shift;
    this.#sealed = true;
    return this;
  }

  /** Patients reachable by each key, as the CandidateSource contract asks. */
  byKeys(keys: readonly string[]): Map<string, IndexPatient[]> {
    this.seal();
    const out = new Map<string, IndexPatient[]>();
    const parsed = new Map<number, IndexPatient>();
    const e = this.#entries;
    for (const key of keys) {
      hashKey(key);
      const hash = HASHES[0]!;
      const check = HASHES[1]!;
      const b = hash >>> this.#bucketShift;
      const ordinals: number[] = [];
      for (let i = 3 * this.#bucketStart[b]!, end = 3 * this.#bucketStart[b + 1]!; i < end; i += 3) {
        if (e[i] === hash && e[i + 2] === check) ordinals.push(e[i + 1]!);
      }
      // Judged on verified patients only, so both sources skip the same blocks.
      if (ordinals.length === 0 || !keepBlock(key, ordinals.length)) continue;
      out.set(
        key,
        ordinals.map((o) => {
          let p = parsed.get(o);
          if (!p) parsed.set(o, (p = this.#patient(o)));
          return p;
        }),
      );
    }
    return out;
  }

  #patient(ordinal: number): IndexPatient {
    const c = this.#rows[ordinal]!.split('\t') as string[] & { length: 16 };
    const ids = c[14]!;
    // In FIELDS order, written out: this runs for every candidate of every row.
    const person: PersonFields = { given: c[1]!, middle: c[2]!, family: c[3]!, suffix: c[4]!, birthDate: c[5]!, sex: c[6] as Sex, street: c[7]!, city: c[8]!, state: c[9]!, zip: c[10]!, phone: c[11]! };
    // Present only when known, as patientFromFhir and the database give them.
    if (c[12] !== '') person.mothersMaiden = c[12]!;
    if (c[13] !== '') person.birthOrder = c[13]!;
    const patient: IndexPatient = {
      id: c[0]!,
      person,
      identifiers: ids === '' ? [] : ids.split('\u0002').map((x) => {
        const [system, value] = x.split('\u0001') as [string, string];
        return { system, value };
      }),
    };
    if (c[SURVIVOR] !== '') patient.survivor = c[SURVIVOR];
    return patient;
  }
}

/** Counts a patient's names in (by 1) or out (by -1), so the figures equal those of an index built afresh. */
function countNames(freq: NameFrequencies, given: string, family: string, by: 1 | -1): void {
  freq.total += by;
  const count = (names: Map<string, number>, name: string) => {
    if (!name) return;
    const n = (names.get(name) ?? 0) + by;
    if (n > 0) names.set(name, n);
    else names.delete(name);
  };
  count(freq.given, given);
  count(freq.family, family);
}

function grow(a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const next = new Uint32Array(a.length * 2);
  next.set(a);
  return next;
}

/** hashKey's answer: a key's hash and its check hash. */
const HASHES = new Uint32Array(2);

/**
 * Both hashes of a key in one pass, into HASHES: FNV-1a (32 bits), and an independent check,
 * djb2 in its xor form (32 bits).
 */
function hashKey(key: string): void {
  let hash = 0x811c9dc5;
  let check = 5381;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    hash = Math.imul(hash ^ c, 0x01000193);
    check = Math.imul(check, 33) ^ c;
  }
  HASHES[0] = hash;
  HASHES[1] = check;
}
