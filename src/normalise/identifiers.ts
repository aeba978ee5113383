/**
 * Student ids, MRNs and member ids. They are compared as strings, so formatting that partners add
 * or drop (spaces, dashes, case) must go, while leading zeros are part of the id and stay.
 */
export function normaliseIdentifier(raw: string): string {
  let out = '';
  let same = true;
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    let c = raw.charCodeAt(i);
    if (isSpaceOrDash(c)) continue;
    if (c >= 97 && c <= 122) c -= 32;
    if (same) {
      if (raw.charCodeAt(n) === c) {
        n++;
        continue;
      }
      same = false;
      out = raw.slice(0, n);
    }
    out += c < 128 ? String.fromCharCode(c) : raw[i]!.toUpperCase();
    n++;
  }
  return same ? (n === raw.length ? raw : raw.slice(0, n)) : out;
}

function isSpaceOrDash(c: number): boolean {
  return (
    c === 32 || c === 9 || c === 10 || c === 13 || c === 0xa0 || c === 0xfeff || c === 0x2d ||
    (c >= 0x2010 && c <= 0x2015) || c === 0x2212 || (c >= 0x2000 && c <= 0x200b) || c === 0x3000
  );
}
