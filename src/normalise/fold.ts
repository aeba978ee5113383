/**
 * The one character loop behind names, suffixes, states and street lines. It runs on every text
 * cell of every row (millions), so it walks char codes against module-level tables and, when the
 * input is already in normal form, returns the input string itself instead of building a copy.
 */

/** Letters only: digits vanish (a "2" in a name cell is a typo, not part of the name). */
export const MODE_NAME = 0;
/** Letters and digits: needed to recognise suffixes such as "3RD" before digits are dropped. */
export const MODE_ALNUM = 1;
/** Street lines: digits kept, "#" becomes its own token, and "1/2" or "123-45" survive. */
export const MODE_STREET = 2;
export type FoldMode = typeof MODE_NAME | typeof MODE_ALNUM | typeof MODE_STREET;

const SEP = 0;
const UPPER = 1;
const LOWER = 2;
const DIGIT = 3;
/** Apostrophes and periods join what they sit between: O'BRIEN is OBRIEN, not O BRIEN. */
const DROP = 4;
const HASH = 5;
const SLASH = 6;
const HYPHEN = 7;

const ASCII_CLASS = new Uint8Array(128); // SEP by default: every other ASCII char splits tokens
for (let c = 65; c <= 90; c++) ASCII_CLASS[c] = UPPER;
for (let c = 97; c <= 122; c++) ASCII_CLASS[c] = LOWER;
for (let c = 48; c <= 57; c++) ASCII_CLASS[c] = DIGIT;
ASCII_CLASS[0x27] = DROP; // '
ASCII_CLASS[0x60] = DROP; // `
ASCII_CLASS[0x2e] = DROP; // .
ASCII_CLASS[0x23] = HASH;
ASCII_CLASS[0x2f] = SLASH;
ASCII_CLASS[0x2d] = HYPHEN;

/** Single-character strings for A–Z and 0–9 so the hot loop never calls String.fromCharCode. */
const CHAR: string[] = [];
for (let c = 0; c < 128; c++) CHAR.push(String.fromCharCode(c));

/**
 * Letters that Unicode decomposition leaves alone (they are letters of their own, not a base
 * letter plus an accent), spelled the way US registries conventionally transliterate them.
 */
const SPECIAL_FOLDS: ReadonlyMap<number, string> = new Map([
  [0x00df, 'SS'], // ß
  [0x1e9e, 'SS'], // ẞ
  [0x00c6, 'AE'], // Æ
  [0x00e6, 'AE'],
  [0x0152, 'OE'], // Œ
  [0x0153, 'OE'],
  [0x00d8, 'O'], // Ø
  [0x00f8, 'O'],
  [0x0141, 'L'], // Ł
  [0x0142, 'L'],
  [0x0110, 'D'], // Đ
  [0x0111, 'D'],
  [0x00d0, 'D'], // Ð
  [0x00f0, 'D'],
  [0x00de, 'TH'], // Þ
  [0x00fe, 'TH'],
  [0x0131, 'I'], // dotless ı
  [0x0126, 'H'], // Ħ
  [0x0127, 'H'],
  [0x0166, 'T'], // Ŧ
  [0x0167, 'T'],
  [0x014a, 'NG'], // Ŋ
  [0x014b, 'NG'],
  [0x0192, 'F'], // ƒ
  // Apostrophe look-alikes that spreadsheets and phones substitute for "'": dropped like it.
  [0x2018, ''],
  [0x2019, ''],
  [0x201b, ''],
  [0x02bc, ''],
  [0x02bb, ''], // ʻokina in Hawaiian names
  [0x00b4, ''],
  [0x2032, ''],
  [0xff07, ''],
]);

/**
 * Cache of non-ASCII code unit → replacement made only of A–Z, 0–9, space (a separator) or
 * nothing. Names repeat heavily across rows, so each accented letter is decomposed once.
 */
const nonAsciiCache = new Map<number, string>();

function foldNonAscii(code: number): string {
  const cached = nonAsciiCache.get(code);
  if (cached !== undefined) return cached;
  let result = SPECIAL_FOLDS.get(code);
  if (result === undefined) {
    if (code >= 0x0300 && code <= 0x036f) {
      result = ''; // a combining accent that arrived already decomposed
    } else {
      // NFKD rather than NFD so full-width letters (Ａ) and ligatures (ﬁ) fold too.
      const decomposed = String.fromCharCode(code).normalize('NFKD');
      result = '';
      for (let i = 0; i < decomposed.length; i++) {
        const c = decomposed.charCodeAt(i);
        if (c >= 0x0300 && c <= 0x036f) continue;
        const cls = c < 128 ? ASCII_CLASS[c] : SEP;
        if (cls === UPPER || cls === DIGIT) result += CHAR[c];
        else if (cls === LOWER) result += CHAR[c - 32];
        else if (cls !== DROP) result += ' ';
      }
    }
  }
  nonAsciiCache.set(code, result);
  return result;
}

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Upper-case ASCII letters (and digits, per mode) in tokens separated by single spaces, trimmed.
 * Separators are emitted lazily, only before the next kept character, so runs collapse and the
 * ends come out trimmed without a second pass.
 */
export function fold(raw: string, mode: FoldMode): string {
  const len = raw.length;
  const keepDigits = mode !== MODE_NAME;
  const street = mode === MODE_STREET;
  // While `same` holds, the output is exactly raw[0, n): nothing is built until they diverge.
  let same = true;
  let out = '';
  let n = 0;
  let pendingSpace = false;
  let lastWasDigit = false;

  for (let i = 0; i < len; i++) {
    const code = raw.charCodeAt(i);
    let cls: number;
    let emit = -1; // ASCII code to append, or -1
    if (code < 128) {
      cls = ASCII_CLASS[code]!;
      if (cls === UPPER) emit = code;
      else if (cls === LOWER) emit = code - 32;
      else if (cls === DIGIT) {
        if (!keepDigits) continue;
        emit = code;
      } else if (cls === DROP) continue;
      else if (street && cls === HASH) {
        // "#4" → "# 4": the street stage decides whether "#" means APT.
        if (same) {
          same = false;
          out = raw.slice(0, n);
        }
        if (n > 0) out += ' ';
        out += '#';
        n += n > 0 ? 2 : 1;
        pendingSpace = true;
        lastWasDigit = false;
        continue;
      } else if (street && (cls === SLASH || cls === HYPHEN) && lastWasDigit && !pendingSpace && i + 1 < len && isDigitCode(raw.charCodeAt(i + 1))) {
        emit = code; // fractional (12 1/2) and Queens-style (123-45) house numbers
      } else {
        pendingSpace = true;
        continue;
      }
    } else {
      const folded = foldNonAscii(code);
      if (folded.length === 0) continue;
      // Multi-character folds and separators: append through the general path below.
      for (let k = 0; k < folded.length; k++) {
        const fc = folded.charCodeAt(k);
        if (fc === 32) {
          pendingSpace = true;
          continue;
        }
        if (!keepDigits && isDigitCode(fc)) continue;
        if (same) {
          same = false;
          out = raw.slice(0, n);
        }
        if (pendingSpace && n > 0) {
          out += ' ';
          n++;
        }
        pendingSpace = false;
        out += CHAR[fc];
        n++;
        lastWasDigit = isDigitCode(fc);
      }
      continue;
    }

    if (pendingSpace && n > 0) {
      if (same && raw.charCodeAt(n) !== 32) {
        same = false;
        out = raw.slice(0, n);
      }
      if (!same) out += ' ';
      n++;
    }
    pendingSpace = false;
    if (same && raw.charCodeAt(n) !== emit) {
      same = false;
      out = raw.slice(0, n);
    }
    if (!same) out += CHAR[emit];
    n++;
    lastWasDigit = emit >= 48 && emit <= 57;
  }

  if (same) return n === len ? raw : raw.slice(0, n);
  return out;
}
