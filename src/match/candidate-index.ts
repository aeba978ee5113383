/**
 * The patient index in memory, for candidate look-up at matching speed. Measured against the
 * database's blocking table, a look-up here costs microseconds where two index probes per chunk
 * cost hundreds of milliseconds on a million patients (see the bench figures in the README).
 *
 * Compact on purpose, so a million patients fit well inside a worker's memory budget: each
 * patient is one tab-joined string, parsed only when it becomes a candidate, and the blocking
 * keys are three flat arrays — a 32-bit hash of the key, the patient's ordinal and a second,
 * independent 16-bit hash — 10 bytes a key, where a Map cost ten times that. The keys are laid out
 * by hash bucket (a counting sort when the index is sealed), so a look-up reads one bucket of a
 * key or two instead of binary-searching thirteen million: at a dozen keys a row, those cache
 * misses were the largest cost of matching. Both hashes must agree before a patient is handed
 * out, so that a collision neither adds work nor makes the in-memory copy answer differently
 * from the database's blocking table; a collision can never hide a patient.
 */
import type { IndexPatient, NameFrequencies, Sex } from '../model/index.ts';
import { BROAD_BLOCK_MAX, blockingKeys, isBroadKey, keepBlock } from './blocking.ts';

const FIELDS = ['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone'] as const;

export class CandidateIndex {
  /** id, the person's fields, then identifiers, tab-joined. */
  readonly #rows: string[] = [];
  /** Per key of every patient, side by side (one cache line): its hash, the patient's ordinal, its check hash; after seal, grouped by bucket. */
  #entries = new Uint32Array(3 << 16);
  #count = 0;
  /** After seal: bucket b's keys are [#bucketStart[b], #bucketStart[b + 1]); a bucket is the hash's top #bucketBits bits. */
  #bucketStart = new Uint32Array(0);
  #bucketShift = 32;
  #sealed = false;
  readonly freq: NameFrequencies = { total: 0, given: new Map(), family: new Map() };

  get size(): number {
    return this.#rows.length;
  }

  add(p: IndexPatient): void {
    if (this.#sealed) throw new Error('CandidateIndex is sealed; build a new one');
    const ordinal = this.#rows.length;
    const f = p.person;
    // One join, so the string is flat: a concatenated one is flattened (copied) on its first split.
    this.#rows.push([p.id, ...FIELDS.map((k) => f[k]), p.identifiers.map((i) => `${i.system}\u0001${i.value}`).join('\u0002')].join('\t'));
    for (const key of blockingKeys(f, p.identifiers)) {
      if (3 * this.#count === this.#entries.length) this.#entries = grow(this.#entries);
      const at = 3 * this.#count++;
      this.#entries[at] = hashKey(key);
      this.#entries[at + 1] = ordinal;
      this.#entries[at + 2] = checkHash(key);
    }
    this.freq.total++;
    if (f.given) this.freq.given.set(f.given, (this.freq.given.get(f.given) ?? 0) + 1);
    if (f.family) this.freq.family.set(f.family, (this.freq.family.get(f.family) ?? 0) + 1);
  }

  /**
   * Ends building: groups the keys by bucket, about one key a bucket. The sort is stable, so a
   * key's patients stay in the order they were added, as the database returns them.
   */
  seal(): this {
    if (this.#sealed) return this;
    const n = this.#count;
    const from = this.#entries;
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
    for (const key of keys) {
      const hash = hashKey(key);
      const check = checkHash(key);
      const limit = isBroadKey(key) ? BROAD_BLOCK_MAX : Infinity;
      const b = hash >>> this.#bucketShift;
      const ordinals: number[] = [];
      const e = this.#entries;
      for (let i = 3 * this.#bucketStart[b]!, end = 3 * this.#bucketStart[b + 1]!; i < end && ordinals.length <= limit; i += 3) {
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
    const c = this.#rows[ordinal]!.split('\t') as string[] & { length: 13 };
    const ids = c[12]!;
    return {
      id: c[0]!,
      // In FIELDS order, written out: this runs for every candidate of every row.
      person: { given: c[1]!, middle: c[2]!, family: c[3]!, suffix: c[4]!, birthDate: c[5]!, sex: c[6] as Sex, street: c[7]!, city: c[8]!, state: c[9]!, zip: c[10]!, phone: c[11]! },
      identifiers: ids === '' ? [] : ids.split('\u0002').map((x) => {
        const [system, value] = x.split('\u0001') as [string, string];
        return { system, value };
      }),
    };
  }
}

function grow(a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const next = new Uint32Array(a.length * 2);
  next.set(a);
  return next;
}

/** A second hash, independent of hashKey (djb2, xor form), 32 bits. */
function checkHash(key: string): number {
  let h = 5381;
  for (let i = 0; i < key.length; i++) h = Math.imul(h, 33) ^ key.charCodeAt(i);
  return h >>> 0;
}

/** FNV-1a, 32 bits. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
