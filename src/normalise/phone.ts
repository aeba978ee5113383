/**
 * Ten-digit NANP phone numbers. Partners format them every way there is; what matters for
 * matching is the digits, and a placeholder (000-000-0000) must not look like agreement.
 */

const EXTENSION_START = new Set([0x78, 0x58, 0x23]); // x X #

export function normalisePhone(raw: string): string | null {
  let digits = '';
  let sawAny = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits += raw[i];
      sawAny = true;
      continue;
    }
    if (EXTENSION_START.has(c) || isExtensionWord(raw, i)) {
      if (digits === '') return null;
      break; // the extension is not part of the number
    }
    if (isPunctuation(c)) continue;
    return null; // letters (1-800-FLOWERS) or other text
  }
  if (!sawAny) return raw.trim() === '' ? '' : null;
  if (digits.length === 11 && digits.charCodeAt(0) === 49) digits = digits.slice(1);
  if (digits.length !== 10) return null;
  if (isOneDigitRepeated(digits)) return null;
  return digits;
}

function isPunctuation(c: number): boolean {
  // space, tab, NBSP, ( ) - . / + and the Unicode dashes
  return (
    c === 32 || c === 9 || c === 0xa0 || c === 0x28 || c === 0x29 || c === 0x2d || c === 0x2e ||
    c === 0x2f || c === 0x2b || (c >= 0x2010 && c <= 0x2015)
  );
}

/** "ext", "ext.", "extension" in any case. */
function isExtensionWord(s: string, i: number): boolean {
  const c = s.charCodeAt(i) | 0x20;
  if (c !== 0x65) return false; // e
  return ((s.charCodeAt(i + 1) | 0x20) === 0x78) && ((s.charCodeAt(i + 2) | 0x20) === 0x74);
}

function isOneDigitRepeated(digits: string): boolean {
  const first = digits.charCodeAt(0);
  for (let i = 1; i < digits.length; i++) if (digits.charCodeAt(i) !== first) return false;
  return true;
}
