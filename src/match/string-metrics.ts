/** The string measures comparisons are built on — Jaro-Winkler and Double Metaphone from natural — behind one small seam. */
import jaroWinklerImpl from 'natural/lib/natural/distance/jaro-winkler_distance.js';
import DoubleMetaphone from 'natural/lib/natural/phonetics/double_metaphone.js';

const metaphone = new DoubleMetaphone();
// Names repeat heavily (Zipf), so a small cache saves most of the phonetic work on large files.
const phoneticCache = new Map<string, string>();
const PHONETIC_CACHE_MAX = 200_000;

export function jaroWinkler(a: string, b: string): number {
  if (a === b) return 1;
  if (a.length === 0 || b.length === 0) return 0;
  return jaroWinklerImpl(a, b);
}

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
