/**
 * The patient index in memory, for candidate look-up at matching speed. Measured against the
 * database's blocking table, a look-up here costs microseconds where two index probes per chunk
 * cost hundreds of milliseconds on a million patients (see the bench figures in the README).
 *
 * Compact on purpose, so a million patients fit well inside a worker's memory budget: each
 * patient is one tab-joined string, parsed only when it becomes a candidate, and blocking keys
 * are 30-bit hashes mapping to patient ordinals. A hash collision only adds a candidate that
 * scoring then rejects; it can never hide one.
 */
import type { IndexPatient, NameFrequencies, PersonFields, Sex } from '../model/index.ts';
import { blockingKeys } from './blocking.ts';

const FIELDS = ['given', 'middle', 'family', 'suffix', 'birthDate', 'sex', 'street', 'city', 'state', 'zip', 'phone'] as const;

export class CandidateIndex {
  readonly #rows: string[] = [];
  readonly #ids: string[] = [];
  /** hash → ordinal, or ordinals when several patients share the key. */
  readonly #keys = new Map<number, number | number[]>();
  readonly freq: NameFrequencies = { total: 0, given: new Map(), family: new Map() };

  get size(): number {
    return this.#ids.length;
  }

  add(p: IndexPatient): void {
    const ordinal = this.#ids.length;
    this.#ids.push(p.id);
    const f = p.person;
    this.#rows.push(`${FIELDS.map((k) => f[k]).join('\t')}\t${p.identifiers.map((i) => `${i.system}\u0001${i.value}`).join('\u0002')}`);
    for (const key of blockingKeys(f, p.identifiers)) {
      const h = hashKey(key);
      const prev = this.#keys.get(h);
      if (prev === undefined) this.#keys.set(h, ordinal);
      else if (typeof prev === 'number') {
        if (prev !== ordinal) this.#keys.set(h, [prev, ordinal]);
      } else if (prev[prev.length - 1] !== ordinal) prev.push(ordinal);
    }
    this.freq.total++;
    if (f.given) this.freq.given.set(f.given, (this.freq.given.get(f.given) ?? 0) + 1);
    if (f.family) this.freq.family.set(f.family, (this.freq.family.get(f.family) ?? 0) + 1);
  }

  /** Patients reachable by each key, as the CandidateSource contract asks. */
  byKeys(keys: readonly string[]): Map<string, IndexPatient[]> {
    const out = new Map<string, IndexPatient[]>();
    const parsed = new Map<number, IndexPatient>();
    for (const key of keys) {
      const hit = this.#keys.get(hashKey(key));
      if (hit === undefined) continue;
      const ordinals = typeof hit === 'number' ? [hit] : hit;
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
    const cells = this.#rows[ordinal]!.split('\t');
    const person = {} as Record<(typeof FIELDS)[number], string>;
    FIELDS.forEach((k, i) => (person[k] = cells[i]!));
    const ids = cells[FIELDS.length]!;
    return {
      id: this.#ids[ordinal]!,
      person: { ...(person as unknown as PersonFields), sex: person.sex as Sex },
      identifiers: ids === '' ? [] : ids.split('\u0002').map((x) => {
        const [system, value] = x.split('\u0001') as [string, string];
        return { system, value };
      }),
    };
  }
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
