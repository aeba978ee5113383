/** The string measures comparisons are built on, from natural, behind one small seam. */
import jaroWinklerImpl from 'natural/lib/natural/distance/jaro-winkler_distance.js';
import levenshtein from 'natural/lib/natural/distance/levenshtein_distance.js';
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

/** Optimal-string-alignment distance: an adjacent transposition costs 1, like a keying slip. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  return levenshtein.DamerauLevenshteinDistance(a, b, { restricted: true });
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
