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
 * A sealed index is never changed: `withChanges` makes the next one, so a chunk matching against
 * the old one meanwhile sees one version of the index throughout. The next one is a layer over
 * the whole index underneath: the changed patients' rows there hidden (a byte per patient,
 * copied), their new views in a small index of their own. Making it costs the changes and the
 * layer, not the million patients: an identity feed's transaction a second does not keep a
 * worker rebuilding. When the layer grows past LAYER_SHARE of the whole, the two are compacted
 * into a new whole index (about as long as building the whole anew from memory: two seconds a
 * million patients).
 */
import type { IndexPatient, NameFrequencies, PersonFields, Sex } from '../model/index.ts';
import { blockingKeys, keepBlock } from './blocking.ts';

/** Room made for a new patient's keys (they grow as needed; thirteen is usual). */
const KEYS_PER_PATIENT = 16;

/** A layer of changes is compacted into a new whole index past this share of the whole (or LAYER_MIN rows). */
const LAYER_SHARE = 1 / 32;
const LAYER_MIN = 4096;

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
  /** A layer's whole index underneath, and which of its rows the layer hides (changed since): a byte per row of it. */
  #under: CandidateIndex | undefined;
  #hidden = new Uint8Array(0);
  /** A whole index's rows by id, built when first asked (see #ordinalsOf): ordinals grouped by a hash of the id. */
  #ids: { ordinals: Uint32Array; start: Uint32Array; shift: number } | undefined;
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
   * its new view (if any) added. A patient listed twice takes its last change.
   */
  withChanges(changes: readonly IndexChange[]): CandidateIndex {
    this.seal();
    const last = new Map(changes.map((c) => [c.id, c]));
    const whole = this.#under ?? this;
    const next = new CandidateIndex();
    next.#live = this.#live;
    next.freq.total = this.freq.total;
    for (const [k, v] of this.freq.given) next.freq.given.set(k, v);
    for (const [k, v] of this.freq.family) next.freq.family.set(k, v);
    // The whole index's rows of changed patients are hidden, as they were by this layer.
    const hidden = this.#under ? this.#hidden.slice() : this.#dead.slice(0, this.#end);
    for (const id of last.keys()) {
      for (const o of whole.#ordinalsOf(id)) {
        if (hidden[o]) continue;
        hidden[o] = 1;
        next.#forget(whole.#rows[o]!);
      }
    }
    // This layer's rows of unchanged patients stay, with their keys; the changed patients' new views are added after them.
    if (this.#under) {
      next.#rows = this.#rows.slice(0, this.#end);
      next.#end = this.#end;
      next.#dead = this.#dead.slice(0, this.#end);
      for (let o = 0; o < this.#end; o++) {
        if (next.#dead[o]) continue;
        const row = this.#rows[o]!;
        if (!last.has(row.slice(0, row.indexOf('\t')))) continue;
        next.#dead[o] = 1;
        next.#forget(row);
      }
      const e = this.#entries;
      next.#entries = new Uint32Array(3 * this.#count + 3 * KEYS_PER_PATIENT * last.size);
      for (let i = 0; i < 3 * this.#count; i += 3) {
        if (next.#dead[e[i + 1]!]) continue;
        next.#entries.set(e.subarray(i, i + 3), 3 * next.#count++);
      }
    }
    for (const c of last.values()) if (c.patient) next.#append(c.patient);
    next.#under = whole;
    next.#hidden = hidden;
    next.seal();
    return next.#end > Math.max(LAYER_MIN, LAYER_SHARE * whole.#end) ? next.#compacted() : next;
  }

  /** A row's patient leaves this index's count and, when live (not merged away), its name frequencies. */
  #forget(row: string): void {
    this.#live--;
    const c = row.split('\t');
    if (c[SURVIVOR] === '') countNames(this.freq, c[1]!, c[3]!, -1);
  }

  /**
   * This index as one whole index: the live rows of the index underneath (those the layer does not
   * hide), then the layer's, renumbered — so rows dropped by changes go with the compaction, and a
   * long-lived copy does not grow with every change it has followed.
   */
  #compacted(): CandidateIndex {
    const under = this.#under;
    if (!under) return this;
    const whole = new CandidateIndex();
    const fromUnder = new Uint32Array(under.#end);
    const fromOwn = new Uint32Array(this.#end);
    for (let o = 0; o < under.#end; o++) if (!this.#hidden[o]) fromUnder[o] = whole.#rows.push(under.#rows[o]!) - 1;
    for (let o = 0; o < this.#end; o++) if (!this.#dead[o]) fromOwn[o] = whole.#rows.push(this.#rows[o]!) - 1;
    whole.#end = whole.#live = whole.#rows.length;
    whole.#dead = new Uint8Array(whole.#end);
    whole.#entries = new Uint32Array(3 * (under.#count + this.#count));
    const copy = (e: Uint32Array, count: number, skip: Uint8Array, to: Uint32Array) => {
      for (let i = 0; i < 3 * count; i += 3) {
        if (skip[e[i + 1]!]) continue;
        const at = 3 * whole.#count++;
        whole.#entries[at] = e[i]!;
        whole.#entries[at + 1] = to[e[i + 1]!]!;
        whole.#entries[at + 2] = e[i + 2]!;
      }
    };
    copy(under.#entries, under.#count, this.#hidden, fromUnder);
    copy(this.#entries, this.#count, this.#dead, fromOwn);
    whole.freq.total = this.freq.total;
    for (const [k, v] of this.freq.given) whole.freq.given.set(k, v);
    for (const [k, v] of this.freq.family) whole.freq.family.set(k, v);
    return whole.seal();
  }

  /** Whether this index is a layer of changes over a whole one (see withChanges). */
  get layered(): boolean {
    return this.#under !== undefined;
  }

  /** The ordinals of a whole index's rows for patient `id` (dead ones too). */
  #ordinalsOf(id: string): number[] {
    const ids = (this.#ids ??= this.#idTable());
    const h = hashId(id, 0, id.length);
    const out: number[] = [];
    const b = h >>> ids.shift;
    for (let i = ids.start[b]!; i < ids.start[b + 1]!; i++) {
      const o = ids.ordinals[i]!;
      const row = this.#rows[o]!;
      if (row.length > id.length && row.charCodeAt(id.length) === 9 && row.startsWith(id)) out.push(o);
    }
    return out;
  }

  /** Every row's ordinal, grouped by the top bits of a hash of its id (a counting sort): a look-up reads one small bucket. */
  #idTable(): { ordinals: Uint32Array; start: Uint32Array; shift: number } {
    const n = this.#end;
    const bits = Math.max(4, Math.min(30, Math.ceil(Math.log2(n + 1))));
    const shift = 32 - bits;
    const hashes = new Uint32Array(n);
    const start = new Uint32Array((1 << bits) + 1);
    for (let o = 0; o < n; o++) {
      const row = this.#rows[o]!;
      hashes[o] = hashId(row, 0, row.indexOf('\t'));
      start[(hashes[o]! >>> shift) + 1]!++;
    }
    for (let b = 1; b < start.length; b++) start[b]! += start[b - 1]!;
    const next = start.slice(0, -1);
    const ordinals = new Uint32Array(n);
    for (let o = 0; o < n; o++) ordinals[next[hashes[o]! >>> shift]!++] = o;
    return { ordinals, start, shift };
  }

  /** The live contents, renumbered from 0, for a snapshot on disk. */
  parts(): IndexParts {
    if (this.#under) return this.#compacted().parts();
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
    const parsedUnder = new Map<number, IndexPatient>();
    const under = this.#under;
    for (const key of keys) {
      hashKey(key);
      const own = this.#find(HASHES[0]!, HASHES[1]!);
      const below = under ? under.#find(HASHES[0]!, HASHES[1]!).filter((o) => !this.#hidden[o]) : [];
      const size = own.length + below.length;
      // Judged on verified patients only, so both sources skip the same blocks.
      if (size === 0 || !keepBlock(key, size)) continue;
      // A layer's patients after those underneath, as a whole index made with the same changes orders them.
      out.set(key, [...below.map((o) => under!.#patientAt(parsedUnder, o)), ...own.map((o) => this.#patientAt(parsed, o))]);
    }
    return out;
  }

  /** The ordinals of the rows whose key has these hashes. */
  #find(hash: number, check: number): number[] {
    const e = this.#entries;
    const b = hash >>> this.#bucketShift;
    const ordinals: number[] = [];
    for (let i = 3 * this.#bucketStart[b]!, end = 3 * this.#bucketStart[b + 1]!; i < end; i += 3) {
      if (e[i] === hash && e[i + 2] === check) ordinals.push(e[i + 1]!);
    }
    return ordinals;
  }

  /** The patient at `ordinal`, read once per look-up (`parsed`). */
  #patientAt(parsed: Map<number, IndexPatient>, ordinal: number): IndexPatient {
    let p = parsed.get(ordinal);
    if (!p) parsed.set(ordinal, (p = this.#patient(ordinal)));
    return p;
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

/** FNV-1a (32 bits) of `s` from `from` to `to`: an id's hash, read in place from its row. */
function hashId(s: string, from: number, to: number): number {
  let hash = 0x811c9dc5;
  for (let i = from; i < to; i++) hash = Math.imul(hash ^ s.charCodeAt(i), 0x01000193);
  return hash >>> 0;
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
