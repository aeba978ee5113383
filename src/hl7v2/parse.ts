/**
 * HL7 v2 syntax, read: the delimiters a message declares in MSH-1/MSH-2, its segments, and the
 * text at a field / repetition / component / subcomponent with escape sequences undone. Nothing
 * here knows a message type; read.ts does. Values stay raw (escaped) until a leaf is asked for,
 * because a delimiter inside data is only safe to split on while it is still escaped.
 */
import type { Delimiters } from './types.ts';

/** Why a text is not an HL7 v2 message at all: the HL7 table 0357 code and the MSH field at fault. */
export class V2SyntaxError extends Error {
  readonly code: 100 | 102;
  readonly field: number | undefined;
  constructor(code: 100 | 102, field: number | undefined, message: string) {
    super(message);
    this.name = 'V2SyntaxError';
    this.code = code;
    this.field = field;
  }
}

/** One segment. `fields[n]` is field n as written (still escaped); `fields[0]` is the segment id. */
export interface Segment {
  readonly id: string;
  readonly fields: readonly string[];
}

export interface ParsedMessage {
  readonly delimiters: Delimiters;
  readonly segments: readonly Segment[];
}

/** Segments whose first field is the field separator itself, so their field numbers shift by one. */
const HEADER_SEGMENTS = new Set(['MSH', 'BHS', 'FHS']);

/** Segment ends: CR is the standard; LF and CRLF come from files that passed through editors and FTP. */
export function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

// A letter or digit would be read back as data, and CR/LF already end segments.
const isSeparator = (c: string) => c.length === 1 && !/[A-Za-z0-9\r\n]/.test(c);

/**
 * The delimiters a header segment (MSH, BHS or FHS) declares: its 4th character and the 4 (or 5,
 * v2.7 truncation) characters of its second field. Throws V2SyntaxError 102 when they are not usable.
 */
export function readDelimiters(line: string, id = 'MSH'): Delimiters {
  const field = line.charAt(3);
  if (!isSeparator(field)) throw new V2SyntaxError(102, 1, `${id}-1 is not a valid field separator`);
  const end = line.indexOf(field, 4);
  const chars = [...(end < 0 ? line.slice(4) : line.slice(4, end))];
  const distinct = new Set([field, ...chars]).size === chars.length + 1;
  if (chars.length < 4 || chars.length > 5 || !distinct || !chars.every(isSeparator)) {
    throw new V2SyntaxError(102, 2, `${id}-2 does not hold four distinct encoding characters`);
  }
  const [component, repetition, escape, subcomponent, truncation] = chars as [string, string, string, string, string?];
  return { field, component, repetition, escape, subcomponent, ...(truncation ? { truncation } : {}) };
}

/** Splits one segment line; header segments get the field separator back as their field 1. */
export function parseSegment(line: string, d: Delimiters): Segment {
  const parts = line.split(d.field);
  const id = parts[0]!;
  return { id, fields: HEADER_SEGMENTS.has(id) ? [id, d.field, ...parts.slice(1)] : parts };
}

/**
 * A message's segments, blank lines skipped. Throws V2SyntaxError when the text does not begin
 * with MSH (100) or MSH declares unusable delimiters (102); anything after that is the reader's
 * to judge, including lines that are not segments.
 */
export function parseMessage(text: string): ParsedMessage {
  const body = stripBom(text);
  if (!body.startsWith('MSH')) throw new V2SyntaxError(100, undefined, 'the message does not begin with an MSH segment');
  const delimiters = readDelimiters(splitLines(body)[0]!);
  const segments = splitLines(body)
    .filter((l) => l.trim() !== '')
    .map((l) => parseSegment(l, delimiters));
  return { delimiters, segments };
}

export function segmentsOf(msg: ParsedMessage, id: string): Segment[] {
  return msg.segments.filter((s) => s.id === id);
}

/** Field n as written (still escaped), '' when the segment is absent or shorter. */
export function field(seg: Segment | undefined, n: number): string {
  return seg?.fields[n] ?? '';
}

/** The repetitions of a field as written; none for an empty field. */
export function repetitions(d: Delimiters, raw: string): string[] {
  return raw === '' ? [] : raw.split(d.repetition);
}

/**
 * Component c, subcomponent s (both from 1) of one repetition, unescaped. HL7's explicit null
 * `""` reads as '': for matching, "deleted" and "not sent" are both "unknown".
 */
export function component(d: Delimiters, rep: string, c: number, s = 1): string {
  const sub = rep.split(d.component)[c - 1]?.split(d.subcomponent)[s - 1] ?? '';
  return sub === '""' ? '' : unescape(d, sub);
}

/** The first repetition's component c, subcomponent s of field n: most fields are read this way. */
export function value(d: Delimiters, seg: Segment | undefined, n: number, c = 1, s = 1): string {
  return component(d, repetitions(d, field(seg, n))[0] ?? '', c, s);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `\Xhh…\`: UTF-8 when the bytes are valid UTF-8 (what current senders mean), else Latin-1. */
function decodeHex(hex: string): string {
  const bytes = Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
  try {
    return utf8.decode(bytes);
  } catch {
    return String.fromCharCode(...bytes);
  }
}

/** What one escape sequence (the text between two escape characters) stands for; undefined when unknown. */
function escaped(d: Delimiters, seq: string): string | undefined {
  switch (seq) {
    case 'F': return d.field;
    case 'S': return d.component;
    case 'T': return d.subcomponent;
    case 'R': return d.repetition;
    case 'E': return d.escape;
    case 'H': case 'N': return ''; // highlighting on/off: no text of its own
  }
  if (/^X(?:[0-9A-Fa-f]{2})+$/.test(seq)) return decodeHex(seq.slice(1));
  // Formatted-text commands: line breaks become a space so words stay apart; layout goes.
  if (/^\.(?:br|sp[+-]?\d*)$/.test(seq)) return ' ';
  if (/^\.(?:fi|nf|ce|in[+-]?\d+|ti[+-]?\d+|sk[+-]?\d+)$/.test(seq)) return '';
  return undefined;
}

/** Undoes escape sequences; an unknown one, or an escape character never closed, stays as written. */
export function unescape(d: Delimiters, text: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const start = text.indexOf(d.escape, i);
    const end = start < 0 ? -1 : text.indexOf(d.escape, start + 1);
    if (end < 0) return out + text.slice(i);
    out += text.slice(i, start) + (escaped(d, text.slice(start + 1, end)) ?? text.slice(start, end + 1));
    i = end + 1;
  }
}
