/**
 * Writing HL7 v2 text: escaping values, building segments from plain values, and carrying text
 * that is already encoded (a QPD to echo, a header field as the sender wrote it) from the
 * request's delimiters into ours. Pure; the only syntax the reply builders need.
 */
import { DEFAULT_DELIMITERS, type Delimiters } from './types.ts';

/** Segments are separated by a carriage return (HL7 v2.5.1 §2.5.1), never LF or CRLF. */
export const SEGMENT_SEPARATOR = '\r';

// A line break means nothing inside the ST/TX/ID values we write and a CR would end the segment;
// MLLP's framing bytes (VT, FS) would end the frame. `\X0D\` would keep the break but many IIS
// and EHR receivers do not decode hex escapes and show them raw, so every run of control
// characters becomes one space: readable, and it cannot break the message.
const CONTROLS = /(?:\r\n|[\x00-\x1f\x7f])+/g;

/**
 * One value as text safe inside a subcomponent: the escape character first (so the sequences
 * added after are not escaped again), then field, component, repetition and subcomponent
 * separators as `\E\ \F\ \S\ \R\ \T\` (shown with `\` as the escape character).
 */
export function escapeText(s: string, d: Delimiters = DEFAULT_DELIMITERS): string {
  const e = d.escape;
  const seq = (code: string): string => `${e}${code}${e}`;
  let out = '';
  for (const c of s.replace(CONTROLS, ' ')) {
    if (c === e) out += seq('E');
    else if (c === d.field) out += seq('F');
    else if (c === d.component) out += seq('S');
    else if (c === d.repetition) out += seq('R');
    else if (c === d.subcomponent) out += seq('T');
    else out += c;
  }
  return out;
}

/** A component: a value, or its subcomponents in order. */
export type Component = string | readonly string[];
/** One repetition of a field: a value, or its components in order (index 0 is component 1). */
export type Value = string | readonly Component[];
/** Several repetitions of one field. */
export interface Repeated {
  readonly repeat: readonly Value[];
}
/** Text already encoded in the delimiters of the message it is written into; not escaped again. */
export interface Raw {
  readonly raw: string;
}
/** A field of `segment`: empty when undefined, null or ''. */
export type Field = Value | Repeated | Raw | undefined | null;

export function repeat(values: readonly Value[]): Repeated {
  return { repeat: values };
}

export function raw(text: string): Raw {
  return { raw: text };
}

// Trailing empty parts carry nothing and HL7 asks senders to leave them out.
function joinTrimmed(parts: readonly string[], sep: string): string {
  let end = parts.length;
  while (end > 0 && parts[end - 1] === '') end--;
  return parts.slice(0, end).join(sep);
}

function encodeComponent(c: Component, d: Delimiters): string {
  return typeof c === 'string' ? escapeText(c, d) : joinTrimmed(c.map((s) => escapeText(s, d)), d.subcomponent);
}

function encodeValue(v: Value, d: Delimiters): string {
  return typeof v === 'string' ? escapeText(v, d) : joinTrimmed(v.map((c) => encodeComponent(c, d)), d.component);
}

export function encodeField(f: Field, d: Delimiters = DEFAULT_DELIMITERS): string {
  if (f === undefined || f === null) return '';
  if (typeof f === 'string') return escapeText(f, d);
  if ('raw' in f) return f.raw;
  if ('repeat' in f) return joinTrimmed(f.repeat.map((v) => encodeValue(v, d)), d.repetition);
  return encodeValue(f, d);
}

/** A segment: its id, then fields from field 1 on (index 0 is field 1). Not for MSH, FHS, BHS. */
export function segment(id: string, fields: readonly Field[], d: Delimiters = DEFAULT_DELIMITERS): string {
  return joinTrimmed([id, ...fields.map((f) => encodeField(f, d))], d.field);
}

/** MSH-2 (FHS-2, BHS-2): component, repetition, escape, subcomponent. */
export function encodingCharacters(d: Delimiters): string {
  return `${d.component}${d.repetition}${d.escape}${d.subcomponent}`;
}

/**
 * MSH, FHS or BHS: field 1 is the field separator itself and field 2 the encoding characters,
 * neither escaped; `fields` start at field 3.
 */
export function headerSegment(id: 'MSH' | 'FHS' | 'BHS', fields: readonly Field[], d: Delimiters = DEFAULT_DELIMITERS): string {
  const rest = joinTrimmed(fields.map((f) => encodeField(f, d)), d.field);
  return `${id}${d.field}${encodingCharacters(d)}${rest === '' ? '' : d.field + rest}`;
}

/** Segments joined into one message. */
export function message(segments: readonly string[]): string {
  return segments.join(SEGMENT_SEPARATOR);
}

function sameDelimiters(a: Delimiters, b: Delimiters): boolean {
  return a.field === b.field && a.component === b.component && a.repetition === b.repetition && a.escape === b.escape && a.subcomponent === b.subcomponent;
}

/**
 * Text encoded with `from` (a whole segment, or one field with `level: 'field'`) re-encoded
 * with `to`: each separator becomes its counterpart, so escape sequences (`\F\`, `\X0D\`…) keep
 * their meaning with the new escape character; a character that is a separator only in `to`
 * is escaped. In a single field, a field separator (which the reader could not have left
 * there) is escaped rather than allowed to split the field. Identical delimiters: unchanged,
 * so an echo is byte for byte.
 */
export function transcode(text: string, from: Delimiters, to: Delimiters = DEFAULT_DELIMITERS, level: 'segment' | 'field' = 'segment'): string {
  const clean = text.replace(CONTROLS, ' ');
  if (sameDelimiters(from, to) && (level === 'segment' || !clean.includes(from.field))) return clean;
  const map = new Map<string, string>([
    [from.component, to.component],
    [from.repetition, to.repetition],
    [from.escape, to.escape],
    [from.subcomponent, to.subcomponent],
  ]);
  if (level === 'segment') map.set(from.field, to.field);
  let out = '';
  for (const c of clean) {
    const mapped = map.get(c);
    out += mapped ?? escapeText(c, to);
  }
  return out;
}
