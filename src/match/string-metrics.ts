/**
 * The string measures comparisons are built on, behind one small seam: Double Metaphone from
 * natural, and Jaro-Winkler and one-edit distance by hand (see each for why).
 */
import DoubleMetaphone from 'natural/lib/natural/phonetics/double_metaphone.js';

const metaphone = new DoubleMetaphone();
// Names repeat heavily (Zipf), so a small cache saves most of the phonetic work on large files.
const phoneticCache = new Map<string, string>();
const PHONETIC_CACHE_MAX = 200_000;

/**
 * Jaro-Winkler similarity, exactly as natural's JaroWinklerDistance computes it (the same match
 * window, transposition count and prefix bonus, in the same arithmetic order, so every score is
 * the same to the bit — a test holds it to natural's). Hand-written because every candidate runs
 * it several times, and natural's two fresh arrays per call were a tenth of matching time on a
 * million-patient index: here the match flags of strings up to 32 characters (every name) are
 * the bits of two integers, and of longer ones (a street line) live in one scratch buffer.
 */
export function jaroWinkler(a: string, b: string): number {
  if (a === b) return 1;
  const la = a.length;
  const lb = b.length;
  if (la === 0 || lb === 0) return 0;
  const jaro = la <= 32 && lb <= 32 ? shortJaro(a, b) : longJaro(a, b);
  let l = 0;
  while (l < 4 && l < la && a.charCodeAt(l) === b.charCodeAt(l)) l++;
  return jaro + l * 0.1 * (1 - jaro);
}

/** Jaro similarity of two non-empty strings of at most 32 characters: match flags as bits. */
function shortJaro(a: string, b: string): number {
  const la = a.length;
  const lb = b.length;
  const window = Math.floor(Math.max(la, lb) / 2) - 1;
  let fa = 0;
  let fb = 0;
  let m = 0;
  for (let i = 0; i < la; i++) {
    const c = a.charCodeAt(i);
    for (let k = Math.max(0, i - window), end = Math.min(i + window + 1, lb); k < end; k++) {
      if ((fb & (1 << k)) === 0 && b.charCodeAt(k) === c) {
        fa |= 1 << i;
        fb |= 1 << k;
        m++;
        break;
      }
    }
  }
  if (m === 0) return 0;
  let t = 0;
  for (let i = 0, k = 0; i < la; i++) {
    if ((fa & (1 << i)) === 0) continue;
    while ((fb & (1 << k)) === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) t++;
    k++;
  }
  t = t / 2.0;
  return (m / la + m / lb + (m - t) / m) / 3.0;
}

/** Jaro similarity of two non-empty strings of any length: match flags in the scratch buffer. */
function longJaro(a: string, b: string): number {
  const la = a.length;
  const lb = b.length;
  const window = Math.floor(Math.max(la, lb) / 2) - 1;
  if (scratch.length < la + lb) scratch = new Uint8Array(2 * (la + lb));
  const flags = scratch;
  flags.fill(0, 0, la + lb);
  let m = 0;
  for (let i = 0; i < la; i++) {
    const c = a.charCodeAt(i);
    for (let k = Math.max(0, i - window), end = Math.min(i + window + 1, lb); k < end; k++) {
      if (flags[la + k] === 0 && b.charCodeAt(k) === c) {
        flags[i] = 1;
        flags[la + k] = 1;
        m++;
        break;
      }
    }
  }
  if (m === 0) return 0;
  let t = 0;
  for (let i = 0, k = 0; i < la; i++) {
    if (flags[i] === 0) continue;
    while (flags[la + k] === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) t++;
    k++;
  }
  t = t / 2.0;
  return (m / la + m / lb + (m - t) / m) / 3.0;
}

let scratch = new Uint8Array(64);

/**
 * Whether two strings are exactly one keying slip apart: one insertion, deletion, substitution or
 * adjacent transposition (optimal-string-alignment distance 1). Hand-written because comparisons
 * only ever ask this, and natural's full distance matrix was a fifth of matching time (and most
 * of its garbage) on a million-patient index.
 */
export function oneEditApart(a: string, b: string): boolean {
  const la = a.length;
  const lb = b.length;
  if (a === b || Math.abs(la - lb) > 1) return false;
  let i = 0;
  while (i < la && i < lb && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (la === lb) {
    if (sameFrom(a, i + 1, b, i + 1)) return true; // substitution
    return i + 1 < la && a[i] === b[i + 1] && a[i + 1] === b[i] && sameFrom(a, i + 2, b, i + 2); // transposition
  }
  return la > lb ? sameFrom(a, i + 1, b, i) : sameFrom(a, i, b, i + 1); // deletion or insertion
}

function sameFrom(a: string, ai: number, b: string, bi: number): boolean {
  if (a.length - ai !== b.length - bi) return false;
  for (; ai < a.length; ai++, bi++) if (a.charCodeAt(ai) !== b.charCodeAt(bi)) return false;
  return true;
}

/** Primary Double Metaphone code, '' for an empty name. */
export function phonetic(name: string): string {
  if (name === '') return '';
  let code = phoneticCache.get(name);
  if (code === undefined) {
    code = metaphone.process(name)[0];
    if (phoneticCache.size >= PHONETIC_CACHE_MAX) phoneticCache.clear();
    phoneticCache.set(name, code);
  }
  return code;
}
