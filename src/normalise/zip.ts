/**
 * Five-digit ZIP codes. ZIP+4 is reduced to five digits because registries rarely hold the +4.
 * Spreadsheets store ZIPs as numbers and drop leading zeros: New England's 0xxxx lose one, and
 * Puerto Rico's and the Virgin Islands' 006xx–009xx (and Holtsville's 005xx) lose two. Those are
 * restored; other short numbers are not ZIPs.
 */
export function normaliseZip(raw: string): string | null {
  const s = raw.trim();
  if (s === '') return '';
  // Split at most one separator ("62701-1234", "62701 1234") into head and tail digit runs.
  let head = -1;
  let tailLength = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (head >= 0) tailLength++;
      continue;
    }
    if ((c === 0x2d || c === 0x20) && head < 0 && i > 0) {
      head = i;
      continue;
    }
    return null;
  }
  let zip5: string | null;
  if (head >= 0) {
    if (tailLength !== 4) return null;
    zip5 = pad(s.slice(0, head));
  } else if (s.length >= 7) {
    // ZIP+4 without a dash: the last four digits are the +4.
    zip5 = s.length <= 9 ? pad(s.slice(0, s.length - 4)) : null;
  } else {
    zip5 = pad(s);
  }
  if (zip5 === null || zip5 === '00000') return null;
  return zip5;
}

function pad(digits: string): string | null {
  if (digits.length === 5) return digits;
  if (digits.length === 4) return '0' + digits;
  if (digits.length === 3 && digits.charCodeAt(0) >= 53) return '00' + digits; // 5–9
  return null;
}
