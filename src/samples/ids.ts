/**
 * Identifiers for generated records: FHIR Patient ids, IIS numbers, and partners' record ids.
 * Patient ids are a keyed permutation of the patient's ordinal, so they look random, depend on
 * the seed, and are unique by construction (no collision check needed at a million patients).
 */
import { fmix32 } from './random.ts';
import type { Rng } from './random.ts';

const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford's alphabet, lower case
const HALF_BITS = 25;
const HALF_MASK = (1 << HALF_BITS) - 1;
const HALF = 2 ** HALF_BITS;

/** A 10-character base32 FHIR id: a 4-round Feistel permutation of the ordinal on 50 bits. */
export function patientId(seed: number, ordinal: number): string {
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= 2 ** (2 * HALF_BITS)) {
    throw new RangeError(`patient ordinal out of range: ${ordinal}`);
  }
  let left = Math.floor(ordinal / HALF) & HALF_MASK;
  let right = ordinal & HALF_MASK;
  const key = fmix32(seed ^ 0x5f3759df);
  for (let round = 0; round < 4; round++) {
    const f = fmix32(Math.imul(right + round, 0x9e3779b1) ^ fmix32(key + round)) & HALF_MASK;
    const next = left ^ f;
    left = right;
    right = next;
  }
  let value = left * HALF + right;
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = BASE32[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/** "IIS" + 8 digits, increasing with the ordinal but with gaps, unique for up to 90M patients. */
export function iisNumber(ordinal: number, patients: number, jitter: number): string {
  const stride = Math.max(1, Math.floor(89_999_999 / Math.max(1, patients)));
  return `IIS${10_000_000 + ordinal * stride + (jitter % stride)}`;
}

/** Draws distinct random numeric ids of a fixed width with a fixed prefix. */
export class UniqueIds {
  readonly #used = new Set<string>();
  readonly #prefix: string;
  readonly #digits: number;
  readonly #leading: string;

  /** `leading` digits are fixed after the prefix (a district number, say). */
  constructor(prefix: string, digits: number, leading = '') {
    this.#prefix = prefix;
    this.#digits = digits;
    this.#leading = leading;
  }

  next(rng: Rng): string {
    const free = this.#digits - this.#leading.length;
    const space = 10 ** free;
    for (;;) {
      const body = String(Math.floor(rng.next() * space)).padStart(free, '0');
      const id = `${this.#prefix}${this.#leading}${body}`;
      if (!this.#used.has(id)) {
        this.#used.add(id);
        return id;
      }
    }
  }

  /** Claims an id made elsewhere (a typo of another id, say); false when it is taken. */
  claim(id: string): boolean {
    if (this.#used.has(id)) return false;
    this.#used.add(id);
    return true;
  }

  has(id: string): boolean {
    return this.#used.has(id);
  }
}

/** Digits needed so that `count` ids fill at most a twentieth of the id space. */
export function digitsFor(count: number, minimum: number): number {
  return Math.max(minimum, Math.ceil(Math.log10(Math.max(1, count) * 20)));
}
