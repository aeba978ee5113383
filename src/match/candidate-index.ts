/**
 * The patient index in memory, for candidate look-up at matching speed. Measured against the
 * database's blocking table, a look-up here costs microseconds where two index probes per chunk
 * cost hundreds of milliseconds on a million patients (see the bench figures in the README).
 *
 * Compact on purpose, so a million patients fit well inside a worker's memory budget: each
 * patient is one tab-joined string, parsed only when it becomes a candidate, and the blocking
 * keys are one sorted Float64Array of (30-bit key hash, 23-bit ordinal) pairs — 8 bytes a key,
 * where a Map cost ten times that. A second, 16-bit hash of each key, kept per patient, is checked
 * before a patient is handed out, so that a collision of the first (one look-up in sixty on a
 * million patients, at seventeen keys each) neither adds work nor makes the in-memory copy answer
 * differently from the database's blocking table. A collision can never hide a patient.
 */
import type { IndexPatient, NameFrequencies, PersonFields, Sex } from '../model/index.ts';
import { BROAD_BLOCK_MAX, blockingKeys, isBroadKey, keepBlock } from './blocking.ts';

const FIELDS = ['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone'] as const;

/** Ordinals take the low 23 bits of a pair: up to 8,388,608 patients. */
const ORDINAL_SPAN = 2 ** 23;

export class CandidateIndex {
  /** id, the person's fields, then identifiers, tab-joined. */
  readonly #rows: string[] = [];
  #pairs = new Float64Array(1 << 16);
  #pairCount = 0;
  /** Check hashes of each patient's keys, patient after patient; patient o's are [#checkStart[o], #checkStart[o + 1]). */
  #checks = new Uint16Array(1 << 16);
  #checkStart = new Uint32Array(1 << 12);
  #sealed = false;
  readonly freq: NameFrequencies = { total: 0, given: new Map(), family: new Map() };

  get size(): number {
    return this.#rows.length;
  }

  add(p: IndexPatient): void {
    if (this.#sealed) throw new Error('CandidateIndex is sealed; build a new one');
    const ordinal = this.#rows.length;
    if (ordinal >= ORDINAL_SPAN) throw new Error(`the in-memory index holds at most ${ORDINAL_SPAN} patients; use candidates from the database`);
    const f = p.person;
    this.#rows.push(`${p.id}\t${FIELDS.map((k) => f[k]).join('\t')}\t${p.identifiers.map((i) => `${i.system}\u0001${i.value}`).join('\u0002')}`);
    if (ordinal + 1 >= this.#checkStart.length) this.#checkStart = grow(this.#checkStart);
    for (const key of blockingKeys(f, p.identifiers)) {
      if (this.#pairCount === this.#pairs.length) {
        this.#pairs = grow(this.#pairs);
        this.#checks = grow(this.#checks);
      }
      this.#checks[this.#pairCount] = checkHash(key);
      this.#pairs[this.#pairCount++] = hashKey(key) * ORDINAL_SPAN + ordinal;
    }
    this.#checkStart[ordinal + 1] = this.#pairCount;
    this.freq.total++;
    if (f.given) this.freq.given.set(f.given, (this.freq.given.get(f.given) ?? 0) + 1);
    if (f.family) this.freq.family.set(f.family, (this.freq.family.get(f.family) ?? 0) + 1);
  }

  /** Ends building: sorts the key pairs for binary search and gives back the spare capacity. */
  seal(): this {
    if (!this.#sealed) {
      this.#pairs = this.#pairs.slice(0, this.#pairCount).sort();
      this.#checks = this.#checks.slice(0, this.#pairCount);
      this.#checkStart = this.#checkStart.slice(0, this.#rows.length + 1);
      this.#sealed = true;
    }
    return this;
  }

  /** Patients reachable by each key, as the CandidateSource contract asks. */
  byKeys(keys: readonly string[]): Map<string, IndexPatient[]> {
    this.seal();
    const out = new Map<string, IndexPatient[]>();
    const parsed = new Map<number, IndexPatient>();
    for (const key of keys) {
      const low = hashKey(key) * ORDINAL_SPAN;
      const high = low + ORDINAL_SPAN;
      const check = checkHash(key);
      const limit = isBroadKey(key) ? BROAD_BLOCK_MAX : Infinity;
      const ordinals: number[] = [];
      for (let i = this.#lowerBound(low); i < this.#pairs.length && this.#pairs[i]! < high && ordinals.length <= limit; i++) {
        const o = this.#pairs[i]! - low;
        if (this.#holds(o, check)) ordinals.push(o);
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

  /** Whether patient `ordinal` has a key with this check hash (false: the first hash collided). */
  #holds(ordinal: number, check: number): boolean {
    for (let j = this.#checkStart[ordinal]!, end = this.#checkStart[ordinal + 1]!; j < end; j++) if (this.#checks[j] === check) return true;
    return false;
  }

  #lowerBound(value: number): number {
    let lo = 0;
    let hi = this.#pairs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#pairs[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #patient(ordinal: number): IndexPatient {
    const cells = this.#rows[ordinal]!.split('\t');
    const person = {} as Record<(typeof FIELDS)[number], string>;
    FIELDS.forEach((k, i) => (person[k] = cells[i + 1]!));
    const ids = cells[FIELDS.length + 1]!;
    return {
      id: cells[0]!,
      person: { ...(person as unknown as PersonFields), sex: person.sex as Sex },
      identifiers: ids === '' ? [] : ids.split('\u0002').map((x) => {
        const [system, value] = x.split('\u0001') as [string, string];
        return { system, value };
      }),
    };
  }
}

function grow<T extends Float64Array | Uint16Array | Uint32Array>(a: T): T {
  const next = new (a.constructor as new (n: number) => T)(a.length * 2);
  next.set(a);
  return next;
}

/** A second hash, independent of hashKey (djb2, xor form), folded to 16 bits. */
function checkHash(key: string): number {
  let h = 5381;
  for (let i = 0; i < key.length; i++) h = Math.imul(h, 33) ^ key.charCodeAt(i);
  return (h ^ (h >>> 16)) & 0xffff;
}

/** FNV-1a, folded to 30 bits so every key is a small integer (V8 stores those unboxed). */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & 0x3fffffff;
}
